/**
 * Every environment override the trainer reads, in one place. All names start with SSQL_. The CUDA addon reads two
 * itself: SSQL_CUDNN_ENGINES=0 keeps convolutions on cuDNN's legacy algorithms (no graph-API engine search), and
 * SSQL_CUDA_ALLOC_CONF takes PYTORCH_CUDA_ALLOC_CONF's max_split_size_mb and garbage_collection_threshold.
 */
export const env = {
  /** Compute threads for the CPU backend (default: all cores). */
  threads: intVar("SSQL_THREADS"),
  /** A dataset root, searched after DATA.ROOT (the order: README.md, "Dataset search order"). */
  dataDir: process.env.SSQL_DATA_DIR,
  /** Explicit path of ssql_cpu.node / ssql_cuda.node, overriding the build folders. */
  cpuAddon: process.env.SSQL_CPU_ADDON,
  cudaAddon: process.env.SSQL_CUDA_ADDON,
  /** Python interpreter with PyTorch, for fixtures and benchmarks (default: .venv/bin/python). */
  python: process.env.SSQL_PYTHON,
  /** TF32 for cuDNN convolutions and cuBLAS GEMMs on Ampere and newer ("1" to enable). */
  tf32: process.env.SSQL_TF32 === "1",
  /** Seconds a rendezvous or a collective may wait for the other ranks before failing (default 300). */
  distTimeout: intVar("SSQL_DIST_TIMEOUT"),
  /** Network interface Gloo binds to across nodes (PyTorch's GLOO_SOCKET_IFNAME is honoured too). */
  glooIface: process.env.SSQL_GLOO_IFNAME || process.env.GLOO_SOCKET_IFNAME || undefined,
  /**
   * Where batches are augmented when training on a GPU: "device" (default; the uint8 sources are uploaded and
   * augmented there) or "cpu" (on the data pool, then the finished batches are uploaded).
   */
  augment: choiceVar("SSQL_AUGMENT", ["device", "cpu"] as const, "device"),
  /**
   * CPU convolutions: "tuned" (default) times each problem's algorithms on its first call and keeps the fastest, as
   * cudnn.benchmark; "blocked", "plain", "gemm" or "winograd" runs that one wherever it applies, so that separate processes compute bit
   * for bit alike (a resumed run needs no pin: it adopts the algorithms its checkpoint records).
   */
  convAlgorithm: choiceVar("SSQL_CONV_ALGORITHM", ["tuned", "blocked", "plain", "gemm", "winograd"] as const, "tuned"),
};

function intVar(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

function choiceVar<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  if (!(choices as readonly string[]).includes(v)) throw new Error(`${name} must be one of ${choices.join(", ")}, got '${v}'`);
  return v as T;
}
