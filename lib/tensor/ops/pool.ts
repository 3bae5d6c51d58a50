import { record } from "../autograd";
import type { Pair } from "../native";
import { Tensor } from "../tensor";
import { pair } from "./conv";
import { releaseInternal } from "./saved";
import { mean } from "./reduce";

/** F.max_pool2d (floor mode, -inf padding); stride defaults to the kernel size. */
export function maxPool2d(x: Tensor, kernel: number | Pair, stride?: number | Pair, padding: number | Pair = 0): Tensor {
  const k = pair(kernel, 1);
  const [y, indices] = x.ops.maxPool2d(x.handle, k, pair(stride ?? k, 1), pair(padding, 0));
  const out = x.wrap(y);
  const idx = x.wrap(indices);
  record("maxPool2d", out, [x], [idx], (g) => [g.wrap(g.ops.maxPool2dBackward(g.handle, idx.handle, x.shape))]);
  return releaseInternal(out, idx);
}

/** F.adaptive_avg_pool2d to 1x1: the mean over H and W, kept as [N, C, 1, 1]. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | Pair = 1): Tensor {
  const [oh, ow] = pair(outputSize, 1);
  if (oh !== 1 || ow !== 1) throw new RangeError(`adaptiveAvgPool2d(): only output size 1 is supported, got [${oh}, ${ow}]`);
  if (x.ndim !== 4) throw new RangeError(`adaptiveAvgPool2d(): input must be [N, C, H, W], got [${x.shape.join(", ")}]`);
  return mean(x, [2, 3], true);
}
