/**
 * Throughput of the SSL two-view augmentation on the GPU (`check.js augbench`): CIFAR-sized (32 px, in memory, no
 * blur, batch 256) and ImageNet-sized (decoded sources of ~375x500 to 224 px, with blur, batch 128) batches, as
 * source images per second (each gives two views):
 *   - the op alone, sources already on the device;
 *   - the loader's path: parameter draws, gathering and uploading the uint8 sources, the op;
 *   - the same batches on the CPU data pool with one thread per core (the reference, same run).
 * The op's share of the machine's limit: the bytes it must move (uint8 sources read, float32 views written) per
 * second over the measured device copy bandwidth.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { augment, sampleBatchParams, setDataThreads, uploadSources } from "../../lib/data/augment";
import { InMemoryDataset, type ImageDataset } from "../../lib/data/dataset";
import { sslPipeline } from "../../lib/data/transforms";
import { cudaOps, type CudaNativeOps } from "../../lib/tensor/binding";
import { Rng } from "../../lib/tensor/prng";
import { IMAGENET_SIZED_SOURCES } from "../shared/augment-cases";
import { DecodedImages } from "./augment_checks";

interface Config {
  name: string;
  size: number;
  batch: number;
  dataset: string;
  gpuIters: number;
  cpuIters: number;
  make: () => ImageDataset;
}

const CONFIGS: Config[] = [
  {
    name: "32px CIFAR-sized, in memory",
    size: 32,
    batch: 256,
    dataset: "cifar10",
    gpuIters: 50,
    cpuIters: 10,
    make: () => {
      const n = 1024, px = new Uint8Array(n * 32 * 32 * 3);
      for (let i = 0; i < px.length; i++) px[i] = Math.imul(i, 2654435761) >>> 24;
      return new InMemoryDataset("synthetic", "train", "memory", px, [n, 32, 32, 3], new Int32Array(n), ["0"]);
    },
  },
  {
    name: "224px from ImageNet-sized decoded images, blur",
    size: 224,
    batch: 128,
    dataset: "imagenet",
    gpuIters: 20,
    cpuIters: 2,
    make: () => new DecodedImages(Array.from({ length: 128 }, (_, i) => IMAGENET_SIZED_SOURCES[i % IMAGENET_SIZED_SOURCES.length]), 5),
  },
];

/** Device copy bandwidth (read + write bytes per second) of a 256 MiB clone. */
function copyGbps(cuda: CudaNativeOps): number {
  const x = cuda.full([64 << 20], 1);
  cuda.dispose(cuda.clone(x));
  cuda.synchronize();
  const iters = 10, t0 = performance.now();
  for (let i = 0; i < iters; i++) cuda.dispose(cuda.clone(x));
  cuda.synchronize();
  const s = (performance.now() - t0) / 1000 / iters;
  cuda.dispose(x);
  return (2 * 4 * (64 << 20)) / s / 1e9;
}

async function msPer(iters: number, warmup: number, f: () => Promise<void>, sync: () => void): Promise<number> {
  for (let i = 0; i < warmup; i++) await f();
  sync();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await f();
  sync();
  return (performance.now() - t0) / iters;
}

export async function augBench(out: string): Promise<number> {
  const cuda = cudaOps();
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  const copy = copyGbps(cuda);
  const rows: Record<string, unknown>[] = [];
  console.log(`SSL two-view augmentation, source images per second (two views each); device copy bandwidth ${copy.toFixed(0)} GB/s:`);
  for (const c of CONFIGS) {
    const row: Record<string, unknown> = { name: c.name, size: c.size, batch: c.batch };
    const ds = c.make();
    try {
      const pipeline = sslPipeline({ MODEL: { INPUTSHAPE: [c.size, c.size] }, TRAIN: { DATASET: c.dataset } });
      const s = pipeline.spec;
      const src = await ds.load(Int32Array.from({ length: c.batch }, (_, i) => i));
      const rng = Rng.fromSeed(0);
      const { params, outSize } = sampleBatchParams(pipeline, rng, src);
      const { images, uploaded } = uploadSources(src, params, (d, shape) => cuda.fromArray(d, shape));
      const sourceBytes = cuda.shape(uploaded).reduce((a, b) => a * b, 1);
      const opMs = await msPer(c.gpuIters, 3, async () => {
        for (const h of await cuda.augmentBatch(images, params, pipeline.views, outSize, s.interpolation, s.mean, s.std)) cuda.dispose(h);
      }, () => cuda.synchronize());
      cuda.dispose(uploaded);
      const loaderMs = await msPer(c.gpuIters, 3, async () => {
        for (const v of await augment(pipeline, rng, src, "cuda")) v.dispose();
      }, () => cuda.synchronize());
      setDataThreads(threads);
      const cpuMs = await msPer(c.cpuIters, 1, async () => {
        for (const v of await augment(pipeline, rng, src, "cpu")) v.dispose();
      }, () => {});
      const bytes = sourceBytes + pipeline.views * c.batch * 3 * c.size * c.size * 4;
      Object.assign(row, {
        op_ms: opMs, op_images_per_s: (c.batch / opMs) * 1000, op_of_copy: bytes / (opMs / 1000) / 1e9 / copy,
        loader_ms: loaderMs, loader_images_per_s: (c.batch / loaderMs) * 1000,
        cpu_threads: threads, cpu_ms: cpuMs, cpu_images_per_s: (c.batch / cpuMs) * 1000,
      });
      const k = (v: number) => (v >= 1e4 ? `${(v / 1000).toFixed(0)}k` : v.toFixed(0));
      console.log(`  ${c.name}, batch ${c.batch}: GPU op ${opMs.toFixed(2)} ms = ${k((c.batch / opMs) * 1000)} img/s ` +
        `(${(100 * (row.op_of_copy as number)).toFixed(0)}% of copy bandwidth); loader path (draws + upload + op) ${loaderMs.toFixed(2)} ms = ` +
        `${k((c.batch / loaderMs) * 1000)} img/s; CPU data pool, ${threads} threads ${cpuMs.toFixed(1)} ms = ${k((c.batch / cpuMs) * 1000)} img/s; ` +
        `GPU loader path / CPU ${(cpuMs / loaderMs).toFixed(1)}x`);
    } catch (e) {
      row.error = (e as Error).message;
      console.log(`  ${c.name}: ERROR ${row.error}`);
    } finally {
      ds.dispose();
    }
    rows.push(row);
  }
  fs.writeFileSync(out, JSON.stringify({ device: cuda.cudaInfo(), copy_gbps: copy, rows }, null, 2));
  return rows.some((r) => r.error) ? 1 : 0;
}
