import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "./core";
import type { NnOps } from "./nn";

export type { NativeTensor, DType, AnyTypedArray, TypedArrayOf } from "./core";
export type { NnOps, Pair } from "./nn";
export type { CudaOps, CudaMemoryStats } from "./cuda";
export type { CollectiveOps, Communicator } from "./collective";

/** Everything an addon exports: one table, implemented by ssql_cpu.node and ssql_cuda.node alike. */
export interface NativeOps extends CoreOps, ElementwiseOps, ReduceShapeOps, NnOps {
  readonly device: "cpu" | "cuda";
}
