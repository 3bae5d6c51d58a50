/** Every environment override the trainer reads, in one place. All names start with SSQL_. */
export const env = {
  /** Compute threads for the CPU backend (default: all cores). */
  threads: intVar("SSQL_THREADS"),
  /** Root folder under which datasets are looked up (default: ./data, then /usr/share/datasets). */
  dataDir: process.env.SSQL_DATA_DIR,
  /** Explicit path of ssql_cpu.node / ssql_cuda.node, overriding the build folders. */
  cpuAddon: process.env.SSQL_CPU_ADDON,
  cudaAddon: process.env.SSQL_CUDA_ADDON,
  /** Python with the PyTorch reference, for fixtures and benchmarks (default: ./.venv/bin/python). */
  python: process.env.SSQL_PYTHON,
  /** TF32 for cuDNN convolutions and cuBLAS GEMMs on Ampere and newer ("1" to enable). */
  tf32: process.env.SSQL_TF32 === "1",
};

function intVar(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}
