import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "./core";

export type { NativeTensor, DType, AnyTypedArray, TypedArrayOf } from "./core";

/** Everything an addon exports: one table, implemented by ssql_cpu.node and ssql_cuda.node alike. */
export interface NativeOps extends CoreOps, ElementwiseOps, ReduceShapeOps {
  readonly device: "cpu" | "cuda";
}
