/**
 * A CLT's tensors in the layout distributed modules train it in (who owns what:
 * cross-layer-placement.ts): per owned layer j one bundle holding its encoder as a source, its
 * target's bias `b_dec`, and `W_dec` [j + 1, M, D], its decoders from every source i <= j at
 * i. Making that share (a new CLT's, drawn as a whole CLT is drawn; a saved CLT's, reading only
 * the decoders into the owned layers) and turning it back into the saved layout by source for a
 * save (every rank together). Not the training step (programs.ts).
 */
import { join } from 'node:path';
import { loadTensors, type PyObject } from '../bridge/ops.js';
import { readCrossLayerFolder, type CrossLayerShape } from '../coder/cross-layer.js';
import { WEIGHTS_FILE } from '../coder/files.js';
import { numLatentsFor } from '../config/sparse-coder.js';
import { In, cachedProgram, defineProgram, runProgram, type SymTensor } from '../kernels/index.js';
import * as sc from '../math/sparse-coder.js';
import { paramNames, storedNames, structureOf, structureTag as tag, type CoderParamName, type CoderParams, type CoderStructure } from '../math/structure.js';
import type { CrossLayerShard } from './programs.js';

/**
 * Layer j's draw of a new CLT (seeded at j = 0, then drawn on, as the whole CLT's init draws
 * source after source): with `keep`, its share (W_dec zeros [j + 1, M, D]); without, nothing
 * (the draw only moves the generator on).
 */
function shardInitProgram(s: CoderStructure, j: number, keep: boolean) {
  return cachedProgram(`clt_shard_init:${tag(s)}:${j}:${keep}`, () =>
    defineProgram(
      `clt_shard_init_${tag(s)}_${j}_${keep ? 'keep' : 'skip'}`,
      { seed: In.scalar<number | null>(), dIn: In.scalar(), numLatents: In.scalar(), device: In.object<string>(), dtype: In.object<string>() },
      (g, inputs) => {
        const p = sc.initParams(g, s, { ...inputs, seed: j === 0 ? inputs.seed : null });
        if (!keep) return {} as Record<string, never>;
        const wDec = g.zeros([j + 1, inputs.numLatents, inputs.dIn], { dtype: inputs.dtype, device: inputs.device }).named('W_dec_in');
        wDec.requiresGrad_();
        const entries: Record<string, SymTensor> = {};
        for (const name of storedNames(s)) entries[name] = name === 'W_dec' ? wDec : p.get(name as CoderParamName);
        return { p: g.bundle(entries as Record<CoderParamName, SymTensor>).named('share') };
      },
    ),
  );
}

/** A new CLT's share for the `owned` layers (each a bundle), every layer's encoder drawn in order as {@link CrossLayerTranscoder.create} draws them. */
export async function initShard(clt: CrossLayerShape, owned: readonly number[], options: { seed: number | null; device: string }): Promise<PyObject[]> {
  const s = structureOf(clt.cfg);
  const out: PyObject[] = [];
  for (const j of clt.layers.keys()) {
    const keep = owned.includes(j);
    const r = (await runProgram(shardInitProgram(s, j, keep), { seed: options.seed, dIn: clt.dIn, numLatents: numLatentsFor(clt.cfg, clt.dIn), device: options.device, dtype: 'float32' } as never)) as { p?: PyObject };
    if (keep) out.push(r.p!);
  }
  return out;
}

/** Target j's share from its tensors as source j (`own`) and its decoders read from each source i <= j (`from{i}`: W_dec [M, 1, D]). */
function shardFromSourcesProgram(s: CoderStructure, j: number) {
  return cachedProgram(`clt_shard_from_sources:${tag(s)}:${j}`, () =>
    defineProgram(
      `clt_shard_from_sources_${tag(s)}_${j}`,
      { own: In.bundle<CoderParamName>(), ...Object.fromEntries(Array.from({ length: j + 1 }, (_, i) => [`from${i}`, In.bundle<CoderParamName>()])) },
      (g, io) => {
        const all = io as unknown as Record<string, CoderParams>;
        const own = all.own!;
        const wIn = g.cat(Array.from({ length: j + 1 }, (_, i) => all[`from${i}`]!.get('W_dec').squeeze(1).unsqueeze(0)), 0).named('W_dec_in');
        const entries: Record<string, SymTensor> = {};
        for (const name of storedNames(s)) entries[name] = name === 'W_dec' ? wIn : own.get(name as CoderParamName).detach();
        for (const name of paramNames(s)) entries[name]!.requiresGrad_();
        return { p: g.bundle(entries as Record<CoderParamName, SymTensor>).named('share') };
      },
    ),
  );
}

/**
 * The `owned` layers' share of the CLT saved in `dir` (after its files were checked against
 * its cfg.json): each layer's own tensors, and from every earlier source's file only its
 * decoder into that layer.
 */
export async function loadShard(dir: string, owned: readonly number[], device: string): Promise<PyObject[]> {
  const { cfg, files } = await readCrossLayerFolder(dir);
  const s = structureOf(cfg);
  const out: PyObject[] = [];
  for (const j of owned) {
    const own = await loadTensors(files[j]!, { device, names: storedNames(s).filter((n) => n !== 'W_dec') });
    const from: Record<string, PyObject> = {};
    for (let i = 0; i <= j; i++) from[`from${i}`] = await loadTensors(files[i]!, { device, names: ['W_dec'], narrow: { W_dec: [1, j - i, 1] } });
    out.push(((await runProgram(shardFromSourcesProgram(s, j), { own, ...from } as never)) as { p: PyObject }).p);
  }
  return out;
}

/** The weights file of source `source` in a CLT folder. */
export const sourceFile = (dir: string, clt: CrossLayerShape, source: number): string => join(dir, clt.layers[source]!, WEIGHTS_FILE);

/**
 * The owned layers' tensors by source, as a CLT folder saves them (W_dec [M, n - i, D], this
 * layer's target first), from every rank's share (`p{t}`: the owned layers' saved tensors):
 * each decoder goes from the owner of its target to the owner of its source, one [M, D] at a
 * time through one buffer (every rank takes part in each, none holds more than its own share).
 */
function shardToSourcesProgram(s: CoderStructure, n: number, shard: CrossLayerShard) {
  const { owners, owned } = shard;
  const id = `${tag(s)}_${n}_own${owned.join('_')}_of${owners.join('')}`;
  return cachedProgram(`clt_shard_to_sources:${id}`, () =>
    defineProgram(`clt_shard_to_sources_${id}`, Object.fromEntries(owned.map((_, t) => [`p${t}`, In.bundle<CoderParamName>()])), (g, io) => {
      const ps = owned.map((_, t) => (io as unknown as Record<string, CoderParams>)[`p${t}`]!);
      const decoderOf = (t: number, i: number): SymTensor => ps[t]!.get('W_dec').narrow(0, i, 1).squeeze(0);
      const out: Record<string, unknown> = {};
      g.noGrad(() => {
        const first = ps[0]!.get('W_dec');
        const buffer = g.zerosLike(decoderOf(0, 0)).named('decoder_buffer');
        const bySource = owned.map((i) => g.zeros([first.size(1), n - i, first.size(2)], { dtype: 'float32', device: first }).typeAs(first).named(`W_dec_${i}`));
        for (let j = 0; j < n; j++) {
          for (let i = 0; i <= j; i++) {
            const ti = owned.indexOf(i);
            const tj = owned.indexOf(j);
            const into = (from: SymTensor): void => {
              bySource[ti]!.narrow(1, j - i, 1).squeeze(1).copy_(from);
            };
            if (owners[i] === owners[j]) {
              if (ti >= 0) into(decoderOf(tj, i));
              continue;
            }
            if (tj >= 0) buffer.copy_(decoderOf(tj, i));
            g.broadcast_(buffer, owners[j]!);
            if (ti >= 0) into(buffer);
          }
        }
        owned.forEach((_, t) => {
          const entries: Record<string, SymTensor> = {};
          for (const name of storedNames(s)) entries[name] = name === 'W_dec' ? bySource[t]! : ps[t]!.get(name as CoderParamName);
          out[`src${t}`] = g.bundle(entries as Record<CoderParamName, SymTensor>).named(`source_${owned[t]}`);
        });
      });
      return out as Record<string, ReturnType<typeof g.bundle>>;
    }),
  );
}

/** The owned layers' saved tensors (`shares`, in the owned order) by source, for their files; every rank calls it at once. */
export async function shardToSources(clt: CrossLayerShape, shard: CrossLayerShard, shares: readonly PyObject[]): Promise<PyObject[]> {
  const out = (await runProgram(shardToSourcesProgram(structureOf(clt.cfg), clt.layers.length, shard), Object.fromEntries(shares.map((p, t) => [`p${t}`, p])) as never)) as Record<string, PyObject>;
  return shard.owned.map((_, t) => out[`src${t}`]!);
}
