import { record } from "../autograd";
import { freeTemporaries } from "../scope";
import { Tensor } from "../tensor";
import { clampMin, div, mul } from "./elementwise";
import { sum } from "./reduce";
import { fakeQuantArgs, type Epilogue, type EpilogueOutput } from "./epilogue";
import { releaseInternal } from "./saved";

/**
 * F.batch_norm over [N, C] or [N, C, H, W]. Training (or no running stats): batch statistics, and the running
 * stats, when given, updated in place with `momentum` and the unbiased batch variance. Eval: the running stats.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  training = false,
  momentum = 0.1,
  eps = 1e-5,
): Tensor {
  return batchNormAct(x, runningMean, runningVar, weight, bias, training, momentum, eps).y;
}

/** What a batch norm may do in the same pass over its output. */
export interface BatchNormEpilogue extends Epilogue {
  /** relu(batch norm) as one op, forward and backward (bit for bit the two ops'). */
  relu?: boolean;
}

/**
 * batchNorm, then the epilogue: the output (fake-quantized when asked for, bit for bit as the fake-quant op, its
 * backward fused too) and, when asked for and computed, its range (float32 [2], no gradient).
 */
export function batchNormAct(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null, training: boolean,
  momentum: number, eps: number, epilogue: BatchNormEpilogue = {},
): EpilogueOutput {
  const batchStats = training || !runningMean;
  const relu = epilogue.relu ?? false;
  const [y, m, s, r, mk] = x.ops.batchNorm(
    x.handle,
    weight ? weight.handle : null,
    bias ? bias.handle : null,
    runningMean ? runningMean.handle : null,
    runningVar ? runningVar.handle : null,
    batchStats,
    momentum,
    eps,
    relu,
    epilogue.withRange ?? false,
    ...fakeQuantArgs(x, epilogue),
  );
  const out = x.wrap(y);
  const mean = x.wrap(m);
  const invStd = x.wrap(s);
  const range = r ? x.wrap(r) : null;
  const mask = mk ? x.wrap(mk) : null;
  // The backward's gate: the fake quant's mask (which holds the ReLU's), the ReLU's output, or none.
  const gate = mask ?? (relu ? out : null);
  record(mask ? "batchNormFakeQuant" : relu ? "batchNormRelu" : "batchNorm", out, [x, weight, bias], [x, weight, mean, invStd, gate], (g) => {
    const withAffine = !!(weight?.requiresGrad || bias?.requiresGrad);
    const [dx, dw, db] = g.ops.batchNormBackward(
      g.handle, x.handle, weight ? weight.handle : null, mean.handle, invStd.handle, batchStats, withAffine, gate ? gate.handle : null,
    );
    const gx = g.wrap(dx);
    const gw = dw ? g.wrap(dw) : null;
    const gb = db ? g.wrap(db) : null;
    if (!x.requiresGrad) gx.dispose();
    if (gw && !weight?.requiresGrad) gw.dispose();
    if (gb && !bias?.requiresGrad) gb.dispose();
    return [x.requiresGrad ? gx : null, weight?.requiresGrad ? gw : null, bias?.requiresGrad ? gb : null];
  });
  return { y: releaseInternal(out, mean, invStd, ...(mask ? [mask] : [])), range, fakeQuantized: mask !== null };
}

const FLT_MIN = 1.1754943508222875e-38;

/** torch.linalg.vector_norm(x, 2, dim, keepdim); its gradient is 0 where the norm is 0, as PyTorch's. */
export function vectorNorm(x: Tensor, dim: number, keepdim = false): Tensor {
  const d = dim < 0 ? dim + x.ndim : dim;
  const kept = x.shape.map((s, i) => (i === d ? 1 : s));
  const sq = x.wrap(x.ops.powScalar(x.handle, 2));
  const ss = sq.wrap(sq.ops.sum(sq.handle, [d], keepdim));
  sq.dispose();
  const out = ss.wrap(ss.ops.sqrt(ss.handle));
  ss.dispose();
  return record("vectorNorm", out, [x], [x, out], (g) => {
    // d||x||/dx = x / ||x||, with the norm floored so that a zero vector (x = 0) gets 0, not NaN.
    const n = out.view(kept);
    const safe = n.wrap(n.ops.clampMin(n.handle, FLT_MIN));
    const gk = g.view(kept);
    const q = gk.wrap(gk.ops.div(gk.handle, safe.handle));
    const r = q.wrap(q.ops.mul(x.handle, q.handle));
    for (const t of [n, safe, gk, q]) t.dispose();
    return [r];
  });
}

/** max(x, min) whose gradient ignores the clamp, as PyTorch's in-place clamp under no_grad in cosine_similarity. */
function clampMinStraight(x: Tensor, min: number): Tensor {
  return record("clampMinStraight", x.wrap(x.ops.clampMin(x.handle, min)), [x], [], (g) => [g]);
}

/** F.normalize(x, p=2, dim, eps): x / max(||x||, eps). */
export function normalize(x: Tensor, dim = 1, eps = 1e-12): Tensor {
  return freeTemporaries(() => div(x, clampMin(vectorNorm(x, dim, true), eps)));
}

/**
 * F.cosine_similarity as PyTorch 2.x computes it: sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps), dim), where
 * the clamp is applied without recording it (so the gradient flows as if the norm had not been clamped).
 */
export function cosineSimilarity(x1: Tensor, x2: Tensor, dim = 1, eps = 1e-8): Tensor {
  return freeTemporaries(() => {
    const n1 = clampMinStraight(vectorNorm(x1, dim, true), eps);
    const n2 = clampMinStraight(vectorNorm(x2, dim, true), eps);
    return sum(mul(div(x1, n1), div(x2, n2)), dim);
  });
}
