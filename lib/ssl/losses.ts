import { detach } from "../tensor/autograd";
import { add, addScalar, mulScalar, neg } from "../tensor/ops/elementwise";
import { crossEntropy } from "../tensor/ops/loss";
import { mean } from "../tensor/ops/reduce";
import { cosineSimilarity } from "../tensor/ops/norm";
import { freeTemporaries } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";

/** −mean_b cos(p, sg(z)): the SimSiam term (CosineSimilarity criterion, eps 1e-8). */
export function negativeCosine(p: Tensor, z: Tensor): Tensor {
  return freeTemporaries(() => neg(mean(cosineSimilarity(p, detach(z), 1, 1e-8))));
}

/** −(cos(p1, sg z2) + cos(p2, sg z1)) / 2, the symmetric SimSiam/BYOL loss. */
export function symmetricNegativeCosine(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor): Tensor {
  return freeTemporaries(() => mulScalar(add(negativeCosine(p1, z2), negativeCosine(p2, z1)), 0.5));
}

/** BYOL's CosineSimilarityv2: mean_b[(2 − 2<n(p1), n(t2)>) + (2 − 2<n(p2), n(t1)>)] = 4 − 2·(mean cos + mean cos). */
export function byolV2Loss(p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor): Tensor {
  return freeTemporaries(() => {
    const cosSum = add(mean(cosineSimilarity(p1, detach(t2), 1, 1e-8)), mean(cosineSimilarity(p2, detach(t1), 1, 1e-8)));
    return addScalar(mulScalar(cosSum, -2), 4);
  });
}

/** The mean of two losses, as the original's 4-prediction and 2-logit criterion branches combine FP and quantized terms. */
export function average(a: Tensor, b: Tensor): Tensor {
  return freeTemporaries(() => mulScalar(add(a, b), 0.5));
}

export { crossEntropy };
