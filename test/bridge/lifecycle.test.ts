// The Python process ends with Node, whatever way Node ends; a dead Python fails every call at once.
import { describe, expect, it } from 'vitest';
import { alive, exited, gone, spawnTs, waitForLine } from '../helpers/processes.js';
import { getRuntime, PythonProcessError } from '../../src/bridge/index.js';
import { runtimeInfo, sleepInPython } from '../../src/bridge/ops.js';

async function startChild(mode: string): Promise<{ child: ReturnType<typeof spawnTs>; pypid: number }> {
  const child = spawnTs('test/fixtures/runtime-child.ts', [mode]);
  const m = await waitForLine(child, /PYPID (\d+)/);
  const pypid = Number(m[1]);
  expect(alive(pypid)).toBe(true);
  return { child, pypid };
}

describe('no orphan Python processes', () => {
  it('a script that finishes exits by itself and takes Python with it', async () => {
    const { child, pypid } = await startChild('exit');
    const { code } = await exited(child);
    expect(code).toBe(0);
    expect(await gone(pypid)).toBe(true);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during a long Python call ends Node and Python`, async () => {
      const { child, pypid } = await startChild('wait');
      await new Promise((r) => setTimeout(r, 300));
      child.kill(signal);
      const result = await exited(child);
      expect(result.code).toBe(signal === 'SIGINT' ? 130 : 143);
      expect(await gone(pypid)).toBe(true);
    });
  }

  it('SIGKILL of Node still ends Python (parent-death signal)', async () => {
    const { child, pypid } = await startChild('idle-wait');
    child.kill('SIGKILL');
    await exited(child);
    expect(await gone(pypid)).toBe(true);
  });
});

describe('a dead Python process', () => {
  it('rejects the pending call and every later call at once', async () => {
    const rt = await getRuntime();
    const pending = sleepInPython(120, rt);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    rt.proc.kill('SIGKILL');
    const err = await pending.catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err).toBeInstanceOf(PythonProcessError);
    expect((err as Error).message).toMatch(/was killed by SIGKILL/);
    const t1 = Date.now();
    await expect(runtimeInfo(rt)).rejects.toThrow(/was killed by SIGKILL/);
    await expect(getRuntime()).rejects.toThrow(/has died/);
    expect(Date.now() - t1).toBeLessThan(1000);
  });
});
