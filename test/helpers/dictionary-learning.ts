// Where the side-by-side tests with saprmarks/dictionary_learning find its restatement
// (dictionary_learning.py beside this file) and, when present, the library itself, and the
// activations they compare on.
import { join } from 'node:path';
import { repoRoot } from './processes.js';

/** The restatement of its training math. */
export const DL_HELPER = new URL('./dictionary_learning.py', import.meta.url).pathname;
/** A checkout of the library (ignored; a test that runs it is skipped without it). */
export const DL_CHECKOUT = join(repoRoot, '.reference', 'dictionary_learning_repo');
/** What it imports that .venv lacks (the reference's ignored site folder). */
export const DL_SITE = join(repoRoot, '.reference-site');

/**
 * Python that loads the restatement as `dl` and sets `x` and `y`, layers.0's input and output
 * ([tokens, D]) on rows 0..4 of `rows` through `model` (both passed in, with `helper`).
 */
export const LAYER0_PRELUDE = `
import pathlib
dl = {}
exec(pathlib.Path(helper).read_text(), dl)
ids = rows.rows(0, 4)
acts = {}
def keep(m, i, o):
  acts["x"] = i[0].flatten(0, 1)
  acts["y"] = (o[0] if isinstance(o, tuple) else o).flatten(0, 1)
h = model.base_model.get_submodule("layers.0").register_forward_hook(keep)
with torch.no_grad(): model(ids)
h.remove()
x, y = acts["x"], acts["y"]
`;
