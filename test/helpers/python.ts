import { evalPython, type Tensor } from '../../src/bridge/ops.js';

/** Run a Python snippet in the runtime (a test op); `result` is returned (tensors as handles). */
export async function py<T = unknown>(code: string, env: Record<string, unknown> = {}): Promise<T> {
  return evalPython<T>(code, env);
}

/** A float32 tensor of standard normals made in Python with a fixed seed. */
export async function randn(shape: number[], seed: number, requiresGrad = false): Promise<Tensor> {
  return py<Tensor>(
    `g = torch.Generator().manual_seed(seed)\nresult = torch.randn(*shape, generator=g)\nif rg: result.requires_grad_(True)`,
    { shape, seed, rg: requiresGrad },
  );
}

/** Max |a - b| over two tensors, computed in Python. */
export async function maxAbsDiff(a: Tensor, b: Tensor): Promise<number> {
  return py<number>('result = (a.detach().double() - b.detach().double()).abs().max().item()', { a, b });
}

let reference: Promise<unknown> | undefined;

/** test/helpers/reference.py loaded in the runtime, as an opaque handle to pass as `ref`. */
export function referenceModule(): Promise<unknown> {
  reference ??= py(
    `import types, pathlib\nns = {}\nexec(pathlib.Path(path).read_text(), ns)\nresult = types.SimpleNamespace(**ns)`,
    { path: new URL('./reference.py', import.meta.url).pathname },
  );
  return reference;
}

/** Save a tiny causal LM (with its own tokenizer) made from a config into `path`. */
export async function makeTinyLM(path: string, options: { arch?: 'gpt_neox' | 'llama' | 'gpt2'; hidden?: number; layers?: number } = {}): Promise<string> {
  await py(
    `import types, pathlib\nns = {}\nexec(pathlib.Path(helper).read_text(), ns)\nns["make_tiny_lm"](path, arch=arch, hidden=hidden, layers=layers)`,
    { helper: new URL('./tiny_models.py', import.meta.url).pathname, path, arch: options.arch ?? 'gpt_neox', hidden: options.hidden ?? 32, layers: options.layers ?? 2 },
  );
  return path;
}
