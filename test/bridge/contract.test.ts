// The bridge's contract against the Python side: every op TypeScript calls is registered with
// exactly the keyword arguments TS sends (read with inspect.signature), the runtime has no op
// TS does not know, and the benchmarks' extension and the test ops load only when asked.
import { execFileSync } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPS } from '../../src/bridge/contract.js';
import { pythonRuntimeDir, venvPython } from '../../src/bridge/paths.js';

interface Signature {
  params: string[];
  required: string[];
}

/** Every registered op's parameters, from a Python started with `env`. */
function pythonOps(env: Record<string, string>): Record<string, Signature> {
  const code = [
    'import inspect, json',
    'from sparsify_runtime import server',
    'from sparsify_runtime.core import OPS',
    'out = {}',
    'for name, fn in OPS.items():',
    '    ps = inspect.signature(fn).parameters.values()',
    '    out[name] = {"params": [p.name for p in ps], "required": [p.name for p in ps if p.default is inspect.Parameter.empty]}',
    'print(json.dumps(out))',
  ].join('\n');
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SPARSIFY_TESTING' && k !== 'SPARSIFY_RUNTIME_EXTENSIONS')) as Record<string, string>;
  const python = process.env.SPARSIFY_PYTHON ?? venvPython;
  const out = execFileSync(python, ['-c', code], { env: { ...base, PYTHONPATH: [pythonRuntimeDir, process.env.PYTHONPATH].filter(Boolean).join(delimiter), ...env }, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, Signature>;
}

const benchOps = join(pythonRuntimeDir, 'bench', 'bench_ops.py');

describe('bridge contract', () => {
  const everything = pythonOps({ SPARSIFY_TESTING: '1', SPARSIFY_RUNTIME_EXTENSIONS: benchOps });

  it('every op TS calls exists in Python and takes exactly the arguments TS sends', () => {
    const problems: string[] = [];
    for (const [name, { args }] of Object.entries(OPS)) {
      const py = everything[name];
      if (!py) {
        problems.push(`${name}: not registered in the runtime`);
        continue;
      }
      const sent = args as readonly string[];
      for (const a of sent) if (!py.params.includes(a)) problems.push(`${name}: TS sends '${a}', which the Python function does not take (it takes ${py.params.join(', ') || 'nothing'})`);
      for (const r of py.required) if (!sent.includes(r)) problems.push(`${name}: Python requires '${r}', which TS does not send`);
    }
    expect(problems).toEqual([]);
  });

  it('the runtime registers no op the contract lacks', () => {
    expect(Object.keys(everything).filter((name) => !(name in OPS))).toEqual([]);
  });

  it('the test ops only under the test harness, the benchmark ops only when loaded', () => {
    const production = Object.keys(pythonOps({}));
    expect(production.filter((n) => n.startsWith('testing.') || n.startsWith('bench.'))).toEqual([]);
    expect(Object.keys(everything).filter((n) => n.startsWith('testing.')).sort()).toEqual(['testing.eval', 'testing.sleep']);
    expect(Object.keys(everything).filter((n) => n.startsWith('bench.')).length).toBeGreaterThan(0);
    // Every other op is there in production.
    expect(production.sort()).toEqual(Object.keys(OPS).filter((n) => !n.startsWith('testing.') && !n.startsWith('bench.')).sort());
  });
});
