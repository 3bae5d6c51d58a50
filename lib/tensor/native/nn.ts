import type { NativeTensor as H } from "./core";
import type { QuantRounding } from "./quant";

export type Pair = readonly [number, number];

/**
 * Neural-network ops (CPU: native/cpu/ via oneDNN; CUDA: native/cuda/ via cuDNN/cuBLAS).
 * Layouts follow PyTorch: NCHW activations, [Cout, Cin/groups, kh, kw] filters, [out, in] linear weights.
 */
export interface NnOps {
  conv2d(x: H, w: H, bias: H | null, stride: Pair, padding: Pair, dilation: Pair, groups: number): H;
  conv2dBackwardData(gy: H, w: H, xShape: readonly number[], stride: Pair, padding: Pair, dilation: Pair, groups: number): H;
  /**
   * Returns [dW, dBias or null]. accumulate: a gradient of the weight to add dW into where the backend can do so in
   * its own pass (the CPU's), which then returns null for dW; elsewhere dW is returned as without it.
   */
  conv2dBackwardWeight(
    gy: H, x: H, wShape: readonly number[], stride: Pair, padding: Pair, dilation: Pair, groups: number, withBias: boolean,
    accumulate?: H | null,
  ): [H | null, H | null];

  /**
   * Batch norm over x [N, C] or [N, C, H, W]. Training: batch statistics, and running stats (if given) updated in
   * place with `momentum` and the unbiased batch variance, as PyTorch. Eval: running stats.
   * relu: the output is max(y, 0), in the same pass. withRange: also [min(y), max(y)] (NaN, NaN when y holds a NaN)
   * as a float32 [2], for a per-tensor observer; null where the backend does not compute it in the pass (CUDA).
   * fakeQuant (CPU only; not with withRange): the output is fake_quantize_per_tensor_affine of it, bit for bit, and
   * mask (uint8) the gradient gate of that fake quant and the ReLU, for batchNormBackward.
   * Returns [y, mean, invStd, range, mask] where mean/invStd are what normalised x (saved for backward).
   */
  batchNorm(
    x: H, weight: H | null, bias: H | null, runningMean: H | null, runningVar: H | null, training: boolean, momentum: number, eps: number,
    relu?: boolean, withRange?: boolean,
    fakeQuantScale?: H | null, fakeQuantZeroPoint?: H, fakeQuantEnabled?: H | null, quantMin?: number, quantMax?: number, rounding?: QuantRounding,
  ): [H, H, H, H | null, H | null];
  /**
   * Returns [dx, dWeight or null, dBias or null]; `training` says whether mean/invStd depended on x. gate: the output
   * of a batchNorm run with relu (float32; gy counts where it is > 0), or the mask of one run with a fake quant (uint8;
   * gy * mask): that epilogue's backward, fused.
   */
  batchNormBackward(gy: H, x: H, weight: H | null, mean: H, invStd: H, training: boolean, withAffine: boolean, gate?: H | null): [H, H | null, H | null];

  /** 2-D matrix product op(a) @ op(b), op = transpose when the flag is set. */
  matmul(a: H, b: H, transA: boolean, transB: boolean): H;
  /**
   * The same, with accumulate: a tensor to add the product into where the backend does so in its GEMM (the CPU's),
   * which then returns null; elsewhere the product, as without it.
   */
  matmul(a: H, b: H, transA: boolean, transB: boolean, accumulate: H | null): H | null;
  /** x [N, in] @ w[out, in]^T + bias. */
  linear(x: H, w: H, bias: H | null): H;

  /** Returns [y, argmax indices (int32, flat index into each input plane)]. */
  maxPool2d(x: H, kernel: Pair, stride: Pair, padding: Pair): [H, H];
  maxPool2dBackward(gy: H, indices: H, xShape: readonly number[]): H;

  /** log_softmax over the last dimension of a 2-D tensor. */
  logSoftmax(x: H): H;
  logSoftmaxBackward(gy: H, y: H): H;
  /** Mean cross-entropy of logits [N, C] against int32 targets [N]; returns [loss (shape []), logProbs]. */
  crossEntropy(logits: H, target: H, labelSmoothing: number): [H, H];
  crossEntropyBackward(gLoss: H, logProbs: H, target: H, labelSmoothing: number): H;
  /** Counts of samples whose target is among the top-k logits, for each k; int32 [ks.length]. */
  topkCorrect(logits: H, target: H, ks: readonly number[]): H;

  /**
   * Counter-based Philox-4x32-10 random numbers, identical on every backend: element i uses counter
   * (offset + floor(i / 4)) and lane i % 4, key = seed. Callers advance offset by ceil(numel / 4).
   */
  uniform(shape: readonly number[], low: number, high: number, seed: number, offset: number): H;
  normal(shape: readonly number[], mean: number, std: number, seed: number, offset: number): H;

  /**
   * In-place SGD as torch.optim.SGD: d = g + wd * p; buf = initBuf ? d : momentum * buf + (1 - dampening) * d;
   * d = nesterov ? d + momentum * buf : buf (when momentum > 0); p -= lr * d.
   */
  sgdStep_(p: H, g: H, buf: H | null, lr: number, momentum: number, weightDecay: number, dampening: number, nesterov: boolean, initBuf: boolean): void;

  /** Backend description for `ssql info` (library versions, ISA, devices). */
  backendInfo(): Record<string, string | number | boolean>;
}

export type ConvAlgorithm = "blocked" | "plain" | "gemm" | "winograd";

/**
 * The CPU addon's choice of convolution algorithm per problem (native/cpu/conv_algorithm.h): timed once on a
 * problem's first call, as cudnn.benchmark does. Keys name the pass, the shapes and the thread count.
 */
export interface ConvAlgorithmOps {
  convAlgorithms(): Record<string, ConvAlgorithm>;
  /** Adopts choices read back from convAlgorithms() (a resumed run computes as its first part did). */
  setConvAlgorithms(choices: Record<string, string>): void;
  /** Every convolution runs `algorithm` where it applies; null: each problem is timed again. */
  pinConvAlgorithm(algorithm: ConvAlgorithm | null): void;
}
