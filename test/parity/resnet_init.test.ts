import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createResNet } from "../../lib/nn/resnet";
import { Generator } from "../../lib/tensor/ops/random";
import { pythonPath } from "../helpers/fixtures";

/**
 * The ResNets' initial weights against the original's modules (models/resnet.py, models/cifar_resnet.py) built
 * with the local torch: same tensors and shapes, and per tensor the same distribution (std within sampling
 * tolerance, exact constants for BN).
 */
const py = pythonPath();
if (!py) console.warn("resnet_init: skipped: no Python with torch (.venv or $SSQL_PYTHON)");

type Stat = [number[], number, number, number, number];

function originalStats(archs: string[], zero: boolean): Record<string, Record<string, Stat>> {
  const script = path.join(__dirname, "..", "fixtures", "original", "init_stats.py");
  const out = execFileSync(py!, [script, ...archs, ...(zero ? ["zero"] : [])], { encoding: "utf8", maxBuffer: 64 << 20 });
  return JSON.parse(out);
}

function stat(v: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0, q = 0, min = Infinity, max = -Infinity;
  for (const x of v) {
    s += x;
    q += x * x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(Math.max(0, q / v.length - mean * mean)), min, max };
}

function compare(arch: string, zero: boolean, ref: Record<string, Stat>): void {
  const net = createResNet(arch, new Generator(3), { numClasses: 128, zeroInitResidual: zero });
  const ours = net.stateDict();
  expect([...ours.keys()].sort()).toEqual(Object.keys(ref).filter((k) => !k.endsWith("num_batches_tracked")).sort());
  for (const [name, [shape, , refStd, refMin, refMax]] of Object.entries(ref)) {
    const t = ours.get(name);
    if (!t) continue;
    expect(t.shape, name).toEqual(shape);
    const s = stat(t.toArraySync() as Float32Array);
    if (refStd === 0) {
      // Constants (BN weight/bias, running stats, zeroed residual gammas) match exactly.
      expect([s.min, s.max], name).toEqual([refMin, refMax]);
      continue;
    }
    // Two independent samples of n values: their stds differ by about std * sqrt(1/n); allow 6 sigma.
    const n = shape.reduce((a, b) => a * b, 1);
    expect(Math.abs(s.std - refStd) / refStd, `${name}: std ${s.std} vs original ${refStd}`).toBeLessThan(6 / Math.sqrt(n));
    expect(Math.abs(s.mean), `${name}: mean`).toBeLessThan((6 * refStd) / Math.sqrt(n));
  }
  net.dispose();
}

describe.skipIf(!py)("ResNet initialisation as the original's models", () => {
  it("ImageNet ResNets: kaiming-normal(fan_out, relu) convs, BN 1/0, default fc", () => {
    const ref = originalStats(["resnet18", "resnet50"], false);
    compare("resnet18", false, ref.resnet18);
    compare("resnet50", false, ref.resnet50);
    // The std that tells the two inits apart: 64->64 3x3 conv, sqrt(2 / (64 * 9)) against PyTorch's default.
    expect(ref.resnet18["layer1.0.conv1.weight"][2]).toBeCloseTo(Math.sqrt(2 / 576), 2);
  });

  it("zero_init_residual zeroes the last BN gamma of every residual branch", () => {
    const ref = originalStats(["resnet18", "resnet50"], true);
    expect(ref.resnet18["layer1.0.bn2.weight"][4]).toBe(0);
    compare("resnet18", true, ref.resnet18);
    compare("resnet50", true, ref.resnet50);
  });

  it("CIFAR ResNets keep PyTorch's default layer init, as models/cifar_resnet.py", () => {
    const ref = originalStats(["cifar_resnet18", "cifar_resnet50"], false);
    compare("cifar_resnet18", false, ref.cifar_resnet18);
    compare("cifar_resnet50", false, ref.cifar_resnet50);
  });
});
