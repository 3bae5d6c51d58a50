import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { expect, it } from "vitest";
import { ensureCompiled, root } from "../distributed/helpers";

it("node lib/main.js --version prints the package's name and version and exits 0", () => {
  ensureCompiled();
  const pkg = require(path.join(root, "package.json")) as { name: string; version: string };
  for (const flag of ["--version", "-V"]) {
    const r = spawnSync(process.execPath, [path.join(root, "lib", "main.js"), flag], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${pkg.name} ${pkg.version}\n`);
  }
});
