#!/usr/bin/env node
// npm run bench:gpu: prepare gpu-bench/ (ignored by git) with everything the GPU benchmark
// needs on a machine without network and without Node, then (with --dry-run) run it here on
// the CPU with a tiny model. On the GPU machine, carry gpu-bench and run `bash gpu-bench/run.sh`.
//
//   gpu-bench/dist/bench-gpu.mjs src/bench/gpu.ts bundled with its dependencies (esbuild); two
//                                levels below the repository, as dist/bridge/ is, so that it
//                                finds the runtime in python/ as the built package does
//   gpu-bench/dist/*.py          pythonia's Python side, found beside the bundle
//   gpu-bench/node.xz            this Node binary, xz-compressed
//   gpu-bench/wheels/            what a CUDA image lacks: datasets and its pure-Python needs, natsort, docstring_parser (simple_parsing's), einops (the reference's)
//   gpu-bench/reference/         the reference library (EleutherAI/sparsify 1.3.0) with schedulefree
//                                and simple_parsing, copied from SPARSIFY_REFERENCE_SRC (never committed)
//   gpu-bench/run.sh             unpacks and runs it
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'gpu-bench');
const dryRun = process.argv.includes('--dry-run');
const say = (m) => process.stderr.write(`bench:gpu: ${m}\n`);

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'wheels'), { recursive: true });
mkdirSync(join(out, 'dist'), { recursive: true });

// 1. The benchmark driver as one file. pythonia is CommonJS and finds its interface.py through
//    __dirname: give the ES module bundle a __dirname and require, and put its .py files beside it.
const esbuild = await import('esbuild');
await esbuild.build({
  entryPoints: [join(root, 'src', 'bench', 'gpu.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: join(out, 'dist', 'bench-gpu.mjs'),
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
  },
  logLevel: 'warning',
});
const pythoniaPy = join(root, 'node_modules', 'pythonia', 'src', 'pythonia');
for (const f of readdirSync(pythoniaPy).filter((f) => f.endsWith('.py'))) cpSync(join(pythoniaPy, f), join(out, 'dist', f));
say('bundled src/bench/gpu.ts');

// 2. Node, compressed.
execFileSync('sh', ['-c', `xz -T0 -6 -c "${process.execPath}" > "${join(out, 'node.xz')}"`]);
say(`packed ${process.execPath} (Node ${process.version})`);

// 3. Wheels for Python 3.12 on x86-64 (the GPU image's): what it lacks.
execFileSync(
  'python3',
  ['-m', 'pip', 'download', '--retries', '0', '--timeout', '5', '--no-deps', '--only-binary=:all:', '--python-version', '3.12', '--implementation', 'cp',
    '--platform', 'manylinux_2_28_x86_64', '--platform', 'manylinux_2_17_x86_64', '--platform', 'manylinux2014_x86_64', '-d', join(out, 'wheels'),
    'datasets', 'dill', 'multiprocess', 'natsort', 'docstring_parser', 'einops'],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
say(`wheels: ${readdirSync(join(out, 'wheels')).join(', ')}`);

// 4. The reference and the two libraries it imports that are not on pip's index here.
const refSrc = process.env.SPARSIFY_REFERENCE_SRC ?? join(root, '.reference');
for (const pkg of ['sparsify', 'schedulefree', 'simple_parsing']) {
  const from = join(refSrc, pkg);
  if (!existsSync(from)) {
    say(`${from} is missing: set SPARSIFY_REFERENCE_SRC to a folder holding the reference's sparsify/ (EleutherAI/sparsify v1.3.0), schedulefree/ and simple_parsing/`);
    process.exit(1);
  }
  cpSync(from, join(out, 'reference', pkg), { recursive: true, filter: (p) => !p.includes('__pycache__') });
}
say(`reference from ${refSrc}`);

// 5. The command for the GPU machine (run from the repository root).
writeFileSync(
  join(out, 'run.sh'),
  `#!/usr/bin/env bash
# On the GPU machine, from the repository root: bash gpu-bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
xz -dc gpu-bench/node.xz > /tmp/node && chmod +x /tmp/node
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site gpu-bench/wheels/*.whl
export PYTHONPATH=/tmp/site:\${PYTHONPATH:-}
export SPARSIFY_PYTHON=\${SPARSIFY_PYTHON:-python3} SPARSIFY_REFERENCE_PATH="$PWD/gpu-bench/reference" PYTHONUNBUFFERED=1
exec /tmp/node gpu-bench/dist/bench-gpu.mjs
`,
  { mode: 0o755 },
);
say(`ready: ${out} (carry gpu-bench; run bash gpu-bench/run.sh)`);

if (dryRun) {
  // Here: this Node, the package's .venv (with datasets), a tiny model on the CPU.
  const python = process.env.SPARSIFY_PYTHON ?? join(root, '.venv', 'bin', 'python');
  execFileSync(process.execPath, [join(out, 'dist', 'bench-gpu.mjs')], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_GPU_TINY: '1', SPARSIFY_PYTHON: python, SPARSIFY_REFERENCE_PATH: join(out, 'reference'), PYTHONPATH: [join(root, '.reference-site'), process.env.PYTHONPATH].filter(Boolean).join(':') },
  });
}
