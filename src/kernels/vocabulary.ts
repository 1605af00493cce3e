/**
 * The op vocabulary: every piece of Python that generated code is made of, in one table (as
 * tinygrad keeps its rendering in one place). Each op renders its operands, already printed,
 * into an expression, a statement or a block header, and names the value it makes (`hint`),
 * which the printer turns into a unique variable name. Scalar ops are parenthesised because
 * they are printed inline, nested in other expressions.
 */
export interface OpSpec {
  /** The default name of the value the op makes. */
  readonly hint: string;
  /** Python for the op; `args` are the printed operands, `raw` the operands themselves (for names). */
  render(args: readonly string[], raw: readonly unknown[]): string;
}

const method = (name: string) => ({ hint: name, render: ([x]: readonly string[]) => `${x}.${name}()` });
const binary = (hint: string, symbol: string) => ({ hint, render: ([a, b]: readonly string[]) => `${a} ${symbol} ${b}` });
const scalar = (hint: string, symbol: string) => ({ hint, render: ([a, b]: readonly string[]) => `(${a} ${symbol} ${b})` });
const inPlace = (name: string) => ({ hint: name, render: ([x, ...rest]: readonly string[]) => `${x}.${name}(${rest.join(', ')})` });
const reduction = (name: string) => ({
  hint: name,
  render: ([x, dim, keepdim]: readonly string[]) => (dim === undefined ? `${x}.${name}()` : `${x}.${name}(${dim}${keepdim === 'True' ? ', keepdim=True' : ''})`),
});
const rawString = (raw: unknown): string => {
  if (typeof raw !== 'string') throw new Error(`expected a name, got ${String(raw)}`);
  return raw;
};

export const VOCABULARY = {
  // ---- values as they are
  literal: { hint: 'value', render: ([a]) => `${a}` },
  alias: { hint: 'value', render: ([a]) => `${a}` },

  // ---- tensor arithmetic
  add: binary('add', '+'),
  sub: binary('sub', '-'),
  mul: binary('mul', '*'),
  div: binary('div', '/'),
  gt: binary('gt', '>'),
  matmul: binary('matmul', '@'),
  neg: { hint: 'neg', render: ([a]) => `-${a}` },
  pow: { hint: 'pow', render: ([x, e]) => `${x}.pow(${e})` },
  relu: { hint: 'relu', render: ([x]) => `F.relu(${x})` },
  sqrt: method('sqrt'),
  sign: method('sign'),
  abs: method('abs'),
  exp: method('exp'),
  log: method('log'),
  detach: method('detach'),
  clone: method('clone'),
  contiguous: method('contiguous'),
  float: method('float'),
  bits_as: { hint: 'bits', render: ([x, dtype]) => `${x}.view(${dtype})` },
  to_dtype: { hint: 'to', render: ([x, dtype]) => `${x}.to(${dtype})` },
  type_as: { hint: 'type_as', render: ([x, other]) => `${x}.type_as(${other})` },
  log_softmax: { hint: 'log_softmax', render: ([x, dim]) => `F.log_softmax(${x}, dim=${dim})` },
  softmax: { hint: 'softmax', render: ([x, dim]) => `F.softmax(${x}, dim=${dim})` },
  cross_entropy: { hint: 'cross_entropy', render: ([logits, labels]) => `F.cross_entropy(${logits}, ${labels})` },
  mT: { hint: 'mT', render: ([x]) => `${x}.mT` },
  sum: reduction('sum'),
  mean: reduction('mean'),
  norm: { hint: 'norm', render: ([x, dim, keepdim]) => `torch.norm(${x}, dim=${dim}, keepdim=${keepdim})` },
  topk: { hint: 'topk', render: ([x, k, dim, sorted]) => `torch.topk(${x}, ${k}, dim=${dim}, sorted=${sorted})` },
  bottomk: { hint: 'bottomk', render: ([x, k, dim]) => `torch.topk(${x}, ${k}, dim=${dim}, largest=False, sorted=True)` },
  sort: { hint: 'sort', render: ([x, dim, descending]) => `torch.sort(${x}, dim=${dim}, descending=${descending}, stable=True)` },
  // Not torch.bincount: on CUDA it reads the input's largest value back to size its output (a
  // host sync); the counts of 0..n-1 are a scatter-add of ones into n zeros instead.
  bincount: { hint: 'counts', render: ([x, n]) => `torch.zeros(${n}, dtype=torch.int64, device=${x}.device).index_add_(0, ${x}, torch.ones_like(${x}, dtype=torch.int64))` },
  finfo_smallest_subnormal: { hint: 'smallest', render: ([x]) => `(torch.finfo(${x}.dtype).tiny * torch.finfo(${x}.dtype).eps)` },
  cumsum: { hint: 'cumsum', render: ([x, dim]) => `${x}.cumsum(${dim})` },
  nonzero: { hint: 'nonzero', render: ([x]) => `${x}.nonzero().squeeze(1)` },
  cat: { hint: 'cat', render: ([ts, dim]) => `torch.cat(${ts}, dim=${dim})` },
  repeat_interleave: { hint: 'repeated', render: ([x, n]) => `${x}.repeat_interleave(${n})` },
  narrow: { hint: 'narrow', render: ([x, dim, start, length]) => `${x}.narrow(${dim}, ${start}, ${length})` },
  clamp: { hint: 'clamp', render: ([x, lo, hi]) => `${x}.clamp(${lo}, ${hi})` },
  floor: method('floor'),
  round: method('round'),
  amin: { hint: 'amin', render: ([x, dim]) => `${x}.amin(${dim})` },
  ceil: method('ceil'),
  log2: method('log2'),
  exp2: { hint: 'exp2', render: ([x]) => `torch.exp2(${x})` },
  maximum: { hint: 'maximum', render: ([a, b]) => `torch.maximum(${a}, ${b})` },
  ge: binary('ge', '>='),
  lt: binary('lt', '<'),
  eq: binary('eq', '=='),
  and: binary('both', '&'),
  not: { hint: 'not', render: ([a]) => `~${a}` },
  shift_right: binary('shifted', '>>'),
  floor_div: binary('floordiv', '//'),
  mod: binary('mod', '%'),
  full: { hint: 'full', render: ([sizes, value, dtype, device]) => `torch.full(${sizes}, ${value}, dtype=${dtype}, device=${device})` },
  /** Uniform [0, 1) numbers shaped as `like`, from a generator seeded with `seed` on its device. */
  rand_seeded: { hint: 'keys', render: ([like, seed]) => `torch.rand(${like}.shape, generator=torch.Generator(device=${like}.device).manual_seed(${seed}), device=${like}.device)` },
  max_dim: { hint: 'max', render: ([x, dim]) => `${x}.max(dim=${dim})` },
  addmm_relu: { hint: 'preacts', render: ([x, w, b]) => `addmm_relu(${x}, ${w}, ${b})` },
  zero_scratch: { hint: 'scratch', render: ([rows, cols, like]) => `zero_scratch(${rows}, ${cols}, ${like})` },
  linear: { hint: 'linear', render: ([x, w, b]) => `F.linear(${x}, ${w}${b === undefined ? '' : `, ${b}`})` },
  embedding_bag: { hint: 'embedding_bag', render: ([idx, table, w]) => `F.embedding_bag(${idx}, ${table}, mode="sum", per_sample_weights=${w})` },
  embedding_bags: { hint: 'bags', render: ([idx, table, offsets, w]) => `F.embedding_bag(${idx}, ${table}, ${offsets}, mode="sum", per_sample_weights=${w})` },
  einsum: { hint: 'einsum', render: ([equation, ...ts]) => `torch.einsum(${equation}, ${ts.join(', ')})` },
  where: { hint: 'where', render: ([c, a, b]) => `torch.where(${c}, ${a}, ${b})` },

  // ---- shapes and indexing
  reshape: { hint: 'reshape', render: ([x, ...sizes]) => `${x}.reshape(${sizes.join(', ')})` },
  reshape_as: { hint: 'reshape', render: ([x, other]) => `${x}.reshape(${other}.shape)` },
  flatten: { hint: 'flatten', render: ([x, start, end]) => `${x}.flatten(${start}, ${end})` },
  unflatten: { hint: 'unflatten', render: ([x, dim, ...sizes]) => `${x}.unflatten(${dim}, (${sizes.join(', ')},))` },
  unsqueeze: { hint: 'unsqueeze', render: ([x, dim]) => `${x}.unsqueeze(${dim})` },
  squeeze: { hint: 'squeeze', render: ([x, dim]) => `${x}.squeeze(${dim})` },
  gather: { hint: 'gather', render: ([x, dim, index]) => `${x}.gather(${dim}, ${index})` },
  none_index: { hint: 'expanded', render: ([x]) => `${x}[None]` },
  index: { hint: 'index', render: ([x, i]) => `${x}[${i}]` },
  index2: { hint: 'index', render: ([x, i, j]) => `${x}[${i}, ${j}]` },
  /** Rows where `mask` holds, or all rows when it is None. */
  rows_where: { hint: 'rows', render: ([x, mask]) => `${x} if ${mask} is None else ${x}[${mask}]` },
  /** `x[:, :-1]`: a slice along one dim. */
  slice: {
    hint: 'slice',
    render: ([x, dim, start, end]) => `${x}[${':, '.repeat(Number(dim))}${start === 'None' ? '' : start}:${end === 'None' ? '' : end}]`,
  },
  chunk_at: { hint: 'chunk', render: ([x, n, i]) => `${x}.chunk(${n})[${i}]` },
  index_put: { hint: 'index_put', render: ([x, mask, v]) => `${x}.index_put((${mask},), ${v})` },
  grad: { hint: 'grad', render: ([x]) => `${x}.grad` },

  // ---- constructors
  zeros_like: { hint: 'zeros_like', render: ([x]) => `torch.zeros_like(${x})` },
  full_like: { hint: 'full_like', render: ([x, v]) => `torch.full_like(${x}, ${v})` },
  broadcast_from: { hint: 'shared', render: ([t, src, like, ndim, ...shape]) => `broadcast_from(${t}, ${src}, ${like}, ${ndim}${shape.length ? `, [${shape.join(', ')}]` : ''})` },
  empty_like: { hint: 'empty_like', render: ([x, dtype]) => `torch.empty_like(${x}, dtype=${dtype})` },
  zeros: { hint: 'zeros', render: ([dtype, device, ...sizes]) => `torch.zeros(${sizes.length ? sizes.join(', ') : '()'}, dtype=${dtype}, device=${device})` },
  new_zeros: { hint: 'new_zeros', render: ([x, sizes]) => `${x}.new_zeros(${sizes})` },
  // new_full, not new_tensor: new_tensor copies from the host, which waits for the GPU.
  new_tensor: { hint: 'new_tensor', render: ([x, v]) => `${x}.new_full((), ${v})` },
  arange: { hint: 'arange', render: ([start, end, step, like]) => `torch.arange(${start}, ${end}, ${step}, device=${like}.device)` },
  nn_linear: { hint: 'linear_module', render: ([din, dout, device, dtype]) => `torch.nn.Linear(${din}, ${dout}, device=${device}, dtype=${dtype})` },
  module_weight: { hint: 'weight', render: ([m]) => `${m}.weight.data` },
  module_bias: { hint: 'bias', render: ([m]) => `${m}.bias.data` },
  /** A torch dtype from its name held in a variable. */
  torch_dtype: { hint: 'dtype', render: ([name]) => `getattr(torch, ${name})` },
  device_of: { hint: 'device', render: ([x]) => `${x}.device` },
  bundle_new: { hint: 'bundle', render: ([entries]) => `Bundle(${entries})` },
  bundle_get: { hint: 'item', render: ([b, key]) => `${b}[${key}]` },
  bundle_maybe: { hint: 'item', render: ([b, key]) => `${b}.get(${key})` },
  /** A one-entry dict `{key: value}` (a key held in a variable). */
  dict_of: { hint: 'entry', render: ([key, value]) => `{${key}: ${value}}` },
  ones_like: { hint: 'ones_like', render: ([x]) => `torch.ones_like(${x})` },
  /** `default if value is None else value`. */
  or_else: { hint: 'value', render: ([value, fallback]) => `${fallback} if ${value} is None else ${value}` },
  /** `a if cond else b`, both already computed. */
  choose: { hint: 'chosen', render: ([cond, a, b]) => `${a} if ${cond} else ${b}` },

  // ---- Python scalars (printed inline)
  s_add: scalar('add', '+'),
  s_sub: scalar('sub', '-'),
  s_mul: scalar('mul', '*'),
  s_div: scalar('div', '/'),
  s_floordiv: scalar('floordiv', '//'),
  s_mod: scalar('mod', '%'),
  s_pow: scalar('pow', '**'),
  s_gt: scalar('gt', '>'),
  s_lt: scalar('lt', '<'),
  s_eq: scalar('eq', '=='),
  s_and: scalar('and', 'and'),
  s_not: { hint: 'not', render: ([a]) => `(not ${a})` },
  s_neg: { hint: 'neg', render: ([a]) => `(-${a})` },
  s_min: { hint: 'min', render: ([a, b]) => `min(${a}, ${b})` },
  s_max: { hint: 'max', render: ([a, b]) => `max(${a}, ${b})` },
  is_none: { hint: 'is_none', render: ([a]) => `(${a} is None)` },
  shape_at: { hint: 'size', render: ([x, dim]) => `${x}.shape[${dim}]` },
  item: { hint: 'item', render: ([x]) => `${x}.item()` },
  to_int: { hint: 'int', render: ([x]) => `int(${x})` },
  finfo_eps: { hint: 'eps', render: ([x]) => `torch.finfo(${x}.dtype).eps` },
  bundle_has: { hint: 'has', render: ([b, key]) => `(${key} in ${b})` },
  dist_rank: { hint: 'rank', render: () => 'dist_rank()' },
  dist_world_size: { hint: 'world_size', render: () => 'dist_world_size()' },

  // ---- statements run for their effect
  copy_: inPlace('copy_'),
  zero_: inPlace('zero_'),
  sub_: inPlace('sub_'),
  mul_: inPlace('mul_'),
  div_: inPlace('div_'),
  lerp_: inPlace('lerp_'),
  index_add_: inPlace('index_add_'),
  scatter_: inPlace('scatter_'),
  index_fill_: inPlace('index_fill_'),
  masked_fill_: inPlace('masked_fill_'),
  scatter_add_: inPlace('scatter_add_'),
  scatter_amax_: { hint: 'scatter_amax_', render: ([x, dim, index, src]) => `${x}.scatter_reduce_(${dim}, ${index}, ${src}, reduce="amax")` },
  requires_grad_: inPlace('requires_grad_'),
  add_: { hint: 'add_', render: ([x, o, alpha]) => `${x}.add_(${o}${alpha === undefined ? '' : `, alpha=${alpha}`})` },
  addcmul_: { hint: 'addcmul_', render: ([x, a, b, value]) => `${x}.addcmul_(${a}, ${b}, value=${value})` },
  addcdiv_: { hint: 'addcdiv_', render: ([x, a, b, value]) => `${x}.addcdiv_(${a}, ${b}, value=${value})` },
  set_index: { hint: 'set', render: ([x, i, v]) => `${x}[${i}] = ${v}` },
  set_index2: { hint: 'set', render: ([x, i, j, v]) => `${x}[${i}, ${j}] = ${v}` },
  add_index2: { hint: 'add', render: ([x, i, j, v]) => `${x}.index_put_((${i}, ${j}), ${v}, accumulate=True)` },
  set_key: { hint: 'set', render: ([b, key, v]) => `${b}[${key}] = ${v}` },
  clear_grad: { hint: 'clear', render: ([x]) => `${x}.grad = None` },
  backward: { hint: 'backward', render: ([x, g]) => `${x}.backward(${g ?? ''})` },
  manual_seed: { hint: 'seed', render: ([s]) => `torch.manual_seed(${s})` },
  all_reduce_: { hint: 'all_reduce', render: ([t, how]) => `all_reduce_(${t}, ${how})` },
  all_reduce_grads_: { hint: 'all_reduce', render: ([params]) => `all_reduce_grads_(${params})` },
  broadcast_: { hint: 'broadcast', render: ([t, src]) => `broadcast_(${t}, ${src})` },
  reduce_: { hint: 'reduce', render: ([t, dst]) => `reduce_(${t}, ${dst})` },
  return_: { hint: 'return', render: (values) => `return ${values.join(', ')}` },

  // ---- torch.autograd.Function plumbing
  /** `kernel[grid](...)`: a Triton launch; the first operand is the kernel's name, the second its grid. */
  triton_launch: { hint: 'launch', render: (args, raw) => `${rawString(raw[0])}[${args[1]}](${args.slice(2).join(', ')})` },
  /** `Fn.apply(...)`; the first operand is the class name. */
  apply: { hint: 'out', render: (args, raw) => `${rawString(raw[0])}.apply(${args.slice(1).join(', ')})` },
  save_for_backward: { hint: 'save', render: (ts) => `ctx.save_for_backward(${ts.join(', ')})` },
  saved_tensors: { hint: 'saved', render: () => 'ctx.saved_tensors' },
  ctx_set: { hint: 'ctx', render: ([, v], raw) => `ctx.${rawString(raw[0])} = ${v}` },
  ctx_get: { hint: 'ctx', render: (_, raw) => `ctx.${rawString(raw[0])}` },
  no_materialize_grads: { hint: 'ctx', render: () => 'ctx.set_materialize_grads(False)' },
  mark_non_differentiable: { hint: 'mark', render: (ts) => `ctx.mark_non_differentiable(${ts.join(', ')})` },

  // ---- block headers
  if: { hint: 'if', render: ([cond]) => `if ${cond}` },
  else: { hint: 'else', render: () => 'else' },
  if_needs_input_grad: { hint: 'if', render: ([i]) => `if ctx.needs_input_grad[${i}]` },
  if_is_none: { hint: 'if', render: ([x]) => `if ${x} is None` },
  for_range: { hint: 'i', render: ([i, n]) => `for ${i} in range(${n})` },
  no_grad: { hint: 'with', render: () => 'with torch.no_grad()' },
  enable_grad: { hint: 'with', render: () => 'with torch.enable_grad()' },
  set_grad_enabled: { hint: 'with', render: ([on]) => `with torch.set_grad_enabled(${on})` },
  autocast_bf16: { hint: 'with', render: ([on]) => `with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=${on})` },
} satisfies Record<string, OpSpec>;

export type OpName = keyof typeof VOCABULARY;
