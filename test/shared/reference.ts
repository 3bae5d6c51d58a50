/**
 * Plain-JavaScript references for the shared op cases: naive loops in float64 over float32 inputs, written from
 * the op definitions (PyTorch semantics as documented in lib/tensor/native/*.ts), independent of both addons.
 */

export type Shape = readonly number[];

export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);

export function strides(s: Shape): number[] {
  const st = new Array<number>(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1] * s[i + 1];
  return st;
}

/** Output shape of NumPy broadcasting, and a function mapping an output index to both operands' indices. */
export function broadcast(a: Shape, b: Shape): { shape: number[]; index(i: number): [number, number] } {
  const n = Math.max(a.length, b.length);
  const pa = [...new Array(n - a.length).fill(1), ...a];
  const pb = [...new Array(n - b.length).fill(1), ...b];
  const shape = pa.map((d, i) => (d === 1 ? pb[i] : d));
  const sa = strides(pa), sb = strides(pb), so = strides(shape);
  return {
    shape,
    index(i) {
      let ia = 0, ib = 0;
      for (let d = 0; d < n; d++) {
        const c = Math.floor(i / so[d]) % shape[d];
        if (pa[d] !== 1) ia += c * sa[d];
        if (pb[d] !== 1) ib += c * sb[d];
      }
      return [ia, ib];
    },
  };
}

export function binaryRef(a: ArrayLike<number>, as: Shape, b: ArrayLike<number>, bs: Shape, f: (x: number, y: number) => number): Float64Array {
  const bc = broadcast(as, bs);
  const out = new Float64Array(numel(bc.shape));
  for (let i = 0; i < out.length; i++) {
    const [ia, ib] = bc.index(i);
    out[i] = f(a[ia], b[ib]);
  }
  return out;
}

/** Sum (or mean) over `dims` (all when empty) of x with shape s. */
export function reduceRef(x: ArrayLike<number>, s: Shape, dims: readonly number[], mean: boolean): Float64Array {
  const red = s.map((_, i) => dims.length === 0 || dims.some((d) => (d < 0 ? d + s.length : d) === i));
  const keptShape = s.filter((_, i) => !red[i]);
  const out = new Float64Array(numel(keptShape));
  const so = strides(keptShape), sx = strides(s);
  for (let i = 0; i < x.length; i++) {
    let o = 0, k = 0;
    for (let d = 0; d < s.length; d++) {
      const c = Math.floor(i / sx[d]) % s[d];
      if (!red[d]) o += c * so[k++];
    }
    out[o] += x[i];
  }
  if (mean) {
    const count = x.length / Math.max(out.length, 1);
    for (let o = 0; o < out.length; o++) out[o] /= count;
  }
  return out;
}

/** max/min along dim with the first extreme's index (no NaN in the inputs used). */
export function argExtremeRef(x: ArrayLike<number>, s: Shape, dim: number, isMax: boolean): [Float64Array, Int32Array] {
  const k = dim < 0 ? dim + s.length : dim;
  const len = s[k];
  const outer = numel(s.slice(0, k)), inner = numel(s.slice(k + 1));
  const vals = new Float64Array(outer * inner), idx = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < inner; j++) {
      let best = x[o * len * inner + j], bi = 0;
      for (let l = 1; l < len; l++) {
        const v = x[(o * len + l) * inner + j];
        if (isMax ? v > best : v < best) {
          best = v;
          bi = l;
        }
      }
      vals[o * inner + j] = best;
      idx[o * inner + j] = bi;
    }
  return [vals, idx];
}

export function indexGradRef(g: ArrayLike<number>, idx: ArrayLike<number>, s: Shape, dim: number): Float64Array {
  const k = dim < 0 ? dim + s.length : dim;
  const len = s[k], inner = numel(s.slice(k + 1)), outer = numel(s.slice(0, k));
  const out = new Float64Array(numel(s));
  for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) out[(o * len + idx[o * inner + j]) * inner + j] = g[o * inner + j];
  return out;
}

export function permuteRef(x: ArrayLike<number>, s: Shape, perm: readonly number[]): Float64Array {
  const os = perm.map((p) => s[p]);
  const sx = strides(s), so = strides(os);
  const out = new Float64Array(x.length);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let d = 0; d < os.length; d++) off += (Math.floor(o / so[d]) % os[d]) * sx[perm[d]];
    out[o] = x[off];
  }
  return out;
}

export function concatRef(xs: readonly { data: ArrayLike<number>; shape: Shape }[], dim: number): Float64Array {
  const outer = numel(xs[0].shape.slice(0, dim));
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (const t of xs) {
      const chunk = numel(t.shape.slice(dim));
      for (let i = 0; i < chunk; i++) out.push(t.data[o * chunk + i]);
    }
  return Float64Array.from(out);
}

export function narrowRef(x: ArrayLike<number>, s: Shape, dim: number, start: number, length: number): Float64Array {
  const outer = numel(s.slice(0, dim)), inner = numel(s.slice(dim + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let l = start; l < start + length; l++) for (let i = 0; i < inner; i++) out.push(x[(o * s[dim] + l) * inner + i]);
  return Float64Array.from(out);
}

export interface ConvParams {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

export function convOutShape(xs: Shape, ws: Shape, p: ConvParams): number[] {
  const oh = Math.floor((xs[2] + 2 * p.padding[0] - p.dilation[0] * (ws[2] - 1) - 1) / p.stride[0]) + 1;
  const ow = Math.floor((xs[3] + 2 * p.padding[1] - p.dilation[1] * (ws[3] - 1) - 1) / p.stride[1]) + 1;
  return [xs[0], ws[0], oh, ow];
}

/** Calls f(n, o, oy, ox, c, ky, kx, iy, ix) for every (output, tap) pair whose input position lies inside x. */
function forEachTap(xs: Shape, ws: Shape, p: ConvParams, f: (xi: number, wi: number, yi: number) => void): void {
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  const [, , OH, OW] = convOutShape(xs, ws, p);
  const Og = O / p.groups;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          const yi = ((n * O + o) * OH + oy) * OW + ox;
          for (let cg = 0; cg < Cg; cg++) {
            const c = g * Cg + cg;
            for (let ky = 0; ky < KH; ky++) {
              const iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              if (iy < 0 || iy >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
                if (ix < 0 || ix >= W) continue;
                f(((n * C + c) * H + iy) * W + ix, ((o * Cg + cg) * KH + ky) * KW + kx, yi);
              }
            }
          }
        }
    }
}

export function conv2dRef(x: ArrayLike<number>, xs: Shape, w: ArrayLike<number>, ws: Shape, b: ArrayLike<number> | null, p: ConvParams): Float64Array {
  const ys = convOutShape(xs, ws, p);
  const y = new Float64Array(numel(ys));
  forEachTap(xs, ws, p, (xi, wi, yi) => (y[yi] += x[xi] * w[wi]));
  if (b) for (let i = 0; i < y.length; i++) y[i] += b[Math.floor(i / (ys[2] * ys[3])) % ys[1]];
  return y;
}

export function conv2dBackwardRef(gy: ArrayLike<number>, x: ArrayLike<number>, xs: Shape, w: ArrayLike<number>, ws: Shape, p: ConvParams) {
  const ys = convOutShape(xs, ws, p);
  const dx = new Float64Array(numel(xs)), dw = new Float64Array(numel(ws)), db = new Float64Array(ws[0]);
  forEachTap(xs, ws, p, (xi, wi, yi) => {
    dx[xi] += gy[yi] * w[wi];
    dw[wi] += gy[yi] * x[xi];
  });
  for (let i = 0; i < gy.length; i++) db[Math.floor(i / (ys[2] * ys[3])) % ys[1]] += gy[i];
  return { dx, dw, db };
}

/** Batch norm as torch.nn.functional.batch_norm, plus what the op returns for backward (mean, invStd). */
export function batchNormRef(
  x: ArrayLike<number>, xs: Shape, weight: ArrayLike<number> | null, bias: ArrayLike<number> | null,
  runMean: ArrayLike<number> | null, runVar: ArrayLike<number> | null, training: boolean, momentum: number, eps: number,
) {
  const [N, C] = xs;
  const S = xs.length === 4 ? xs[2] * xs[3] : 1;
  const M = N * S;
  const at = (n: number, c: number, s: number) => (n * C + c) * S + s;
  const mean = new Float64Array(C), invStd = new Float64Array(C), y = new Float64Array(x.length);
  const newMean = runMean ? Float64Array.from(runMean) : null, newVar = runVar ? Float64Array.from(runVar) : null;
  for (let c = 0; c < C; c++) {
    let mu: number, v: number;
    if (training) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < S; k++) s += x[at(n, c, k)];
      mu = s / M;
      let q = 0;
      for (let n = 0; n < N; n++) for (let k = 0; k < S; k++) q += (x[at(n, c, k)] - mu) ** 2;
      v = q / M;
      if (newMean && newVar) {
        newMean[c] = (1 - momentum) * newMean[c] + momentum * mu;
        newVar[c] = (1 - momentum) * newVar[c] + (momentum * q) / (M - 1);
      }
    } else {
      mu = runMean![c];
      v = runVar![c];
    }
    mean[c] = mu;
    invStd[c] = 1 / Math.sqrt(v + eps);
    for (let n = 0; n < N; n++)
      for (let k = 0; k < S; k++) {
        const i = at(n, c, k);
        y[i] = (x[i] - mu) * invStd[c] * (weight ? weight[c] : 1) + (bias ? bias[c] : 0);
      }
  }
  return { y, mean, invStd, runningMean: newMean, runningVar: newVar };
}

export function batchNormBackwardRef(
  gy: ArrayLike<number>, x: ArrayLike<number>, xs: Shape, weight: ArrayLike<number> | null, mean: ArrayLike<number>,
  invStd: ArrayLike<number>, training: boolean,
) {
  const [N, C] = xs;
  const S = xs.length === 4 ? xs[2] * xs[3] : 1;
  const M = N * S;
  const at = (n: number, c: number, s: number) => (n * C + c) * S + s;
  const dx = new Float64Array(x.length), dw = new Float64Array(C), db = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let sg = 0, sgx = 0;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < S; k++) {
        const i = at(n, c, k);
        sg += gy[i];
        sgx += gy[i] * (x[i] - mean[c]) * invStd[c];
      }
    dw[c] = sgx;
    db[c] = sg;
    const w = weight ? weight[c] : 1;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < S; k++) {
        const i = at(n, c, k);
        const xhat = (x[i] - mean[c]) * invStd[c];
        dx[i] = training ? (w * invStd[c] * (M * gy[i] - sg - xhat * sgx)) / M : gy[i] * w * invStd[c];
      }
  }
  return { dx, dw, db };
}

export function matmulRef(a: ArrayLike<number>, as: Shape, b: ArrayLike<number>, bs: Shape, ta: boolean, tb: boolean): Float64Array {
  const M = ta ? as[1] : as[0], K = ta ? as[0] : as[1], N = tb ? bs[0] : bs[1];
  const A = (i: number, k: number) => (ta ? a[k * as[1] + i] : a[i * as[1] + k]);
  const B = (k: number, j: number) => (tb ? b[j * bs[1] + k] : b[k * bs[1] + j]);
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A(i, k) * B(k, j);
      out[i * N + j] = s;
    }
  return out;
}

export function maxPool2dRef(x: ArrayLike<number>, xs: Shape, k: [number, number], s: [number, number], p: [number, number]) {
  const [N, C, H, W] = xs;
  const OH = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1, OW = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  const y = new Float64Array(N * C * OH * OW), idx = new Int32Array(y.length);
  for (let pl = 0; pl < N * C; pl++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        let best = -Infinity, bi = -1;
        for (let ky = 0; ky < k[0]; ky++)
          for (let kx = 0; kx < k[1]; kx++) {
            const iy = oy * s[0] - p[0] + ky, ix = ox * s[1] - p[1] + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const v = x[pl * H * W + iy * W + ix];
            if (v > best) {
              best = v;
              bi = iy * W + ix;
            }
          }
        const o = (pl * OH + oy) * OW + ox;
        y[o] = best;
        idx[o] = bi;
      }
  return { y, idx, shape: [N, C, OH, OW] };
}

export function maxPool2dBackwardRef(gy: ArrayLike<number>, idx: ArrayLike<number>, xs: Shape, outPlane: number): Float64Array {
  const inPlane = xs[2] * xs[3];
  const dx = new Float64Array(numel(xs));
  for (let o = 0; o < gy.length; o++) dx[Math.floor(o / outPlane) * inPlane + idx[o]] += gy[o];
  return dx;
}

export function logSoftmaxRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    const lse = m + Math.log(s);
    for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] - lse;
  }
  return y;
}

export function logSoftmaxBackwardRef(gy: ArrayLike<number>, y: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += gy[r * cols + c];
    for (let c = 0; c < cols; c++) dx[r * cols + c] = gy[r * cols + c] - Math.exp(y[r * cols + c]) * s;
  }
  return dx;
}

export function crossEntropyRef(x: ArrayLike<number>, target: ArrayLike<number>, rows: number, cols: number, ls: number) {
  const lp = logSoftmaxRef(x, rows, cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let row = 0;
    for (let c = 0; c < cols; c++) row += lp[r * cols + c];
    total += -(1 - ls) * lp[r * cols + target[r]] - (ls / cols) * row;
  }
  const dx = (g: number) => {
    const out = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++)
        out[r * cols + c] = (g / rows) * (Math.exp(lp[r * cols + c]) - (c === target[r] ? 1 - ls : 0) - ls / cols);
    return out;
  };
  return { loss: total / rows, logProbs: lp, dx };
}

export function topkCorrectRef(x: ArrayLike<number>, target: ArrayLike<number>, rows: number, cols: number, ks: readonly number[]): Int32Array {
  const out = new Int32Array(ks.length);
  for (let r = 0; r < rows; r++) {
    const v = x[r * cols + target[r]];
    let rank = 0;
    for (let c = 0; c < cols; c++) {
      const u = x[r * cols + c];
      if (u > v || (u === v && c < target[r])) rank++;
    }
    ks.forEach((k, j) => {
      if (rank < k) out[j]++;
    });
  }
  return out;
}

// ---- Philox-4x32-10 (Random123), the recipe of nn.ts / native/cpu/random.cc

function mulhilo(a: number, b: number): [number, number] {
  const aH = a >>> 16, aL = a & 0xffff, bH = b >>> 16, bL = b & 0xffff;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const lo = (((mid & 0xffff) << 16) | (ll & 0xffff)) >>> 0;
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [hi, lo];
}

/** One Philox-4x32-10 block for a 128-bit counter and 64-bit key given as 32-bit words. */
export function philox4x32(ctr: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let round = 0; round < 10; round++) {
    if (round) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

const TWO32 = 4294967296;
const words = (v: number): [number, number] => [v % TWO32, Math.floor(v / TWO32)];

function philoxLanes(n: number, seed: number, offset: number, f: (i: number, lanes: number[]) => void): void {
  for (let g = 0; g * 4 < n; g++) {
    const [c0, c1] = words(offset + g);
    f(g * 4, philox4x32([c0, c1, 0, 0], words(seed)));
  }
}

const unit = (x: number) => (x >>> 8) / 16777216;

export function uniformRef(n: number, low: number, high: number, seed: number, offset: number): Float32Array {
  const out = new Float32Array(n);
  philoxLanes(n, seed, offset, (i, x) => {
    for (let l = 0; l < 4 && i + l < n; l++) out[i + l] = low + (high - low) * unit(x[l]);
  });
  return out;
}

export function normalRef(n: number, mean: number, std: number, seed: number, offset: number): Float32Array {
  const out = new Float32Array(n);
  philoxLanes(n, seed, offset, (i, x) => {
    for (let pair = 0; pair < 2; pair++) {
      const u1 = ((x[2 * pair] >>> 8) + 1) / 16777216;
      const u2 = unit(x[2 * pair + 1]);
      const r = Math.sqrt(-2 * Math.log(u1));
      const e = i + 2 * pair;
      if (e < n) out[e] = mean + std * (r * Math.cos(2 * Math.PI * u2));
      if (e + 1 < n) out[e + 1] = mean + std * (r * Math.sin(2 * Math.PI * u2));
    }
  });
  return out;
}

/** torch.optim.SGD's update for one step; returns the new parameter and momentum buffer. */
export function sgdRef(
  p: ArrayLike<number>, g: ArrayLike<number>, buf: ArrayLike<number> | null,
  o: { lr: number; momentum: number; weightDecay: number; dampening: number; nesterov: boolean; initBuf: boolean },
) {
  const np = Float64Array.from(p), nb = buf ? Float64Array.from(buf) : null;
  for (let i = 0; i < np.length; i++) {
    let d = g[i];
    if (o.weightDecay !== 0) d += o.weightDecay * p[i];
    if (o.momentum > 0 && nb) {
      const b = o.initBuf ? d : o.momentum * nb[i] + (1 - o.dampening) * d;
      nb[i] = b;
      d = o.nesterov ? d + o.momentum * b : b;
    }
    np[i] -= o.lr * d;
  }
  return { p: np, buf: nb };
}
