import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "vitest";

const root = path.resolve(__dirname, "..", "..");
const cxx = process.env.CXX ?? "c++";

/**
 * Builds a C++ check of header-only native code (test/native/<name>.cc, including test/native/check.h) with the
 * compiler that builds the CPU addon, under AddressSanitizer and UBSan where the toolchain has them, runs it, and
 * expects its "all passed (N checks)" line.
 */
export function runHostCheck(name: string): void {
  const out = path.join(root, ".cache", name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const base = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I", "native", "-I", "test/native", `test/native/${name}.cc`, "-o", out];
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
}
