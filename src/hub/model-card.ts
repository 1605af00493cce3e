/**
 * The model card (`README.md`) of a run published to the Hub: YAML front matter the Hub reads
 * (`library_name`, `tags`, `base_model`), what the coders are and how to load them, a table of
 * hookpoints with their configs, and the eval figures when the run has an `eval.json`.
 */
import type { SparseCoderConfig } from '../config/sparse-coder.js';
import { looksLocal } from '../util/paths.js';

export interface CardCoder {
  name: string;
  cfg: SparseCoderConfig;
  dIn: number;
  numLatents: number;
}

export interface CardEval {
  fvu?: number;
  l0?: number;
  ceLossRecovered?: number;
}

export interface CardInput {
  repoId: string;
  model: string | undefined;
  dataset: string | undefined;
  coders: readonly CardCoder[];
  /** Eval figures per coder name, from the run's eval.json. */
  evals?: Readonly<Record<string, CardEval>>;
}

const yamlString = (s: string): string => JSON.stringify(s);
const fixed = (n: number | undefined, digits: number): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits));

export function modelCard(input: CardInput): string {
  const transcoders = input.coders.some((c) => c.cfg.transcode);
  const autoencoders = input.coders.some((c) => !c.cfg.transcode);
  const tags = ['sparsify', ...(autoencoders ? ['sparse-autoencoder'] : []), ...(transcoders ? ['transcoder'] : [])];
  // A local path is no Hub model to link to.
  const baseModel = input.model && !looksLocal(input.model) ? input.model : undefined;
  const front = ['---', 'library_name: sparsify', 'tags:', ...tags.map((t) => `- ${t}`), ...(baseModel ? [`base_model: ${yamlString(baseModel)}`] : []), ...(input.dataset && !looksLocal(input.dataset) ? ['datasets:', `- ${yamlString(input.dataset)}`] : []), '---'];
  const what = transcoders && autoencoders ? 'Sparse autoencoders and transcoders' : transcoders ? 'Transcoders' : 'Sparse autoencoders';
  const on = input.model ? ` on the activations of ${baseModel ? `[${baseModel}](https://huggingface.co/${baseModel})` : `\`${input.model}\``}${input.dataset ? `, with \`${input.dataset}\`` : ''}` : '';
  const hasEval = input.evals !== undefined && Object.keys(input.evals).length > 0;
  const head = ['hookpoint', 'activation', 'k', 'latents', 'd_in', 'transcoder', 'skip', ...(hasEval ? ['fvu', 'L0', 'CE loss recovered'] : [])];
  const rows = input.coders.map((c) => {
    const e = input.evals?.[c.name];
    return [c.name, c.cfg.activation, String(c.cfg.k), String(c.numLatents), String(c.dIn), c.cfg.transcode ? 'yes' : 'no', c.cfg.skipConnection ? 'yes' : 'no', ...(hasEval ? [fixed(e?.fvu, 4), fixed(e?.l0, 1), fixed(e?.ceLossRecovered, 4)] : [])];
  });
  const table = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  return [
    ...front,
    '',
    `# ${input.repoId}`,
    '',
    `${what} trained with [sparsify](https://github.com/EleutherAI/sparsify) (TypeScript)${on}: one folder per hookpoint, each holding \`cfg.json\` and \`sae.safetensors\`.`,
    '',
    '```ts',
    "import { SparseCoder } from 'sparsify';",
    `const coders = await SparseCoder.loadMany(${JSON.stringify(input.repoId)});`,
    '```',
    '',
    ...table,
    ...(hasEval ? ['', 'fvu, L0 and CE loss recovered as `sparsify eval` measured them on held-out rows (`eval.json`).'] : []),
    '',
  ].join('\n');
}
