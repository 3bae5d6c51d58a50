import { tensor } from "../tensor/tensor";
import type { BatchNorm, Conv2d } from "./layers";
import type { ResNet } from "./resnet";
import { resnetPieces } from "../quant/reconstruct/block_data";

/**
 * The original's quant_tools/fold_bn.py (search_fold_and_remove_bn) on our ResNet: each BN that follows a conv is
 * folded into it, w' = w * gamma / sqrt(var + eps) per output channel, b' = beta - gamma * mean / sqrt(var + eps)
 * (in float32, as there). Our convs have no bias and the state dict keeps its keys, so the folded BN stays and
 * becomes a pure shift: weight 1, running_mean 0, running_var = fl32(1 - eps) (so that var + eps is exactly 1 in
 * float32, and 1 / sqrt(var + eps) rounds to 1 in the float64 CPU kernel too) and bias b'. Its eval-mode forward is
 * then exactly y + b', and a second fold (the ONNX exporter folds BN itself) leaves the conv weight unchanged.
 * Returns the names of the folded convs.
 */
export async function foldBatchNorms(model: ResNet): Promise<string[]> {
  const folded: string[] = [];
  for (const piece of resnetPieces(model, "layer")) {
    for (const u of piece.units) {
      await foldInto(u.conv, u.bn);
      folded.push(u.name);
    }
  }
  return folded;
}

async function foldInto(conv: Conv2d, bn: BatchNorm): Promise<void> {
  if (conv.bias) throw new Error("foldBatchNorms: a conv with a bias (not in our ResNets)");
  const f = Math.fround;
  const c = bn.numFeatures;
  const w = (await conv.weight.toArray()) as Float32Array;
  const mean = (await bn.runningMean.toArray()) as Float32Array;
  const variance = (await bn.runningVar.toArray()) as Float32Array;
  const gamma = bn.weight ? ((await bn.weight.toArray()) as Float32Array) : new Float32Array(c).fill(1);
  const beta = bn.bias ? ((await bn.bias.toArray()) as Float32Array) : new Float32Array(c);
  const per = w.length / c;
  const nw = new Float32Array(w.length);
  const shift = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    const std = f(Math.sqrt(f(variance[k] + f(bn.eps))));
    const ratio = f(gamma[k] / std);
    for (let i = k * per; i < (k + 1) * per; i++) nw[i] = f(w[i] * ratio);
    shift[k] = f(beta[k] - f(f(gamma[k] * mean[k]) / std));
  }
  const put = (dst: typeof conv.weight, data: Float32Array) => {
    const t = tensor(data, dst.shape, dst.device);
    dst.ops.copy_(dst.handle, t.handle);
    t.dispose();
  };
  put(conv.weight, nw);
  if (!bn.weight || !bn.bias) throw new Error("foldBatchNorms: a BN without affine parameters (not in our ResNets)");
  put(bn.weight, new Float32Array(c).fill(1));
  put(bn.bias, shift);
  put(bn.runningMean, new Float32Array(c));
  put(bn.runningVar, new Float32Array(c).fill(f(1 - f(bn.eps))));
}
