import type { QuantRounding } from "./quant";

/** Opaque handle to a native tensor; only the addon that made it can read it. */
export interface NativeTensor {
  readonly __nativeTensor: unique symbol;
}

export type DType = "float32" | "uint8" | "int32";
export type TypedArrayOf<D extends DType> = D extends "float32" ? Float32Array : D extends "uint8" ? Uint8Array : Int32Array;
export type AnyTypedArray = Float32Array | Uint8Array | Int32Array;
type H = NativeTensor;

/** Creation, transfer, views and lifetime (native/cpu/tensor_ops.cc). */
export interface CoreOps {
  fromArray(data: AnyTypedArray, shape: readonly number[]): H;
  toArray(x: H): AnyTypedArray;
  toArrayAsync(x: H): Promise<AnyTypedArray>;
  item(x: H): number;
  full(shape: readonly number[], value: number, dtype?: DType): H;
  shape(x: H): number[];
  dtype(x: H): DType;
  reshape(x: H, shape: readonly number[]): H;
  clone(x: H): H;
  copy_(dst: H, src: H): void;
  toFloat(x: H): H;
  dispose(x: H): void;
  isDisposed(x: H): boolean;
  /** Live storages and their bytes; peakBytes: the most bytes live since the start or resetPeakMemoryStats(). */
  memoryStats(): { storages: number; bytes: number; peakBytes: number };
  resetPeakMemoryStats(): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
}

/** Elementwise float32 ops with PyTorch broadcasting (native/cpu/elementwise.cc). */
export interface ElementwiseOps {
  add(a: H, b: H): H;
  sub(a: H, b: H): H;
  mul(a: H, b: H): H;
  div(a: H, b: H): H;
  maximum(a: H, b: H): H;
  /**
   * max(a + b, 0) for same-shape a, b (a residual block's end) in one pass; withRange and the fused fake quant (CPU)
   * as NnOps.batchNorm's. Returns [y, range or null, mask or null].
   */
  addRelu(
    a: H, b: H, withRange: boolean,
    fakeQuantScale?: H | null, fakeQuantZeroPoint?: H, fakeQuantEnabled?: H | null, quantMin?: number, quantMax?: number, rounding?: QuantRounding,
  ): [H, H | null, H | null];
  addScalar(x: H, s: number): H;
  mulScalar(x: H, s: number): H;
  powScalar(x: H, s: number): H;
  clampMin(x: H, min: number): H;
  neg(x: H): H;
  exp(x: H): H;
  log(x: H): H;
  sqrt(x: H): H;
  abs(x: H): H;
  relu(x: H): H;
  reluBackward(grad: H, output: H): H;
  absBackward(grad: H, input: H): H;
  clampMinBackward(grad: H, input: H, min: number): H;
  clampMax(x: H, max: number): H;
  clampMaxBackward(grad: H, input: H, max: number): H;
  sigmoid(x: H): H;
  /** grad * y * (1 - y), y the sigmoid's output. */
  sigmoidBackward(grad: H, output: H): H;
  floor(x: H): H;
  addScaled_(dst: H, src: H, alpha: number): void;
  mulScalar_(dst: H, s: number): void;
  fill_(dst: H, value: number): void;
  expand(x: H, shape: readonly number[]): H;
}

/** Reductions (native/cpu/reduce.cc) and data-moving shape ops (native/cpu/shape_ops.cc). */
export interface ReduceShapeOps {
  sum(x: H, dims: readonly number[], keepdim?: boolean): H;
  mean(x: H, dims: readonly number[], keepdim?: boolean): H;
  maxDim(x: H, dim: number, keepdim?: boolean): [H, H];
  minDim(x: H, dim: number, keepdim?: boolean): [H, H];
  indexGradBackward(grad: H, indices: H, inputShape: readonly number[], dim: number): H;
  permute(x: H, dims: readonly number[]): H;
  concat(xs: readonly H[], dim: number): H;
  narrow(x: H, dim: number, start: number, length: number): H;
}
