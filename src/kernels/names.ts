/**
 * Readable, unique Python names for generated values (as torch.fx's `_Namespace`): a value
 * is called after the op that made it or the name the math gave it (`pre_acts`,
 * `top_indices`), with `_1`, `_2` ... when the name is taken. Keywords, the builtins
 * generated code calls, and the globals it may use are never handed out.
 */
import { GLOBAL_NAMES } from './globals.js';

const KEYWORDS = [
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del', 'elif',
  'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not', 'or',
  'pass', 'raise', 'return', 'try', 'while', 'with', 'yield',
];
/** Builtins the vocabulary's templates call, and ones a local should not hide (as torch.fx avoids them). */
const BUILTINS = ['float', 'int', 'min', 'max', 'range', 'getattr', 'len', 'print', 'sum', 'pow', 'abs', 'all', 'any', 'round', 'type', 'list', 'dict', 'tuple', 'set', 'str', 'bool'];

export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Turn a hint such as `encoder.weight` into an identifier (`encoder_weight`). */
export function sanitize(hint: string): string {
  const cleaned = hint.replace(/[^A-Za-z0-9_]/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '');
  if (!cleaned) return 'value';
  return /^[0-9]/.test(cleaned) ? `v${cleaned}` : cleaned;
}

/** Names used in one generated function. */
export class Namespace {
  private readonly taken = new Set<string>([...KEYWORDS, ...BUILTINS, ...GLOBAL_NAMES]);
  private readonly counts = new Map<string, number>();

  /** Reserve a name that must stay as it is (a parameter); it is an error if taken. */
  reserve(name: string): string {
    if (this.taken.has(name)) throw new Error(`the name '${name}' is reserved in generated code`);
    this.taken.add(name);
    return name;
  }

  /** A fresh name from `hint`. */
  fresh(hint: string): string {
    const base = sanitize(hint);
    let n = this.counts.get(base) ?? 0;
    let name = n === 0 ? base : `${base}_${n}`;
    while (this.taken.has(name)) {
      n += 1;
      name = `${base}_${n}`;
    }
    this.counts.set(base, n + 1);
    this.taken.add(name);
    return name;
  }
}
