import { describe, expect, it } from "vitest";
import { backward, noGrad } from "../../lib/tensor/autograd";
import * as E from "../../lib/tensor/ops/elementwise";
import { linear, matmul } from "../../lib/tensor/ops/linear";
import * as R from "../../lib/tensor/ops/reduce";
import * as S from "../../lib/tensor/ops/shape";
import { tidy } from "../../lib/tensor/scope";
import { liveTensorCount, tensor } from "../../lib/tensor/tensor";
import { gradCheck, randomTensor } from "../helpers/numeric";

describe("autograd tape", () => {
  it("computes a hand-checked gradient through broadcasting", () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]).keep();
    const b = tensor([1, 2, 3], [3]).keep();
    a.requiresGrad = b.requiresGrad = true;
    const loss = tidy(() => {
      const l = R.sum(E.mul(E.add(a, b), a));
      backward(l);
      return l;
    });
    expect(loss.itemSync()).toBe(137);
    expect(Array.from(a.grad!.toArraySync())).toEqual([3, 6, 9, 9, 12, 15]);
    expect(Array.from(b.grad!.toArraySync())).toEqual([5, 7, 9]);
  });

  it("accumulates into .grad over two backward passes", () => {
    const x = tensor([2, -3], [2]).keep();
    x.requiresGrad = true;
    for (let i = 0; i < 2; i++) tidy(() => backward(R.sum(E.mulScalar(x, 3))));
    expect(Array.from(x.grad!.toArraySync())).toEqual([6, 6]);
  });

  it("uses one input twice (x * x)", () => {
    const x = tensor([1.5, -2], [2]).keep();
    x.requiresGrad = true;
    tidy(() => backward(R.sum(E.mul(x, x))));
    expect(Array.from(x.grad!.toArraySync())).toEqual([3, -4]);
  });

  it("shares one gradient between the inputs of an add without a copy, and never writes a shared one in place", () => {
    // a + b hands the same gradient to a and to b; a and b then collect more: each must get its own sum, and a
    // leaf whose gradient another input still holds keeps an intact copy.
    const x = tensor([1, 2], [2]).keep(), w = tensor([3, -1], [2]).keep();
    x.requiresGrad = w.requiresGrad = true;
    tidy(() => {
      const a = E.mulScalar(x, 2), b = E.mul(x, w);
      const s = E.add(a, b); // ds/da = ds/db = g
      const l = R.sum(E.add(E.mul(s, s), E.add(E.mulScalar(a, 5), E.add(b, w)))); // a and b get more, w twice
      backward(l);
    });
    // l = s^2 + 5a + b + w, s = 2x + xw: dl/dx = (2s + 5) * 2 + (2s + 1) * w, dl/dw = (2s + 1) * x + 1.
    const sv = [2 * 1 + 1 * 3, 2 * 2 + 2 * -1];
    expect(Array.from(x.grad!.toArraySync())).toEqual([(2 * sv[0] + 5) * 2 + (2 * sv[0] + 1) * 3, (2 * sv[1] + 5) * 2 + (2 * sv[1] + 1) * -1]);
    expect(Array.from(w.grad!.toArraySync())).toEqual([(2 * sv[0] + 1) * 1 + 1, (2 * sv[1] + 1) * 2 + 1]);
  });

  it("gives two leaves fed the same gradient tensors of their own", () => {
    const p = tensor([1, 2], [2]).keep(), q = tensor([3, 4], [2]).keep();
    p.requiresGrad = q.requiresGrad = true;
    tidy(() => backward(R.sum(E.add(p, q))));
    expect(p.grad).not.toBe(q.grad);
    q.grad!.ops.addScaled_(q.grad!.handle, q.grad!.handle, 1);
    expect(Array.from(p.grad!.toArraySync())).toEqual([1, 1]);
    expect(Array.from(q.grad!.toArraySync())).toEqual([2, 2]);
  });

  it("lets a linear layer's backward add a reused weight's gradient into the first use's, as the sum of the two", () => {
    const x1 = randomTensor([5, 7], 61, false), x2 = randomTensor([5, 7], 62, false), r = randomTensor([5, 3], 63, false);
    const gradOf = (xs: (typeof x1)[]) => {
      const w = randomTensor([3, 7], 64), a = randomTensor([7, 3], 65);
      tidy(() => backward(R.sum(xs.map((x) => E.mul(E.add(linear(x, w), matmul(x, a)), r)).reduce((p, q) => E.add(p, q)))));
      return [...w.grad!.toArraySync(), ...a.grad!.toArraySync()];
    };
    const both = gradOf([x1, x2]), one = gradOf([x1]), two = gradOf([x2]);
    both.forEach((v, i) => expect(v).toBeCloseTo(one[i] + two[i], 5));
  });

  it("never lets a backward add into the gradient it reads (y = a + a @ b: add hands a and the product one gradient)", () => {
    const a = randomTensor([4, 4], 71), b = randomTensor([4, 4], 72), r = randomTensor([4, 4], 73, false);
    tidy(() => backward(R.sum(E.mul(E.add(a, matmul(a, b)), r))));
    // dL/da = r + r @ b^T, dL/db = a^T @ r.
    const [av, bv, rv] = [a, b, r].map((t) => Array.from(t.toArraySync()));
    const at = (m: number[], i: number, j: number) => m[i * 4 + j];
    const ga = Array.from({ length: 16 }, (_, k) => {
      const [i, j] = [Math.floor(k / 4), k % 4];
      return rv[k] + [0, 1, 2, 3].reduce((s, l) => s + at(rv, i, l) * at(bv, j, l), 0);
    });
    const gb = Array.from({ length: 16 }, (_, k) => {
      const [i, j] = [Math.floor(k / 4), k % 4];
      return [0, 1, 2, 3].reduce((s, l) => s + at(av, l, i) * at(rv, l, j), 0);
    });
    Array.from(a.grad!.toArraySync()).forEach((v, k) => expect(v).toBeCloseTo(ga[k], 5));
    Array.from(b.grad!.toArraySync()).forEach((v, k) => expect(v).toBeCloseTo(gb[k], 5));
  });

  it("records nothing under noGrad", () => {
    const x = randomTensor([3]);
    const y = noGrad(() => E.mulScalar(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
  });

  it("matches finite differences for elementwise, reduction and shape ops", () => {
    const a = randomTensor([2, 3, 4], 3);
    const b = randomTensor([3, 1], 5);
    const c = randomTensor([2, 3, 4], 7);
    const f = ([x, y, z]: ReturnType<typeof randomTensor>[]) => {
      const pos = E.addScalar(E.square(z), 0.5);
      const t = E.div(E.sub(E.mul(x, y), E.relu(z)), pos);
      const u = E.sqrt(E.addScalar(E.exp(E.mulScalar(t, 0.3)), 1));
      const v = S.concat([S.permute(u, [2, 0, 1]), S.narrow(S.permute(t, [2, 0, 1]), 1, 1, 1)], 1);
      const logs = E.log(E.clampMin(E.abs(v), 0.1));
      const w = E.add(E.add(R.mean(v, [1], true), R.max(v, 2, true).values), R.min(logs, 1, true).values);
      return R.sum(E.neg(w));
    };
    expect(gradCheck(f, [a, b, c], 1e-2)).toBeLessThan(2e-3);
  });

  it("frees every temporary of a step scope", () => {
    const x = randomTensor([4, 4]);
    const before = liveTensorCount();
    for (let i = 0; i < 5; i++) {
      tidy(() => {
        backward(R.sum(E.relu(E.mul(x, x))));
      });
      x.grad?.dispose();
      x.grad = null;
    }
    expect(liveTensorCount()).toBe(before);
  });
});
