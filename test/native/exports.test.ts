import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuAddonPath, cudaAddonPath } from "../../lib/tensor/binding";
import { declaredFamilies, declaredOps, interfaceMembers } from "../helpers/opTable";

/**
 * Which op families (the interfaces NativeOps extends) each addon implements. Image decoding and the data pool stay
 * on the CPU, so the CUDA addon leaves DataOps out (it has AugmentOps: augmentation on the device); it adds device
 * management (CudaOps). Its collectives (CollectiveOps) are NCCL process groups. The CPU addon adds the choice of
 * convolution algorithm (ConvAlgorithmOps; cuDNN's is the CUDA addon's own).
 */
const families = declaredFamilies();
const allFamilies = [...families.keys()];
const implemented: Record<"cpu" | "cuda", { families: string[]; extras: string[] }> = {
  cpu: { families: allFamilies, extras: ["ConvAlgorithmOps"] },
  cuda: { families: allFamilies.filter((f) => f !== "DataOps"), extras: ["CudaOps"] },
};

function expected(addon: "cpu" | "cuda"): string[] {
  const { families: fams, extras } = implemented[addon];
  return [...new Set(["device", ...fams.flatMap((f) => families.get(f)!), ...extras.flatMap(interfaceMembers)])].sort();
}

function exportsOf(file: string): Record<string, unknown> {
  return require(file) as Record<string, unknown>;
}

function diff(exp: string[], got: string[]) {
  return { missing: exp.filter((n) => !got.includes(n)), extra: got.filter((n) => !exp.includes(n)) };
}

describe("the op families of lib/tensor/native", () => {
  it("are the interfaces NativeOps extends, and DataOps is one of them", () => {
    expect(allFamilies.sort()).toEqual(["AugmentOps", "CollectiveOps", "CoreOps", "DataOps", "ElementwiseOps", "NnOps", "QuantOps", "ReduceShapeOps"]);
    expect(declaredOps().size).toBeGreaterThan(40);
  });
});

describe("the CPU addon implements every family", () => {
  it("exports exactly the ops declared in lib/tensor/native/*.ts", () => {
    const exported = Object.keys(exportsOf(cpuAddonPath)).sort();
    expect(diff(expected("cpu"), exported)).toEqual({ missing: [], extra: [] });
    expect(diff([...declaredOps().keys(), ...interfaceMembers("ConvAlgorithmOps")].sort(), exported)).toEqual({ missing: [], extra: [] });
  });

  it("exports functions for every declared method", () => {
    const ops = exportsOf(cpuAddonPath);
    for (const [name, info] of declaredOps()) if (name !== "device") expect(typeof ops[name], `${name} (${info.iface})`).toBe("function");
    expect(ops.device).toBe("cpu");
  });
});

// Loading the CUDA addon touches no CUDA API, so this runs wherever it is built (GPU or not).
const cudaBuilt = fs.existsSync(cudaAddonPath);
if (!cudaBuilt) console.log(`CUDA export test skipped: ${cudaAddonPath} is not built (no nvcc here)`);

(cudaBuilt ? describe : describe.skip)("the CUDA addon implements every family but DataOps", () => {
  it("exports exactly those families plus CudaOps", () => {
    const ops = exportsOf(cudaAddonPath);
    const exported = Object.keys(ops).sort();
    expect(diff(expected("cuda"), exported)).toEqual({ missing: [], extra: [] });
    expect(families.get("DataOps")!.filter((n) => n in ops)).toEqual([]);
    for (const name of expected("cuda")) if (name !== "device") expect(typeof ops[name], name).toBe("function");
    expect(ops.device).toBe("cuda");
  });
});
