import { record } from "../autograd";
import { Tensor } from "../tensor";
import { fakeQuantArgs, type Epilogue, type EpilogueOutput } from "./epilogue";
import { releaseInternal } from "./saved";

/** Reduces a broadcast gradient back to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const gs = g.shape;
  if (gs.length === shape.length && gs.every((d, i) => d === shape[i])) return g;
  const lead = gs.length - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < gs.length; i++) if (i < lead || (shape[i - lead] === 1 && gs[i] !== 1)) dims.push(i);
  const s = g.wrap(g.ops.sum(g.handle, dims, true));
  const out = s.view(shape);
  s.dispose();
  return out;
}

function binary(
  name: string,
  a: Tensor,
  b: Tensor,
  forward: "add" | "sub" | "mul" | "div",
  saved: readonly (Tensor | false)[],
  backward: (g: Tensor) => [Tensor | null, Tensor | null],
): Tensor {
  if (a.device !== b.device) throw new TypeError(`${name}(): tensors on ${a.device} and ${b.device}`);
  const out = a.wrap(a.ops[forward](a.handle, b.handle));
  return record(name, out, [a, b], saved, (g) => {
    const [ga, gb] = backward(g);
    const ra = ga && sumTo(ga, a.shape);
    const rb = gb && sumTo(gb, b.shape);
    if (ga && ra !== ga && ga !== g) ga.dispose();
    if (gb && rb !== gb && gb !== g) gb.dispose();
    return [ra, rb];
  });
}

export function add(a: Tensor, b: Tensor): Tensor {
  return binary("add", a, b, "add", [], (g) => [a.requiresGrad ? g : null, b.requiresGrad ? g : null]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return binary("sub", a, b, "sub", [], (g) => [a.requiresGrad ? g : null, b.requiresGrad ? g.wrap(g.ops.neg(g.handle)) : null]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return binary("mul", a, b, "mul", [a.requiresGrad && b, b.requiresGrad && a], (g) => [
    a.requiresGrad ? g.wrap(g.ops.mul(g.handle, b.handle)) : null,
    b.requiresGrad ? g.wrap(g.ops.mul(g.handle, a.handle)) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  return binary("div", a, b, "div", [b, b.requiresGrad && a], (g) => {
    const ga = a.requiresGrad ? g.wrap(g.ops.div(g.handle, b.handle)) : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      // d(a/b)/db = -a / b^2
      const b2 = g.wrap(g.ops.mul(b.handle, b.handle));
      const ab = g.wrap(g.ops.div(a.handle, b2.handle));
      const t = g.wrap(g.ops.mul(g.handle, ab.handle));
      gb = t.wrap(t.ops.neg(t.handle));
      for (const x of [b2, ab, t]) x.dispose();
    }
    return [ga, gb];
  });
}

export function addScalar(x: Tensor, s: number): Tensor {
  return record("addScalar", x.wrap(x.ops.addScalar(x.handle, s)), [x], [], (g) => [g]);
}

export function mulScalar(x: Tensor, s: number): Tensor {
  return record("mulScalar", x.wrap(x.ops.mulScalar(x.handle, s)), [x], [], (g) => [g.wrap(g.ops.mulScalar(g.handle, s))]);
}

export function neg(x: Tensor): Tensor {
  return record("neg", x.wrap(x.ops.neg(x.handle)), [x], [], (g) => [g.wrap(g.ops.neg(g.handle))]);
}

/**
 * relu(add(a, b)) in one pass, for same-shape a and b (a residual block's end), with the epilogue: the output's
 * [min, max] (float32 [2], no gradient) when asked for and computed, or the output fake-quantized (its backward fused).
 */
export function addRelu(a: Tensor, b: Tensor, epilogue: Epilogue = {}): EpilogueOutput {
  if (a.device !== b.device) throw new TypeError(`addRelu(): tensors on ${a.device} and ${b.device}`);
  const [y, r, mk] = a.ops.addRelu(a.handle, b.handle, epilogue.withRange ?? false, ...fakeQuantArgs(a, epilogue));
  const out = a.wrap(y);
  const mask = mk ? a.wrap(mk) : null;
  record(mask ? "addReluFakeQuant" : "addRelu", out, [a, b], [mask ?? out], (g) => {
    const gated = g.wrap(mask ? g.ops.fakeQuantBackward(g.handle, mask.handle) : g.ops.reluBackward(g.handle, out.handle));
    return [a.requiresGrad ? gated : null, b.requiresGrad ? gated : null];
  });
  return { y: mask ? releaseInternal(out, mask) : out, range: r ? a.wrap(r) : null, fakeQuantized: mask !== null };
}

export function relu(x: Tensor): Tensor {
  const out = x.wrap(x.ops.relu(x.handle));
  return record("relu", out, [x], [out], (g) => [g.wrap(g.ops.reluBackward(g.handle, out.handle))]);
}

export function exp(x: Tensor): Tensor {
  const out = x.wrap(x.ops.exp(x.handle));
  return record("exp", out, [x], [out], (g) => [g.wrap(g.ops.mul(g.handle, out.handle))]);
}

export function log(x: Tensor): Tensor {
  return record("log", x.wrap(x.ops.log(x.handle)), [x], [x], (g) => [g.wrap(g.ops.div(g.handle, x.handle))]);
}

export function sqrt(x: Tensor): Tensor {
  const out = x.wrap(x.ops.sqrt(x.handle));
  return record("sqrt", out, [x], [out], (g) => {
    const d = g.wrap(g.ops.div(g.handle, out.handle));
    const r = d.wrap(d.ops.mulScalar(d.handle, 0.5));
    d.dispose();
    return [r];
  });
}

export function square(x: Tensor): Tensor {
  return record("square", x.wrap(x.ops.powScalar(x.handle, 2)), [x], [x], (g) => {
    const d = g.wrap(g.ops.mul(g.handle, x.handle));
    const r = d.wrap(d.ops.mulScalar(d.handle, 2));
    d.dispose();
    return [r];
  });
}

export function clampMin(x: Tensor, min: number): Tensor {
  return record("clampMin", x.wrap(x.ops.clampMin(x.handle, min)), [x], [x], (g) => [
    g.wrap(g.ops.clampMinBackward(g.handle, x.handle, min)),
  ]);
}

export function abs(x: Tensor): Tensor {
  return record("abs", x.wrap(x.ops.abs(x.handle)), [x], [x], (g) => [g.wrap(g.ops.absBackward(g.handle, x.handle))]);
}
