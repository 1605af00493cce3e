/**
 * What a forward pass of `hooks.run` gives the programs it runs (python/sparsify_runtime/
 * hooks.py): a logits program gets the pass's logits, its token ids, the token mask (None
 * when every token counts) and the batch's context, shared by the training and evaluation
 * programs.
 */
import type { ProgramBuilder } from '../kernels/index.js';

/** Declare a logits program's inputs. */
export function logitsInputs(g: ProgramBuilder) {
  const logits = g.input('logits');
  const inputIds = g.input('input_ids', { dtype: 'int64' });
  const mask = g.optionalInput('mask', { dtype: 'bool' });
  const context = g.bundleInput<string>('context');
  return { logits, inputIds, mask, context };
}
