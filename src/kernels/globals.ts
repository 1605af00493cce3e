/**
 * Every global name generated code may use, with what it is. The Python runtime builds the
 * namespace programs run in from exactly this list (python/sparsify_runtime/program.py), and
 * a test checks that the two agree (as torch.fx registers each builtin its code may use).
 */
export const PROGRAM_GLOBALS = {
  torch: 'the torch module',
  F: 'torch.nn.functional',
  Bundle: 'a dict of tensors that travels as one handle',
  all_reduce_: 'all_reduce_(t, "mean"|"sum"|"max"): in place over all ranks (no-op when not distributed)',
  all_reduce_grads_: 'all_reduce_grads_(params): average the gradients of params across ranks in one collective',
  broadcast_: 'broadcast_(t, src): rank src sends t to every rank, in place',
  broadcast_from: 'broadcast_from(t, src, like, ndim, shape=None): the tensor rank src holds (None elsewhere) on every rank, shaped as shape or as src says (like gives dtype and device)',
  reduce_: 'reduce_(t, dst): sum t over all ranks into rank dst\'s t, in place',
  triton: 'the triton module, imported when a program first uses it (Triton kernels: src/kernels/triton.ts)',
  tl: 'triton.language, imported when a program first uses it',
  dist_rank: 'dist_rank(): this process\'s rank (0 when not distributed)',
  dist_world_size: 'dist_world_size(): the number of ranks (1 when not distributed)',
  addmm_relu: 'addmm_relu(x, w, b): relu(x @ w.T + b) in one matrix product (bias and relu fused), in autocast\'s precision when it is on',
  zero_scratch: 'zero_scratch(rows, cols, like): a cached all-zero matrix; whoever scatters into it scatters zeros back after use',
} as const;

export type ProgramGlobal = keyof typeof PROGRAM_GLOBALS;
export const GLOBAL_NAMES: readonly ProgramGlobal[] = Object.keys(PROGRAM_GLOBALS) as ProgramGlobal[];
