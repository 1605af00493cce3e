/**
 * The kernel compiler: a small typed language for tensor programs, written in TypeScript and
 * lowered to Python source made of torch calls, which the runtime compiles once and runs with
 * one bridge round trip. Stages, one file each: values and shape rules (values.ts, shapes.ts),
 * the statement builder (builder.ts), the intermediate form (ir.ts), the op vocabulary
 * (vocabulary.ts), readable names (names.ts), the printer (printer.ts), autograd functions
 * (autograd.ts), Triton kernels (triton.ts), signatures (signature.ts), programs (program.ts), the program cache
 * (program-cache.ts: specs built once per structure) and running them (runner.ts).
 *
 * Not here: what the programs compute. The sparse-coder math is in src/math, activations in
 * src/activations, optimizers in src/optimizers, the trainer's programs in src/trainer.
 */
export { KernelBuildError, type Dim, type Shape, type KernelDType } from './types.js';
export { SymTensor, SymScalar, SymBundle, SymObject, type ScalarLike, type TensorOrScalar } from './values.js';
export { ProgramBuilder, FunctionBuilder, type InputDecl, type AutogradFunction, type BranchValue } from './builder.js';
export { defineAutogradFunction, type AutogradFunctionSpec } from './autograd.js';
export { defineTritonKernel, type TritonKernel, type TritonParam } from './triton.js';
export { defineProgram, type ProgramSpec, type ProgramOptions, type ProgramResult } from './program.js';
export { In, provided, withScalars, HOOK_INPUTS, LOGITS_INPUTS, type WithScalars, type ArgsOf, type InputSpec, type Signature, type ScalarValue } from './signature.js';
export { bind, compileProgram, forwardPasses, runPasses, runProgram, type BoundProgram, type ResultOf, type Pass, type PassHook, type PassesRequest } from './runner.js';
export { cachedProgram } from './program-cache.js';
export { pyLiteral } from './printer.js';
export { PROGRAM_GLOBALS, type ProgramGlobal } from './globals.js';
