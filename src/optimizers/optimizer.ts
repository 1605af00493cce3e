/**
 * What an optimizer is to the trainer: the contract each file of this folder fills. The
 * trainer builds every coder's optimizer program from it (the update of each parameter,
 * written with the kernel builder), computes the step's scalars from it on the host, and
 * saves and restores what it names. Nothing outside this folder names an optimizer.
 */
import type { ProgramBuilder, SymBundle, SymScalar, SymTensor } from '../kernels/index.js';

/** One parameter as an update sees it. */
export interface ParamRef {
  /** Its name in `sae.safetensors`. */
  readonly name: string;
  /** Two or more dimensions (Muon orthogonalises these; Adam takes the rest). */
  readonly matrix: boolean;
}

/** What the update of one parameter is built from. */
export interface UpdateContext extends ParamRef {
  /** The parameter (its gradient is `p.grad`). */
  readonly p: SymTensor;
  /** The coder's optimizer state: slot `s` of this parameter is `state.get(`${s}.${name}`)`. */
  readonly state: SymBundle;
  /** The step's scalars, by the names the optimizer declares. */
  readonly scalars: Readonly<Record<string, SymScalar>>;
  /** This parameter's place among the coder's matrices (for work spread over ranks). */
  readonly matrixIndex: number;
}

/** What the host knows when it computes a step's scalars. */
export interface ScheduleContext {
  /** The coder's base learning rate (given, or the optimizer's default). */
  readonly lr: number;
  /** Optimizer steps taken before this one. */
  readonly step: number;
  /** Steps the schedules run over. */
  readonly totalSteps: number;
  readonly warmupSteps: number;
  /** The coder's first matrix's place among all coders' matrices, in training order. */
  readonly matrixOffset: number;
}

/** Host-side state of an optimizer (numbers kept between steps), saved in `state.json`. */
export interface HostState<H> {
  /** Its key in each coder's entry of `state.json`. */
  readonly key: string;
  init(): H;
}

/** One optimizer. `H` is its host-side state (`undefined` when it keeps none). */
export interface Optimizer<N extends string = string, H = unknown> {
  /** As in the config and on the command line (`--optimizer NAME`). */
  readonly name: N;
  /** The reference's default learning rate for a coder of `numLatents` latents. */
  defaultLr(numLatents: number): number;
  /** Whether `lr_warmup_steps` changes what it does (a sweep over it is a no-op otherwise). */
  readonly usesWarmup: boolean;
  /** The state tensors made with the coder for a parameter (zeros shaped as it). */
  slots(param: ParamRef): readonly string[];
  /** The scalars its update takes each step (program inputs). */
  readonly scalars: readonly string[];
  /** Numbers it keeps on the host between steps, and resume restores. */
  readonly host?: HostState<H>;
  /** The step's scalars; may advance `host`. */
  schedule(ctx: ScheduleContext, host: H): Record<string, number>;
  /** The update of one parameter that has a gradient, in place (under no_grad). */
  update(g: ProgramBuilder, ctx: UpdateContext): void;
  /**
   * The parameter as saved and evaluated (schedule-free's x), in a new tensor when it
   * differs from what training holds; the parameter itself when not given.
   */
  saved?(g: ProgramBuilder, p: SymTensor, name: string, state: SymBundle): SymTensor;
}

/** The state tensor for `slot` of parameter `name`. */
export function slotOf(state: SymBundle, slot: string, name: string): SymTensor {
  return state.get(`${slot}.${name}`);
}
