import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { cpuAddonPath, cudaAddonPath } from "../../lib/tensor/binding";
import type { NativeOps } from "../../lib/tensor/native";
import { declaredOps, interfaceMembers } from "../helpers/opTable";
import { allOpNames } from "../shared/op-cases";

// Device management; memoryStats is in both tables.
const cudaOnly = interfaceMembers("CudaOps").filter((k) => !declaredOps().has(k));
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

  it("load in either order (symbols are hidden in both)", () => {
    // A fresh process loads the CPU addon first, the reverse of this file's order.
    const script = `
      const cpu = require(${JSON.stringify(cpuAddonPath)});
      const cuda = require(${JSON.stringify(cudaAddonPath)});
      const h = cpu.full([3], 2);
      const sum = cpu.item(cpu.sum(h, []));
      let crossed = "no error";
      try { cuda.add(h, h); } catch (e) { crossed = e.message; }
      console.log(JSON.stringify({ cpu: cpu.device, cuda: cuda.device, sum, crossed, cudaHasCudaInfo: typeof cuda.cudaInfo, cpuHasCudaInfo: typeof cpu.cudaInfo }));`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({
      cpu: "cpu", cuda: "cuda", sum: 6, crossed: expect.stringMatching(/lives on cpu, this op runs on cuda/),
      cudaHasCudaInfo: "function", cpuHasCudaInfo: "undefined",
    });
  });

  it("the NCCL process group checks its arguments as the Gloo one, before touching a device", () => {
    const base = { rank: 0, size: 1, storeHost: "127.0.0.1", storePort: 1234, prefix: "pg/x", timeoutMs: 1000 };
    const bad: unknown[] = [
      undefined,
      {},
      { ...base, rank: 3, size: 2 },
      { ...base, storePort: 0 },
      { ...base, timeoutMs: 0 },
      { ...base, rank: 0.5 },
      { ...base, prefix: 7 },
    ];
    const outcome = (ops: Record<string, unknown>, opts: unknown) => {
      try {
        (ops.processGroupCreate as (o: unknown) => unknown)(opts);
        return "no error";
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    for (const opts of bad) {
      const c = outcome(cpu, opts);
      expect(c, JSON.stringify(opts)).not.toBe("no error");
      expect(outcome(cuda, opts), JSON.stringify(opts)).toBe(c);
    }
    const notAGroup = cpu.full([1], 0);
    for (const op of ["allReduce_", "broadcast_", "allGather", "barrier", "processGroupDestroy"])
      expect(() => (cuda[op] as (...a: unknown[]) => unknown)(notAGroup, [], "sum"), op).toThrow(/must be a process group handle/);
    cpu.dispose(notAGroup);
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
