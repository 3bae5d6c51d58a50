import { backward } from "../../lib/tensor/autograd";
import { tidy } from "../../lib/tensor/scope";
import { Tensor, tensor } from "../../lib/tensor/tensor";
import { randomArray } from "./random";

/** ‖a − b‖ / max(‖b‖, tiny): the normalized error used for every comparison against a reference. */
export function normErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`normErr: lengths ${a.length} and ${b.length} differ`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

export { randomArray };

export function randomTensor(shape: number[], seed = 1, requiresGrad = true): Tensor {
  const t = tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed), shape).keep();
  t.requiresGrad = requiresGrad;
  return t;
}

/**
 * Central finite differences of the scalar f(inputs) with respect to every element of every input,
 * compared with autograd. Returns the worst normalized error over inputs.
 */
export function gradCheck(f: (xs: Tensor[]) => Tensor, inputs: Tensor[], eps = 1e-2): number {
  for (const x of inputs) x.grad = null;
  tidy(() => {
    backward(f(inputs));
  });
  let worst = 0;
  for (const x of inputs) {
    const analytic = x.grad ? Array.from(x.grad.toArraySync()) : new Array(x.numel).fill(0);
    const base = Float32Array.from(x.toArraySync() as Float32Array);
    const numeric: number[] = [];
    for (let i = 0; i < base.length; i++) {
      const probe = (delta: number) => {
        const v = Float32Array.from(base);
        v[i] += delta;
        const h = tensor(v, x.shape);
        x.ops.copy_(x.handle, h.handle);
        h.dispose();
        return tidy(() => f(inputs).itemSync());
      };
      numeric.push((probe(eps) - probe(-eps)) / (2 * eps));
    }
    const h = tensor(base, x.shape);
    x.ops.copy_(x.handle, h.handle);
    h.dispose();
    worst = Math.max(worst, normErr(analytic, numeric));
  }
  return worst;
}
