/** The kernel language's basic types: dimensions, shapes, dtypes and its build error. */

/** A dimension: a number, or a symbolic name such as 'N'. */
export type Dim = number | string;
export type Shape = readonly Dim[];
export type KernelDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'bool' | 'uint8';

/** Thrown while a program is being built (shape mismatch, misuse of the builder). */
export class KernelBuildError extends Error {
  override name = 'KernelBuildError';
}
