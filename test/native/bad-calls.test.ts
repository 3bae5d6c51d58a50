import { describe, expect, it } from "vitest";
import { cpuOps } from "../../lib/tensor/binding";
import type { NativeOps, NativeTensor as H } from "../../lib/tensor/native";
import { type DeclaredParam, declaredOps } from "../helpers/opTable";

/**
 * Throws bad calls at every op of the CPU addon: each must come back as a thrown JavaScript error, never a crash
 * (vitest runs each file in its own process, so a crash fails this file).
 */
const o: NativeOps = cpuOps();
const raw = o as unknown as Record<string, (...args: unknown[]) => unknown>;
const f = (shape: number[], v = 0.5): H => o.full(shape, v);
const i32 = (values: number[]): H => o.fromArray(Int32Array.from(values), [values.length]);
const disposed = (() => {
  const t = f([2]);
  o.dispose(t);
  return t;
})();
const fake = { __nativeTensor: true };

/** A valid call of each op; bad calls replace one argument at a time. */
const templates: Record<string, () => unknown[]> = {
  fromArray: () => [new Float32Array(4), [2, 2]],
  toArray: () => [f([2])],
  toArrayAsync: () => [f([2])],
  item: () => [f([1])],
  full: () => [[2, 3], 1, "float32"],
  shape: () => [f([2])],
  dtype: () => [f([2])],
  reshape: () => [f([2, 3]), [3, 2]],
  clone: () => [f([2])],
  copy_: () => [f([2]), f([2])],
  toFloat: () => [i32([1, 2])],
  dispose: () => [f([2])],
  isDisposed: () => [f([2])],
  memoryStats: () => [],
  resetPeakMemoryStats: () => [],
  setNumThreads: () => [o.getNumThreads()],
  getNumThreads: () => [],
  add: () => [f([2, 3]), f([3])],
  sub: () => [f([2, 3]), f([3])],
  mul: () => [f([2, 3]), f([3])],
  div: () => [f([2, 3]), f([3])],
  maximum: () => [f([2, 3]), f([3])],
  addScalar: () => [f([2]), 1],
  mulScalar: () => [f([2]), 1],
  powScalar: () => [f([2]), 2],
  clampMin: () => [f([2]), 0],
  neg: () => [f([2])],
  exp: () => [f([2])],
  log: () => [f([2])],
  sqrt: () => [f([2])],
  abs: () => [f([2])],
  relu: () => [f([2])],
  reluBackward: () => [f([2]), f([2])],
  absBackward: () => [f([2]), f([2])],
  clampMinBackward: () => [f([2]), f([2]), 0],
  addScaled_: () => [f([2]), f([2]), 1],
  mulScalar_: () => [f([2]), 2],
  fill_: () => [f([2]), 1],
  expand: () => [f([1, 3]), [2, 3]],
  sum: () => [f([2, 3]), [1], false],
  mean: () => [f([2, 3]), [1], false],
  maxDim: () => [f([2, 3]), 1, false],
  minDim: () => [f([2, 3]), 1, false],
  indexGradBackward: () => [f([2]), i32([0, 2]), [2, 3], 1],
  permute: () => [f([2, 3]), [1, 0]],
  concat: () => [[f([2, 3]), f([1, 3])], 0],
  narrow: () => [f([4, 3]), 0, 1, 2],
  conv2d: () => [f([1, 2, 5, 5]), f([4, 2, 3, 3]), f([4]), [1, 1], [1, 1], [1, 1], 1],
  conv2dBackwardData: () => [f([1, 4, 5, 5]), f([4, 2, 3, 3]), [1, 2, 5, 5], [1, 1], [1, 1], [1, 1], 1],
  conv2dBackwardWeight: () => [f([1, 4, 5, 5]), f([1, 2, 5, 5]), [4, 2, 3, 3], [1, 1], [1, 1], [1, 1], 1, true],
  batchNorm: () => [f([4, 3, 2, 2]), f([3]), f([3]), f([3], 0), f([3], 1), true, 0.1, 1e-5],
  batchNormBackward: () => [f([4, 3, 2, 2]), f([4, 3, 2, 2]), f([3]), f([3]), f([3]), true, true],
  matmul: () => [f([2, 3]), f([3, 4]), false, false],
  linear: () => [f([2, 3]), f([4, 3]), f([4])],
  maxPool2d: () => [f([1, 2, 5, 5]), [3, 3], [2, 2], [1, 1]],
  maxPool2dBackward: () => [f([1, 2, 3, 3]), o.full([1, 2, 3, 3], 0, "int32"), [1, 2, 5, 5]],
  logSoftmax: () => [f([2, 5])],
  logSoftmaxBackward: () => [f([2, 5]), f([2, 5])],
  crossEntropy: () => [f([2, 5]), i32([0, 4]), 0.1],
  crossEntropyBackward: () => [f([], 1), f([2, 5]), i32([0, 4]), 0.1],
  topkCorrect: () => [f([2, 5]), i32([0, 4]), [1, 5]],
  uniform: () => [[2, 3], 0, 1, 1, 0],
  normal: () => [[2, 3], 0, 1, 1, 0],
  sgdStep_: () => [f([3]), f([3]), f([3]), 0.1, 0.9, 1e-4, 0, false, true],
  backendInfo: () => [],
};

/** Values that are wrong for a parameter of this declared type, whatever the op. */
function badValuesFor(op: string, p: DeclaredParam): unknown[] {
  return badValuesForType(p).filter((v) => !(v === disposed && (op === "dispose" || op === "isDisposed")));
}

function badValuesForType(p: DeclaredParam): unknown[] {
  const common: unknown[] = [Symbol("s"), () => 1, new Date(0)];
  if (!p.optional) common.push(undefined);
  switch (p.type) {
    case "H":
      return [...common, null, 0, "t", {}, [], new Float32Array(4), fake, disposed];
    case "H | null": // undefined reads as null
      return [...common.filter((v) => v !== undefined), 0, "t", {}, [], new Float32Array(4), fake, disposed];
    case "readonly H[]":
      return [...common, null, 0, "t", {}, [0], [disposed], [fake], [f([1]), null]];
    case "Pair":
      return [...common, null, 1, "1,1", [1], [1, 2, 3], ["a", "b"], [1.5, 1], [NaN, 1], [-1, -1], [2 ** 31, 1], {}];
    case "number":
      return [...common, null, "1", {}, [1], true];
    case "boolean":
      return [...common, null, 1, "true", {}];
    case "readonly number[]":
      return [...common, null, 1, "1", [1.5], ["a"], {}, [NaN], [2 ** 70]];
    case "AnyTypedArray":
      return [...common, null, [1, 2, 3, 4], new Float64Array(4), new Int16Array(4), "x", {}];
    case "DType":
      return [...common, "float64", 1, null];
    default:
      return [...common];
  }
}

function expectThrows(what: string, call: () => unknown): void {
  let threw: unknown = null;
  try {
    const r = call();
    if (r instanceof Promise) r.catch(() => undefined);
  } catch (e) {
    threw = e;
  }
  expect(threw, `${what} should throw`).toBeInstanceOf(Error);
}

const declared = declaredOps();

describe("bad calls become JavaScript errors", () => {
  it("every declared op has a valid-call template that runs", () => {
    for (const name of declared.keys()) {
      if (name === "device") continue;
      const template = templates[name];
      if (!template) continue; // ops added by other families: covered by the generic checks below
      expect(() => raw[name](...template()), `${name} template`).not.toThrow();
    }
  });

  for (const [name, op] of declared) {
    if (name === "device") continue;
    it(`${name}: each argument replaced by a wrong value throws`, () => {
      const template = templates[name];
      if (op.params.some((p) => !p.optional)) expectThrows(`${name}()`, () => raw[name]());
      if (!template) {
        if (op.params.some((p) => p.type === "H")) expectThrows(`${name}(junk...)`, () => raw[name](...op.params.map(() => fake)));
        return;
      }
      op.params.forEach((p, i) => {
        for (const bad of badValuesFor(name, p)) {
          const args = template();
          args[i] = bad;
          expectThrows(`${name} with ${p.name} = ${describeValue(bad)}`, () => raw[name](...args));
        }
      });
    });
  }
});

function describeValue(v: unknown): string {
  if (typeof v === "symbol" || typeof v === "function") return typeof v;
  if (v === fake) return "a fake handle";
  if (v === disposed) return "a disposed handle";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Calls that are well-typed but wrong in shape, dtype or range, per nn op. */
const semantic: [string, () => unknown][] = [
  ["conv2d: 3-D input", () => o.conv2d(f([2, 5, 5]), f([4, 2, 3, 3]), null, [1, 1], [0, 0], [1, 1], 1)],
  ["conv2d: channel mismatch", () => o.conv2d(f([1, 3, 5, 5]), f([4, 2, 3, 3]), null, [1, 1], [0, 0], [1, 1], 1)],
  ["conv2d: kernel larger than input", () => o.conv2d(f([1, 2, 2, 2]), f([4, 2, 3, 3]), null, [1, 1], [0, 0], [1, 1], 1)],
  ["conv2d: groups not dividing channels", () => o.conv2d(f([1, 4, 5, 5]), f([3, 2, 3, 3]), null, [1, 1], [0, 0], [1, 1], 2)],
  ["conv2d: zero groups", () => o.conv2d(f([1, 2, 5, 5]), f([4, 2, 3, 3]), null, [1, 1], [0, 0], [1, 1], 0)],
  ["conv2d: zero stride", () => o.conv2d(f([1, 2, 5, 5]), f([4, 2, 3, 3]), null, [0, 1], [0, 0], [1, 1], 1)],
  ["conv2d: zero dilation", () => o.conv2d(f([1, 2, 5, 5]), f([4, 2, 3, 3]), null, [1, 1], [0, 0], [0, 1], 1)],
  ["conv2d: bias of the wrong size", () => o.conv2d(f([1, 2, 5, 5]), f([4, 2, 3, 3]), f([3]), [1, 1], [0, 0], [1, 1], 1)],
  ["conv2d: int32 weight", () => o.conv2d(f([1, 2, 5, 5]), o.full([4, 2, 3, 3], 1, "int32"), null, [1, 1], [0, 0], [1, 1], 1)],
  ["conv2d: empty kernel", () => o.conv2d(f([1, 2, 5, 5]), f([4, 2, 0, 3]), null, [1, 1], [0, 0], [1, 1], 1)],
  ["conv2dBackwardData: gy of the wrong shape", () => o.conv2dBackwardData(f([1, 4, 4, 5]), f([4, 2, 3, 3]), [1, 2, 5, 5], [1, 1], [1, 1], [1, 1], 1)],
  ["conv2dBackwardData: negative xShape", () => o.conv2dBackwardData(f([1, 4, 5, 5]), f([4, 2, 3, 3]), [1, 2, -5, 5], [1, 1], [1, 1], [1, 1], 1)],
  ["conv2dBackwardData: 3-D xShape", () => o.conv2dBackwardData(f([1, 4, 5, 5]), f([4, 2, 3, 3]), [2, 5, 5], [1, 1], [1, 1], [1, 1], 1)],
  ["conv2dBackwardWeight: wShape mismatch", () => o.conv2dBackwardWeight(f([1, 4, 5, 5]), f([1, 2, 5, 5]), [4, 3, 3, 3], [1, 1], [1, 1], [1, 1], 1, false)],
  ["conv2dBackwardWeight: gy mismatch", () => o.conv2dBackwardWeight(f([1, 3, 5, 5]), f([1, 2, 5, 5]), [4, 2, 3, 3], [1, 1], [1, 1], [1, 1], 1, false)],
  ["batchNorm: 3-D input", () => o.batchNorm(f([2, 3, 4]), null, null, null, null, true, 0.1, 1e-5)],
  ["batchNorm: weight of the wrong size", () => o.batchNorm(f([2, 3]), f([2]), null, null, null, true, 0.1, 1e-5)],
  ["batchNorm: running mean without running var", () => o.batchNorm(f([2, 3]), null, null, f([3]), null, true, 0.1, 1e-5)],
  ["batchNorm: eval without running stats", () => o.batchNorm(f([2, 3]), null, null, null, null, false, 0.1, 1e-5)],
  ["batchNorm: one value per channel in training", () => o.batchNorm(f([1, 3]), null, null, null, null, true, 0.1, 1e-5)],
  ["batchNorm: negative eps", () => o.batchNorm(f([2, 3]), null, null, null, null, true, 0.1, -1)],
  ["batchNorm: momentum above 1", () => o.batchNorm(f([2, 3]), null, null, null, null, true, 1.5, 1e-5)],
  ["batchNorm: NaN momentum", () => o.batchNorm(f([2, 3]), null, null, null, null, true, NaN, 1e-5)],
  ["batchNormBackward: gy shape differs", () => o.batchNormBackward(f([2, 3]), f([3, 3]), null, f([3]), f([3]), true, false)],
  ["batchNormBackward: mean of the wrong size", () => o.batchNormBackward(f([2, 3]), f([2, 3]), null, f([2]), f([3]), true, false)],
  ["batchNorm: relu not a boolean", () => o.batchNorm(f([2, 3]), null, null, null, null, true, 0.1, 1e-5, 1 as unknown as boolean)],
  ["batchNormBackward: reluOut shape differs", () => o.batchNormBackward(f([2, 3]), f([2, 3]), null, f([3]), f([3]), true, false, f([3, 2]))],
  ["matmul: inner dimensions differ", () => o.matmul(f([2, 3]), f([2, 3]), false, false)],
  ["matmul: 1-D operand", () => o.matmul(f([3]), f([3, 2]), false, false)],
  ["matmul: int32 operand", () => o.matmul(o.full([2, 3], 1, "int32"), f([3, 2]), false, false)],
  ["linear: in features differ", () => o.linear(f([2, 3]), f([4, 2]), null)],
  ["linear: bias of the wrong size", () => o.linear(f([2, 3]), f([4, 3]), f([3]))],
  ["maxPool2d: padding above half the kernel", () => o.maxPool2d(f([1, 1, 5, 5]), [2, 2], [2, 2], [2, 2])],
  ["maxPool2d: kernel larger than input", () => o.maxPool2d(f([1, 1, 2, 2]), [3, 3], [1, 1], [0, 0])],
  ["maxPool2d: empty planes", () => o.maxPool2d(f([1, 1, 0, 4]), [1, 1], [1, 1], [0, 0])],
  ["maxPool2d: 3-D input", () => o.maxPool2d(f([1, 5, 5]), [2, 2], [2, 2], [0, 0])],
  ["maxPool2dBackward: index outside the plane", () => o.maxPool2dBackward(f([1, 1, 1, 1]), o.full([1, 1, 1, 1], 99, "int32"), [1, 1, 2, 2])],
  ["maxPool2dBackward: negative index", () => o.maxPool2dBackward(f([1, 1, 1, 1]), o.full([1, 1, 1, 1], -1, "int32"), [1, 1, 2, 2])],
  ["maxPool2dBackward: float indices", () => o.maxPool2dBackward(f([1, 1, 1, 1]), f([1, 1, 1, 1]), [1, 1, 2, 2])],
  ["maxPool2dBackward: batch mismatch", () => o.maxPool2dBackward(f([1, 1, 1, 1]), o.full([1, 1, 1, 1], 0, "int32"), [2, 1, 2, 2])],
  ["logSoftmax: 1-D input", () => o.logSoftmax(f([5]))],
  ["logSoftmaxBackward: shapes differ", () => o.logSoftmaxBackward(f([2, 5]), f([2, 4]))],
  ["crossEntropy: target out of range", () => o.crossEntropy(f([2, 5]), i32([0, 5]), 0)],
  ["crossEntropy: negative target", () => o.crossEntropy(f([2, 5]), i32([-1, 0]), 0)],
  ["crossEntropy: float target", () => o.crossEntropy(f([2, 5]), f([2]), 0)],
  ["crossEntropy: target count differs", () => o.crossEntropy(f([2, 5]), i32([0]), 0)],
  ["crossEntropy: label smoothing above 1", () => o.crossEntropy(f([2, 5]), i32([0, 1]), 1.5)],
  ["crossEntropy: NaN label smoothing", () => o.crossEntropy(f([2, 5]), i32([0, 1]), NaN)],
  ["crossEntropyBackward: gLoss with two values", () => o.crossEntropyBackward(f([2]), f([2, 5]), i32([0, 1]), 0)],
  ["topkCorrect: k above the class count", () => o.topkCorrect(f([2, 5]), i32([0, 1]), [6])],
  ["topkCorrect: k of zero", () => o.topkCorrect(f([2, 5]), i32([0, 1]), [0])],
  ["uniform: negative seed", () => o.uniform([2], 0, 1, -1, 0)],
  ["uniform: seed above 2^53", () => o.uniform([2], 0, 1, 2 ** 54, 0)],
  ["uniform: fractional offset", () => o.uniform([2], 0, 1, 1, 0.5)],
  ["uniform: low above high", () => o.uniform([2], 1, 0, 1, 0)],
  ["uniform: infinite bound", () => o.uniform([2], 0, Infinity, 1, 0)],
  ["uniform: negative dimension", () => o.uniform([-2], 0, 1, 1, 0)],
  ["uniform: overflowing shape", () => o.uniform([2 ** 40, 2 ** 40], 0, 1, 1, 0)],
  ["normal: negative std", () => o.normal([2], 0, -1, 1, 0)],
  ["normal: NaN mean", () => o.normal([2], NaN, 1, 1, 0)],
  ["sgdStep_: gradient shape differs", () => o.sgdStep_(f([3]), f([2]), null, 0.1, 0, 0, 0, false, false)],
  ["sgdStep_: momentum without a buffer", () => o.sgdStep_(f([3]), f([3]), null, 0.1, 0.9, 0, 0, false, true)],
  ["sgdStep_: buffer shape differs", () => o.sgdStep_(f([3]), f([3]), f([2]), 0.1, 0.9, 0, 0, false, true)],
  ["sgdStep_: Nesterov with dampening", () => o.sgdStep_(f([3]), f([3]), f([3]), 0.1, 0.9, 0, 0.1, true, true)],
  ["sgdStep_: negative weight decay", () => o.sgdStep_(f([3]), f([3]), null, 0.1, 0, -1, 0, false, false)],
  ["sgdStep_: NaN learning rate", () => o.sgdStep_(f([3]), f([3]), null, NaN, 0, 0, 0, false, false)],
  ["full: overflowing shape", () => o.full([2 ** 31, 2 ** 31, 2 ** 31], 0)],
];

describe("well-typed calls with wrong shapes, dtypes or ranges throw", () => {
  for (const [what, call] of semantic) it(what, () => expectThrows(what, call));
});

describe("random junk never crashes the process", () => {
  it("survives thousands of calls built from a pool of small values", () => {
    let s = 12345;
    const rand = (n: number) => {
      s = (s * 1103515245 + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    const pool: unknown[] = [
      f([2, 3]), f([3]), f([1, 2, 5, 5]), f([4, 2, 3, 3]), f([1, 4, 3, 3]), f([4]), f([]), f([0, 3]), f([2, 0]),
      i32([0, 1]), i32([5, -1]), o.full([1, 2, 3, 3], 0, "int32"), o.full([2, 3], 7, "uint8"), disposed, fake,
      null, undefined, 0, 1, 2, 3, -1, 0.5, NaN, Infinity, true, false, "float32", "x", [], [1], [1, 1], [2, 2], [0, 0],
      [-1, 0], [2, 3], [1, 2, 5, 5], [4, 2, 3, 3], [3, 2], [0, 1], {}, [f([2]), f([2])],
    ];
    let calls = 0;
    for (const [name, op] of declared) {
      if (name === "device" || name === "dispose" || name === "setNumThreads") continue;
      for (let k = 0; k < 150; k++) {
        const args = op.params.map(() => pool[rand(pool.length)]);
        try {
          const r = raw[name](...args);
          if (r instanceof Promise) r.catch(() => undefined);
        } catch (e) {
          expect(e, `${name}(${args.map(describeValue).join(", ")})`).toBeInstanceOf(Error);
        }
        calls++;
      }
    }
    expect(calls).toBeGreaterThan(5000);
  });
});
