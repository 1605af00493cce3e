// The globals generated code may use are the ones the runtime gives it, no more, no fewer.
import { afterAll, describe, expect, it } from 'vitest';
import { closeRuntime } from '../../src/bridge/index.js';
import { PROGRAM_GLOBALS } from '../../src/kernels/index.js';
import { py } from '../helpers/python.js';

afterAll(() => closeRuntime());

describe('program namespace', () => {
  it('the TypeScript registry and the Python namespace name the same globals', async () => {
    const python = await py<string[]>('from sparsify_runtime import program\nresult = sorted(program.NAMESPACE)');
    expect(python).toEqual(Object.keys(PROGRAM_GLOBALS).sort());
  });

  it('test-only ops are registered only under SPARSIFY_TESTING', async () => {
    const r = await py<{ testing: string[]; production: string[] }>(
      `
import os, subprocess, sys, json
code = "from sparsify_runtime import server, core; import json; print(json.dumps(sorted(k for k in core.OPS if k.startswith('testing.'))))"
env = {k: v for k, v in os.environ.items() if k != "SPARSIFY_TESTING"}
out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
from sparsify_runtime import core
result = {"testing": sorted(k for k in core.OPS if k.startswith("testing.")), "production": json.loads(out)}`,
    );
    expect(r.testing).toEqual(['testing.eval', 'testing.sleep']);
    expect(r.production).toEqual([]);
  });
});
