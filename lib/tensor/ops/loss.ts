import { record } from "../autograd";
import { Tensor } from "../tensor";
import { releaseInternal } from "./saved";

/** F.log_softmax over the last dimension of a 2-D tensor. */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  if (x.ndim !== 2 || (dim !== -1 && dim !== 1)) throw new RangeError("logSoftmax(): supports 2-D input over its last dimension");
  const out = x.wrap(x.ops.logSoftmax(x.handle));
  return record("logSoftmax", out, [x], [out], (g) => [g.wrap(g.ops.logSoftmaxBackward(g.handle, out.handle))]);
}

export interface CrossEntropyOptions {
  labelSmoothing?: number;
}

/** F.cross_entropy with mean reduction: logits [N, C], int32 class targets [N]. */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ls = opts.labelSmoothing ?? 0;
  const [loss, lp] = logits.ops.crossEntropy(logits.handle, target.handle, ls);
  const out = logits.wrap(loss);
  const logProbs = logits.wrap(lp);
  record("crossEntropy", out, [logits], [logProbs, target], (g) => [g.wrap(g.ops.crossEntropyBackward(g.handle, logProbs.handle, target.handle, ls))]);
  return releaseInternal(out, logProbs);
}

/** For each k in ks, how many samples have their target among the k largest logits (int32 [ks.length]). */
export function topkCorrect(logits: Tensor, target: Tensor, ks: readonly number[]): Tensor {
  return logits.wrap(logits.ops.topkCorrect(logits.handle, target.handle, ks));
}
