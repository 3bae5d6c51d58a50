/**
 * augmentBatch on CUDA (native/cuda/augment*.cc, augment_kernels.cu) against the CPU op that defines it: bit for bit
 * with the bilinear, bicubic and box filters, normalized error <= 1e-6 with hamming and lanczos (sin/cos); the same
 * errors for bad calls; the DataLoader's batches augmented on the GPU equal to those of the data pool. Used by
 * check.ts (`augment` mode) and cuda-ops.test.ts.
 */
import { DataLoader } from "../../lib/data/loader";
import { InMemoryDataset, type ImageDataset, type SourceBatch } from "../../lib/data/dataset";
import { sslPipeline, type Pipeline } from "../../lib/data/transforms";
import { cpuOps } from "../../lib/tensor/binding";
import type { DeviceOps } from "../../lib/tensor/native";
import { Tensor } from "../../lib/tensor/tensor";
import {
  EXACT_FILTERS,
  IMAGENET_SIZED_SOURCES,
  INTERPOLATIONS,
  TRIG_FILTER_TOLERANCE,
  UNIFORM_SOURCES,
  bitDifferences,
  randomAugmentCase,
  runAugmentCase,
  type AugmentCase,
  type ImageForm,
} from "../shared/augment-cases";
import { outputError } from "../shared/op-cases";
import type { CudaCheck } from "./checks";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function needCpu(cpu: DeviceOps | null): DeviceOps {
  if (!cpu) throw new Error("the CPU addon is needed as the reference and did not load");
  return cpu;
}

/** Compares one case on CUDA (in the given image forms) with the CPU op; returns a one-line summary. */
async function compareCase(cuda: DeviceOps, cpu: DeviceOps, c: AugmentCase, forms: readonly ImageForm[], what: string): Promise<string> {
  const want = await runAugmentCase(cpu, c, "list");
  const parts: string[] = [];
  for (const form of forms) {
    const got = await runAugmentCase(cuda, c, form);
    const d = bitDifferences(got, want);
    const err = outputError(got, want);
    if (EXACT_FILTERS.has(c.interpolation)) assert(d.count === 0, `${what} (${form}): ${d.count} of ${want.length} values differ from the CPU op, first ${d.first}; normalized error ${err}`);
    else assert(err <= TRIG_FILTER_TOLERANCE, `${what} (${form}): normalized error ${err} > ${TRIG_FILTER_TOLERANCE} (${d.count} values differ, first ${d.first})`);
    parts.push(d.count === 0 ? `${form} bit-identical` : `${form} ${d.count}/${want.length} differ, error ${err.toExponential(1)}`);
  }
  return `${what}: ${parts.join(", ")}`;
}

/** A folder-like dataset: decoded images of different sizes, one tensor each (as ImageFolderDataset gives). */
export class DecodedImages implements ImageDataset {
  readonly name = "decoded";
  readonly mode = "train";
  readonly location = "memory";
  readonly classes = ["0"];
  readonly labels: Int32Array;
  private readonly images: Tensor[];

  constructor(shapes: readonly (readonly [number, number, number])[], seed: number) {
    let s = seed >>> 0 || 1;
    this.images = shapes.map((sh) => {
      const data = new Uint8Array(sh[0] * sh[1] * sh[2]);
      for (let i = 0; i < data.length; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        data[i] = s >>> 24;
      }
      return new Tensor(cpuOps().fromArray(data, sh), "cpu", sh).keep();
    });
    this.labels = new Int32Array(shapes.length);
  }

  get length(): number {
    return this.images.length;
  }

  async load(indices: Int32Array): Promise<SourceBatch> {
    return {
      images: this.images,
      src: Int32Array.from(indices),
      sizes: Array.from(indices, (k) => [this.images[k].shape[0], this.images[k].shape[1]] as const),
      labels: Int32Array.from(indices, (k) => this.labels[k]),
      skipped: [],
      dispose() {},
    };
  }

  dispose(): void {
    for (const t of this.images) t.dispose();
  }
}

/** Two loaders, one augmenting on the data pool and one on CUDA, over the same epoch: every view bit for bit. */
async function compareLoaders(dataset: ImageDataset, pipeline: Pipeline, batchSize: number): Promise<string> {
  const collect = async (augmentOn: "cpu" | "cuda") => {
    const out: Float32Array[] = [];
    for await (const b of new DataLoader({ dataset, pipeline, batchSize, seed: 11, augmentOn }).epoch(1)) {
      for (const v of b.views) {
        assert(v.device === augmentOn, `a view augmented on ${augmentOn} is on ${v.device}`);
        out.push(v.toArraySync() as Float32Array);
      }
      b.dispose();
    }
    return out;
  };
  const want = await collect("cpu"), got = await collect("cuda");
  assert(got.length === want.length, `${got.length} views on CUDA, ${want.length} on the CPU`);
  let values = 0;
  got.forEach((g, i) => {
    const d = bitDifferences(g, want[i]);
    assert(d.count === 0, `view ${i}: ${d.count} values differ, first ${d.first}`);
    values += g.length;
  });
  return `${got.length} views, ${values} values bit-identical`;
}

const norm = { MEAN: [0.4914, 0.4822, 0.4465], STD: [0.2023, 0.1994, 0.201] };

export const augmentChecks: CudaCheck[] = [
  {
    name: "augmentBatch on CUDA matches the CPU op: every flag combination, 5 filters, 1/3 channels, odd sizes, 3 image forms",
    async run(cuda, cpuOrNull) {
      const cpu = needCpu(cpuOrNull);
      const lines: string[] = [];
      for (const [k, interp] of INTERPOLATIONS.entries()) lines.push(await compareCase(cuda, cpu, randomAugmentCase(200 + k, interp), ["list", "packed"], interp));
      lines.push(await compareCase(cuda, cpu, randomAugmentCase(210, "bilinear", UNIFORM_SOURCES), ["nhwc"], "bilinear NHWC batch"));
      for (const interp of ["bilinear", "bicubic"] as const)
        lines.push(await compareCase(cuda, cpu, randomAugmentCase(220, interp, IMAGENET_SIZED_SOURCES, [224, 224]), ["packed"], `${interp} 224x224 from ImageNet-sized sources`));
      return lines.join("; ");
    },
  },
  {
    name: "augmentBatch on CUDA rejects bad calls with the CPU op's errors",
    async run(cuda, cpuOrNull) {
      const cpu = needCpu(cpuOrNull);
      const c = randomAugmentCase(230, "bilinear");
      const error = async (ops: DeviceOps, mutate: (p: Float64Array) => void, form: "cpu-tensors" | "own" = "own"): Promise<string> => {
        const p = c.params.slice();
        mutate(p);
        const imgs = c.images.map((im) => (form === "own" ? ops : cpu).fromArray(im.data, im.shape));
        try {
          const outs = await ops.augmentBatch(imgs, p, c.views, c.outSize, c.interpolation, c.mean, c.std);
          outs.forEach((h) => ops.dispose(h));
          return "no error";
        } catch (e) {
          return `${(e as Error).constructor.name}: ${(e as Error).message}`;
        } finally {
          imgs.forEach((h) => (form === "own" ? ops : cpu).dispose(h));
        }
      };
      const mutations: [string, (p: Float64Array) => void][] = [
        ["region outside the source", (p) => (p[2] = 1000)],
        ["source index", (p) => (p[20] = 99)],
        ["zero scale", (p) => (p[6] = 0)],
        ["scale above the source size", (p) => (p[8] = 1e9)],
        ["jitter order", (p) => ((p[9] = 4), p.set([0, 0, 1, 2], 14))],
        ["negative jitter factor", (p) => ((p[9] = 4), p.set([0, 1, 2, 3], 14), (p[10] = -1))],
        ["blur radius", (p) => ((p[9] = 16), (p[18] = 0))],
        ["flags", (p) => (p[9] = 32)],
      ];
      for (const [what, m] of mutations) {
        const want = await error(cpu, m);
        assert(want !== "no error", `${what}: the CPU op accepted it`);
        const got = await error(cuda, m);
        assert(got === want, `${what}: CUDA threw '${got}', the CPU '${want}'`);
      }
      const wrongDevice = await error(cuda, () => {}, "cpu-tensors");
      assert(/lives on cpu|another device/.test(wrongDevice), `CPU tensors given to the CUDA op: ${wrongDevice}`);
      return `${mutations.length} bad records rejected alike; CPU tensors refused (${wrongDevice})`;
    },
  },
  {
    name: "DataLoader augmenting on CUDA yields the data pool's batches (in-memory 32 px; decoded images of mixed sizes at 64 px with blur)",
    async run() {
      const n = 40;
      const px = Uint8Array.from({ length: n * 32 * 32 * 3 }, (_, i) => Math.imul(i, 2654435761) >>> 24);
      const cifar = new InMemoryDataset("synthetic", "train", "memory", px, [n, 32, 32, 3], new Int32Array(n), ["0"]);
      const decoded = new DecodedImages([[75, 100, 3], [100, 75, 3], [64, 64, 1], [97, 131, 3], [50, 66, 3], [120, 90, 3], [81, 81, 3]], 3);
      try {
        const a = await compareLoaders(cifar, sslPipeline({ MODEL: { INPUTSHAPE: [32, 32] }, TRAIN: { DATASET: "cifar10" }, AUG: { TRAIN: { NORMLIZATION: norm } } }), 16);
        const b = await compareLoaders(decoded, sslPipeline({ MODEL: { INPUTSHAPE: [64, 64] }, TRAIN: { DATASET: "imagenet" } }), 3);
        return `in-memory: ${a}; decoded: ${b}`;
      } finally {
        cifar.dispose();
        decoded.dispose();
      }
    },
  },
];
