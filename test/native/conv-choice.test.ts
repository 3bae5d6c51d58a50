import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

// When the CUDA convolution adopts a cuDNN graph-API engine over the legacy algorithm (native/cuda/conv_choice.h),
// on the CPU: builds test/native/conv_choice_check.cc with the C++ compiler that builds the CPU addon, under
// AddressSanitizer and UBSan where the toolchain has them.
const root = path.resolve(__dirname, "..", "..");
const cxx = process.env.CXX ?? "c++";

describe("the convolution engine choice", () => {
  it("adopts an engine only when it is 3% faster and matches the legacy output to 1e-5", () => {
    const out = path.join(root, ".cache", "conv_choice_check");
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const base = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I", "native", "test/native/conv_choice_check.cc", "-o", out];
    let build = spawnSync(cxx, ["-fsanitize=address,undefined", ...base], { cwd: root, encoding: "utf8" });
    if (build.status !== 0) {
      console.log(`building without sanitizers (${build.stderr.split("\n")[0]})`);
      build = spawnSync(cxx, base, { cwd: root, encoding: "utf8" });
    }
    expect(build.status, build.stderr).toBe(0);
    const run = spawnSync(out, { encoding: "utf8" });
    console.log(run.stdout);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/all passed \(\d+ checks\)/);
  }, 120_000);
});
