/**
 * One suite of op cases for every backend: each case builds its inputs, calls ops through the DeviceOps it is
 * given, and returns named outputs (forward results and gradients from the backward ops). Each case also has an
 * independent plain-JavaScript reference (reference.ts). The CPU addon runs them under vitest
 * (test/native/op-cases.test.ts); CUDA runs them against the CPU and the references (test/gpu/).
 */
import type { AnyTypedArray, DeviceOps, NativeTensor } from "../../lib/tensor/native";
import type { CoreOps, ElementwiseOps, ReduceShapeOps } from "../../lib/tensor/native/core";
import type { NnOps } from "../../lib/tensor/native/nn";
import * as R from "./reference";

export type OpName = keyof CoreOps | keyof ElementwiseOps | keyof ReduceShapeOps | keyof NnOps;
export type Outputs = Record<string, ArrayLike<number>>;

export interface OpCase {
  readonly name: string;
  /** The DeviceOps members this case calls. */
  readonly ops: readonly OpName[];
  /** Runs the ops and reads every output back; frees every tensor it made. */
  run(ops: DeviceOps): Promise<Outputs>;
  /** The same outputs computed independently (float64 JavaScript); integer outputs as Int32Array. */
  reference(): Outputs;
  /** Largest normalized error allowed against the reference (default 1e-5). */
  readonly tolerance?: number;
}

/** Every op of core.ts and nn.ts; the type below fails to compile when one is missing. */
export const allOpNames = [
  "fromArray", "toArray", "toArrayAsync", "item", "full", "shape", "dtype", "reshape", "clone", "copy_", "toFloat",
  "dispose", "isDisposed", "memoryStats", "resetPeakMemoryStats", "setNumThreads", "getNumThreads",
  "add", "sub", "mul", "div", "maximum", "addRelu", "addScalar", "mulScalar", "powScalar", "clampMin", "neg", "exp", "log",
  "sqrt", "abs", "relu", "reluBackward", "absBackward", "clampMinBackward", "clampMax", "clampMaxBackward", "sigmoid",
  "sigmoidBackward", "floor", "addScaled_", "mulScalar_", "fill_", "expand",
  "sum", "mean", "maxDim", "minDim", "indexGradBackward", "permute", "concat", "narrow",
  "conv2d", "conv2dBackwardData", "conv2dBackwardWeight", "batchNorm", "batchNormBackward", "matmul", "linear",
  "maxPool2d", "maxPool2dBackward", "logSoftmax", "logSoftmaxBackward", "crossEntropy", "crossEntropyBackward",
  "topkCorrect", "uniform", "normal", "sgdStep_", "backendInfo",
] as const satisfies readonly OpName[];
type Missing = Exclude<OpName, (typeof allOpNames)[number]>;
const everyOpListed: [Missing] extends [never] ? true : Missing = true;
void everyOpListed;

/** Deterministic values in [lo, hi) (xorshift32), as float32. */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/** Tensors made in one case, freed together. */
class Session {
  private readonly made: NativeTensor[] = [];
  constructor(readonly ops: DeviceOps) {}
  own<T extends NativeTensor | null>(h: T): T {
    if (h) this.made.push(h);
    return h;
  }
  t(data: AnyTypedArray, shape: readonly number[]): NativeTensor {
    return this.own(this.ops.fromArray(data, shape));
  }
  read(h: NativeTensor): AnyTypedArray {
    return this.ops.toArray(h);
  }
  free(): void {
    for (const h of this.made) if (!this.ops.isDisposed(h)) this.ops.dispose(h);
  }
}

function session(ops: DeviceOps, body: (s: Session) => Outputs | Promise<Outputs>): Promise<Outputs> {
  const s = new Session(ops);
  return Promise.resolve()
    .then(() => body(s))
    .finally(() => s.free());
}

// ---------------------------------------------------------------------------------------------- core ops

const transferCase: OpCase = {
  name: "transfer, creation and views",
  ops: ["fromArray", "toArray", "toArrayAsync", "item", "full", "shape", "dtype", "reshape", "clone", "copy_", "toFloat"],
  run: (ops) =>
    session(ops, async (s) => {
      const x = s.t(rand(6, 1), [2, 3]);
      const u8 = s.t(Uint8Array.from([0, 1, 255, 7]), [4]);
      const i32 = s.t(Int32Array.from([-5, 0, 7, 123456]), [2, 2]);
      const r = s.own(ops.reshape(x, [3, 2]));
      const dst = s.own(ops.full([3, 2], 0));
      ops.copy_(dst, r);
      const codes = ["float32", "uint8", "int32"];
      return {
        back: s.read(x),
        async: await ops.toArrayAsync(x),
        asyncI32: await ops.toArrayAsync(i32),
        item: [ops.item(s.t(Float32Array.of(3.5), [1])), ops.item(s.t(Int32Array.of(-9), []))],
        fullF32: s.read(s.own(ops.full([2, 2], 1.5))),
        fullU8: s.read(s.own(ops.full([3], 7, "uint8"))),
        fullI32: s.read(s.own(ops.full([2], -3, "int32"))),
        shape: Int32Array.from(ops.shape(r)),
        dtypes: Int32Array.from([x, u8, i32].map((h) => codes.indexOf(ops.dtype(h)))),
        reshaped: s.read(r),
        clone: s.read(s.own(ops.clone(x))),
        copied: s.read(dst),
        u8Back: s.read(u8),
        i32Back: s.read(i32),
        u8Float: s.read(s.own(ops.toFloat(u8))),
        i32Float: s.read(s.own(ops.toFloat(i32))),
        f32Float: s.read(s.own(ops.toFloat(x))),
      };
    }),
  reference: () => {
    const x = rand(6, 1);
    return {
      back: x, async: x, asyncI32: Int32Array.from([-5, 0, 7, 123456]), item: [3.5, -9],
      fullF32: [1.5, 1.5, 1.5, 1.5], fullU8: Int32Array.from([7, 7, 7]), fullI32: Int32Array.from([-3, -3]),
      shape: Int32Array.from([3, 2]), dtypes: Int32Array.from([0, 1, 2]), reshaped: x, clone: x, copied: x,
      u8Back: Int32Array.from([0, 1, 255, 7]), i32Back: Int32Array.from([-5, 0, 7, 123456]),
      u8Float: [0, 1, 255, 7], i32Float: [-5, 0, 7, 123456], f32Float: x,
    };
  },
};

const lifecycleCase: OpCase = {
  name: "lifecycle, memory statistics and backend info",
  ops: ["dispose", "isDisposed", "memoryStats", "resetPeakMemoryStats", "setNumThreads", "getNumThreads", "backendInfo"],
  run: (ops) =>
    session(ops, (s) => {
      ops.resetPeakMemoryStats();
      const before = ops.memoryStats();
      const h = s.t(rand(10, 2), [10]);
      const during = ops.memoryStats();
      const disposedBefore = ops.isDisposed(h);
      ops.dispose(h);
      const after = ops.memoryStats();
      ops.resetPeakMemoryStats();
      const reset = ops.memoryStats();
      const threads = ops.getNumThreads();
      ops.setNumThreads(threads);
      const info = ops.backendInfo();
      return {
        counts: Int32Array.from([
          during.storages - before.storages, during.bytes - before.bytes, after.storages - before.storages,
          disposedBefore ? 1 : 0, ops.isDisposed(h) ? 1 : 0, threads >= 1 ? 1 : 0,
          typeof info === "object" && info !== null ? 1 : 0,
        ]),
        // The peak rises with the allocation (CUDA: by its rounded block), holds after the free, and a reset
        // brings it back to what is live now.
        peak: Int32Array.from([
          during.peakBytes - before.peakBytes >= 40 ? 1 : 0, after.peakBytes === during.peakBytes ? 1 : 0,
          reset.peakBytes < after.peakBytes ? 1 : 0,
        ]),
      };
    }),
  reference: () => ({ counts: Int32Array.from([1, 40, 0, 0, 1, 1, 1]), peak: Int32Array.from([1, 1, 1]) }),
};

// ---------------------------------------------------------------------------------------------- elementwise

const addReluCase: OpCase = {
  name: "addRelu (a residual block's add and ReLU in one pass)",
  ops: ["addRelu"],
  run: (ops) =>
    session(ops, (s) => {
      const a = s.t(rand(4 * 8 * 33, 80), [4, 8, 33]), b = s.t(rand(4 * 8 * 33, 81), [4, 8, 33]);
      const [y, range] = ops.addRelu(a, b, false).map((h) => s.own(h));
      return { y: s.read(y!), rangeUnasked: [range === null ? 0 : 1] };
    }),
  reference: () => ({
    y: R.binaryRef(rand(4 * 8 * 33, 80), [4, 8, 33], rand(4 * 8 * 33, 81), [4, 8, 33], (x, y) => Math.max(x + y, 0)),
    rangeUnasked: [0],
  }),
};

const binaryCase: OpCase = {
  name: "broadcasting binary ops",
  ops: ["add", "sub", "mul", "div", "maximum"],
  run: (ops) =>
    session(ops, (s) => {
      const a = s.t(rand(24, 3), [2, 3, 4]);
      const b = s.t(rand(3, 4, 0.5, 1.5), [3, 1]);
      const c = s.t(rand(24, 5), [2, 3, 4]);
      const d = s.t(rand(8, 6), [2, 1, 4]);
      const e = s.t(rand(4, 7), [4]);
      const big = s.t(rand(64 * 3 * 33, 8), [64, 3, 33]);
      const row = s.t(rand(33, 9), [33]);
      return {
        add: s.read(s.own(ops.add(a, b))),
        sub: s.read(s.own(ops.sub(b, a))),
        mul: s.read(s.own(ops.mul(a, b))),
        div: s.read(s.own(ops.div(a, b))),
        maximum: s.read(s.own(ops.maximum(a, c))),
        same: s.read(s.own(ops.add(a, c))),
        both: s.read(s.own(ops.mul(d, b))),
        trailing: s.read(s.own(ops.sub(a, e))),
        bigRow: s.read(s.own(ops.add(big, row))),
      };
    }),
  reference: () => {
    const a = rand(24, 3), b = rand(3, 4, 0.5, 1.5), c = rand(24, 5), d = rand(8, 6), e = rand(4, 7);
    const big = rand(64 * 3 * 33, 8), row = rand(33, 9);
    const sa = [2, 3, 4], sb = [3, 1];
    return {
      add: R.binaryRef(a, sa, b, sb, (x, y) => x + y),
      sub: R.binaryRef(b, sb, a, sa, (x, y) => x - y),
      mul: R.binaryRef(a, sa, b, sb, (x, y) => x * y),
      div: R.binaryRef(a, sa, b, sb, (x, y) => x / y),
      maximum: R.binaryRef(a, sa, c, sa, Math.max),
      same: R.binaryRef(a, sa, c, sa, (x, y) => x + y),
      both: R.binaryRef(d, [2, 1, 4], b, sb, (x, y) => x * y),
      trailing: R.binaryRef(a, sa, e, [4], (x, y) => x - y),
      bigRow: R.binaryRef(big, [64, 3, 33], row, [33], (x, y) => x + y),
    };
  },
};

const unaryCase: OpCase = {
  name: "scalar and unary ops",
  ops: ["addScalar", "mulScalar", "powScalar", "clampMin", "neg", "exp", "log", "sqrt", "abs", "relu"],
  run: (ops) =>
    session(ops, (s) => {
      const x = s.t(rand(15, 10), [3, 5]);
      const p = s.t(rand(15, 11, 0.2, 3), [3, 5]);
      const u = (h: NativeTensor) => s.read(s.own(h));
      return {
        addScalar: u(ops.addScalar(x, 0.5)), mulScalar: u(ops.mulScalar(x, -2)), square: u(ops.powScalar(x, 2)),
        pow: u(ops.powScalar(p, 1.5)), clampMin: u(ops.clampMin(x, 0.1)), neg: u(ops.neg(x)), exp: u(ops.exp(x)),
        log: u(ops.log(p)), sqrt: u(ops.sqrt(p)), abs: u(ops.abs(x)), relu: u(ops.relu(x)),
      };
    }),
  reference: () => {
    const x = Array.from(rand(15, 10)), p = Array.from(rand(15, 11, 0.2, 3));
    return {
      addScalar: x.map((v) => v + 0.5), mulScalar: x.map((v) => -2 * v), square: x.map((v) => v * v),
      pow: p.map((v) => v ** 1.5), clampMin: x.map((v) => Math.max(v, 0.1)), neg: x.map((v) => -v),
      exp: x.map(Math.exp), log: p.map(Math.log), sqrt: p.map(Math.sqrt), abs: x.map(Math.abs),
      relu: x.map((v) => Math.max(v, 0)),
    };
  },
};

// Inputs with exact zeros, where the backward helpers' sub-gradient conventions matter.
const withZeros = () => {
  const x = rand(12, 12);
  x[2] = 0;
  x[7] = 0;
  x[5] = 0.2;
  return x;
};

const gradHelpersCase: OpCase = {
  name: "elementwise backward helpers",
  ops: ["reluBackward", "absBackward", "clampMinBackward"],
  run: (ops) =>
    session(ops, (s) => {
      const g = s.t(rand(12, 13), [3, 4]);
      const x = s.t(withZeros(), [3, 4]);
      return {
        relu: s.read(s.own(ops.reluBackward(g, x))),
        abs: s.read(s.own(ops.absBackward(g, x))),
        clampMin: s.read(s.own(ops.clampMinBackward(g, x, 0.2))),
      };
    }),
  reference: () => {
    const g = rand(12, 13), x = withZeros();
    return {
      relu: Array.from(g, (v, i) => (x[i] > 0 ? v : 0)),
      abs: Array.from(g, (v, i) => (x[i] > 0 ? v : x[i] < 0 ? -v : 0)),
      clampMin: Array.from(g, (v, i) => (x[i] >= Math.fround(0.2) ? v : 0)),
    };
  },
};

// AdaRound's ops: values on the clamp bound and on integers, where the conventions (inclusive bound, floor) matter.
const roundingInputs = () => {
  const x = rand(16, 21, -3, 3);
  x[1] = 0.5;
  x[4] = -2;
  x[9] = 1;
  x[11] = -0.5;
  return x;
};

const roundingCase: OpCase = {
  name: "sigmoid, floor, clampMax and their backward helpers",
  ops: ["sigmoid", "sigmoidBackward", "floor", "clampMax", "clampMaxBackward"],
  run: (ops) =>
    session(ops, (s) => {
      const x = s.t(roundingInputs(), [4, 4]);
      const g = s.t(rand(16, 22), [4, 4]);
      const y = s.own(ops.sigmoid(x));
      return {
        sigmoid: s.read(y),
        sigmoidBackward: s.read(s.own(ops.sigmoidBackward(g, y))),
        floor: s.read(s.own(ops.floor(x))),
        clampMax: s.read(s.own(ops.clampMax(x, 0.5))),
        clampMaxBackward: s.read(s.own(ops.clampMaxBackward(g, x, 0.5))),
      };
    }),
  reference: () => {
    const x = Array.from(roundingInputs()), g = Array.from(rand(16, 22));
    const y = x.map((v) => 1 / (1 + Math.exp(-v)));
    return {
      sigmoid: y,
      sigmoidBackward: g.map((v, i) => v * y[i] * (1 - y[i])),
      floor: x.map(Math.floor),
      clampMax: x.map((v) => Math.min(v, 0.5)),
      clampMaxBackward: g.map((v, i) => (x[i] <= 0.5 ? v : 0)),
    };
  },
};

const inPlaceCase: OpCase = {
  name: "in-place updates and expand",
  ops: ["addScaled_", "mulScalar_", "fill_", "expand"],
  run: (ops) =>
    session(ops, (s) => {
      const d = s.t(rand(10, 14), [2, 5]);
      const src = s.t(rand(10, 15), [2, 5]);
      ops.addScaled_(d, src, 0.5);
      const afterAdd = s.read(d);
      ops.mulScalar_(d, 3);
      const afterMul = s.read(d);
      const f = s.t(rand(4, 16), [4]);
      ops.fill_(f, 2.5);
      const col = s.t(rand(3, 17), [3, 1]);
      const vec = s.t(rand(4, 18), [4]);
      return {
        afterAdd, afterMul, filled: s.read(f),
        expandCol: s.read(s.own(ops.expand(col, [2, 3, 4]))),
        expandVec: s.read(s.own(ops.expand(vec, [3, 4]))),
        expandSame: s.read(s.own(ops.expand(vec, [4]))),
      };
    }),
  reference: () => {
    const d = rand(10, 14), src = rand(10, 15), col = rand(3, 17), vec = rand(4, 18);
    const added = Array.from(d, (v, i) => Math.fround(v + 0.5 * src[i]));
    return {
      afterAdd: added, afterMul: added.map((v) => 3 * v), filled: [2.5, 2.5, 2.5, 2.5],
      expandCol: R.binaryRef(new Float64Array(24), [2, 3, 4], col, [3, 1], (_, y) => y),
      expandVec: R.binaryRef(new Float64Array(12), [3, 4], vec, [4], (_, y) => y),
      expandSame: vec,
    };
  },
};

// ---------------------------------------------------------------------------------------------- reduce / shape

const reduceCase: OpCase = {
  name: "sum, mean, max/min and their index backward",
  ops: ["sum", "mean", "maxDim", "minDim", "indexGradBackward"],
  run: (ops) =>
    session(ops, (s) => {
      const x = s.t(rand(120, 19), [2, 3, 4, 5]);
      const wide = s.t(rand(64 * 4096, 20), [64, 4096]);
      const tall = s.t(rand(300 * 7, 21), [300, 7]);
      const u = (h: NativeTensor) => s.read(s.own(h));
      const [mx, mi] = ops.maxDim(x, 1);
      const [mn, ni] = ops.minDim(x, -1, true);
      s.own(mx);
      s.own(mi);
      s.own(mn);
      s.own(ni);
      const g = s.t(rand(40, 22), [2, 4, 5]);
      return {
        sumAll: u(ops.sum(x, [])), sum1: u(ops.sum(x, [1], true)), mean02: u(ops.mean(x, [0, 2])),
        meanLast: u(ops.mean(x, [-1])), sum03: u(ops.sum(x, [0, 3], true)), sum123: u(ops.sum(x, [1, 2, 3])),
        wideRows: u(ops.sum(wide, [1])), wideAll: u(ops.mean(wide, [])), tallCols: u(ops.sum(tall, [0])),
        tallRows: u(ops.mean(tall, [1])),
        max: s.read(mx), maxIdx: s.read(mi), min: s.read(mn), minIdx: s.read(ni),
        indexGrad: u(ops.indexGradBackward(g, mi, [2, 3, 4, 5], 1)),
      };
    }),
  reference: () => {
    const x = rand(120, 19), wide = rand(64 * 4096, 20), tall = rand(300 * 7, 21), g = rand(40, 22);
    const s = [2, 3, 4, 5];
    const [mx, mi] = R.argExtremeRef(x, s, 1, true);
    const [mn, ni] = R.argExtremeRef(x, s, -1, false);
    return {
      sumAll: R.reduceRef(x, s, [], false), sum1: R.reduceRef(x, s, [1], false), mean02: R.reduceRef(x, s, [0, 2], true),
      meanLast: R.reduceRef(x, s, [3], true), sum03: R.reduceRef(x, s, [0, 3], false), sum123: R.reduceRef(x, s, [1, 2, 3], false),
      wideRows: R.reduceRef(wide, [64, 4096], [1], false), wideAll: R.reduceRef(wide, [64, 4096], [], true),
      tallCols: R.reduceRef(tall, [300, 7], [0], false), tallRows: R.reduceRef(tall, [300, 7], [1], true),
      max: mx, maxIdx: mi, min: mn, minIdx: ni, indexGrad: R.indexGradRef(g, mi, s, 1),
    };
  },
};

const shapeCase: OpCase = {
  name: "permute, concat and narrow",
  ops: ["permute", "concat", "narrow"],
  run: (ops) =>
    session(ops, (s) => {
      const x = s.t(rand(24, 23), [2, 3, 4]);
      const y = s.t(rand(16, 24), [2, 2, 4]);
      const z = s.t(rand(8, 25), [2, 1, 4]);
      const xi = s.t(Int32Array.from({ length: 24 }, (_, i) => i * 7 - 30), [2, 3, 4]);
      const xu = s.t(Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256), [4, 6]);
      const u = (h: NativeTensor) => s.read(s.own(h));
      return {
        permute: u(ops.permute(x, [2, 0, 1])), permuteI32: u(ops.permute(xi, [1, 2, 0])), permuteU8: u(ops.permute(xu, [1, 0])),
        concat1: u(ops.concat([x, y, z], 1)), concat0: u(ops.concat([x, x], 0)), concatLast: u(ops.concat([x, x], -1)),
        narrow: u(ops.narrow(x, 2, 1, 2)), narrow0: u(ops.narrow(x, 0, 1, 1)), narrowI32: u(ops.narrow(xi, 1, 1, 2)),
      };
    }),
  reference: () => {
    const x = rand(24, 23), y = rand(16, 24), z = rand(8, 25);
    const xi = Int32Array.from({ length: 24 }, (_, i) => i * 7 - 30);
    const xu = Int32Array.from({ length: 24 }, (_, i) => (i * 37) % 256);
    const s = [2, 3, 4];
    return {
      permute: R.permuteRef(x, s, [2, 0, 1]), permuteI32: Int32Array.from(R.permuteRef(xi, s, [1, 2, 0])),
      permuteU8: Int32Array.from(R.permuteRef(xu, [4, 6], [1, 0])),
      concat1: R.concatRef([{ data: x, shape: s }, { data: y, shape: [2, 2, 4] }, { data: z, shape: [2, 1, 4] }], 1),
      concat0: R.concatRef([{ data: x, shape: s }, { data: x, shape: s }], 0),
      concatLast: R.concatRef([{ data: x, shape: s }, { data: x, shape: s }], 2),
      narrow: R.narrowRef(x, s, 2, 1, 2), narrow0: R.narrowRef(x, s, 0, 1, 1), narrowI32: Int32Array.from(R.narrowRef(xi, s, 1, 1, 2)),
    };
  },
};

// ---------------------------------------------------------------------------------------------- nn ops

interface ConvSpec {
  x: number[];
  w: number[];
  bias: boolean;
  p: R.ConvParams;
  seed: number;
}

function convCase(name: string, spec: ConvSpec): OpCase {
  const data = () => {
    const x = rand(R.numel(spec.x), spec.seed), w = rand(R.numel(spec.w), spec.seed + 1, -0.5, 0.5);
    const b = spec.bias ? rand(spec.w[0], spec.seed + 2) : null;
    const gy = rand(R.numel(R.convOutShape(spec.x, spec.w, spec.p)), spec.seed + 3);
    return { x, w, b, gy, prevW: rand(R.numel(spec.w), spec.seed + 4) };
  };
  const { stride, padding, dilation, groups } = spec.p;
  return {
    name,
    ops: ["conv2d", "conv2dBackwardData", "conv2dBackwardWeight"],
    run: (ops) =>
      session(ops, (s) => {
        const d = data();
        const x = s.t(d.x, spec.x), w = s.t(d.w, spec.w), b = d.b ? s.t(d.b, [spec.w[0]]) : null;
        const gy = s.t(d.gy, R.convOutShape(spec.x, spec.w, spec.p));
        const y = s.own(ops.conv2d(x, w, b, stride, padding, dilation, groups));
        const dx = s.own(ops.conv2dBackwardData(gy, w, spec.x, stride, padding, dilation, groups));
        const [dw, db] = ops.conv2dBackwardWeight(gy, x, spec.w, stride, padding, dilation, groups, spec.bias);
        s.own(dw);
        s.own(db);
        const out: Outputs = { y: s.read(y!), dx: s.read(dx), dw: s.read(dw!) };
        if (db) out.db = s.read(db);
        // Added into a gradient so far (in the backend's pass, or returned apart for the caller to add).
        const prev = s.t(d.prevW, spec.w);
        const [dwMore] = ops.conv2dBackwardWeight(gy, x, spec.w, stride, padding, dilation, groups, false, prev);
        const more = dwMore ? s.read(s.own(dwMore)) : null;
        out.dwAccumulated = Array.from(s.read(prev), (v, i) => v + (more ? more[i] : 0));
        return out;
      }),
    reference: () => {
      const d = data();
      const y = R.conv2dRef(d.x, spec.x, d.w, spec.w, d.b, spec.p);
      const g = R.conv2dBackwardRef(d.gy, d.x, spec.x, d.w, spec.w, spec.p);
      const out: Outputs = { y, dx: g.dx, dw: g.dw, dwAccumulated: Array.from(d.prevW, (v, i) => v + g.dw[i]) };
      if (spec.bias) out.db = g.db;
      return out;
    },
  };
}

const p = (s: [number, number], pad: [number, number], dil: [number, number], groups = 1): R.ConvParams => ({
  stride: s, padding: pad, dilation: dil, groups,
});

const convCases = [
  convCase("conv2d with bias, asymmetric stride and padding", { x: [2, 3, 7, 6], w: [4, 3, 3, 3], bias: true, p: p([1, 2], [1, 0], [1, 1]), seed: 30 }),
  convCase("conv2d grouped and dilated", { x: [2, 4, 9, 8], w: [6, 2, 3, 3], bias: false, p: p([2, 1], [2, 1], [2, 1], 2), seed: 34 }),
  convCase("conv2d ResNet 3x3 block shape", { x: [8, 32, 16, 16], w: [32, 32, 3, 3], bias: false, p: p([1, 1], [1, 1], [1, 1]), seed: 38 }),
  convCase("conv2d ResNet 1x1 stride-2 shortcut", { x: [8, 32, 16, 16], w: [64, 32, 1, 1], bias: true, p: p([2, 2], [0, 0], [1, 1]), seed: 42 }),
];

interface BnSpec {
  x: number[];
  affine: boolean;
  running: boolean;
  seed: number;
  /** The fused ReLU epilogue (forward max, backward mask), train and eval. */
  relu?: boolean;
}

const reluRef = (y: ArrayLike<number>) => Float64Array.from(y, (v) => (v > 0 ? v : 0));
const maskedRef = (g: ArrayLike<number>, y: ArrayLike<number>) => Float64Array.from(g, (v, i) => (y[i] > 0 ? v : 0));

function batchNormCase(name: string, spec: BnSpec): OpCase {
  const C = spec.x[1];
  const momentum = 0.1, eps = 1e-5;
  const data = () => ({
    x: rand(R.numel(spec.x), spec.seed, -2, 3),
    w: spec.affine ? rand(C, spec.seed + 1, 0.5, 1.5) : null,
    b: spec.affine ? rand(C, spec.seed + 2) : null,
    rm: spec.running ? rand(C, spec.seed + 3) : null,
    rv: spec.running ? rand(C, spec.seed + 4, 0.5, 2) : null,
    gy: rand(R.numel(spec.x), spec.seed + 5),
  });
  return {
    name,
    ops: ["batchNorm", "batchNormBackward"],
    run: (ops) =>
      session(ops, (s) => {
        const d = data();
        const relu = spec.relu ?? false;
        const x = s.t(d.x, spec.x), gy = s.t(d.gy, spec.x);
        const w = d.w ? s.t(d.w, [C]) : null, b = d.b ? s.t(d.b, [C]) : null;
        const rm = d.rm ? s.t(d.rm, [C]) : null, rv = d.rv ? s.t(d.rv, [C]) : null;
        const [y, mean, invStd] = ops.batchNorm(x, w, b, rm, rv, true, momentum, eps, relu).map((h) => s.own(h));
        const [dx, dw, db] = ops.batchNormBackward(gy, x, w, mean!, invStd!, true, spec.affine, relu ? y : null);
        [dx, dw, db].forEach((h) => s.own(h));
        const out: Outputs = { y: s.read(y!), mean: s.read(mean!), invStd: s.read(invStd!), dx: s.read(dx) };
        if (dw && db) {
          out.dw = s.read(dw);
          out.db = s.read(db);
        }
        if (rm && rv) {
          out.runningMean = s.read(rm);
          out.runningVar = s.read(rv);
          // Eval mode with the updated running statistics, and its backward.
          const [ye, me, ie] = ops.batchNorm(x, w, b, rm, rv, false, momentum, eps, relu).map((h) => s.own(h));
          const grads = ops.batchNormBackward(gy, x, w, me!, ie!, false, spec.affine, relu ? ye : null);
          grads.forEach((h) => s.own(h));
          const dxe = grads[0];
          out.yEval = s.read(ye!);
          out.invStdEval = s.read(ie!);
          out.dxEval = s.read(dxe);
        }
        return out;
      }),
    reference: () => {
      const d = data();
      const relu = spec.relu ?? false;
      const f = R.batchNormRef(d.x, spec.x, d.w, d.b, d.rm, d.rv, true, momentum, eps);
      const y = relu ? reluRef(f.y) : f.y;
      const g = R.batchNormBackwardRef(relu ? maskedRef(d.gy, y) : d.gy, d.x, spec.x, d.w, f.mean, f.invStd, true);
      const out: Outputs = { y, mean: f.mean, invStd: f.invStd, dx: g.dx };
      if (spec.affine) {
        out.dw = g.dw;
        out.db = g.db;
      }
      if (f.runningMean && f.runningVar) {
        out.runningMean = f.runningMean;
        out.runningVar = f.runningVar;
        const rm32 = Float32Array.from(f.runningMean), rv32 = Float32Array.from(f.runningVar);
        const e = R.batchNormRef(d.x, spec.x, d.w, d.b, rm32, rv32, false, momentum, eps);
        const ye = relu ? reluRef(e.y) : e.y;
        out.yEval = ye;
        out.invStdEval = e.invStd;
        out.dxEval = R.batchNormBackwardRef(relu ? maskedRef(d.gy, ye) : d.gy, d.x, spec.x, d.w, rm32, e.invStd, false).dx;
      }
      return out;
    },
  };
}

const batchNormCases = [
  batchNormCase("batchNorm 4-D, affine, running stats, train and eval", { x: [4, 3, 5, 5], affine: true, running: true, seed: 50 }),
  batchNormCase("batchNorm 2-D without affine or running stats", { x: [8, 5], affine: false, running: false, seed: 56 }),
  batchNormCase("batchNorm ResNet activation shape", { x: [16, 64, 16, 16], affine: true, running: true, seed: 62 }),
  batchNormCase("batchNorm + fused ReLU, 4-D, train and eval", { x: [4, 3, 5, 5], affine: true, running: true, seed: 68, relu: true }),
  batchNormCase("batchNorm + fused ReLU, 2-D", { x: [8, 70], affine: false, running: false, seed: 74, relu: true }),
];

const matmulCase: OpCase = {
  name: "matmul (all transposes) and linear",
  ops: ["matmul", "linear"],
  run: (ops) =>
    session(ops, (s) => {
      const a = s.t(rand(35, 70), [5, 7]), at = s.t(rand(35, 71), [7, 5]);
      const b = s.t(rand(21, 72), [7, 3]), bt = s.t(rand(21, 73), [3, 7]);
      const x = s.t(rand(24, 74), [6, 4]), w = s.t(rand(12, 75), [3, 4]), bias = s.t(rand(3, 76), [3]);
      const big1 = s.t(rand(64 * 128, 77), [64, 128]), big2 = s.t(rand(96 * 128, 78), [96, 128]);
      const u = (h: NativeTensor) => s.read(s.own(h));
      // Added into a tensor in the backend's GEMM (null back), or returned apart for the caller to add.
      const prev = s.t(rand(15, 79), [5, 3]);
      const more = ops.matmul(at, b, true, false, prev);
      const moreValues = more ? u(more) : null;
      const accumulated = Array.from(s.read(prev), (v, i) => v + (moreValues ? moreValues[i] : 0));
      return {
        accumulated,
        nn: u(ops.matmul(a, b, false, false)), tn: u(ops.matmul(at, b, true, false)),
        nt: u(ops.matmul(a, bt, false, true)), tt: u(ops.matmul(at, bt, true, true)),
        linear: u(ops.linear(x, w, bias)), linearNoBias: u(ops.linear(x, w, null)),
        big: u(ops.matmul(big1, big2, false, true)),
      };
    }),
  reference: () => {
    const a = rand(35, 70), at = rand(35, 71), b = rand(21, 72), bt = rand(21, 73);
    const x = rand(24, 74), w = rand(12, 75), bias = rand(3, 76), big1 = rand(64 * 128, 77), big2 = rand(96 * 128, 78);
    const lin = R.matmulRef(x, [6, 4], w, [3, 4], false, true);
    const prev = rand(15, 79);
    return {
      accumulated: R.matmulRef(at, [7, 5], b, [7, 3], true, false).map((v, i) => v + prev[i]),
      nn: R.matmulRef(a, [5, 7], b, [7, 3], false, false), tn: R.matmulRef(at, [7, 5], b, [7, 3], true, false),
      nt: R.matmulRef(a, [5, 7], bt, [3, 7], false, true), tt: R.matmulRef(at, [7, 5], bt, [3, 7], true, true),
      linear: lin.map((v, i) => v + bias[i % 3]), linearNoBias: lin,
      big: R.matmulRef(big1, [64, 128], big2, [96, 128], false, true),
    };
  },
};

function poolCase(name: string, xs: number[], k: [number, number], st: [number, number], pad: [number, number], seed: number): OpCase {
  return {
    name,
    ops: ["maxPool2d", "maxPool2dBackward"],
    run: (ops) =>
      session(ops, (s) => {
        const x = s.t(rand(R.numel(xs), seed), xs);
        const [y, idx] = ops.maxPool2d(x, k, st, pad).map((h) => s.own(h));
        const ys = ops.shape(y);
        const gy = s.t(rand(R.numel(ys), seed + 1), ys);
        return { y: s.read(y), indices: s.read(idx), dx: s.read(s.own(ops.maxPool2dBackward(gy, idx, xs))) };
      }),
    reference: () => {
      const r = R.maxPool2dRef(rand(R.numel(xs), seed), xs, k, st, pad);
      const gy = rand(r.y.length, seed + 1);
      return { y: r.y, indices: r.idx, dx: R.maxPool2dBackwardRef(gy, r.idx, xs, r.shape[2] * r.shape[3]) };
    },
  };
}

const poolCases = [
  poolCase("maxPool2d 3x3 stride 2 padding 1 (overlapping windows)", [2, 3, 9, 8], [3, 3], [2, 2], [1, 1], 80),
  poolCase("maxPool2d 2x2 stride 2", [2, 2, 6, 6], [2, 2], [2, 2], [0, 0], 82),
];

function lossCase(name: string, rows: number, cols: number, ls: number, seed: number): OpCase {
  const data = () => ({
    x: rand(rows * cols, seed, -3, 3),
    t: Int32Array.from({ length: rows }, (_, i) => (i * 7 + 3) % cols),
    gy: rand(rows * cols, seed + 1),
  });
  const ks = [1, Math.min(3, cols), cols];
  return {
    name,
    ops: ["logSoftmax", "logSoftmaxBackward", "crossEntropy", "crossEntropyBackward", "topkCorrect"],
    run: (ops) =>
      session(ops, (s) => {
        const d = data();
        const x = s.t(d.x, [rows, cols]), t = s.t(d.t, [rows]), gy = s.t(d.gy, [rows, cols]);
        const y = s.own(ops.logSoftmax(x));
        const [loss, lp] = ops.crossEntropy(x, t, ls).map((h) => s.own(h));
        const gLoss = s.t(Float32Array.of(1.7), []);
        return {
          logSoftmax: s.read(y), logSoftmaxGrad: s.read(s.own(ops.logSoftmaxBackward(gy, y))),
          loss: s.read(loss), logProbs: s.read(lp),
          dLogits: s.read(s.own(ops.crossEntropyBackward(gLoss, lp, t, ls))),
          topk: s.read(s.own(ops.topkCorrect(x, t, ks))),
        };
      }),
    reference: () => {
      const d = data();
      const y = R.logSoftmaxRef(d.x, rows, cols);
      const ce = R.crossEntropyRef(d.x, d.t, rows, cols, ls);
      return {
        logSoftmax: y, logSoftmaxGrad: R.logSoftmaxBackwardRef(d.gy, Float32Array.from(y), rows, cols),
        loss: [ce.loss], logProbs: ce.logProbs, dLogits: ce.dx(Math.fround(1.7)),
        topk: R.topkCorrectRef(d.x, d.t, rows, cols, ks),
      };
    },
  };
}

const lossCases = [
  lossCase("softmax family, cross-entropy without smoothing", 6, 5, 0, 90),
  lossCase("softmax family, cross-entropy with label smoothing 0.1", 8, 10, 0.1, 92),
  lossCase("softmax family over 1000 classes", 32, 1000, 0.1, 94),
];

const randomCase: OpCase = {
  name: "Philox uniform and normal",
  ops: ["uniform", "normal"],
  run: (ops) =>
    session(ops, (s) => ({
      uniform: s.read(s.own(ops.uniform([5, 7], -1, 2, 42, 3))),
      uniformOdd: s.read(s.own(ops.uniform([9], 0, 1, 2 ** 40 + 5, 2 ** 33 + 1))),
      normal: s.read(s.own(ops.normal([13], 0.5, 2, 7, 0))),
      normalLarge: s.read(s.own(ops.normal([4099], 0, 1, 123456789, 17))),
    })),
  reference: () => ({
    uniform: R.uniformRef(35, -1, 2, 42, 3),
    uniformOdd: R.uniformRef(9, 0, 1, 2 ** 40 + 5, 2 ** 33 + 1),
    normal: R.normalRef(13, 0.5, 2, 7, 0),
    normalLarge: R.normalRef(4099, 0, 1, 123456789, 17),
  }),
};

interface SgdOpts {
  lr: number;
  momentum: number;
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
}

const sgdVariants: [string, SgdOpts][] = [
  ["momentum", { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, dampening: 0, nesterov: false }],
  ["nesterov", { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, dampening: 0, nesterov: true }],
  ["dampening", { lr: 0.2, momentum: 0.5, weightDecay: 0, dampening: 0.1, nesterov: false }],
  ["plain", { lr: 0.3, momentum: 0, weightDecay: 0.01, dampening: 0, nesterov: false }],
];

const sgdCase: OpCase = {
  name: "fused SGD step (two steps per variant)",
  ops: ["sgdStep_"],
  run: (ops) =>
    session(ops, (s) => {
      const out: Outputs = {};
      sgdVariants.forEach(([name, o], k) => {
        const pp = s.t(rand(20, 100 + k), [4, 5]);
        const buf = o.momentum > 0 ? s.t(new Float32Array(20), [4, 5]) : null;
        for (let step = 0; step < 2; step++) {
          const g = s.t(rand(20, 110 + 10 * k + step), [4, 5]);
          ops.sgdStep_(pp, g, buf, o.lr, o.momentum, o.weightDecay, o.dampening, o.nesterov, step === 0);
        }
        out[`${name}.p`] = s.read(pp);
        if (buf) out[`${name}.buf`] = s.read(buf);
      });
      return out;
    }),
  reference: () => {
    const out: Outputs = {};
    sgdVariants.forEach(([name, o], k) => {
      let pp: ArrayLike<number> = rand(20, 100 + k);
      let buf: ArrayLike<number> | null = o.momentum > 0 ? new Float32Array(20) : null;
      for (let step = 0; step < 2; step++) {
        const r = R.sgdRef(pp, rand(20, 110 + 10 * k + step), buf, { ...o, initBuf: step === 0 });
        pp = Float32Array.from(r.p);
        buf = r.buf && Float32Array.from(r.buf);
      }
      out[`${name}.p`] = pp;
      if (buf) out[`${name}.buf`] = buf;
    });
    return out;
  },
};

export const opCases: readonly OpCase[] = [
  transferCase, lifecycleCase, binaryCase, addReluCase, unaryCase, gradHelpersCase, roundingCase, inPlaceCase, reduceCase, shapeCase,
  ...convCases, ...batchNormCases, matmulCase, ...poolCases, ...lossCases, randomCase, sgdCase,
];

// ---------------------------------------------------------------------------------------------- comparison

const isInteger = (a: ArrayLike<number>) => a instanceof Int32Array || a instanceof Uint8Array;

/** ‖a − b‖ / ‖b‖ (normalized error); for integer outputs, the fraction of elements that differ. */
export function outputError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  if (isInteger(actual) || isInteger(expected)) {
    let bad = 0;
    for (let i = 0; i < actual.length; i++) if (actual[i] !== expected[i]) bad++;
    return actual.length ? bad / actual.length : 0;
  }
  let num = 0, den = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
  }
  if (Number.isNaN(num)) return Infinity;
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** Error of each output against the expected ones; a missing or extra output counts as Infinity. */
export function compareOutputs(actual: Outputs, expected: Outputs): Record<string, number> {
  const errs: Record<string, number> = {};
  for (const k of new Set([...Object.keys(actual), ...Object.keys(expected)]))
    errs[k] = k in actual && k in expected ? outputError(actual[k], expected[k]) : Infinity;
  return errs;
}

/** The ops a case needs that an addon does not export (e.g. nn ops not built yet). */
export function missingOps(c: OpCase, ops: object): OpName[] {
  return c.ops.filter((name) => typeof (ops as Record<string, unknown>)[name] !== "function");
}
