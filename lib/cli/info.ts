import * as os from "node:os";
import { env } from "../env";
import { cpuOps, cudaOps } from "../tensor/binding";

interface CudaInfo {
  cudaInfo?: () => Record<string, unknown>;
}

/** `ssql info`: versions and what this machine can run, for bug reports. */
export function info(): void {
  const pkg = require("../../package.json") as { name: string; version: string };
  const lines: [string, string][] = [
    ["package", `${pkg.name} ${pkg.version}`],
    ["node", process.version],
    ["platform", `${os.platform()} ${os.arch()}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown CPU"})`],
  ];
  try {
    const cpu = cpuOps() as ReturnType<typeof cpuOps> & { backendInfo?: () => Record<string, unknown> };
    const bi = cpu.backendInfo?.() ?? {};
    lines.push(["cpu backend", `loaded, ${cpu.getNumThreads()} threads`]);
    for (const [k, v] of Object.entries(bi)) lines.push([`  ${k}`, String(v)]);
    lines.push(["  convolutions", env.convAlgorithm === "tuned" ? "timed per problem (SSQL_CONV_ALGORITHM pins one)" : `${env.convAlgorithm} wherever it applies (SSQL_CONV_ALGORITHM)`]);
  } catch (e) {
    lines.push(["cpu backend", `unavailable: ${(e as Error).message}`]);
  }
  try {
    const cuda = cudaOps() as ReturnType<typeof cudaOps> & CudaInfo;
    lines.push(["cuda backend", "loaded"]);
    for (const [k, v] of Object.entries(cuda.cudaInfo?.() ?? {})) lines.push([`  ${k}`, String(v)]);
  } catch (e) {
    lines.push(["cuda backend", `unavailable: ${(e as Error).message}`]);
  }
  const w = Math.max(...lines.map(([k]) => k.length));
  for (const [k, v] of lines) console.log(`${k.padEnd(w)}  ${v}`);
}
