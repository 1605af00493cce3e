import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { choosePython, closeRuntime, getRuntime, PythonError, PythonProcessError, Tensor } from '../../src/bridge/index.js';
import { evalPython, runtimeInfo } from '../../src/bridge/ops.js';
import { spawnTs, waitForLine, exited } from '../helpers/processes.js';

afterAll(() => closeRuntime());

describe('bridge calls', () => {
  it('reports the runtime it started', async () => {
    const rt = await getRuntime();
    expect(rt.info.torch).toMatch(/^\d+\.\d+/);
    expect(rt.info.executable).toContain('python');
  });

  it('turns a Python exception into a PythonError with its one-line message and the traceback kept', async () => {
    const err = await evalPython('def f():\n  raise ValueError("bad value 42\\nsecond line")\nf()').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PythonError);
    const e = err as PythonError;
    expect(e.message).toBe('ValueError: bad value 42');
    expect(e.pythonType).toBe('ValueError');
    expect(e.pythonTraceback).toContain('Traceback (most recent call last)');
    expect(e.pythonTraceback).toContain('second line');
    // The runtime is still usable afterwards.
    expect(await evalPython('result = 1 + 1')).toBe(2);
  });

  it('an unknown op is a clear error', async () => {
    const rt = await getRuntime();
    await expect(rt.call('no.such.op', {}, (h) => h)).rejects.toThrow("unknown runtime op 'no.such.op'");
  });

  it('moves tensors both ways exactly, including non-finite values', async () => {
    const data = new Float32Array([1.5, -2, Infinity, -Infinity, 0, 3.25]);
    const t = await Tensor.fromArray(data, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(Array.from(await t.toArray() as Float32Array)).toEqual(Array.from(data));
    const ints = await Tensor.fromArray([1, 2, 3], [3], { dtype: 'int64' });
    expect(Array.from(await ints.toArray() as BigInt64Array)).toEqual([1n, 2n, 3n]);
    expect(await evalPython('result = float("inf")')).toBe(Infinity);
    await expect(Tensor.fromArray([1, 2], [3])).rejects.toThrow(/needs 3/);
  });

  it('frees handles that are released', async () => {
    const t = await Tensor.fromArray([1, 2], [2]);
    t.free();
    await runtimeInfo(); // the free travels with the next call
    await expect(t.toArray()).rejects.toThrow(/handle \d+ is unknown/);
  });
});

describe('choosing the interpreter', () => {
  it('a missing SPARSIFY_PYTHON is a clear error', () => {
    expect(() => choosePython({ SPARSIFY_PYTHON: '/no/such/python' })).toThrow(/SPARSIFY_PYTHON=\/no\/such\/python is not an executable Python/);
  });

  it('a Python without torch fails with a message saying what to run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sparsify-notorch-'));
    execFileSync('python3', ['-m', 'venv', '--without-pip', join(dir, 'venv')]);
    const child = spawnTs('test/fixtures/runtime-child.ts', ['exit'], { ...process.env, SPARSIFY_PYTHON: join(dir, 'venv', 'bin', 'python') });
    const [line] = await waitForLine(child, /ERROR .*/);
    expect(line).toContain('PythonProcessError');
    expect(line).toMatch(/No module named 'torch'/);
    // The repair installs only the Python packages (not npm's dev dependencies).
    expect(line).toMatch(/Run `npx sparsify setup`/);
    expect((await exited(child)).code).toBe(3);
  });
});

it('PythonProcessError is exported for callers to catch', () => {
  expect(new PythonProcessError('x')).toBeInstanceOf(Error);
});
