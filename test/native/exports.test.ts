import { describe, expect, it } from "vitest";
import { cpuOps } from "../../lib/tensor/binding";
import { declaredOps } from "../helpers/opTable";

describe("the CPU addon's op table", () => {
  it("exports exactly the ops declared in lib/tensor/native/*.ts", () => {
    const declared = [...declaredOps().keys()].sort();
    const exported = Object.keys(cpuOps()).sort();
    expect(declared.length).toBeGreaterThan(40);
    expect({ missing: declared.filter((n) => !exported.includes(n)), extra: exported.filter((n) => !declared.includes(n)) }).toEqual({ missing: [], extra: [] });
  });

  it("exports functions for every declared method", () => {
    const ops = cpuOps() as unknown as Record<string, unknown>;
    for (const [name, info] of declaredOps()) if (name !== "device") expect(typeof ops[name], `${name} (${info.iface})`).toBe("function");
    expect(ops.device).toBe("cpu");
  });
});
