import type { CollectiveOps } from "./collective";
import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "./core";
import type { DataOps } from "./data";
import type { NnOps } from "./nn";
import type { QuantOps } from "./quant";

export type { NativeTensor, DType, AnyTypedArray, TypedArrayOf } from "./core";
export type { NnOps, Pair } from "./nn";
export type { DataOps, Interpolation } from "./data";
export type { CollectiveOps, NativeProcessGroup, ProcessGroupOptions, ReduceOp } from "./collective";
export type { QuantOps } from "./quant";
export type { CudaOps, CudaMemoryStats } from "./cuda";
export type { NcclOps, Communicator } from "./nccl";

/** Everything an addon exports: one table, implemented by ssql_cpu.node and ssql_cuda.node alike. */
export interface NativeOps extends CoreOps, ElementwiseOps, ReduceShapeOps, NnOps, DataOps, CollectiveOps, QuantOps {
  readonly device: "cpu" | "cuda";
}
