import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PNG } from "pngjs";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { InMemoryDataset } from "../../lib/data/dataset";
import { ImageFolderDataset } from "../../lib/data/image_folder";
import { DataLoader, type Batch } from "../../lib/data/loader";
import { DistributedSampler } from "../../lib/data/sampler";
import { evalPipeline, sslPipeline } from "../../lib/data/transforms";
import { cpuOps } from "../../lib/tensor/binding";

const N = 37;
const pixels = Uint8Array.from({ length: N * 32 * 32 * 3 }, (_, i) => (i * 2654435761) >>> 24);
const labels = Int32Array.from({ length: N }, (_, i) => (i * 7) % 10);
const dataset = new InMemoryDataset("synthetic", "train", "memory", pixels, [N, 32, 32, 3], labels, Array.from({ length: 10 }, (_, i) => String(i)));
const norm = { MEAN: [0.5, 0.4, 0.3], STD: [0.25, 0.2, 0.3] };
const ssl = sslPipeline({ MODEL: { INPUTSHAPE: [32, 32] }, TRAIN: { DATASET: "cifar10" }, AUG: { TRAIN: { NORMLIZATION: norm } } });

const digest = (a: Float32Array) => createHash("sha1").update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest("hex");

async function collect(loader: DataLoader, epoch: number, start = 0): Promise<{ views: Float32Array[][]; labels: number[][] }> {
  const views: Float32Array[][] = [];
  const labs: number[][] = [];
  for await (const b of loader.epoch(epoch, start)) {
    views.push(b.views.map((v) => v.toArraySync() as Float32Array));
    labs.push(Array.from(b.labels.toArraySync()));
    b.dispose();
  }
  return { views, labels: labs };
}

describe("DataLoader", () => {
  const sampler = (rank = 0) => new DistributedSampler({ length: N, numReplicas: 2, rank, seed: 9 });

  it("yields two augmented views and the labels in sampler order", async () => {
    const s = sampler();
    const loader = new DataLoader({ dataset, pipeline: ssl, batchSize: 8, sampler: s, seed: 1 });
    expect(loader.length).toBe(3); // 19 samples per rank
    const shapes: number[][] = [];
    const got: number[] = [];
    for await (const b of loader.epoch(3)) {
      expect(b.views.length).toBe(2);
      expect(b.images).toBe(b.views[0]);
      shapes.push([...b.views[1].shape]);
      expect(b.labels.dtype).toBe("int32");
      got.push(...Array.from(b.labels.toArraySync()));
      b.dispose();
    }
    expect(shapes).toEqual([[8, 3, 32, 32], [8, 3, 32, 32], [3, 3, 32, 32]]);
    s.setEpoch(3);
    expect(got).toEqual(Array.from(s.indices(), (i) => labels[i]));
  });

  it("is reproducible, independent of prefetch depth, and resumable mid-epoch", async () => {
    const run = (prefetch: number, start = 0) => collect(new DataLoader({ dataset, pipeline: ssl, batchSize: 8, sampler: sampler(1), seed: 5, rank: 1, prefetch }), 2, start);
    const a = await run(1);
    const b = await run(4);
    const d = (r: { views: Float32Array[][] }) => r.views.map((vs) => vs.map(digest));
    expect(d(b)).toEqual(d(a));
    expect(b.labels).toEqual(a.labels);
    const resumed = await run(2, 1);
    expect(d(resumed)).toEqual(d(a).slice(1));
    expect(digest(a.views[0][0])).not.toBe(digest(a.views[0][1])); // the two views differ
    const otherEpoch = await collect(new DataLoader({ dataset, pipeline: ssl, batchSize: 8, sampler: sampler(1), seed: 5, rank: 1 }), 3);
    expect(digest(otherEpoch.views[0][0])).not.toBe(digest(a.views[0][0]));
  });

  it("drops the last partial batch when asked (MoCo)", async () => {
    const loader = new DataLoader({ dataset, pipeline: ssl, batchSize: 8, sampler: sampler(), seed: 1, dropLast: true });
    expect(loader.length).toBe(2);
    expect((await collect(loader, 0)).labels.map((l) => l.length)).toEqual([8, 8]);
  });

  it("validation: Resize(32) + CenterCrop(32) of 32-px images is ToTensor + Normalize exactly", async () => {
    const cfg = { MODEL: { INPUTSHAPE: [32, 32] }, TRAIN: { DATASET: "cifar10" }, AUG: { EVALUATION: { RESIZE: { ENABLE: true, SIZE: [32, 32] }, CENTERCROP: { ENABLE: true }, NORMLIZATION: norm } } };
    const loader = new DataLoader({ dataset, pipeline: evalPipeline(cfg), batchSize: 16, seed: 0 });
    const out = await collect(loader, 0);
    expect(out.labels.flat()).toEqual(Array.from(labels));
    const first = out.views[0][0];
    let worst = 0;
    for (let n = 0; n < 16; n++)
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < 1024; p++) {
          const ref = (pixels[(n * 1024 + p) * 3 + c] / 255 - norm.MEAN[c]) / norm.STD[c];
          worst = Math.max(worst, Math.abs(first[(n * 3 + c) * 1024 + p] - ref));
        }
    expect(worst).toBeLessThan(1e-5);
  });

  it("frees batches prepared ahead when the consumer stops early, and runs the upload hook", async () => {
    const before = cpuOps().memoryStats().storages;
    const uploaded: number[] = [];
    const loader = new DataLoader({
      dataset,
      pipeline: ssl,
      batchSize: 4,
      seed: 1,
      prefetch: 3,
      upload: (b: Batch) => (uploaded.push(b.index), b),
    });
    for await (const b of loader.epoch(0)) {
      b.dispose();
      break;
    }
    // The batches still in flight are freed when their native work completes.
    for (let waited = 0; cpuOps().memoryStats().storages !== before && waited < 10000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(cpuOps().memoryStats().storages).toBe(before);
    // Batches in flight finish in any order, so any of them may reach the upload hook first; the consumed one must have.
    expect(uploaded).toContain(0);
  });
});

describe("DataLoader over an ImageFolder with undecodable files skipped", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-loader-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const p = new PNG({ width: 40, height: 30 });
  for (let i = 0; i < p.data.length; i++) p.data[i] = (i * 13) % 256;
  const good = PNG.sync.write(p, { colorType: 2 });
  for (const [name, data] of [["a/1.png", good], ["a/2.png", Buffer.from("bad")], ["b/3.png", Buffer.from("bad")], ["b/4.png", Buffer.from("bad")], ["b/5.png", good]] as const) {
    fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
    fs.writeFileSync(path.join(tmp, name), data);
  }

  it("shrinks batches, omits a batch with no decodable image, and counts skips", async () => {
    const ds = await ImageFolderDataset.open("pets", "train", tmp, "skip");
    const cfg = { MODEL: { INPUTSHAPE: [24, 24] }, TRAIN: { DATASET: "pets" }, AUG: { EVALUATION: { RESIZE: { ENABLE: true, SIZE: [28, 28] }, CENTERCROP: { ENABLE: true } } } };
    const loader = new DataLoader({ dataset: ds, pipeline: evalPipeline(cfg), batchSize: 2, seed: 0 });
    const sizes: number[] = [];
    const skipped: string[] = [];
    for await (const b of loader.epoch(0)) {
      expect(b.images.shape.slice(1)).toEqual([3, 24, 24]);
      sizes.push(b.size);
      skipped.push(...b.skipped.map((f) => path.relative(tmp, f)));
      b.dispose();
    }
    // Batches: [1, 2] -> 1 kept; [3, 4] -> none (omitted); [5] -> 1 kept.
    expect(sizes).toEqual([1, 1]);
    expect(skipped).toEqual(["a/2.png"]);
    expect(loader.skippedCount).toBe(3);
    expect(ds.skippedFiles.size).toBe(3);
  });
});

describe("augmentDevice (SSQL_AUGMENT)", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });
  const load = async (value: string) => {
    vi.stubEnv("SSQL_AUGMENT", value);
    vi.resetModules();
    return (await import("../../lib/train/device_placement")).augmentDevice;
  };

  it("augments on the GPU when training there, on the CPU with SSQL_AUGMENT=cpu; other values are rejected", async () => {
    let f = await load("");
    expect([f("cuda"), f("cpu")]).toEqual(["cuda", "cpu"]);
    f = await load("cpu");
    expect([f("cuda"), f("cpu")]).toEqual(["cpu", "cpu"]);
    await expect(load("gpu")).rejects.toThrow("SSQL_AUGMENT must be one of device, cpu, got 'gpu'");
  });
});
