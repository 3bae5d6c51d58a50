import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cpuOps, cudaAddonPath } from "../../lib/tensor/binding";
import type { DeviceOps } from "../../lib/tensor/native";
import {
  IMAGENET_SIZED_SOURCES,
  INTERPOLATIONS,
  UNIFORM_SOURCES,
  bitDifferences,
  packImages,
  randomAugmentCase,
  runAugmentCase,
  type AugmentCase,
  type ImageForm,
} from "../shared/augment-cases";

/**
 * The CUDA augmentation's plan and stage bodies (native/cuda/augment_plan.h, augment_stages.h), compiled for the host
 * by g++ (test/native/augment_stages_host.cc), against the CPU op: bit for bit on every flag combination and filter.
 * This checks the GPU decomposition (fused two-pass resampling, per-slot jitter, row-sum contrast mean, blur
 * ping-pong) where no GPU is; the device itself is checked by test/gpu/augment_checks.ts.
 */
const root = path.resolve(__dirname, "..", "..");
const exe = path.join(root, ".cache", "augment_stages_host");
const cpu = cpuOps();

function build(): void {
  fs.mkdirSync(path.dirname(exe), { recursive: true });
  const r = spawnSync("g++", ["-std=c++17", "-O2", "-ffp-contract=off", "-o", exe, "test/native/augment_stages_host.cc"], { cwd: root, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
}

function encode(c: AugmentCase): Buffer {
  const parts: Buffer[] = [];
  const i32 = (...v: number[]) => parts.push(Buffer.from(Int32Array.from(v).buffer));
  const f64 = (v: ArrayLike<number>) => parts.push(Buffer.from(Float64Array.from(v).buffer));
  i32(c.images.length, c.params.length / 20, c.views, c.outSize[0], c.outSize[1], INTERPOLATIONS.indexOf(c.interpolation));
  f64(c.mean);
  f64(c.std);
  for (const im of c.images) {
    i32(...im.shape);
    parts.push(Buffer.from(im.data));
  }
  f64(c.params);
  return Buffer.concat(parts);
}

function onHostStages(c: AugmentCase): Float32Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-aug-"));
  try {
    fs.writeFileSync(path.join(dir, "in"), encode(c));
    const r = spawnSync(exe, [path.join(dir, "in"), path.join(dir, "out")], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const b = fs.readFileSync(path.join(dir, "out"));
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4).slice();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const onCpu = (c: AugmentCase, form: ImageForm) => runAugmentCase(cpu, c, form);

describe("the CUDA augmentation stages, run on the host, against the CPU op", () => {
  build();
  INTERPOLATIONS.forEach((interp, k) => {
    it(`${interp}: 64 records (every flag combination per view), odd sizes, 1 and 3 channels: bit-identical`, async () => {
      const c = randomAugmentCase(100 + k, interp);
      const want = await onCpu(c, "list");
      const d = bitDifferences(onHostStages(c), want);
      expect(d.count, d.first).toBe(0);
    });
  });

  it("48x40 from the small sources and 224x224 from ImageNet-sized ones are bit-identical too", async () => {
    const cases = [randomAugmentCase(7, "bilinear", undefined, [48, 40]), randomAugmentCase(8, "bicubic", IMAGENET_SIZED_SOURCES, [224, 224])];
    for (const c of cases) {
      const d = bitDifferences(onHostStages(c), await onCpu(c, "list"));
      expect(d.count, `${c.outSize.join("x")}: ${d.first}`).toBe(0);
    }
  });
});

describe("augmentBatch's packed and NHWC image forms", () => {
  it("give the list form's result", async () => {
    const mixed = randomAugmentCase(3, "bicubic");
    expect(bitDifferences(await onCpu(mixed, "packed"), await onCpu(mixed, "list")).count).toBe(0);
    const uniform = randomAugmentCase(4, "bilinear", UNIFORM_SOURCES);
    const list = await onCpu(uniform, "list");
    expect(bitDifferences(await onCpu(uniform, "nhwc"), list).count).toBe(0);
    expect(bitDifferences(await onCpu(uniform, "packed"), list).count).toBe(0);
  });

  it("reject packed shapes that do not fit the data, and bad channel counts", () => {
    const c = randomAugmentCase(5, "bilinear");
    const p = packImages(c.images);
    const data = cpu.fromArray(p.data, [p.data.length]);
    const call = (shapes: Int32Array, d = data) => () => cpu.augmentBatch({ data: d, shapes }, c.params, c.views, c.outSize, c.interpolation, c.mean, c.std);
    const longer = p.shapes.slice();
    longer[0] += 1;
    expect(call(longer)).toThrow(/describe more than the \d+ bytes/);
    const twoChannels = p.shapes.slice();
    twoChannels[2] = 2;
    expect(call(twoChannels)).toThrow(/packed image 0 must have 1 or 3 channels/);
    expect(call(p.shapes.subarray(1))).toThrow(/\[h, w, c\] per image/);
    expect(call(p.shapes, cpu.fromArray(p.data, [1, p.data.length]))).toThrow(/images.data' must have 1 dimensions/);
    expect(() => cpu.augmentBatch({ data: data } as never, c.params, c.views, c.outSize, c.interpolation, c.mean, c.std)).toThrow(TypeError);
    cpu.dispose(data);
  });
});

// The checks come from one parser (native/core/augment_args.h) and run before the op touches the device, so calls
// whose images are an empty list can be compared on a machine without a GPU.
const cudaBuilt = fs.existsSync(cudaAddonPath);
(cudaBuilt ? describe : describe.skip)("the CUDA addon's augmentBatch argument checks", () => {
  it("throw the CPU op's errors", () => {
    const cuda = require(cudaAddonPath) as DeviceOps;
    const rec = new Float64Array(20);
    const bad: [string, unknown[]][] = [
      ["source outside the images", [[], rec, 1, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["params not float64", [[], new Float32Array(20), 1, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["params length", [[], new Float64Array(19), 1, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["views", [[], new Float64Array(60), 2, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["output size", [[], rec, 1, [0, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["filter", [[], rec, 1, [4, 4], "nearest", [0, 0, 0], [1, 1, 1]]],
      ["std", [[], rec, 1, [4, 4], "bilinear", [0, 0, 0], [1, 0, 1]]],
      ["mean length", [[], rec, 1, [4, 4], "bilinear", [0, 0], [1, 1, 1]]],
      ["packed shapes", [{ data: 1, shapes: new Int32Array(3) }, rec, 1, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
      ["images", [7, rec, 1, [4, 4], "bilinear", [0, 0, 0], [1, 1, 1]]],
    ];
    const error = (ops: DeviceOps, args: unknown[]) => {
      try {
        (ops.augmentBatch as (...a: unknown[]) => unknown)(...args);
      } catch (e) {
        return `${(e as Error).constructor.name}: ${(e as Error).message}`;
      }
      return "no error";
    };
    for (const [what, args] of bad) {
      const want = error(cpu, args);
      expect(want, what).not.toBe("no error");
      expect(error(cuda, args), what).toBe(want);
    }
  });
});
