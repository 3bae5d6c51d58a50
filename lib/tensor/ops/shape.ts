import { record } from "../autograd";
import { Tensor } from "../tensor";

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.numel / known : d));
  return record("reshape", x.view(resolved), [x], [], (g) => [g.view(x.shape)]);
}

export function flatten(x: Tensor, startDim = 1): Tensor {
  return reshape(x, [...x.shape.slice(0, startDim), -1]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const inverse = new Array<number>(dims.length);
  dims.forEach((d, i) => (inverse[d < 0 ? d + dims.length : d] = i));
  const out = x.wrap(x.ops.permute(x.handle, dims));
  return record("permute", out, [x], [], (g) => [g.wrap(g.ops.permute(g.handle, inverse))]);
}

/** Swaps two dimensions (torch.transpose). */
export function transpose(x: Tensor, d0 = 0, d1 = 1): Tensor {
  const dims = x.shape.map((_, i) => i);
  const a = d0 < 0 ? d0 + x.ndim : d0;
  const b = d1 < 0 ? d1 + x.ndim : d1;
  [dims[a], dims[b]] = [dims[b], dims[a]];
  return permute(x, dims);
}

export function concat(xs: readonly Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new RangeError("concat(): needs at least one tensor");
  const d = dim < 0 ? dim + xs[0].ndim : dim;
  const out = xs[0].wrap(xs[0].ops.concat(xs.map((t) => t.handle), d));
  return record("concat", out, xs, [], (g) => {
    let start = 0;
    return xs.map((t) => {
      const len = t.shape[d];
      const piece = t.requiresGrad ? g.wrap(g.ops.narrow(g.handle, d, start, len)) : null;
      start += len;
      return piece;
    });
  });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = dim < 0 ? dim + x.ndim : dim;
  const out = x.wrap(x.ops.narrow(x.handle, d, start, length));
  return record("narrow", out, [x], [], (g) => {
    // Pad the gradient with zeros on both sides along d.
    const parts: Tensor[] = [];
    const shapeWith = (n: number) => x.shape.map((s, i) => (i === d ? n : s));
    if (start > 0) parts.push(g.wrap(g.ops.full(shapeWith(start), 0)));
    parts.push(g);
    const rest = x.shape[d] - start - length;
    if (rest > 0) parts.push(g.wrap(g.ops.full(shapeWith(rest), 0)));
    if (parts.length === 1) return [g];
    const r = g.wrap(g.ops.concat(parts.map((p) => p.handle), d));
    for (const p of parts) if (p !== g) p.dispose();
    return [r];
  });
}

/** Splits x into equal chunks along dim (torch.chunk with an exact division). */
export function chunk(x: Tensor, n: number, dim = 0): Tensor[] {
  const d = dim < 0 ? dim + x.ndim : dim;
  const size = x.shape[d] / n;
  if (!Number.isInteger(size)) throw new RangeError(`chunk(): dimension of size ${x.shape[d]} does not split into ${n}`);
  return Array.from({ length: n }, (_, i) => narrow(x, d, i * size, size));
}
