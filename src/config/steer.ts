import { z } from 'zod';

/** How `CausalLM.generate` continues a prompt (the API's options; `sparsify steer` takes them as flags). */
export const GenerateOptionsSchema = z
  .object({
    maxNewTokens: z.number().int().min(0).max(4096).default(32).describe('Tokens to generate at most'),
    temperature: z.number().min(0).max(100).default(0).describe('0: greedy (the most likely token); above 0: sample from softmax(logits / temperature)'),
    seed: z.number().int().min(0).default(0).describe('Seed of the sampling (the same seed, the same text)'),
    stopAtEos: z.boolean().default(true).describe("Stop at the model's end-of-sequence token"),
  })
  .strict();

export type GenerateOptions = z.output<typeof GenerateOptionsSchema>;

/** Options of `sparsify steer MODEL RUN PROMPT`: generate with a latent's decoder row added, or the latent clamped. */
export const SteerOptionsSchema = GenerateOptionsSchema.extend({
  model: z.string().min(1).describe('Model name on the Hub or local path'),
  run: z.string().min(1).describe('A run directory, a coder directory, or a Hub repo of coders'),
  prompt: z.string().min(1).describe('The text to continue'),
  latent: z
    .string()
    .regex(/^[^,]+:\d+(,[^,]+:\d+)*$/, 'give CODER:LATENT, such as layers.3:100 (several: layers.1:5,layers.3:100)')
    .describe('The latent to steer with, CODER:LATENT (such as layers.3:100); several coders comma-separated'),
  scale: z.number().optional().describe("Add scale * W_dec[latent] to the coder's module output at every position"),
  clamp: z.number().optional().describe("Instead: clamp the latent's activation to this value through the coder (the reconstruction error is kept)"),
  baseline: z.boolean().default(false).describe('Also print the continuation without the intervention'),
  device: z.string().optional().describe('Device (default: cuda when available, else cpu)'),
  hfToken: z.string().optional().describe('Hugging Face token, for gated models and private coder repos'),
})
  .strict()
  .refine((o) => (o.scale === undefined) !== (o.clamp === undefined), { message: 'give exactly one of --scale and --clamp', path: ['scale'] });

export type SteerOptions = z.output<typeof SteerOptionsSchema>;
