import { describe, expect, it } from "vitest";
import { cpuOps } from "../../lib/tensor/binding";
import { allOpNames, compareOutputs, missingOps, opCases } from "../shared/op-cases";
import { philox4x32 } from "../shared/reference";

const ops = cpuOps();

describe("shared op cases on the CPU addon, against plain-JavaScript references", () => {
  for (const c of opCases) {
    const missing = missingOps(c, ops);
    const title = missing.length ? `${c.name} (skipped: the CPU addon lacks ${missing.join(", ")})` : c.name;
    it.skipIf(missing.length > 0)(title, async () => {
      const errs = compareOutputs(await c.run(ops), c.reference());
      for (const [output, err] of Object.entries(errs)) expect(err, `${c.name}: ${output}`).toBeLessThanOrEqual(c.tolerance ?? 1e-5);
    });
  }

  it("cover every op declared in core.ts and nn.ts", () => {
    const covered = new Set<string>(opCases.flatMap((c) => c.ops));
    expect(allOpNames.filter((n) => !covered.has(n))).toEqual([]);
  });
});

describe("the JavaScript Philox-4x32-10 reference", () => {
  it("matches Random123's known-answer vectors", () => {
    const hex = (w: number[]) => w.map((v) => v.toString(16).padStart(8, "0"));
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
    const ones = 0xffffffff;
    expect(hex(philox4x32([ones, ones, ones, ones], [ones, ones]))).toEqual(["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]);
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual([
      "d16cfe09", "94fdcceb", "5001e420", "24126ea1",
    ]);
  });
});
