import type { CollectiveOps } from "./collective";
import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "./core";
import type { AugmentOps, DataOps } from "./data";
import type { ConvAlgorithmOps, NnOps } from "./nn";
import type { QuantOps } from "./quant";

export type { NativeTensor, DType, AnyTypedArray, TypedArrayOf } from "./core";
export type { ConvAlgorithm, ConvAlgorithmOps, NnOps, Pair } from "./nn";
export type { AugmentOps, DataOps, Interpolation, PackedImages } from "./data";
export type { CollectiveOps, NativeProcessGroup, ProcessGroupOptions, ReduceOp } from "./collective";
export type { QuantOps } from "./quant";
export type { ConvPlan, CudaOps, CudaMemoryStats } from "./cuda";

/** Everything an addon exports: one table; ssql_cpu.node implements all of it, ssql_cuda.node all but DataOps. */
export interface NativeOps extends CoreOps, ElementwiseOps, ReduceShapeOps, NnOps, AugmentOps, DataOps, CollectiveOps, QuantOps {
  readonly device: "cpu" | "cuda";
}

/**
 * The families every device implements. Image decoding and the data pool (DataOps) stay on the CPU; augmentation
 * (AugmentOps) runs on either device.
 */
export type DeviceOps = Omit<NativeOps, keyof DataOps>;

/** What ssql_cpu.node exports. */
export type CpuNativeOps = NativeOps & ConvAlgorithmOps;
