/**
 * `sparsify-launch`: one `sparsify` process per rank through PyTorch's torchrun, and a
 * one-line report of a rank that failed. Not here: the collectives themselves (the runtime's
 * torch.distributed, python/sparsify_runtime/dist.py).
 */
export { launch, launchHelp, splitArgs, describeFailure, type LaunchPlan } from './launch.js';
