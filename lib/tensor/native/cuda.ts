/** Device memory of the CUDA backend: live tensors plus the caching allocator's view (rounded block sizes). */
export interface CudaMemoryStats {
  storages: number;
  bytes: number;
  /** Bytes in blocks handed out to tensors and workspaces. */
  allocatedBytes: number;
  /** Bytes obtained from cudaMalloc and not yet returned (allocated + cached). */
  reservedBytes: number;
  /** Free blocks kept for reuse; emptyCache() returns them. */
  cachedBytes: number;
  /** Highest allocatedBytes since the start or resetPeakMemoryStats() (as torch.cuda.max_memory_allocated). */
  peakBytes: number;
  peakReservedBytes: number;
  mallocs: number;
  cacheHits: number;
  /** Free segments given back early by SSQL_CUDA_ALLOC_CONF's garbage_collection_threshold. */
  gcSegments: number;
}

/**
 * The plan a convolution pass runs for one shape (native/cuda/conv.cc): cuDNN's legacy algorithm, chosen by
 * cudnnFind*Ex, or a graph-API engine that timed at least 3% faster with the same output. Times are the best of 3
 * runs when the plan was chosen, in milliseconds; -1 where not measured.
 */
export interface ConvPlan {
  pass: "forward" | "backwardData" | "backwardFilter";
  /** x and w shapes, stride, padding, dilation, groups. */
  shape: string;
  /** "legacy algo N" or "engine engN_kT=V..." (engine index and knob choices, as cudnn-frontend tags plans). */
  path: string;
  legacyAlgo: number;
  legacyMs: number;
  chosenMs: number;
  /** The fastest engine the search timed, adopted or not. */
  bestEngine?: string;
  bestEngineMs?: number;
  /** max |engine - legacy| / max |legacy| of the best engine's output, when it was compared. */
  difference?: number;
  /** What the search did: plans timed and skipped, or why the legacy algorithm was kept. */
  note: string;
}

/**
 * Device management that only ssql_cuda.node exports (native/cuda/module.cc). Not part of NativeOps:
 * binding.ts asks `cudaAvailable()` before any other call, and it never throws.
 */
export interface CudaOps {
  /** null when a CUDA device can be used, else why not (no driver, driver too old, no device). */
  cudaAvailable(): string | null;
  /** Versions (driver, runtime, cuDNN, cuBLAS, NCCL) and the current device's name, capability and memory. */
  cudaInfo(): Record<string, string | number | boolean>;
  /** Selects the device for every later op; call before creating tensors (one device per process). */
  setDevice(device: number): void;
  getDevice(): number;
  /** Waits for every queued op; errors of earlier kernels surface here. */
  synchronize(): void;
  /** Returns cached free blocks (device and pinned host) to the driver. */
  emptyCache(): void;
  memoryStats(): CudaMemoryStats;
  /**
   * TF32 tensor cores for cuDNN convolutions and cuBLAS GEMMs (Ampere and newer): about 8x the float32 GEMM rate,
   * with inputs rounded to a 10-bit mantissa (relative error ~1e-3 instead of ~1e-6). Off by default (SSQL_TF32=1).
   */
  setTf32(enabled: boolean): void;
  /** Every convolution plan chosen so far, one per pass and shape (SSQL_CUDNN_ENGINES=0: legacy algorithms only). */
  convPlanReport(): ConvPlan[];
}
