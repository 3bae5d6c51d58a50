import { record } from "../autograd";
import type { Tensor } from "../tensor";

/** torch.sigmoid, with its gradient y * (1 - y). */
export function sigmoid(x: Tensor): Tensor {
  const out = x.wrap(x.ops.sigmoid(x.handle));
  return record("sigmoid", out, [x], [out], (g) => [g.wrap(g.ops.sigmoidBackward(g.handle, out.handle))]);
}

/** torch.floor: piecewise constant, so its gradient is zero (torch's floor backward); not recorded. */
export function floor(x: Tensor): Tensor {
  return x.wrap(x.ops.floor(x.handle));
}

/** torch.clamp(x, max=hi): the gradient passes where x <= hi. */
export function clampMax(x: Tensor, hi: number): Tensor {
  return record("clampMax", x.wrap(x.ops.clampMax(x.handle, hi)), [x], [x], (g) => [g.wrap(g.ops.clampMaxBackward(g.handle, x.handle, hi))]);
}

/** torch.clamp(x, lo, hi): the gradient passes where lo <= x <= hi, as PyTorch's. */
export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  if (!(lo <= hi)) throw new RangeError(`clamp(): min ${lo} is above max ${hi}`);
  const inside = x.ops;
  const low = record("clampMin", x.wrap(inside.clampMin(x.handle, lo)), [x], [x], (g) => [g.wrap(g.ops.clampMinBackward(g.handle, x.handle, lo))]);
  const out = clampMax(low, hi);
  low.release();
  return out;
}

/** x ** p for x >= 0 (torch.pow with a scalar exponent); gradient p * x ** (p - 1). */
export function powScalar(x: Tensor, p: number): Tensor {
  return record("powScalar", x.wrap(x.ops.powScalar(x.handle, p)), [x], [x], (g) => {
    const d = g.wrap(g.ops.powScalar(x.handle, p - 1));
    const t = d.wrap(d.ops.mul(g.handle, d.handle));
    d.dispose();
    const r = t.wrap(t.ops.mulScalar(t.handle, p));
    t.dispose();
    return [r];
  });
}
