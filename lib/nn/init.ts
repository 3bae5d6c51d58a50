import { Generator } from "../tensor/ops/random";
import { Tensor } from "../tensor/tensor";

/** torch.nn.init in place: each function overwrites t's values (drawn from `gen`) and returns t. */

export type Nonlinearity = "linear" | "conv2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu";
export type FanMode = "fan_in" | "fan_out";

export function calculateFanInAndFanOut(shape: readonly number[]): [number, number] {
  if (shape.length < 2) throw new RangeError(`fan in and fan out need a tensor of at least 2 dimensions, got [${shape.join(", ")}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
  }
}

function overwrite(t: Tensor, values: Tensor): Tensor {
  t.ops.copy_(t.handle, values.handle);
  values.dispose();
  return t;
}

export function uniform_(t: Tensor, gen: Generator, low = 0, high = 1): Tensor {
  return overwrite(t, gen.uniform(t.shape, low, high, t.device));
}

export function normal_(t: Tensor, gen: Generator, mean = 0, std = 1): Tensor {
  return overwrite(t, gen.normal(t.shape, mean, std, t.device));
}

export function constant_(t: Tensor, value: number): Tensor {
  t.ops.fill_(t.handle, value);
  return t;
}

export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

export interface KaimingOptions {
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, { a = 0, mode = "fan_in", nonlinearity = "leaky_relu" }: KaimingOptions): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t.shape);
  const fan = mode === "fan_in" ? fanIn : fanOut;
  return calculateGain(nonlinearity, a) / Math.sqrt(fan);
}

export function kaimingUniform_(t: Tensor, gen: Generator, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform_(t, gen, -bound, bound);
}

export function kaimingNormal_(t: Tensor, gen: Generator, opts: KaimingOptions = {}): Tensor {
  return normal_(t, gen, 0, kaimingStd(t, opts));
}

/** nn.Conv2d / nn.Linear reset_parameters(): kaiming_uniform_(a=sqrt(5)), bias uniform(+-1/sqrt(fan_in)). */
export function resetLinearOrConv(weight: Tensor, bias: Tensor | null, gen: Generator): void {
  kaimingUniform_(weight, gen, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = calculateFanInAndFanOut(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, gen, -bound, bound);
  }
}

/** nn.BatchNorm reset_parameters(): gamma 1, beta 0, running mean 0, running var 1. */
export function resetBatchNorm(weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null): void {
  if (weight) ones_(weight);
  if (bias) zeros_(bias);
  if (runningMean) zeros_(runningMean);
  if (runningVar) ones_(runningVar);
}
