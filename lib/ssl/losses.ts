import { detach } from "../tensor/autograd";
import { add, addScalar, mulScalar, neg } from "../tensor/ops/elementwise";
import { crossEntropy } from "../tensor/ops/loss";
import { mean } from "../tensor/ops/reduce";
import { cosineSimilarity } from "../tensor/ops/norm";
import { freeTemporaries } from "../tensor/scope";
import { tensor, type Tensor } from "../tensor/tensor";
import { matmul } from "../tensor/ops/linear";
import { concat, transpose } from "../tensor/ops/shape";

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

/**
 * NT-Xent of InfoNCEv2 (§4.8) on normalised embeddings f1, f2 [B, D]: X = [f1; f2], logits X·Xᵀ / T without the
 * diagonal, and for each row the other view of the same image as the positive.
 */
export function ntXent(f1: Tensor, f2: Tensor, temperature: number): Tensor {
  return freeTemporaries(() => {
    const f = concat([f1, f2], 0);
    const n = f.shape[0];
    const b = n / 2;
    const sim = mulScalar(matmul(f, transpose(f)), 1 / temperature);
    const mask = new Float32Array(n * n);
    for (let i = 0; i < n; i++) mask[i * n + i] = -1e9;
    const logits = add(sim, tensor(mask, [n, n], f.device));
    const targets = new Int32Array(n).map((_, i) => (i + b) % n);
    return crossEntropy(logits, tensor(targets, [n], f.device));
  });
}

export { crossEntropy };
