import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ensureCompiled, root } from "../distributed/helpers";

describe("config without the addon", () => {
  it("loads lib/config and lib/quant/config without requiring a native addon", () => {
    ensureCompiled();
    const script = [
      'const M = require("module"), load = M._load, seen = [];',
      "M._load = function (req, ...rest) { if (/\\.node$/.test(req)) seen.push(req); return load.call(this, req, ...rest); };",
      'const c = require("./lib/config"); require("./lib/quant/config");',
      "process.stdout.write(JSON.stringify({ seen, archs: c.ARCH_NAMES.length }));",
    ].join("\n");
    const out = JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" }));
    expect(out).toEqual({ seen: [], archs: 9 });
  });
});
