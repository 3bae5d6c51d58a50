import * as fs from "node:fs";
import * as path from "node:path";
import { env } from "../env";
import type { CpuNativeOps, CudaOps, DeviceOps } from "./native";

export type Device = "cpu" | "cuda";

const root = path.resolve(__dirname, "..", "..");
export const cpuAddonPath = env.cpuAddon ?? path.join(root, "build", "Release", "ssql_cpu.node");
export const cudaAddonPath = env.cudaAddon ?? path.join(root, "build-cuda", "Release", "ssql_cuda.node");

let cpu: CpuNativeOps | undefined;
/** What ssql_cuda.node exports: the op table without DataOps (its collectives are NCCL process groups), and device management. */
export type CudaNativeOps = CudaOps & DeviceOps;

let cuda: CudaNativeOps | undefined;
let cudaError: Error | undefined;

function load<T>(file: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as T;
}

export function cpuOps(): CpuNativeOps {
  if (!cpu) {
    if (!fs.existsSync(cpuAddonPath))
      throw new Error(`the CPU addon is not built (${cpuAddonPath} is missing): run 'npm run build:native'`);
    cpu = load<CpuNativeOps>(cpuAddonPath);
    if (env.threads) cpu.setNumThreads(env.threads);
    if (env.convAlgorithm !== "tuned") cpu.pinConvAlgorithm(env.convAlgorithm);
  }
  return cpu;
}

/** Loads the CUDA addon on first use; a clear error names what is missing instead of falling back to the CPU. */
export function cudaOps(): CudaNativeOps {
  if (cuda) return cuda;
  if (cudaError) throw cudaError;
  try {
    if (!fs.existsSync(cudaAddonPath))
      throw new Error(`the CUDA addon is not built (${cudaAddonPath} is missing): run 'npm run build:native' on a machine with nvcc, cuDNN and NCCL`);
    const ops = load<CudaNativeOps>(cudaAddonPath);
    const why = ops.cudaAvailable();
    if (why) throw new Error(`CUDA is unavailable: ${why}`);
    ops.setTf32(env.tf32);
    cuda = ops;
    return ops;
  } catch (e) {
    cudaError = e instanceof Error ? e : new Error(String(e));
    throw cudaError;
  }
}

/** The ops of a device (DataOps only through cpuOps()). */
export function opsFor(device: Device): DeviceOps {
  return device === "cpu" ? cpuOps() : cudaOps();
}
