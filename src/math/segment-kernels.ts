/**
 * The `segment` backward's Triton kernels (src/kernels/triton.ts; launched by
 * src/math/sparse-grads.ts): the weight gradients of the encoder and decoder from the N*k
 * selected entries only, with no dense `[N, M]` scratch and no atomics (each program sums one
 * latent's segment of entries, sorted by latent, in fp32 over a block of columns), and the
 * decoder's value gradients as one dot product per entry. On CPU tensors they run under
 * `TRITON_INTERPRET=1`, which is how they are tested.
 */
import { defineTritonKernel } from '../kernels/index.js';

/** Columns each program covers, and entries it reads at a time. */
export const BLOCK_D = 64;
export const BLOCK_P = 16;

/** out[m, :] = sum over p in [starts[m], starts[m+1]) of w[p] * rows[tok[p], :], accumulated in fp32, stored in out's dtype. */
export const SEGMENT_ROW_SUMS = defineTritonKernel({
  name: 'segment_row_sums',
  params: [
    { name: 'out', kind: 'pointer' },
    { name: 'rows', kind: 'pointer' },
    { name: 'w', kind: 'pointer' },
    { name: 'tok', kind: 'pointer' },
    { name: 'starts', kind: 'pointer' },
    { name: 'D', kind: 'int' },
    { name: 'BLOCK_D', kind: 'constexpr' },
    { name: 'BLOCK_P', kind: 'constexpr' },
  ] as const,
  body: (p) => [
    'm = tl.program_id(0)',
    `cols = tl.program_id(1) * ${p.BLOCK_D} + tl.arange(0, ${p.BLOCK_D})`,
    `col_ok = cols < ${p.D}`,
    `start = tl.load(${p.starts} + m)`,
    `end = tl.load(${p.starts} + m + 1)`,
    `acc = tl.zeros([${p.BLOCK_D}], dtype=tl.float32)`,
    `for first in range(start, end, ${p.BLOCK_P}):`,
    `    at = first + tl.arange(0, ${p.BLOCK_P})`,
    '    ok = at < end',
    `    token = tl.load(${p.tok} + at, mask=ok, other=0)`,
    `    weight = tl.load(${p.w} + at, mask=ok, other=0.0).to(tl.float32)`,
    `    row = tl.load(${p.rows} + token[:, None] * ${p.D} + cols[None, :], mask=ok[:, None] & col_ok[None, :], other=0.0).to(tl.float32)`,
    '    acc += tl.sum(weight[:, None] * row, axis=0)',
    `tl.store(${p.out} + m * ${p.D} + cols, acc.to(${p.out}.dtype.element_ty), mask=col_ok)`,
  ],
});

/** out[p] = a[ia[p], :] . b[ib[p], :] for p < P, in fp32, stored in out's dtype. */
export const ENTRY_DOTS = defineTritonKernel({
  name: 'entry_dots',
  params: [
    { name: 'out', kind: 'pointer' },
    { name: 'a', kind: 'pointer' },
    { name: 'ia', kind: 'pointer' },
    { name: 'b', kind: 'pointer' },
    { name: 'ib', kind: 'pointer' },
    { name: 'P', kind: 'int' },
    { name: 'D', kind: 'int' },
    { name: 'BLOCK_D', kind: 'constexpr' },
    { name: 'BLOCK_P', kind: 'constexpr' },
  ] as const,
  body: (p) => [
    `at = tl.program_id(0) * ${p.BLOCK_P} + tl.arange(0, ${p.BLOCK_P})`,
    `ok = at < ${p.P}`,
    `ra = tl.load(${p.ia} + at, mask=ok, other=0)`,
    `rb = tl.load(${p.ib} + at, mask=ok, other=0)`,
    `acc = tl.zeros([${p.BLOCK_P}], dtype=tl.float32)`,
    `for c0 in range(0, ${p.D}, ${p.BLOCK_D}):`,
    `    cols = c0 + tl.arange(0, ${p.BLOCK_D})`,
    `    both = ok[:, None] & (cols < ${p.D})[None, :]`,
    `    x = tl.load(${p.a} + ra[:, None] * ${p.D} + cols[None, :], mask=both, other=0.0).to(tl.float32)`,
    `    y = tl.load(${p.b} + rb[:, None] * ${p.D} + cols[None, :], mask=both, other=0.0).to(tl.float32)`,
    '    acc += tl.sum(x * y, axis=1)',
    `tl.store(${p.out} + at, acc.to(${p.out}.dtype.element_ty), mask=ok)`,
  ],
});

