/**
 * BatchNorm folded into the convolution before it, for inference:
 *   BN(conv(x, W)) = conv(x, W * s) + b,   s_c = gamma_c / sqrt(var_c + eps),   b_c = beta_c - mean_c * s_c
 * every step rounded to float32 as written. A BN without affine parameters (or one that holds only a bias) passes
 * null for gamma (1) and/or beta (0).
 */
export interface BatchNormParams {
  gamma: Float32Array | null;
  beta: Float32Array | null;
  mean: Float32Array;
  var: Float32Array;
  eps: number;
}

export interface FoldedBatchNorm {
  /** s_c: multiplies output channel c of the weight (or, quantized, its scale). */
  scale: Float32Array;
  /** b_c: the convolution's bias. */
  shift: Float32Array;
}

const f = Math.fround;

export function foldBatchNorm(bn: BatchNormParams): FoldedBatchNorm {
  const n = bn.mean.length;
  for (const [k, t] of [["gamma", bn.gamma], ["beta", bn.beta], ["var", bn.var]] as const)
    if (t && t.length !== n) throw new Error(`BatchNorm fold: ${k} has ${t.length} channels, running_mean ${n}`);
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const s = f((bn.gamma ? bn.gamma[c]! : 1) / f(Math.sqrt(f(bn.var[c]! + bn.eps))));
    scale[c] = s;
    shift[c] = f((bn.beta ? bn.beta[c]! : 0) - f(bn.mean[c]! * s));
  }
  return { scale, shift };
}

/** W * s along output channels (axis 0) of a [C, ...] weight, in float32. */
export function scaleOutputChannels(w: Float32Array, channels: number, s: Float32Array): Float32Array {
  const per = w.length / channels;
  const out = new Float32Array(w.length);
  for (let c = 0; c < channels; c++) for (let i = c * per; i < (c + 1) * per; i++) out[i] = f(w[i]! * s[c]!);
  return out;
}
