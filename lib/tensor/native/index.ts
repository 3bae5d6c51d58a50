import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "./core";
import type { NnOps } from "./nn";
import type { CollectiveOps } from "./collective";

export type { NativeTensor, DType, AnyTypedArray, TypedArrayOf } from "./core";
export type { NnOps, Pair } from "./nn";
export type { CollectiveOps, NativeProcessGroup, ProcessGroupOptions, ReduceOp } from "./collective";

/** Everything an addon exports: one table, implemented by ssql_cpu.node and ssql_cuda.node alike. */
export interface NativeOps extends CoreOps, ElementwiseOps, ReduceShapeOps, NnOps, CollectiveOps {
  readonly device: "cpu" | "cuda";
}
