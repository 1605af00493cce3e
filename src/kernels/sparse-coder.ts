/**
 * The sparse coder's math (SPEC section 1), written with the kernel builder. These are
 * graph-building functions: the coder API wraps them in small programs, and the trainer
 * inlines them into its step program.
 */
import {
  defineAutogradFunction,
  defineProgram,
  type AutogradFunction,
  type Bundle,
  type ProgramBuilder,
  type ProgramSpec,
  type Scalar,
  type Tensor,
} from './graph.js';

/** Parameter names, exactly as in `sae.safetensors`. */
export type CoderParamName = 'encoder.weight' | 'encoder.bias' | 'W_dec' | 'b_dec' | 'W_skip';
export type CoderParams = Bundle<CoderParamName>;
export type Activation = 'topk' | 'groupmax';

/** The parts of a coder's config that change the shape of its programs. */
export interface CoderStructure {
  activation: Activation;
  transcode: boolean;
  skipConnection: boolean;
  multiTopk: boolean;
  normalizeDecoder: boolean;
}

/**
 * The "fused encoder": relu(x W^T + b), then top-k (or group max), with the reference's
 * hand-written backward. Gradients flow only through the selected entries (no relu mask),
 * and the pre-activations pass no gradient.
 */
function fusedEncoder(activation: Activation): AutogradFunction<'input' | 'weight' | 'bias', 'k', 'values' | 'indices' | 'preacts'> {
  return defineAutogradFunction({
    name: activation === 'topk' ? 'FusedEncoderTopK' : 'FusedEncoderGroupMax',
    tensorInputs: ['input', 'weight', 'bias'],
    scalarInputs: ['k'],
    outputs: ['values', 'indices', 'preacts'],
    nonDifferentiable: ['indices'],
    forward(f, { input, weight, bias }, { k }) {
      const preacts = f.linear(input, weight, bias).relu();
      let values: Tensor;
      let indices: Tensor;
      if (activation === 'topk') {
        ({ values, indices } = preacts.topk(k, { dim: -1, sorted: false }));
      } else {
        const numLatents = preacts.size(-1);
        const grouped = preacts.unflatten(-1, [k, -1]).max(-1);
        const offsets = f.arange(0, numLatents, numLatents.floorDiv(k), preacts);
        values = grouped.values;
        indices = offsets.add(grouped.indices);
      }
      return { outputs: { values, indices, preacts }, save: { input, weight, bias, indices } };
    },
    backward: {
      input: (b, s, g) => b.embeddingBag(s.indices!, s.weight!, g.values.typeAs(s.weight!)),
      weight: (b, s, g) => {
        const gradWeight = b.zerosLike(s.weight!);
        const contributions = g.values.unsqueeze(2).mul(s.input!.unsqueeze(1));
        gradWeight.indexAdd_(0, s.indices!.flatten(), contributions.reshape(-1, s.input!.size(-1)).typeAs(s.weight!));
        return gradWeight;
      },
      bias: (b, s, g) => {
        const gradBias = b.zerosLike(s.bias!);
        gradBias.indexAdd_(0, s.indices!.flatten(), g.values.flatten().typeAs(s.bias!));
        return gradBias;
      },
    },
    inferShapes: (t, sc) => {
      const n = t.input.shape?.[0];
      const m = t.weight.shape?.[0];
      const k = typeof sc.k === 'number' ? sc.k : 'k';
      return {
        values: n !== undefined ? { shape: [n, k] } : {},
        indices: n !== undefined ? { shape: [n, k], dtype: 'int64' } : { dtype: 'int64' },
        preacts: n !== undefined && m !== undefined ? { shape: [n, m] } : {},
      };
    },
  });
}

export const FusedEncoderTopK = fusedEncoder('topk');
export const FusedEncoderGroupMax = fusedEncoder('groupmax');

export interface EncoderOutput {
  topActs: Tensor;
  topIndices: Tensor;
  preActs: Tensor;
}

/** Encode x [N, D]: SAEs subtract b_dec first; transcoders do not. */
export function encode(g: ProgramBuilder, params: CoderParams, x: Tensor, k: Scalar | number, s: Pick<CoderStructure, 'activation' | 'transcode'>): EncoderOutput {
  const input = s.transcode ? x : x.sub(params.get('b_dec'));
  const fn = s.activation === 'topk' ? FusedEncoderTopK : FusedEncoderGroupMax;
  const out = g.apply(fn, { input, weight: params.get('encoder.weight'), bias: params.get('encoder.bias') }, { k });
  return { topActs: out.values, topIndices: out.indices, preActs: out.preacts };
}

/** Decode: sum of act * W_dec[idx] (embedding_bag, mode sum) plus b_dec. */
export function decode(g: ProgramBuilder, params: CoderParams, topActs: Tensor, topIndices: Tensor): Tensor {
  const wDec = params.get('W_dec');
  return g.embeddingBag(topIndices, wDec, topActs.typeAs(wDec)).add(params.get('b_dec'));
}

export interface ForwardOutput {
  saeOut: Tensor;
  latentActs: Tensor;
  latentIndices: Tensor;
  fvu: Tensor;
  auxkLoss: Tensor;
  multiTopkFvu: Tensor;
}

/**
 * The full forward with losses (SPEC 1): fvu against y (x when autoencoding), AuxK on dead
 * latents when `deadMask` is given and marks some latent dead, and the Multi-TopK fvu.
 */
export function forward(
  g: ProgramBuilder,
  params: CoderParams,
  x: Tensor,
  y: Tensor,
  deadMask: Tensor | undefined,
  k: Scalar | number,
  s: CoderStructure,
): ForwardOutput {
  const { topActs, topIndices, preActs } = encode(g, params, x, k, s);
  let saeOut = decode(g, params, topActs, topIndices);
  if (s.skipConnection) {
    const wSkip = params.get('W_skip');
    saeOut = saeOut.add(x.typeAs(wSkip).matmul(wSkip.mT));
  }
  const e = y.sub(saeOut);
  const totalVariance = y.sub(y.mean(0)).pow(2).sum();

  let auxkLoss: Tensor;
  if (deadMask) {
    const dm = deadMask;
    ({ auxkLoss } = g.ifElse(
      g.isNone(dm).not(),
      () => {
        const numDead = dm.sum().int();
        return g.ifElse(
          numDead.gt(0),
          () => {
            const kAux0 = y.size(-1).floorDiv(2);
            const scale = g.min(numDead.div(kAux0), g.float(1));
            const kAux = g.min(kAux0, numDead);
            const auxkLatents = g.where(dm.leadingUnit, preActs, -Infinity);
            const top = auxkLatents.topk(kAux, { sorted: false });
            const eHat = decode(g, params, top.values, top.indices);
            const loss = eHat.sub(e.detach()).pow(2).sum();
            return { auxkLoss: loss.mul(scale).div(totalVariance) };
          },
          () => ({ auxkLoss: g.scalarTensor(saeOut, 0.0) }),
        );
      },
      () => ({ auxkLoss: g.scalarTensor(saeOut, 0.0) }),
    ));
  } else {
    auxkLoss = g.scalarTensor(saeOut, 0.0);
  }

  const fvu = e.pow(2).sum().div(totalVariance);

  let multiTopkFvu: Tensor;
  if (s.multiTopk) {
    const top = preActs.topk(typeof k === 'number' ? 4 * k : k.mul(4), { sorted: false });
    const out = decode(g, params, top.values, top.indices);
    multiTopkFvu = out.sub(y).pow(2).sum().div(totalVariance);
  } else {
    multiTopkFvu = g.scalarTensor(saeOut, 0.0);
  }
  return { saeOut, latentActs: topActs, latentIndices: topIndices, fvu, auxkLoss, multiTopkFvu };
}

/** W_dec /= (row norm + eps), in place, without autograd. */
export function setDecoderNormToUnitNorm(g: ProgramBuilder, params: CoderParams): void {
  g.noGrad(() => {
    const wDec = params.get('W_dec');
    const norm = wDec.norm(1, true);
    wDec.div_(norm.add(g.eps(wDec)));
  });
}

/** grad_i -= (grad_i . W_i) W_i for each decoder row i. */
export function removeGradientParallelToDecoderDirections(g: ProgramBuilder, params: CoderParams): void {
  g.noGrad(() => {
    const wDec = params.get('W_dec');
    const grad = wDec.grad;
    g.when(g.isNone(grad).not(), () => {
      const parallel = g.call('torch.einsum', ['ij,ij->i', grad, wDec]);
      grad.sub_(g.call('torch.einsum', ['i,ij->ij', parallel, wDec]));
    });
  });
}

/**
 * Create a coder's parameters exactly as the reference does (SPEC 1): nn.Linear(D, M)'s
 * default init (after `torch.manual_seed(seed)` when a seed is given), zero encoder bias,
 * W_dec a copy of the encoder weight (SAE, normalised) or zeros (transcoder), b_dec zeros.
 */
export function initParamsProgram(s: Pick<CoderStructure, 'transcode' | 'skipConnection' | 'normalizeDecoder'>): ProgramSpec<'params'> {
  return defineProgram(`init_coder_${s.transcode ? 'tc' : 'sae'}${s.skipConnection ? '_skip' : ''}${s.normalizeDecoder ? '_norm' : ''}`, (g) => {
    const seed = g.scalarInput('seed');
    const dIn = g.scalarInput('d_in');
    const numLatents = g.scalarInput('num_latents');
    const device = g.objectInput('device');
    const dtype = g.objectInput('dtype');
    g.when(g.isNone(seed).not(), () => g.emit(`torch.manual_seed(${seed.code})`));
    const encoder = g.tensor(`torch.nn.Linear(${dIn.code}, ${numLatents.code}, device=${device.code}, dtype=getattr(torch, ${dtype.code}))`);
    const weight = g.tensor(`${encoder.code}.weight.data`);
    const bias = g.tensor(`${encoder.code}.bias.data`);
    bias.zero_();
    const wDec = s.transcode ? g.zerosLike(weight) : weight.clone();
    if (s.normalizeDecoder) {
      const norm = wDec.norm(1, true);
      wDec.div_(norm.add(g.eps(wDec)));
    }
    const bDec = g.tensor(`torch.zeros(${dIn.code}, device=${device.code}, dtype=getattr(torch, ${dtype.code}))`);
    const entries: [string, Tensor][] = [
      ['encoder.weight', weight],
      ['encoder.bias', bias],
      ['W_dec', wDec],
      ['b_dec', bDec],
    ];
    if (s.skipConnection) {
      entries.push(['W_skip', g.tensor(`torch.zeros(${dIn.code}, ${dIn.code}, device=${device.code}, dtype=getattr(torch, ${dtype.code}))`)]);
    }
    for (const [, t] of entries) t.requiresGrad_();
    const bundle = g.tensor(`Bundle({${entries.map(([k, t]) => `${JSON.stringify(k)}: ${t.code}`).join(', ')}})`);
    return { params: bundle };
  });
}
