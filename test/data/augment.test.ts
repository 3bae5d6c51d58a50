import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { augment, sampleBatchParams, uploadSources } from "../../lib/data/augment";
import { InMemoryDataset, type SourceBatch } from "../../lib/data/dataset";
import { sslPipeline } from "../../lib/data/transforms";
import { cpuOps } from "../../lib/tensor/binding";
import { Rng } from "../../lib/tensor/prng";
import { Tensor } from "../../lib/tensor/tensor";
import { AUGMENT_RECORD, type Interpolation } from "../../lib/tensor/native/data";
import { normErr } from "../helpers/numeric";

interface Case {
  name: string;
  image: "rgb" | "gray";
  record: (number | null)[];
  outSize: [number, number];
  interpolation: Interpolation;
  expected: number[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/augment.json"), "utf8")) as {
  mean: number[];
  std: number[];
  images: Record<string, { shape: number[]; data: number[] }>;
  cases: Case[];
};

const ops = cpuOps();
const images = Object.fromEntries(Object.entries(fixture.images).map(([k, v]) => [k, ops.fromArray(Uint8Array.from(v.data), v.shape)]));

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Reference: torch/colorsys formulas in test/fixtures/generate_augment.py. Outputs are normalized by
// std ~0.2: 2e-5 absolute is ~4e-6 in [0, 1] pixel units (float32 here, float32/float64 in the reference).
describe("augmentBatch against the torchvision-formula reference", () => {
  for (const c of fixture.cases) {
    it(c.name, async () => {
      const params = Float64Array.from(c.record, (v) => (v === null ? NaN : v));
      const [out] = await ops.augmentBatch([images[c.image]], params, 1, c.outSize, c.interpolation, fixture.mean, fixture.std);
      expect(ops.shape(out)).toEqual([1, 3, ...c.outSize]);
      const got = ops.toArray(out) as Float32Array;
      expect(normErr(got, c.expected)).toBeLessThan(5e-6);
      expect(maxAbs(got, c.expected)).toBeLessThan(2e-5);
      ops.dispose(out);
    });
  }

  it("batches records over views and reads an NHWC batch by index", async () => {
    const a = fixture.cases[0], b = fixture.cases[7];
    const [h, w, ch] = fixture.images.rgb.shape;
    const nhwc = new Uint8Array(2 * h * w * ch);
    nhwc.set(fixture.images.rgb.data.map(() => 0), 0);
    nhwc.set(fixture.images.rgb.data, h * w * ch);
    const batch = ops.fromArray(nhwc, [2, h, w, ch]);
    const params = new Float64Array(4 * AUGMENT_RECORD);
    // view 0: [a on image 1, b on image 1]; view 1: [b on image 1, a on image 0 (all zeros)]
    const put = (i: number, c: Case, src: number) => {
      params.set(Float64Array.from(c.record, (v) => (v === null ? NaN : v)), i * AUGMENT_RECORD);
      params[i * AUGMENT_RECORD] = src;
    };
    put(0, a, 1);
    put(1, b, 1);
    put(2, b, 1);
    put(3, a, 0);
    const [v0, v1] = await ops.augmentBatch(batch, params, 2, a.outSize, "bilinear", fixture.mean, fixture.std);
    const n = a.expected.length;
    const o0 = ops.toArray(v0) as Float32Array, o1 = ops.toArray(v1) as Float32Array;
    expect(maxAbs(o0.subarray(0, n), a.expected)).toBeLessThan(1e-4);
    expect(maxAbs(o0.subarray(n), b.expected)).toBeLessThan(1e-4);
    expect(maxAbs(o1.subarray(0, n), b.expected)).toBeLessThan(1e-4);
    // An all-black image normalizes to -mean / std everywhere.
    for (let c = 0; c < 3; c++) expect(o1[n + c * (n / 3)]).toBeCloseTo(-fixture.mean[c] / fixture.std[c], 5);
  });

  it("runs on 1 and 3 pool threads with identical results", async () => {
    const c = fixture.cases[18];
    const rec = Float64Array.from(c.record, (v) => (v === null ? NaN : v));
    const params = new Float64Array(64 * AUGMENT_RECORD);
    for (let i = 0; i < 64; i++) params.set(rec, i * AUGMENT_RECORD);
    const run = async (threads: number) => {
      ops.setDataThreads(threads);
      expect(ops.getDataThreads()).toBe(threads);
      const [o] = await ops.augmentBatch([images.rgb], params, 1, c.outSize, c.interpolation, fixture.mean, fixture.std);
      return ops.toArray(o) as Float32Array;
    };
    const one = await run(1);
    const three = await run(3);
    expect(Array.from(three)).toEqual(Array.from(one));
    expect(maxAbs(one.subarray(one.length - c.expected.length), c.expected)).toBeLessThan(1e-4);
    ops.setDataThreads(2);
  });

  it("finishes work in flight when the pool is resized", async () => {
    const c = fixture.cases[16];
    const rec = Float64Array.from(c.record, (v) => (v === null ? NaN : v));
    const params = new Float64Array(256 * AUGMENT_RECORD);
    for (let i = 0; i < 256; i++) params.set(rec, i * AUGMENT_RECORD);
    ops.setDataThreads(2);
    const pending = [0, 1, 2].map(() => ops.augmentBatch([images.rgb], params, 1, c.outSize, c.interpolation, fixture.mean, fixture.std));
    ops.setDataThreads(1);
    for (const p of pending) {
      const [o] = await p;
      const got = ops.toArray(o) as Float32Array;
      expect(maxAbs(got.subarray(got.length - c.expected.length), c.expected)).toBeLessThan(2e-5);
      ops.dispose(o);
    }
    expect(() => ops.setDataThreads(0)).toThrow(RangeError);
    ops.setDataThreads(2);
  });

  it("rejects bad records with errors that name the record", () => {
    const good = Float64Array.from(fixture.cases[0].record, (v) => (v === null ? NaN : v));
    const call = (mut: (p: Float64Array) => void, imgs: unknown = [images.rgb]) => {
      const p = good.slice();
      mut(p);
      return () => ops.augmentBatch(imgs as never, p, 1, [9, 8], "bilinear", fixture.mean, fixture.std);
    };
    expect(call((p) => (p[2] = 100))).toThrow(/record 0: region .* outside the 29x23 source image/);
    expect(call((p) => (p[0] = 3))).toThrow(/source index 3/);
    expect(call((p) => (p[6] = 0))).toThrow(/scales must be positive/);
    expect(call((p) => ((p[9] = 4), p.set([0, 0, 1, 2], 14)))).toThrow(/permutation/);
    expect(call((p) => ((p[9] = 16), (p[18] = 0)))).toThrow(/blur radius/);
    expect(call(() => {}, [ops.full([4, 4, 3], 0, "float32")])).toThrow(TypeError);
    expect(() => ops.augmentBatch([images.rgb], good.subarray(1), 1, [9, 8], "bilinear", fixture.mean, fixture.std)).toThrow(/multiple of 20/);
    expect(() => ops.augmentBatch([images.rgb], good, 1, [9, 8], "nearest" as Interpolation, fixture.mean, fixture.std)).toThrow(/interpolation/);
    expect(() => ops.augmentBatch([images.rgb], good, 1, [9, 8], "bilinear", fixture.mean, [1, 0, 1])).toThrow(/std/);
  });
});

// The CUDA path's source upload, with the CPU addon standing in for the device: the packed / gathered sources and
// the rewritten record indices must give the views that the data-pool path gives from the original sources.
describe("uploadSources (one upload of a batch's sources for the CUDA path)", () => {
  const pipeline = sslPipeline({ MODEL: { INPUTSHAPE: [24, 24] }, TRAIN: { DATASET: "imagenet" } });
  const s = pipeline.spec;

  async function expectSameViews(src: SourceBatch): Promise<void> {
    const want = await augment(pipeline, Rng.fromSeed(3, 1), src, "cpu");
    const { params, outSize } = sampleBatchParams(pipeline, Rng.fromSeed(3, 1), src);
    const { images, uploaded } = uploadSources(src, params, (data, shape) => ops.fromArray(data, shape));
    const got = await ops.augmentBatch(images, params, pipeline.views, outSize, s.interpolation, s.mean, s.std);
    expect(got.length).toBe(2);
    got.forEach((h, v) => {
      const a = ops.toArray(h) as Float32Array, b = want[v].toArraySync() as Float32Array;
      expect(a.length).toBe(b.length);
      expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(0);
      ops.dispose(h);
    });
    want.forEach((t) => t.dispose());
    ops.dispose(uploaded);
  }

  it("gathers the rows of an in-memory NHWC dataset in sample order, repeats included", async () => {
    const n = 9, px = Uint8Array.from({ length: n * 30 * 26 * 3 }, (_, i) => (i * 2654435761) >>> 24);
    const ds = new InMemoryDataset("synthetic", "train", "memory", px, [n, 30, 26, 3], new Int32Array(n), ["0"]);
    await expectSameViews(await ds.load(Int32Array.of(5, 2, 5, 0, 8)));
    ds.dispose();
  });

  it("packs decoded images of different sizes and channel counts", async () => {
    const shapes = [[29, 23, 3], [40, 17, 3], [20, 31, 1]] as const;
    const tensors = shapes.map((sh, k) => new Tensor(ops.fromArray(Uint8Array.from({ length: sh[0] * sh[1] * sh[2] }, (_, i) => ((i + k) * 2246822519) >>> 24), sh), "cpu").keep());
    const order = Int32Array.of(2, 0, 1, 2);
    await expectSameViews({
      images: tensors,
      src: order,
      sizes: Array.from(order, (k) => [shapes[k][0], shapes[k][1]] as const),
      labels: new Int32Array(order.length),
      skipped: [],
      dispose: () => tensors.forEach((t) => t.dispose()),
    });
    tensors.forEach((t) => t.dispose());
  });
});
