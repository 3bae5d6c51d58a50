import type { Module } from "../nn/module";
import { BatchNorm } from "../nn/layers";
import { record } from "../tensor/autograd";
import type { NativeTensor } from "../tensor/native";
import { releaseInternal } from "../tensor/ops/saved";
import { tidy } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import type { ProcessGroup } from "./process_group";

export interface SyncBatchNormOptions {
  /** The ranks whose batches are normalised together; null (or a group of one) is plain batch norm. */
  group: ProcessGroup | null;
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch norm over x [N, C, ...] with statistics over the union of every rank's batch (torch.nn.SyncBatchNorm).
 * Training: each rank's per-channel count, mean and sum of squared deviations are all-gathered and combined
 * exactly (Chan's parallel formula, as PyTorch's batch_norm_gather_stats_with_counts, free of the cancellation of
 * sum/sum-of-squares); running stats move by `momentum` with the unbiased variance. Backward all-reduces the two
 * per-channel sums, sum(dy) and sum(dy * x_hat); the weight and bias gradients stay local (DDP averages them).
 * Every rank must run it the same number of times, in the same order as its other collectives.
 */
export function syncBatchNorm(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: SyncBatchNormOptions,
): Tensor {
  if (x.ndim < 2) throw new RangeError(`syncBatchNorm(): x must be [N, C, ...], got shape [${x.shape.join(", ")}]`);
  const C = x.shape[1];
  for (const [name, t] of [["weight", weight], ["bias", bias], ["runningMean", runningMean], ["runningVar", runningVar]] as const)
    if (t && (t.ndim !== 1 || t.shape[0] !== C)) throw new RangeError(`syncBatchNorm(): ${name} must have shape [${C}], got [${t.shape.join(", ")}]`);
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const o = x.ops;
  const w = (h: NativeTensor) => x.wrap(h);
  const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const perChannel = x.shape.map((d, i) => (i === 1 ? d : 1));
  const bc = (t: Tensor) => w(o.reshape(t.handle, perChannel));

  if (!opts.training) {
    if (!runningMean || !runningVar) throw new TypeError("syncBatchNorm(): evaluation needs running statistics");
    const [y, scale] = tidy(() => {
      const s = w(o.powScalar(w(o.addScalar(runningVar.handle, eps)).handle, -0.5));
      const scaleC = weight ? w(o.mul(s.handle, weight.handle)) : s;
      const shift = w(o.neg(w(o.mul(runningMean.handle, scaleC.handle)).handle));
      const shiftC = bias ? w(o.add(shift.handle, bias.handle)) : shift;
      return [w(o.add(w(o.mul(x.handle, bc(scaleC).handle)).handle, bc(shiftC).handle)), s];
    });
    record("syncBatchNorm", y, [x, weight, bias], [x, runningMean, scale, weight], (gy) => tidy(() => {
      const xhat = w(o.mul(w(o.sub(x.handle, bc(runningMean).handle)).handle, bc(scale).handle));
      return [
        x.requiresGrad ? w(o.mul(gy.handle, bc(weight ? w(o.mul(scale.handle, weight.handle)) : scale).handle)) : null,
        weight?.requiresGrad ? w(o.sum(w(o.mul(gy.handle, xhat.handle)).handle, dims)) : null,
        bias?.requiresGrad ? w(o.sum(gy.handle, dims)) : null,
      ];
    }));
    return releaseInternal(y, scale);
  }

  const group = opts.group && opts.group.size > 1 ? opts.group : null;
  const [y, xhat, invstd, count] = tidy(() => {
    const nLocal = x.numel / C;
    const meanL = w(o.mean(x.handle, dims));
    const xc = w(o.sub(x.handle, bc(meanL).handle));
    const m2L = w(o.sum(w(o.mul(xc.handle, xc.handle)).handle, dims));
    let n: Tensor, mean: Tensor, m2: Tensor;
    if (!group) {
      n = w(o.full([1], nLocal));
      mean = meanL;
      m2 = m2L;
    } else {
      const stats = w(o.concat([w(o.full([1], nLocal)).handle, meanL.handle, m2L.handle], 0));
      const all = w(o.reshape(group.allGather(stats).handle, [group.size, 2 * C + 1]));
      const nI = w(o.narrow(all.handle, 1, 0, 1));
      const meanI = w(o.narrow(all.handle, 1, 1, C));
      const m2I = w(o.narrow(all.handle, 1, 1 + C, C));
      n = w(o.sum(nI.handle, [0]));
      mean = w(o.div(w(o.sum(w(o.mul(nI.handle, meanI.handle)).handle, [0])).handle, n.handle));
      const d = w(o.sub(meanI.handle, mean.handle));
      m2 = w(o.sum(w(o.add(m2I.handle, w(o.mul(nI.handle, w(o.mul(d.handle, d.handle)).handle)).handle)).handle, [0]));
    }
    const variance = w(o.div(m2.handle, n.handle));
    const inv = w(o.powScalar(w(o.addScalar(variance.handle, eps)).handle, -0.5));
    const xh = w(o.mul(w(o.sub(x.handle, bc(mean).handle)).handle, bc(inv).handle));
    let out = xh;
    if (weight) out = w(o.mul(out.handle, bc(weight).handle));
    if (bias) out = w(o.add(out.handle, bc(bias).handle));
    if (out === xh) out = w(o.clone(xh.handle));
    if (runningMean) {
      o.mulScalar_(runningMean.handle, 1 - momentum);
      o.addScaled_(runningMean.handle, mean.handle, momentum);
    }
    if (runningVar) {
      const unbiased = w(o.div(m2.handle, w(o.addScalar(n.handle, -1)).handle));
      o.mulScalar_(runningVar.handle, 1 - momentum);
      o.addScaled_(runningVar.handle, unbiased.handle, momentum);
    }
    return [out, xh, inv, n];
  });

  record("syncBatchNorm", y, [x, weight, bias], [xhat, invstd, count, weight], (gy) => tidy(() => {
    const sumDy = w(o.sum(gy.handle, dims));
    const sumDyXhat = w(o.sum(w(o.mul(gy.handle, xhat.handle)).handle, dims));
    const gWeight = weight?.requiresGrad ? w(o.clone(sumDyXhat.handle)) : null;
    const gBias = bias?.requiresGrad ? w(o.clone(sumDy.handle)) : null;
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      group?.allReduce_([sumDy, sumDyXhat], "sum");
      // dx = w * invstd * (dy - sum(dy)/n - x_hat * sum(dy * x_hat)/n), the sums over every rank's batch
      const meanDy = bc(w(o.div(sumDy.handle, count.handle)));
      const meanDyXhat = bc(w(o.div(sumDyXhat.handle, count.handle)));
      const centered = w(o.sub(w(o.sub(gy.handle, meanDy.handle)).handle, w(o.mul(xhat.handle, meanDyXhat.handle)).handle));
      const scale = weight ? w(o.mul(invstd.handle, weight.handle)) : invstd;
      gx = w(o.mul(centered.handle, bc(scale).handle));
    }
    return [gx, gWeight, gBias];
  }));
  return releaseInternal(y, xhat, invstd, count);
}

/**
 * torch.nn.SyncBatchNorm.convert_sync_batchnorm: every BatchNorm in `module` normalises training batches with
 * statistics over every rank of `group` (TRAIN.SYNC_BN); evaluation keeps the running statistics. A group of one
 * (or null) leaves the module as it is. Returns how many layers were converted.
 */
export function convertSyncBatchNorm(module: Module, group: ProcessGroup | null): number {
  if (!group || group.size <= 1) return 0;
  let n = 0;
  for (const [, m] of module.namedModules()) {
    if (!(m instanceof BatchNorm)) continue;
    m.trainingNorm = (x, bn) =>
      syncBatchNorm(x, bn.weight, bn.bias, bn.runningMean, bn.runningVar, { group, training: true, momentum: bn.momentum, eps: bn.eps });
    n++;
  }
  return n;
}
