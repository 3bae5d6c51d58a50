import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureCompiled, root } from "../distributed/helpers";

/**
 * `npm pack` makes a package a user can install and run: the compiled lib/ with its declarations, the native
 * sources and binding.gyp for the build on install, the configs, and the `ssql` bin the README uses (npx ssql).
 */
describe("npm pack", () => {
  it("packs the compiled library, its types, the native sources, the configs and the ssql bin, and no tests", () => {
    ensureCompiled();
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    const out = execFileSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
    const files = new Set<string>((JSON.parse(out)[0].files as { path: string }[]).map((f) => f.path));
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    for (const f of [pkg.main, pkg.types, pkg.bin.ssql, "lib/main.d.ts", "binding.gyp", "native/cpu/image_decode.cc", "native/core", "configs/cifar/resnet18_ssql_simsiam_cifar.yaml", "README.md"]) {
      const present = files.has(f) || [...files].some((p) => p.startsWith(`${f}/`));
      expect(present, f).toBe(true);
    }
    expect([...files].filter((f) => /^(test|bench)\//.test(f) || f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(pkg.scripts.install).toBe("node-gyp rebuild");
    expect(fs.readFileSync(path.join(root, pkg.bin.ssql), "utf8").startsWith("#!/usr/bin/env node")).toBe(true);
  });
});
