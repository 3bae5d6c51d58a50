import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

// Builds test/gpu/fake_quant_check.cu with the CUDA kernels (plain launchers, no addon) and runs it on the device.
const root = path.resolve(__dirname, "..", "..");
const nvcc = path.join(process.env.CUDA_HOME ?? "/usr/local/cuda", "bin", "nvcc");
const hasGpu = fs.existsSync("/dev/nvidia0") && fs.existsSync(nvcc);

describe.skipIf(!hasGpu)("CUDA quantization kernels on the device", () => {
  it("match the shared per-element definitions bit for bit (range backward within 1e-5)", () => {
    const out = path.join(root, ".cache", "fq_check");
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const build = spawnSync(nvcc, ["-std=c++17", "-arch=native", "-I", "native", "native/cuda/fake_quant.cu", "native/cuda/observers.cu", "test/gpu/fake_quant_check.cu", "-o", out], {
      cwd: root,
      encoding: "utf8",
    });
    expect(build.status, build.stderr).toBe(0);
    const run = spawnSync(out, { encoding: "utf8" });
    console.log(run.stdout);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("all passed");
  });
});
