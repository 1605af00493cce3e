/**
 * Statements to Python source. Names are chosen here, in the order values are defined, from
 * their hints (names.ts), so the same program always prints the same text.
 */
import { KernelBuildError } from './types.js';
import { PyDType, PyFloat, PyTuple, Value, type Expr, type Operand, type Stmt } from './ir.js';
import { Namespace } from './names.js';
import { VOCABULARY } from './vocabulary.js';

/** Python's spelling of a float that JS prints without a point (1 -> 1.0). */
export function pythonFloat(value: number): string {
  const text = pythonNumber(value);
  return /^-?\d+$/.test(text) ? `${text}.0` : text;
}

function pythonNumber(v: number): string {
  if (Number.isNaN(v)) return "float('nan')";
  if (!Number.isFinite(v)) return v > 0 ? "float('inf')" : "float('-inf')";
  return String(v);
}

/** Prints the statements of one Python function. */
export class Printer {
  private readonly names = new Map<Value, string>();
  private readonly namespace = new Namespace();

  /** Parameters and other fixed names, reserved before anything is named. */
  constructor(fixed: readonly string[]) {
    for (const name of fixed) {
      try {
        this.namespace.reserve(name);
      } catch (err) {
        throw new KernelBuildError((err as Error).message);
      }
    }
  }

  /** The source lines of `stmts`, indented by `depth` levels. */
  lines(stmts: readonly Stmt[], depth: number): string[] {
    const out: string[] = [];
    this.walk(stmts, depth, out);
    return out;
  }

  private walk(stmts: readonly Stmt[], depth: number, out: string[]): void {
    const pad = '    '.repeat(depth);
    for (const s of stmts) {
      switch (s.kind) {
        case 'assign': {
          const expr = this.expr(s.expr);
          const targets = s.targets.map((t) => this.define(t));
          out.push(`${pad}${targets.join(', ')}${s.trailingComma ? ',' : ''} = ${expr}`);
          break;
        }
        case 'effect':
          out.push(pad + this.expr(s.expr));
          break;
        case 'block': {
          if (s.header.op === 'for_range') this.define(s.header.args[0] as Value);
          out.push(`${pad}${this.expr(s.header)}:`);
          if (s.body.length === 0) out.push(`${pad}    pass`);
          else this.walk(s.body, depth + 1, out);
          break;
        }
      }
    }
  }

  /** Name a value at its (first) definition. */
  private define(v: Value): string {
    if (v.binding.kind === 'named') return v.binding.name;
    if (v.binding.kind === 'inline') throw new KernelBuildError('an inline value cannot be assigned to');
    let name = this.names.get(v);
    if (!name) {
      name = this.namespace.fresh(v.hint);
      this.names.set(v, name);
    }
    return name;
  }

  expr(e: Expr): string {
    const spec = VOCABULARY[e.op];
    return spec.render(
      e.args.map((a) => this.operand(a)),
      e.args,
    );
  }

  operand(o: Operand): string {
    if (o instanceof Value) {
      switch (o.binding.kind) {
        case 'named':
          return o.binding.name;
        case 'inline':
          return this.expr(o.binding.expr);
        case 'local': {
          const name = this.names.get(o);
          if (!name) throw new KernelBuildError(`a ${o.kind} value ('${o.hint}') is used before it is defined, or outside the function that made it`);
          return name;
        }
      }
    }
    if (o instanceof PyFloat) return pythonFloat(o.value);
    if (o instanceof PyDType) return `torch.${o.dtype}`;
    if (o instanceof PyTuple) {
      const items = o.items.map((x) => this.operand(x));
      return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
    }
    if (o === null) return 'None';
    if (typeof o === 'boolean') return o ? 'True' : 'False';
    if (typeof o === 'number') return pythonNumber(o);
    if (typeof o === 'string') return JSON.stringify(o);
    if (Array.isArray(o)) return `[${o.map((x) => this.operand(x)).join(', ')}]`;
    return `{${Object.entries(o as Record<string, Operand>)
      .map(([k, v]) => `${JSON.stringify(k)}: ${this.operand(v)}`)
      .join(', ')}}`;
  }
}

/**
 * A JS value as a Python literal (numbers, booleans, null, strings, and lists and dicts of
 * them).
 */
export function pyLiteral(value: Operand): string {
  if (value instanceof Value) throw new KernelBuildError('pyLiteral takes constants, not program values');
  return new Printer([]).operand(value);
}
