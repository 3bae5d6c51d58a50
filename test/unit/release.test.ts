import { describe, expect, it } from "vitest";
import { backward, record, setLeafGradHook } from "../../lib/tensor/autograd";
import { cpuOps } from "../../lib/tensor/binding";
import * as E from "../../lib/tensor/ops/elementwise";
import * as R from "../../lib/tensor/ops/reduce";
import { freeTemporaries, keepTemporaries, tidy } from "../../lib/tensor/scope";
import { liveTensorCount, parameter, tensor, type Tensor } from "../../lib/tensor/tensor";

/** Early freeing: release(), freeTemporaries() and the tape freeing saved tensors once their backward has run. */

const bytes = () => cpuOps().memoryStats().bytes;
const leaf = (values: number[]) => parameter(tensor(values, [values.length]));

describe("Tensor.release", () => {
  it("frees a tensor no backward reads at once; using it then is an error, not a crash", () => {
    const x = leaf([1, 2, 3]);
    tidy(() => {
      const y = E.addScalar(x, 1);
      const before = bytes();
      y.release();
      expect(bytes()).toBe(before - 12);
      expect(y.disposed).toBe(true);
      expect(y.shape).toEqual([3]);
      expect(() => y.toArraySync()).toThrow(/disposed/);
      expect(() => E.mul(y, y)).toThrow(/disposed/);
    });
    x.dispose();
  });

  it("keeps a released tensor that a backward reads until that backward has run, and gradients still flow through it", () => {
    const x = leaf([1, -2, 3]);
    tidy(() => {
      const r = E.relu(x); // relu's backward reads its output
      const loss = R.sum(E.mulScalar(r, 2));
      r.release();
      expect(r.disposed).toBe(false);
      const live = liveTensorCount();
      backward(loss);
      expect(r.disposed).toBe(true);
      expect(liveTensorCount()).toBe(live); // r went; x.grad came
    });
    expect(Array.from(x.grad!.toArraySync())).toEqual([2, 0, 2]);
    x.grad!.dispose();
    x.dispose();
  });

  it("leaves unreleased saved tensors alone (the caller may still read them)", () => {
    const x = leaf([1, 2]);
    tidy(() => {
      const r = E.relu(x);
      backward(R.sum(r));
      expect(Array.from(r.toArraySync())).toEqual([1, 2]);
    });
    x.grad!.dispose();
    x.dispose();
  });

  it("is deferred to the step scope's end under keepTemporaries", () => {
    const x = leaf([1, 2]);
    tidy(() =>
      keepTemporaries(() => {
        const y = E.addScalar(x, 1);
        y.release();
        expect(y.disposed).toBe(false);
        const r = E.relu(x);
        const loss = R.sum(r);
        r.release();
        backward(loss);
        expect(r.disposed).toBe(false);
      }),
    );
    x.grad!.dispose();
    x.dispose();
  });
});

describe("freeTemporaries", () => {
  it("returns what fn returns, frees the rest at once unless a backward reads it, and leaves nothing after backward", () => {
    const x = leaf([0.5, -1, 2]);
    const live = liveTensorCount();
    const b0 = bytes();
    tidy(() => {
      let relued: Tensor | null = null;
      let shifted: Tensor | null = null;
      const out = freeTemporaries(() => {
        shifted = E.addScalar(x, 1); // read by nobody's backward: freed when the scope ends
        relued = E.relu(shifted); // read by relu's backward: lives until it
        return E.mul(relued, x);
      });
      expect(shifted!.disposed).toBe(true);
      expect(relued!.disposed).toBe(false);
      // out and relued are live
      expect(liveTensorCount()).toBe(live + 2);
      const loss = R.sum(out);
      backward(loss);
      expect(relued!.disposed).toBe(true);
      // x.grad, out and loss (returned by nothing, freed by tidy)
      expect(liveTensorCount()).toBe(live + 3);
    });
    // d/dx sum(relu(x + 1) * x) = relu(x+1) + x * [x + 1 > 0]
    expect(Array.from(x.grad!.toArraySync())).toEqual([2, 0, 5]);
    x.grad!.dispose();
    x.grad = null;
    expect([liveTensorCount(), bytes()]).toEqual([live, b0]);
    x.dispose();
  });

  it("releases its temporaries when fn throws", () => {
    const x = leaf([1, 2]);
    const live = liveTensorCount();
    let t: Tensor | null = null;
    expect(() =>
      freeTemporaries(() => {
        t = E.addScalar(x, 1);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(t!.disposed).toBe(true);
    expect(liveTensorCount()).toBe(live);
    x.dispose();
  });

  it("refuses an async fn, in tidy too, and frees what it made before its first await", () => {
    const x = leaf([1, 2]);
    const live = liveTensorCount();
    for (const scope of [tidy, freeTemporaries] as const) {
      let t: Tensor | null = null;
      expect(() =>
        scope(async () => {
          t = E.addScalar(x, 1);
          return t;
        }),
      ).toThrow(/must be synchronous/);
      expect(t!.disposed).toBe(true);
      expect(liveTensorCount()).toBe(live);
    }
    x.dispose();
  });
});

describe("backward frees the graph as it goes", () => {
  it("disposes the temporaries a backward function makes and does not return", () => {
    const x = leaf([1, 2]);
    const live = liveTensorCount();
    tidy(() => {
      const y = record("leaky", E.mulScalar(x, 1), [x], [], (g) => {
        E.mulScalar(g, 10); // a temporary left behind
        return [g.wrap(g.ops.mulScalar(g.handle, 3))];
      });
      const loss = R.sum(y);
      backward(loss);
      expect(liveTensorCount()).toBe(live + 3); // y, loss, x.grad
    });
    expect(Array.from(x.grad!.toArraySync())).toEqual([3, 3]);
    x.grad!.dispose();
    x.grad = null;
    expect(liveTensorCount()).toBe(live);
    x.dispose();
  });

  it("refuses a second backward through freed buffers with a clear error, and allows it with retainGraph", () => {
    const x = leaf([1, 3]);
    tidy(() => {
      const loss = freeTemporaries(() => R.sum(E.relu(E.mulScalar(x, 2))));
      backward(loss, undefined, { retainGraph: true });
      backward(loss);
      expect(() => backward(loss)).toThrow(/already back-propagated.*retainGraph/);
    });
    expect(Array.from(x.grad!.toArraySync())).toEqual([4, 4]);
    x.grad!.dispose();
    x.dispose();
  });

  it("names the op when a tensor its backward reads was disposed", () => {
    const x = leaf([1, 3]);
    tidy(() => {
      const shifted = E.addScalar(x, 1);
      const loss = R.sum(E.mul(x, shifted));
      shifted.dispose();
      expect(() => backward(loss)).toThrow(/backward of mul reads was disposed/);
    });
    x.dispose();
  });

  it("keeps the order in which leaf gradients become ready", () => {
    const order = (free: boolean) => {
      const a = leaf([1]);
      const b = leaf([2]);
      const c = leaf([3]);
      const seen: Tensor[] = [];
      const prev = setLeafGradHook((t) => seen.push(t));
      try {
        const run = () => tidy(() => backward(freeTemporaries(() => R.sum(E.add(E.mul(E.relu(a), b), E.mul(c, E.mulScalar(a, 2)))))));
        if (free) run();
        else keepTemporaries(run);
      } finally {
        setLeafGradHook(prev);
      }
      const names = seen.map((t) => (t === a ? "a" : t === b ? "b" : "c"));
      for (const t of [a, b, c]) {
        t.grad?.dispose();
        t.dispose();
      }
      return names;
    };
    const eager = order(true);
    expect(eager).toHaveLength(3);
    expect(eager).toEqual(order(false));
  });
});
