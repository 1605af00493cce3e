/**
 * `sparsify steer MODEL RUN PROMPT --latent CODER:LATENT --scale S`: continue a prompt with a
 * latent's decoder row added at its coder's hookpoint (or `--clamp V`: the latent clamped
 * through the coder); `--baseline` prints the continuation without it too (src/steer).
 */
import { Command } from 'commander';
import { SparsifyError } from '../bridge/errors.js';
import { closeRuntime, getRuntime } from '../bridge/runtime.js';
import { SparseCoder } from '../coder/sparse-coder.js';
import { parseFlags } from '../config/errors.js';
import { SteerOptionsSchema, type SteerOptions } from '../config/steer.js';
import { hookpointOf } from '../eval/evaluate.js';
import { CausalLM } from '../model/causal-lm.js';
import { checkInterventions, type Intervention } from '../steer/generate.js';
import { localPath } from '../util/paths.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';

const FIELDS = fieldsOf(SteerOptionsSchema.shape, 'steer', ['model', 'run', 'prompt']);

export function buildSteerCommand(): Command {
  return subcommand(
    'steer',
    "Continue a prompt with a coder inside the model: --scale adds scale * W_dec[latent] to the coder's module output at\nevery position; --clamp sets the latent's activation through the coder (encode, set, decode, keep the error).",
    [
      ['<model>', 'model name on the Hub or local path'],
      ['<run>', 'a run directory, a coder directory, or a Hub repo of coders'],
      ['<prompt>', 'the text to continue'],
    ],
    FIELDS,
  );
}

/** Parse `sparsify steer` arguments (after `steer`). */
export function parseSteerArgs(argv: string[]): SteerOptions {
  const command = buildSteerCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [model, run, prompt] = command.processedArgs as [string, string, string];
  return parseFlags(SteerOptionsSchema, { ...readOptions(command.opts<Record<string, unknown>>(), FIELDS), model, run, prompt }, 'sparsify steer');
}

/** `layers.3:100` as the coder's name and the latent (the name may hold colons; the latent follows the last). */
function splitLatent(spec: string): { coder: string; latent: number } {
  const at = spec.lastIndexOf(':');
  return { coder: spec.slice(0, at), latent: Number(spec.slice(at + 1)) };
}

/** Run `sparsify steer`; resolves with the exit code. */
export async function steerMain(argv: string[]): Promise<number> {
  let opts: SteerOptions;
  try {
    opts = parseSteerArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'steer');
  }
  try {
    const wanted = opts.latent.split(',').map(splitLatent);
    const device = opts.device ?? ((await getRuntime()).info.cuda ? 'cuda' : 'cpu');
    const token = opts.hfToken ? { token: opts.hfToken } : {};
    // The coders first (a missing one costs a second, not a model load).
    const coders = await SparseCoder.loadMany(opts.run, { layers: [...new Set(wanted.map((w) => w.coder))], device, ...token });
    const interventions: Intervention[] = wanted.map((w) => {
      const name = coders.has(w.coder) ? w.coder : [...coders.keys()].find((n) => hookpointOf(n) === w.coder);
      if (!name) throw new SparsifyError(`--latent ${w.coder}:${w.latent}: ${opts.run} has no coder ${w.coder}`);
      return { hookpoint: hookpointOf(name), coder: coders.get(name)!, latent: w.latent, ...(opts.scale !== undefined ? { scale: opts.scale } : { clamp: opts.clamp! }) };
    });
    checkInterventions(interventions);
    process.stderr.write(`Loading model ${opts.model}\n`);
    const lm = await CausalLM.load(localPath(opts.model, 'model') ?? opts.model, { device, ...token });
    const generation = { maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, seed: opts.seed, stopAtEos: opts.stopAtEos };
    const steered = await lm.generate(opts.prompt, { ...generation, interventions });
    if (opts.baseline) {
      const plain = await lm.generate(opts.prompt, generation);
      const how = opts.scale !== undefined ? `scale ${opts.scale}` : `clamp ${opts.clamp}`;
      process.stdout.write(`without: ${opts.prompt}${plain.text}\nwith ${opts.latent} ${how}: ${opts.prompt}${steered.text}\n`);
    } else {
      process.stdout.write(`${opts.prompt}${steered.text}\n`);
    }
    return 0;
  } catch (err) {
    return runErrorExit(err, 'steer');
  } finally {
    closeRuntime();
  }
}
