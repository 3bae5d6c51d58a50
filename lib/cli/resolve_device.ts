import * as fs from "node:fs";
import { cudaAddonPath, cudaOps, type Device } from "../tensor/binding";
import { worldFromEnv } from "../distributed/launch";

/**
 * `--device cpu | cuda | cuda:N`. CUDA must load or this fails with what is missing (never a silent CPU run).
 * Each local rank of a multi-process job takes GPU (N + LOCAL_RANK).
 */
export function resolveDevice(spec: string | null): Device {
  if (spec === null) return cudaUsable() ? resolveDevice("cuda") : "cpu";
  const s = spec.trim().toLowerCase();
  if (s === "cpu" || s === "") return "cpu";
  const m = /^cuda(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`--device must be cpu, cuda or cuda:N, got '${spec}'`);
  const ops = cudaOps() as ReturnType<typeof cudaOps> & { setDevice?: (n: number) => void };
  const index = Number(m[1] ?? 0) + (worldFromEnv()?.localRank ?? 0);
  ops.setDevice?.(index);
  return "cuda";
}

/** DEVICE unset: CUDA when its addon is built and a GPU answers (as the original's torch.cuda.is_available()). */
function cudaUsable(): boolean {
  if (!fs.existsSync(cudaAddonPath)) return false;
  try {
    cudaOps();
    return true;
  } catch {
    return false;
  }
}
