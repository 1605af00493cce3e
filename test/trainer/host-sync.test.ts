// The training step's programs make no host-device round trip on CUDA (each one drains the
// GPU's queue and leaves it idle while Python launches the next ops): no value copied from the
// host (`new_tensor`, `torch.tensor`, `x[i] = <Python value>`), no value read back (`.item()`,
// `int(...)`, `.tolist()`). The exceptions: AuxK's count of dead latents, which sizes its
// top-k and runs only once latents can be dead, `--exclude_tokens`, whose rows are picked
// with a boolean mask, and the length of a selection whose count varies per token, one int per
// step: a padded one's width (jumprelu: the most latents above their thresholds a token of the
// batch has), a ragged one's number of entries (batchtopk: those at or above its cut's bound,
// a nonzero). A learned inference threshold's update and a Matryoshka loss add none, nor do
// counts per value (torch.bincount would read the largest value back on CUDA; the builder's
// bincount is a scatter-add).
import { describe, expect, it } from 'vitest';
import * as P from '../../src/trainer/programs.js';
import type { CoderStructure } from '../../src/math/structure.js';
import { activation } from '../../src/activations/index.js';

const structures: CoderStructure[] = [
  { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true, inferenceThreshold: false },
  { activation: 'groupmax', transcode: true, skipConnection: true, multiTopk: true, normalizeDecoder: false, inferenceThreshold: false },
  { activation: 'topk', transcode: true, skipConnection: false, multiTopk: true, normalizeDecoder: true, inferenceThreshold: true },
  { activation: 'batchtopk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true, inferenceThreshold: true, matryoshka: { prefixes: [16, 64], weights: [1 / 3, 1 / 3, 1 / 3] } },
  { activation: 'jumprelu', transcode: true, skipConnection: true, multiTopk: false, normalizeDecoder: false, inferenceThreshold: false, bandwidth: 0.001 },
];

/** Lines of generated source that would wait for the GPU. */
function syncingLines(source: string): string[] {
  const lines = source.split('\n');
  return lines.filter(
    (l) =>
      /\.new_tensor\(|torch\.tensor\(|\.item\(\)|\.tolist\(\)|\.cpu\(\)|torch\.bincount\(/.test(l) ||
      (/\.nonzero\(/.test(l) && !/^\s*at_or_above\w* = /.test(l)) ||
      /\w\[[^\]]+\] = (True|False|-?[\d.]+)$/.test(l.trim()) ||
      (/\bint\(/.test(l) && !/(num_dead|width) = int\(/.test(l)),
  );
}

describe('no host sync in the training step', () => {
  for (const s of structures) {
    for (const sparseBackward of ['index_add', 'gemm'] as const) {
      it(`hook program: ${s.activation}${s.transcode ? ' transcoder' : ''}${s.inferenceThreshold ? ' learning a threshold' : ''}${s.matryoshka ? ' matryoshka' : ''}, ${sparseBackward}`, () => {
        const source = P.fvuHookProgram(s, { auxkBias: true, sparseBackward }).source;
        expect(syncingLines(source)).toEqual([]);
        const act = activation(s.activation);
        expect(source.split('\n').filter((l) => /width = int\(/.test(l)).length).toBe(act.padded && !act.ragged ? 1 : 0);
        expect(source.split('\n').filter((l) => /\.nonzero\(/.test(l)).length).toBe(act.ragged ? 1 : 0);
      });
    }
    for (const optimizer of ['signum', 'adam'] as const) {
      it(`optimizer program: ${optimizer}, ${s.activation}${s.transcode ? ' transcoder' : ''}${s.inferenceThreshold ? ' learning a threshold' : ''}`, () => {
        expect(syncingLines(P.optimizerProgram(s, optimizer).source)).toEqual([]);
      });
    }
  }

  it('the check itself finds the patterns it looks for', () => {
    expect(syncingLines('a = x.new_tensor(0.0)\nd[i] = True\nn = int(s)\nnum_dead = int(s)\nv = t.item()\np = m.nonzero().squeeze(1)\nc = torch.bincount(r, minlength=4)')).toEqual(['a = x.new_tensor(0.0)', 'd[i] = True', 'n = int(s)', 'v = t.item()', 'p = m.nonzero().squeeze(1)', 'c = torch.bincount(r, minlength=4)']);
  });
});
