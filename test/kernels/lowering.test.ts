// The lowering from TS kernels to Python source, checked as text: no Python needed.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { In, defineProgram, defineAutogradFunction, KernelBuildError, pyLiteral } from '../../src/kernels/index.js';
import { encodeProgram, forwardProgram } from '../../src/coder/programs.js';
import type { CoderStructure } from '../../src/math/structure.js';

const golden = (name: string, text: string): void => {
  const path = join(__dirname, '..', 'golden', name);
  if (process.env.UPDATE_GOLDEN || !existsSync(path)) writeFileSync(path, text);
  expect(text).toBe(readFileSync(path, 'utf8'));
};

const sae: CoderStructure = { activation: 'topk', transcode: false, skipConnection: false, multiTopk: false, normalizeDecoder: true, inferenceThreshold: false };

describe('kernel lowering', () => {
  it('lowers the topk encoder (custom autograd function) to the golden source', () => {
    golden('encode_topk_sae.py', encodeProgram(sae).source);
  });

  it('lowers the groupmax transcoder encoder to the golden source', () => {
    golden('encode_groupmax_tc.py', encodeProgram({ ...sae, activation: 'groupmax', transcode: true }).source);
  });

  it('lowers the full forward with auxk, multi-topk and skip to the golden source', () => {
    golden('forward_topk_skip_mtk.py', forwardProgram({ ...sae, skipConnection: true, multiTopk: true }).source);
  });

  it('writes Python literals', () => {
    expect(pyLiteral(-Infinity)).toBe("float('-inf')");
    expect(pyLiteral(true)).toBe('True');
    expect(pyLiteral(null)).toBe('None');
    expect(pyLiteral([1, 'a', false])).toBe('[1, "a", False]');
    expect(pyLiteral({ a: 1.5 })).toBe('{"a": 1.5}');
  });

  it('a small program lowers to straight-line torch code', () => {
    const p = defineProgram('axpy', { a: In.scalar(), x: In.tensor({ shape: ['N', 4] }), y: In.tensor({ shape: ['N', 4] }) }, (_g, { a, x, y }) => {
      return { out: x.mul(a).add(y), total: x.sum().item() };
    });
    expect(p.source).toBe(
      [
        'def axpy(a, x, y):',
        '    with torch.no_grad():',
        '        mul = x * a',
        '        add = mul + y',
        '        sum_1 = x.sum()',
        '        item = sum_1.item()',
        '        return {"out": add, "total": item}',
        '',
      ].join('\n'),
    );
    expect(p.inputs.map((i) => i.name)).toEqual(['a', 'x', 'y']);
  });

  it('catches shape mismatches at build time', () => {
    expect(() =>
      defineProgram('bad', { a: In.tensor({ shape: [3, 4] }), b: In.tensor({ shape: [5, 6] }) }, (_g, { a, b }) => {
        return { out: a.matmul(b) };
      }),
    ).toThrow(KernelBuildError);
    expect(() =>
      defineProgram('bad2', { a: In.tensor({ shape: [3, 4] }), b: In.tensor({ shape: [3, 5] }) }, (_g, { a, b }) => {
        return { out: a.add(b) };
      }),
    ).toThrow(/do not broadcast/);
  });

  it('rejects bad names, and inputs that shadow what generated code uses', () => {
    expect(() => defineProgram('not an ident', {}, () => ({ out: 1 }))).toThrow(KernelBuildError);
    expect(() => defineProgram('shadow', { torch: In.tensor() }, (_g, { torch }) => ({ out: torch }))).toThrow(/'torch' is reserved/);
    expect(() => defineProgram('shadow2', { min: In.scalar() }, (_g, { min }) => ({ out: min }))).toThrow(/'min' is reserved/);
  });

  it('names values after the math or the op, unique within the function', () => {
    const p = defineProgram('names', { x: In.tensor() }, (_g, { x }) => {
      const a = x.relu().named('pre_acts');
      const b = a.relu();
      const c = b.relu().named('pre_acts');
      const { values, indices } = c.topk(2);
      return { out: values.add(indices) };
    });
    expect(p.source).toContain('pre_acts = F.relu(x)');
    expect(p.source).toContain('relu = F.relu(pre_acts)');
    expect(p.source).toContain('pre_acts_1 = F.relu(relu)');
    expect(p.source).toContain('topk_values, topk_indices = torch.topk(pre_acts_1, 2, dim=-1, sorted=False)');
  });

  it('a value used outside the function that made it is a build error', () => {
    let leaked: import('../../src/kernels/index.js').SymTensor | undefined;
    defineProgram('first', { x: In.tensor() }, (_g, { x }) => {
      leaked = x.relu();
      return { out: leaked };
    });
    expect(() => defineProgram('second', {}, () => ({ out: leaked!.relu() }))).toThrow(/used before it is defined, or outside the function/);
  });

  it('guards each hand-written gradient with needs_input_grad', () => {
    const fn = defineAutogradFunction({
      name: 'Square',
      tensorInputs: ['x'],
      scalarInputs: [],
      outputs: ['y'],
      forward: (_f, { x }) => ({ outputs: { y: x.mul(x) }, save: { x } }),
      backward: { x: (_b, s, g) => g.y.mul(s.x!).mul(2) },
    });
    expect(fn.source).toContain('if ctx.needs_input_grad[0]:');
    expect(fn.source).toContain('ctx.save_for_backward(x)');
  });
});
