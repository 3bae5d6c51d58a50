import { record } from "../autograd";
import type { Pair } from "../native";
import { Tensor } from "../tensor";

export interface Conv2dOptions {
  stride?: number | Pair;
  padding?: number | Pair;
  dilation?: number | Pair;
  groups?: number;
}

export function pair(v: number | Pair | undefined, fallback: number): Pair {
  if (v === undefined) return [fallback, fallback];
  return typeof v === "number" ? [v, v] : v;
}

/** F.conv2d: x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw], bias [Cout] or null. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: Conv2dOptions = {}): Tensor {
  const stride = pair(opts.stride, 1);
  const padding = pair(opts.padding, 0);
  const dilation = pair(opts.dilation, 1);
  const groups = opts.groups ?? 1;
  const out = x.wrap(x.ops.conv2d(x.handle, weight.handle, bias ? bias.handle : null, stride, padding, dilation, groups));
  return record("conv2d", out, [x, weight, bias], [x.requiresGrad && weight, weight.requiresGrad && x], (g, into) => {
    const gx = x.requiresGrad
      ? g.wrap(g.ops.conv2dBackwardData(g.handle, weight.handle, x.shape, stride, padding, dilation, groups))
      : null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (weight.requiresGrad) {
      // Added into the weight's gradient so far where the backend does so in its pass.
      const acc = into?.(1) ?? null;
      const [w, b] = g.ops.conv2dBackwardWeight(g.handle, x.handle, weight.shape, stride, padding, dilation, groups, !!bias?.requiresGrad, acc?.handle);
      gw = w ? g.wrap(w) : acc;
      gb = b ? g.wrap(b) : null;
    } else if (bias?.requiresGrad) {
      gb = g.wrap(g.ops.sum(g.handle, [0, 2, 3], false));
    }
    return [gx, gw, gb];
  });
}
