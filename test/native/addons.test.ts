import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuAddonPath, cudaAddonPath } from "../../lib/tensor/binding";
import type { NativeOps } from "../../lib/tensor/native";
import { allOpNames } from "../shared/op-cases";

const cudaOnly = ["cudaAvailable", "cudaInfo", "setDevice", "getDevice", "synchronize", "emptyCache", "resetPeakMemoryStats",
  "setTf32", "commUniqueId", "commInit", "ncclAllReduce_", "ncclBroadcast_", "ncclAllGather", "commAsyncError", "commDestroy", "commAbort"];
const built = fs.existsSync(cudaAddonPath);
if (!built) console.log(`addon separation test skipped: ${cudaAddonPath} is not built (no nvcc here)`);

// Loads the CUDA addon first: before its symbols were hidden, the CPU addon loaded second picked up its ops.
(built ? describe : describe.skip)("the CPU and CUDA addons in one process", () => {
  // A skipped describe still runs its body: load only when the addon exists.
  const cuda = (built ? require(cudaAddonPath) : {}) as NativeOps & Record<string, unknown>;
  const cpu = (built ? require(cpuAddonPath) : {}) as NativeOps & Record<string, unknown>;

  it("keep separate op tables", () => {
    expect(cpu.device).toBe("cpu");
    expect(cuda.device).toBe("cuda");
    expect(cudaOnly.filter((k) => k in cpu)).toEqual([]);
    expect(allOpNames.filter((k) => typeof cuda[k] !== "function")).toEqual([]);
    expect(cudaOnly.filter((k) => typeof cuda[k] !== "function")).toEqual([]);
  });

  it("cudaAvailable() answers without throwing, with or without a driver", () => {
    const why = (cuda.cudaAvailable as () => string | null)();
    expect(why === null || (typeof why === "string" && why.length > 0)).toBe(true);
  });

  it("the CUDA ops reject CPU tensors with a TypeError", () => {
    const h = cpu.full([2], 1);
    expect(() => cuda.add(h, h)).toThrow(/argument 0 'a' lives on cpu, this op runs on cuda/);
    expect(() => cuda.toArray(h)).toThrow(TypeError);
    cpu.dispose(h);
  });
});
