import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Rng } from "../../lib/tensor/prng";
import {
  colorJitter,
  evalPipeline,
  linearEvalPipelines,
  parsePair,
  randomResizedCropParams,
  resizedSize,
  roundHalfEven,
  sampleRecord,
  sslPipeline,
  trainPipeline,
  type AugmentSpec,
  type DataConfig,
} from "../../lib/data/transforms";
import { AUGMENT_RECORD, AugmentField as F, AugmentFlag } from "../../lib/tensor/native/data";

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]) => {
  const m = mean(xs);
  return mean(xs.map((x) => (x - m) ** 2));
};
/** Pearson chi-square statistic of counts against equal expected counts. */
const chiSquare = (counts: number[]) => {
  const e = counts.reduce((a, b) => a + b, 0) / counts.length;
  return counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
};

describe("torchvision parameter algorithms", () => {
  it("rounds half to even like Python and sizes Resize like torchvision", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, 3]);
    expect(resizedSize(29, 23, 25)).toEqual([31, 25]);
    expect(resizedSize(375, 500, 256)).toEqual([256, 341]);
    expect(resizedSize(500, 375, 256)).toEqual([341, 256]);
    expect(resizedSize(10, 20, [7, 9])).toEqual([7, 9]);
    expect(parsePair("(0.08, 1.0)", [0, 0], "x")).toEqual([0.08, 1]);
    expect(parsePair([0.2, 1], [0, 0], "x")).toEqual([0.2, 1]);
  });

  it("RandomResizedCrop: crop area fraction ~ U[scale], log aspect ~ U[log ratio], position uniform", () => {
    const rng = Rng.fromSeed(7);
    const H = 200, W = 200;
    // With scale <= 0.5 no try is rejected on a square image, so the draws are the plain distributions.
    const areas: number[] = [], logAspects: number[] = [], tops: number[] = [];
    for (let i = 0; i < 20000; i++) {
      const b = randomResizedCropParams(rng, H, W, [0.08, 0.5], [3 / 4, 4 / 3]);
      expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W).toBe(true);
      areas.push((b.height * b.width) / (H * W));
      logAspects.push(Math.log(b.width / b.height));
      if (b.height < H - 20) tops.push(b.top / (H - b.height));
    }
    // U[a, b]: mean (a + b) / 2, variance (b - a)^2 / 12; tolerances ~5 standard errors (rounding adds a little).
    expect(Math.abs(mean(areas) - 0.29)).toBeLessThan(0.004);
    expect(Math.abs(variance(areas) - 0.42 ** 2 / 12)).toBeLessThan(0.0008);
    const span = Math.log(4 / 3) - Math.log(3 / 4);
    expect(Math.abs(mean(logAspects))).toBeLessThan(0.006);
    expect(Math.abs(variance(logAspects) - span ** 2 / 12)).toBeLessThan(0.0015);
    expect(Math.abs(mean(tops) - 0.5)).toBeLessThan(0.01);
  });

  it("RandomResizedCrop falls back to the central crop clamped to the ratio range", () => {
    const rng = Rng.fromSeed(1);
    // scale > 1 can never fit: the fallback decides.
    expect(randomResizedCropParams(rng, 50, 100, [2, 3], [3 / 4, 4 / 3])).toEqual({ top: 0, left: 16, height: 50, width: 67 });
    expect(randomResizedCropParams(rng, 100, 50, [2, 3], [3 / 4, 4 / 3])).toEqual({ top: 16, left: 0, height: 67, width: 50 });
    expect(randomResizedCropParams(rng, 40, 45, [2, 3], [3 / 4, 4 / 3])).toEqual({ top: 0, left: 0, height: 40, width: 45 });
  });
});

describe("per-image parameter records", () => {
  const ssl = sslPipeline({ MODEL: { INPUTSHAPE: [224, 224] }, TRAIN: { DATASET: "imagenet" } }).spec;

  it("draws jitter factors, order, grayscale, blur and flips with torchvision's distributions", () => {
    const rng = Rng.fromSeed(3);
    const N = 20000;
    const rec = new Float64Array(AUGMENT_RECORD);
    const jit: number[] = [], gray: number[] = [], blur: number[] = [], flip: number[] = [];
    const factors: number[][] = [[], [], [], []];
    const sigmas: number[] = [];
    const orders = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      sampleRecord(ssl, rng, 0, 300, 400, rec, 0);
      const f = rec[F.flags];
      jit.push(f & AugmentFlag.jitter ? 1 : 0);
      gray.push(f & AugmentFlag.grayscale ? 1 : 0);
      blur.push(f & AugmentFlag.blur ? 1 : 0);
      flip.push(f & AugmentFlag.hflip ? 1 : 0);
      expect(f & AugmentFlag.vflip).toBe(0);
      if (f & AugmentFlag.jitter) {
        for (let k = 0; k < 4; k++) factors[k].push(rec[F.brightness + k]);
        const key = Array.from(rec.subarray(F.order, F.order + 4)).join("");
        orders.set(key, (orders.get(key) ?? 0) + 1);
      }
      if (f & AugmentFlag.blur) sigmas.push(rec[F.sigma]);
      expect(rec[F.height] / rec[F.scaleY]).toBeCloseTo(224, 9);
    }
    const se = (p: number) => 5 * Math.sqrt((p * (1 - p)) / N);
    expect(Math.abs(mean(jit) - 0.8)).toBeLessThan(se(0.8));
    expect(Math.abs(mean(gray) - 0.2)).toBeLessThan(se(0.2));
    expect(Math.abs(mean(blur) - 0.5)).toBeLessThan(se(0.5));
    expect(Math.abs(mean(flip) - 0.5)).toBeLessThan(se(0.5));
    for (let k = 0; k < 3; k++) {
      expect(Math.min(...factors[k])).toBeGreaterThanOrEqual(0.6);
      expect(Math.max(...factors[k])).toBeLessThan(1.4);
      expect(Math.abs(mean(factors[k]) - 1)).toBeLessThan(0.005);
      expect(Math.abs(variance(factors[k]) - 0.8 ** 2 / 12)).toBeLessThan(0.002);
    }
    expect(Math.min(...factors[3])).toBeGreaterThanOrEqual(-0.1);
    expect(Math.max(...factors[3])).toBeLessThan(0.1);
    expect(Math.abs(mean(factors[3]))).toBeLessThan(0.0015);
    expect(Math.min(...sigmas)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...sigmas)).toBeLessThan(2);
    expect(Math.abs(mean(sigmas) - 1.05)).toBeLessThan(0.02);
    // All 24 orders, uniformly: chi-square with 23 degrees of freedom, p < 1e-4 above ~60.
    expect(orders.size).toBe(24);
    expect(chiSquare([...orders.values()])).toBeLessThan(60);
  });

  it("places Resize(shorter side) + CenterCrop as one resampling with the crop offset in source pixels", () => {
    // The case "resize shorter side + center crop bicubic" of test/fixtures/augment.json.
    const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/augment.json"), "utf8"));
    const ref = fixture.cases.find((c: { name: string }) => c.name.startsWith("resize shorter side")).record;
    const spec: AugmentSpec = { ...ssl, geometry: { kind: "resize", size: 25, crop: [20, 20] }, colorJitter: null, grayscale: 0, blur: null, hflip: 0 };
    const rec = new Float64Array(AUGMENT_RECORD);
    sampleRecord(spec, Rng.fromSeed(0), 0, 29, 23, rec, 0);
    for (let i = 0; i <= F.scaleX; i++) expect(rec[i]).toBeCloseTo(ref[i], 12);
  });

  it("turns off a zero jitter amount as torchvision stores None", () => {
    const cj = colorJitter(1, 0, 0.5, 0, 0.2);
    expect(cj.brightness).toBeNull();
    expect(cj.contrast).toEqual([0.5, 1.5]);
    expect(cj.saturation).toBeNull();
    expect(cj.hue).toEqual([-0.2, 0.2]);
    expect(() => colorJitter(1, 0, 0, 0, 0.7)).toThrow(/hue/);
    const rec = new Float64Array(AUGMENT_RECORD);
    sampleRecord({ ...ssl, colorJitter: cj }, Rng.fromSeed(2), 0, 50, 50, rec, 0);
    expect(Number.isNaN(rec[F.brightness])).toBe(true);
    expect(Number.isNaN(rec[F.saturation])).toBe(true);
  });
});

describe("pipelines from the config", () => {
  const cifarNorm = { MEAN: [0.4914, 0.4822, 0.4465], STD: [0.2023, 0.1994, 0.201] };

  it("SSL: two views, RandomResizedCrop(INPUTSHAPE, 0.2-1), blur only off CIFAR", () => {
    const cifar = sslPipeline({ MODEL: { INPUTSHAPE: [32, 32] }, TRAIN: { DATASET: "cifar100" }, AUG: { TRAIN: { NORMLIZATION: cifarNorm, RANDOMRESIZEDCROP: { ENABLE: true, SCALE: "(0.08, 1.0)" } } } });
    expect(cifar.views).toBe(2);
    expect(cifar.spec.geometry).toEqual({ kind: "randomResizedCrop", size: [32, 32], scale: [0.2, 1], ratio: [3 / 4, 4 / 3] });
    expect(cifar.spec.blur).toBeNull();
    expect(cifar.spec.mean).toEqual(cifarNorm.MEAN);
    expect(cifar.spec.colorJitter).toEqual({ p: 0.8, brightness: [0.6, 1.4], contrast: [0.6, 1.4], saturation: [0.6, 1.4], hue: [-0.1, 0.1] });
    const inet = sslPipeline({ MODEL: { INPUTSHAPE: [224, 224] }, TRAIN: { DATASET: "imagenet" } });
    expect(inet.spec.blur).toEqual({ p: 0.5, sigma: [0.1, 2] });
  });

  it("linear eval: the hard-coded CIFAR and ImageNet pipelines", () => {
    const c = linearEvalPipelines({ MODEL: { ARCH: "cifar_resnet18", INPUTSHAPE: [32, 32] }, TRAIN: { DATASET: "cifar10" } });
    expect(c.train.spec.geometry).toEqual({ kind: "randomResizedCrop", size: [32, 32], scale: [0.8, 1], ratio: [3 / 4, 4 / 3] });
    expect(c.train.spec.interpolation).toBe("bicubic");
    expect(c.train.spec.hflip).toBe(0.5);
    expect(c.eval.spec.geometry).toEqual({ kind: "resize", size: 36, crop: [32, 32] });
    expect(c.eval.spec.std).toEqual([0.2023, 0.1994, 0.201]);
    const i = linearEvalPipelines({ MODEL: { ARCH: "resnet50", INPUTSHAPE: [224, 224] }, TRAIN: { DATASET: "imagenet" } });
    expect(i.train.spec.geometry).toEqual({ kind: "randomResizedCrop", size: [224, 224], scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
    expect(i.eval.spec.geometry).toEqual({ kind: "resize", size: 256, crop: [224, 224] });
    expect(i.eval.spec.mean).toEqual([0.485, 0.456, 0.406]);
  });

  it("transfer: build_train_transform / build_eval_transform from AUG (resnet18_finetune_cifar.yaml)", () => {
    const cfg: DataConfig = {
      MODEL: { ARCH: "resnet18", INPUTSHAPE: [224, 224] },
      TRAIN: { DATASET: "cifar10" },
      AUG: {
        TRAIN: { HORIZONTAL_FLIP: { PROB: 0.5 }, RANDOMRESIZEDCROP: { ENABLE: true, SCALE: "(0.08, 1.0)", INTERPOLATION: "bilinear" }, NORMLIZATION: cifarNorm },
        EVALUATION: { RESIZE: { ENABLE: true, SIZE: [224, 224] }, CENTERCROP: { ENABLE: false }, NORMLIZATION: cifarNorm },
      },
    };
    const p = linearEvalPipelines(cfg);
    expect(p.train.spec.geometry).toEqual({ kind: "randomResizedCrop", size: [224, 224], scale: [0.08, 1], ratio: [3 / 4, 4 / 3] });
    expect(p.train.spec.hflip).toBe(0.5);
    expect(p.train.spec.colorJitter).toBeNull();
    // [224, 224] is square, so the original passes the int 224: a shorter-side resize.
    expect(p.eval.spec.geometry).toEqual({ kind: "resize", size: 224, crop: undefined });
    const flowers = evalPipeline({ ...cfg, AUG: { EVALUATION: { RESIZE: { ENABLE: true, SIZE: [256, 256] }, CENTERCROP: { ENABLE: true } } } });
    expect(flowers.spec.geometry).toEqual({ kind: "resize", size: 256, crop: [224, 224] });
    expect(flowers.spec.mean).toEqual([0, 0, 0]);
    expect(flowers.spec.std).toEqual([1, 1, 1]);
    const jitter = trainPipeline({ ...cfg, AUG: { TRAIN: { COLOR_JITTER: { PROB: 0.3 } } } });
    expect(jitter.spec.geometry).toEqual({ kind: "resize", size: 224 });
    expect(jitter.spec.colorJitter).toEqual({ p: 0.3, brightness: [0.6, 1.4], contrast: [0.6, 1.4], saturation: [0.8, 1.2], hue: [-0.1, 0.1] });
    expect(() => trainPipeline({ ...cfg, AUG: { TRAIN: { RANDOMCROP: { ENABLE: true } } } })).toThrow(/RANDOMCROP is not supported/);
    expect(() => trainPipeline({ ...cfg, AUG: { TRAIN: { RANDOMRESIZEDCROP: { ENABLE: true, INTERPOLATION: "nearest" } } } })).toThrow(/nearest/);
  });
});
