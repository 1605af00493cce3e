// The training step's programs make no host-device round trip on CUDA (each one drains the
// GPU's queue and leaves it idle while Python launches the next ops): no value copied from the
// host (`new_tensor`, `torch.tensor`, `x[i] = <Python value>`), no value read back (`.item()`,
// `int(...)`, `.tolist()`). The exceptions: AuxK's count of dead latents, which sizes its
// top-k and runs only once latents can be dead, and `--exclude_tokens`, whose rows are picked
// with a boolean mask.
import { describe, expect, it } from 'vitest';
import * as P from '../../src/trainer/programs.js';
import type { CoderStructure } from '../../src/math/structure.js';

const structures: CoderStructure[] = [
  { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true },
  { activation: 'groupmax', transcode: true, skipConnection: true, multiTopk: true, normalizeDecoder: false },
];

/** Lines of generated source that would wait for the GPU. */
function syncingLines(source: string): string[] {
  const lines = source.split('\n');
  return lines.filter(
    (l) =>
      /\.new_tensor\(|torch\.tensor\(|\.item\(\)|\.tolist\(\)|\.cpu\(\)|\.nonzero\(/.test(l) ||
      /\w\[[^\]]+\] = (True|False|-?[\d.]+)$/.test(l.trim()) ||
      (/\bint\(/.test(l) && !/num_dead = int\(/.test(l)),
  );
}

describe('no host sync in the training step', () => {
  for (const s of structures) {
    for (const sparseBackward of ['index_add', 'gemm'] as const) {
      it(`hook program: ${s.activation}${s.transcode ? ' transcoder' : ''}, ${sparseBackward}`, () => {
        expect(syncingLines(P.fvuHookProgram(s, { auxkBias: true, sparseBackward }).source)).toEqual([]);
      });
    }
    for (const optimizer of ['signum', 'adam'] as const) {
      it(`optimizer program: ${optimizer}, ${s.activation}${s.transcode ? ' transcoder' : ''}`, () => {
        expect(syncingLines(P.optimizerProgram(s, optimizer).source)).toEqual([]);
      });
    }
  }

  it('the check itself finds the patterns it looks for', () => {
    expect(syncingLines('a = x.new_tensor(0.0)\nd[i] = True\nn = int(s)\nnum_dead = int(s)\nv = t.item()')).toEqual(['a = x.new_tensor(0.0)', 'd[i] = True', 'n = int(s)', 'v = t.item()']);
  });
});
