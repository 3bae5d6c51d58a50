import { record } from "../autograd";
import { Tensor } from "../tensor";

function normDims(x: Tensor, dims?: number | readonly number[]): number[] {
  if (dims === undefined) return x.shape.map((_, i) => i);
  const list = typeof dims === "number" ? [dims] : [...dims];
  return list.map((d) => (d < 0 ? d + x.ndim : d));
}

function keptShape(x: Tensor, dims: number[]): number[] {
  return x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
}

/** Expands a reduced gradient back over the input shape, optionally scaled. */
function expandBack(g: Tensor, x: Tensor, dims: number[], scale: number): Tensor {
  const r = g.view(keptShape(x, dims));
  const e = r.wrap(r.ops.expand(r.handle, x.shape));
  r.dispose();
  if (scale === 1) return e;
  const s = e.wrap(e.ops.mulScalar(e.handle, scale));
  e.dispose();
  return s;
}

export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const d = normDims(x, dims);
  const out = x.wrap(x.ops.sum(x.handle, d, keepdim));
  return record("sum", out, [x], [], (g) => [expandBack(g, x, d, 1)]);
}

export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const d = normDims(x, dims);
  const out = x.wrap(x.ops.mean(x.handle, d, keepdim));
  const count = d.reduce((n, i) => n * x.shape[i], 1);
  return record("mean", out, [x], [], (g) => [expandBack(g, x, d, 1 / count)]);
}

function extreme(kind: "maxDim" | "minDim", x: Tensor, dim: number, keepdim: boolean): { values: Tensor; indices: Tensor } {
  const [v, i] = x.ops[kind](x.handle, dim, keepdim);
  const values = x.wrap(v);
  const indices = x.wrap(i);
  record(kind, values, [x], [indices], (g) => [g.wrap(g.ops.indexGradBackward(g.handle, indices.handle, x.shape, dim))]);
  return { values, indices };
}

export function max(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return extreme("maxDim", x, dim, keepdim);
}

export function min(x: Tensor, dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
  return extreme("minDim", x, dim, keepdim);
}
