/**
 * CUDA checks shared by the vitest file (test/gpu/cuda-ops.test.ts) and the plain-node GPU runner (check.ts):
 * every shared op case on CUDA against the CPU addon and the JavaScript references, plus what only CUDA has
 * (asynchronous read-back, out-of-memory recovery, the caching allocator, the NCCL process group, the TF32 switch).
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { backward } from "../../lib/tensor/autograd";
import type { CudaNativeOps } from "../../lib/tensor/binding";
import * as E from "../../lib/tensor/ops/elementwise";
import * as Red from "../../lib/tensor/ops/reduce";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { toDevice, toDeviceAsync } from "../../lib/tensor/transfer";
import type { CudaMemoryStats, DeviceOps, NativeTensor } from "../../lib/tensor/native";
import { compareOutputs, missingOps, opCases, rand, type OpCase, type Outputs } from "../shared/op-cases";
import * as R from "../shared/reference";

export const cudaTolerance = 1e-5;

export interface CaseResult {
  name: string;
  ops: readonly string[];
  ok: boolean;
  /** Normalized error of each CUDA output against the CPU addon's (absent when the CPU lacks the ops). */
  vsCpu?: Record<string, number>;
  /** Normalized error of each CUDA output against the JavaScript reference. */
  vsReference?: Record<string, number>;
  cpuSkipped?: string;
  error?: string;
  ms: number;
}

const worst = (errs: Record<string, number> | undefined) => Math.max(0, ...Object.values(errs ?? {}));

/** Runs one case on CUDA and compares it with the CPU addon (when it has the ops) and the reference. */
export async function runCaseOnCuda(c: OpCase, cuda: DeviceOps, cpu: DeviceOps | null): Promise<CaseResult> {
  const t0 = performance.now();
  const result: CaseResult = { name: c.name, ops: c.ops, ok: false, ms: 0 };
  try {
    const got = await c.run(cuda);
    result.vsReference = compareOutputs(got, c.reference());
    const missing = cpu ? missingOps(c, cpu) : [...c.ops];
    if (!cpu) result.cpuSkipped = "CPU addon unavailable";
    else if (missing.length) result.cpuSkipped = `CPU addon lacks ${missing.join(", ")}`;
    else {
      try {
        result.vsCpu = compareOutputs(got, await c.run(cpu));
      } catch (e) {
        result.cpuSkipped = `CPU run failed: ${(e as Error).message}`;
      }
    }
    const tol = c.tolerance ?? cudaTolerance;
    result.ok = worst(result.vsReference) <= tol && worst(result.vsCpu) <= cudaTolerance;
  } catch (e) {
    result.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  result.ms = Math.round(performance.now() - t0);
  return result;
}

export async function runAllCases(cuda: DeviceOps, cpu: DeviceOps | null): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  for (const c of opCases) out.push(await runCaseOnCuda(c, cuda, cpu));
  return out;
}

export interface CudaCheck {
  name: string;
  /** Throws on failure; returns what it measured. */
  run(cuda: CudaNativeOps, cpu: DeviceOps | null): Promise<string>;
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

function expectThrow(f: () => unknown, kind: ErrorConstructor, pattern: RegExp): string {
  try {
    f();
  } catch (e) {
    assert(e instanceof kind, `expected ${kind.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    assert(pattern.test((e as Error).message), `unexpected message: ${(e as Error).message}`);
    return (e as Error).message;
  }
  throw new Error(`expected a ${kind.name} matching ${pattern}`);
}

function disposeAll(ops: DeviceOps, hs: (NativeTensor | null)[]): void {
  for (const h of hs) if (h) ops.dispose(h);
}

export const cudaChecks: CudaCheck[] = [
  {
    name: "cudaInfo reports the device and library versions",
    async run(cuda) {
      const info = cuda.cudaInfo();
      assert(info.available === true, `not available: ${String(info.reason)}`);
      for (const k of ["name", "computeCapability", "driverCuda", "runtimeCuda", "cudnn", "cublas", "nccl"])
        assert(k in info, `cudaInfo() lacks ${k}`);
      return JSON.stringify(info);
    },
  },
  {
    name: "toArrayAsync waits off the event loop",
    async run(cuda) {
      const n = 2048;
      const a = cuda.uniform([n, n], -1, 1, 1, 0);
      // The first read-back of a size allocates its pinned staging buffer (cudaMallocHost can wait for the device);
      // do it before queueing the long work so the timed wait is the copy's alone.
      await cuda.toArrayAsync(a);
      let c = cuda.matmul(a, a, false, false);
      for (let i = 0; i < 40; i++) {
        const next = cuda.matmul(c, a, false, true);
        cuda.dispose(c);
        c = cuda.mulScalar(next, 1 / n);
        cuda.dispose(next);
      }
      let ticks = 0;
      let done = false;
      const tick = () => {
        if (done) return;
        ticks++;
        setImmediate(tick);
      };
      setImmediate(tick);
      const t0 = performance.now();
      const data = await withTimeout(cuda.toArrayAsync(c), 30_000, "toArrayAsync did not resolve within 30 s");
      done = true;
      const ms = performance.now() - t0;
      disposeAll(cuda, [a, c]);
      assert(data.length === n * n, "wrong length");
      assert(ticks > 2, `the event loop ran ${ticks} times during a ${ms.toFixed(1)} ms wait`);
      return `${ticks} event-loop turns during a ${ms.toFixed(1)} ms read-back wait`;
    },
  },
  {
    name: "out of memory is a JavaScript Error and the process stays usable",
    async run(cuda) {
      const before = cuda.memoryStats();
      const msg = expectThrow(() => cuda.full([2 ** 40], 0), Error, /out of memory/i);
      const h = cuda.full([1024], 2);
      const total = cuda.sum(h, []);
      const v = cuda.item(total);
      disposeAll(cuda, [h, total]);
      assert(v === 2048, `an op after the OOM gave ${v}`);
      const after = cuda.memoryStats();
      assert(after.storages === before.storages, `storages ${before.storages} -> ${after.storages}`);
      return msg;
    },
  },
  {
    name: "the caching allocator reuses blocks and memory stays flat over steps",
    async run(cuda) {
      const x = cuda.uniform([32, 64, 16, 16], -1, 1, 3, 0);
      const w = cuda.uniform([64, 64, 3, 3], -0.1, 0.1, 4, 0);
      const step = () => {
        const y = cuda.conv2d(x, w, null, [1, 1], [1, 1], [1, 1], 1);
        const [bn, mean, inv] = cuda.batchNorm(y, null, null, null, null, true, 0.1, 1e-5);
        const r = cuda.relu(bn);
        const dx = cuda.conv2dBackwardData(r, w, [32, 64, 16, 16], [1, 1], [1, 1], [1, 1], 1);
        const [dw] = cuda.conv2dBackwardWeight(r, x, [64, 64, 3, 3], [1, 1], [1, 1], [1, 1], 1, false);
        disposeAll(cuda, [y, bn, mean, inv, r, dx, dw]);
      };
      step();
      cuda.synchronize();
      const s0 = cuda.memoryStats();
      for (let i = 0; i < 20; i++) step();
      cuda.synchronize();
      const s1 = cuda.memoryStats();
      disposeAll(cuda, [x, w]);
      assert(s1.storages === s0.storages && s1.allocatedBytes === s0.allocatedBytes,
        `live storages ${s0.storages} -> ${s1.storages}, allocated ${s0.allocatedBytes} -> ${s1.allocatedBytes}`);
      assert(s1.mallocs === s0.mallocs, `cudaMalloc calls grew from ${s0.mallocs} to ${s1.mallocs} in steady state`);
      const cached = cuda.memoryStats().cachedBytes;
      cuda.emptyCache();
      const s2 = cuda.memoryStats();
      assert(s2.cachedBytes === 0, `emptyCache left ${s2.cachedBytes} cached bytes`);
      return `steady state: ${s1.storages} storages, ${s1.allocatedBytes} B allocated, ${s1.cacheHits - s0.cacheHits} cache hits over 20 steps; emptyCache returned ${cached} B`;
    },
  },
  {
    name: "SSQL_CUDA_ALLOC_CONF: garbage_collection_threshold gives back old segments; a bad key is a clear error",
    async run(cuda) {
      // The allocator reads the variable once per process, so each setting runs in a child process.
      const binding = path.resolve(__dirname, "..", "..", "lib", "tensor", "binding");
      const script = `
        const c = require(${JSON.stringify(binding)}).cudaOps();
        try {
          const a = c.full([2 ** 28], 0);  // 1 GiB
          c.dispose(a);
          const b = c.full([3 * 2 ** 27], 0);  // 1.5 GiB: a new segment, and the cached 1 GiB one is old
          c.dispose(b);
          c.synchronize();
          console.log(JSON.stringify(c.memoryStats()));
        } catch (e) {
          console.log("ERROR " + e.name + ": " + e.message);
        }`;
      const child = (conf: string) => {
        const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, SSQL_CUDA_ALLOC_CONF: conf }, timeout: 60_000 });
        assert(r.status === 0, `child with '${conf}' exited ${r.status}: ${r.stderr}`);
        return r.stdout.trim().split("\n").pop() ?? "";
      };
      const total = Number(cuda.cudaInfo().memoryBytes);
      // The threshold is a share of the device: about 1.2 GiB, below 1 GiB + 1.5 GiB.
      const threshold = Math.min(0.9, (1.2 * 2 ** 30) / total).toFixed(4);
      const gc = child(`garbage_collection_threshold:${threshold}`);
      assert(!gc.startsWith("ERROR"), gc);
      const stats = JSON.parse(gc) as CudaMemoryStats;
      assert(stats.gcSegments >= 1, `no segment was collected: ${gc}`);
      const off = JSON.parse(child("")) as CudaMemoryStats;
      assert(off.gcSegments === 0, `collected without the option: ${JSON.stringify(off)}`);
      const bad = child("expandable_segments:True");
      assert(/^ERROR RangeError: SSQL_CUDA_ALLOC_CONF: unknown key 'expandable_segments'/.test(bad), `bad key gave: ${bad}`);
      return `threshold ${threshold}: ${stats.gcSegments} segment(s) collected, reserved ${stats.reservedBytes} B; bad key: ${bad}`;
    },
  },
  {
    name: "the TF32 switch changes GEMM and convolution precision only when on",
    async run(cuda) {
      const a = rand(256 * 512, 11), b = rand(512 * 384, 12);
      const ref = R.matmulRef(a, [256, 512], b, [512, 384], false, false);
      const x = rand(8 * 64 * 8 * 8, 13), w = rand(64 * 64 * 9, 14, -0.2, 0.2);
      const p = { stride: [1, 1] as [number, number], padding: [1, 1] as [number, number], dilation: [1, 1] as [number, number], groups: 1 };
      const convRef = R.conv2dRef(x, [8, 64, 8, 8], w, [64, 64, 3, 3], null, p);
      const measure = () => {
        const ha = cuda.fromArray(a, [256, 512]), hb = cuda.fromArray(b, [512, 384]);
        const hx = cuda.fromArray(x, [8, 64, 8, 8]), hw = cuda.fromArray(w, [64, 64, 3, 3]);
        const c = cuda.matmul(ha, hb, false, false);
        const y = cuda.conv2d(hx, hw, null, p.stride, p.padding, p.dilation, 1);
        const errs = [errOf(cuda.toArray(c), ref), errOf(cuda.toArray(y), convRef)];
        disposeAll(cuda, [ha, hb, hx, hw, c, y]);
        return errs;
      };
      const [gemmOff, convOff] = measure();
      cuda.setTf32(true);
      let on: number[];
      try {
        on = measure();
      } finally {
        cuda.setTf32(false);
      }
      const [gemmOff2] = measure();
      assert(gemmOff <= 1e-5 && convOff <= 1e-5, `TF32 off: GEMM ${gemmOff}, conv ${convOff}`);
      assert(gemmOff2 <= 1e-5, `TF32 off again: GEMM ${gemmOff2}`);
      return `normalized error TF32 off: GEMM ${gemmOff.toExponential(2)}, conv ${convOff.toExponential(2)}; ` +
        `TF32 on: GEMM ${on[0].toExponential(2)}, conv ${on[1].toExponential(2)}`;
    },
  },
  {
    name: "toDevice moves tensors between CPU and CUDA, gradients included",
    async run() {
      const data = rand(12, 21), coef = rand(12, 22);
      const x = tensor(data, [3, 4]).keep();
      x.requiresGrad = true;
      const c = toDevice(tensor(coef, [3, 4]), "cuda").keep();
      const loss = tidy(() => {
        const l = Red.sum(E.mul(toDevice(x, "cuda"), c));
        backward(l);
        return l;
      });
      const back = await toDeviceAsync(c, "cpu");
      const lossValue = await loss.item();
      const expectLoss = Array.from(data).reduce((s, v, i) => s + v * coef[i], 0);
      const gradErr = errOf(x.grad!.toArraySync(), coef);
      const backErr = errOf(back.toArraySync(), coef);
      const devices = `${x.grad!.device}/${c.device}/${back.device}`;
      for (const t of [x, c, loss, back, x.grad!]) t.dispose();
      assert(devices === "cpu/cuda/cpu", `devices ${devices}`);
      assert(Math.abs(lossValue - expectLoss) <= 1e-5 * Math.abs(expectLoss) + 1e-6, `loss ${lossValue} vs ${expectLoss}`);
      assert(gradErr === 0 && backErr === 0, `grad error ${gradErr}, round-trip error ${backErr}`);
      return "CPU -> CUDA -> CPU round trip exact; gradient reaches the CPU leaf";
    },
  },
  {
    name: "bad inputs become JavaScript errors",
    async run(cuda, cpu) {
      const msgs: string[] = [];
      if (cpu) {
        const h = cpu.full([2], 1);
        msgs.push(expectThrow(() => cuda.add(h, h), TypeError, /lives on cpu/));
        cpu.dispose(h);
      }
      msgs.push(expectThrow(() => cuda.setDevice(1 << 20), RangeError, /does not exist/));
      const x = cuda.full([2, 3], 1);
      msgs.push(expectThrow(() => cuda.matmul(x, x, false, false), RangeError, /inner dimensions/));
      msgs.push(expectThrow(() => cuda.conv2d(x, x, null, [1, 1], [0, 0], [1, 1], 1), RangeError, /input must be/));
      cuda.dispose(x);
      msgs.push(expectThrow(() => cuda.toArray(x), TypeError, /disposed/));
      cuda.setDevice(0);
      cuda.synchronize();
      return msgs.join(" | ");
    },
  },
  {
    name: "NCCL process group of one rank: all-reduce, broadcast, all-gather",
    async run(cuda) {
      // The NCCL path of the trainer (native/cuda/process_group.cc), on the native table; lib/distributed's
      // ProcessGroup over it is checked by `check.js nccl` (nccl_check.ts).
      const { StoreServer } = await import("../../lib/distributed/store");
      const server = await StoreServer.listen(0, "127.0.0.1");
      try {
        const opts = { rank: 0, size: 1, storeHost: "127.0.0.1", storePort: server.port, prefix: "gpu-check", timeoutMs: 20_000 };
        const g = await withTimeout(cuda.processGroupCreate(opts), 60_000, "processGroupCreate did not settle in 60 s");
        const data = rand(1000, 5);
        const x = cuda.fromArray(data, [10, 100]);
        cuda.allReduce_(g, [x], "sum");
        await cuda.allReduceAsync_(g, [x], "avg");
        cuda.broadcast_(g, [x], 0);
        const gathered = cuda.allGather(g, x);
        const shape = cuda.shape(gathered);
        const errReduce = errOf(cuda.toArray(x), data);
        const errGather = errOf(cuda.toArray(gathered), data);
        await withTimeout(cuda.barrier(g), 20_000, "barrier did not resolve in 20 s");
        cuda.processGroupDestroy(g);
        expectThrow(() => cuda.allReduce_(g, [x], "sum"), TypeError, /destroyed/);
        disposeAll(cuda, [x, gathered]);
        assert(shape.join(",") === "10,100", `allGather shape [${shape}]`);
        assert(errReduce === 0 && errGather === 0, `data changed: ${errReduce}, ${errGather}`);
        return "sum, avg, broadcast and gather over one rank leave the data unchanged";
      } finally {
        server.close();
      }
    },
  },
];

function withTimeout<T>(p: Promise<T>, ms: number, msg: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(msg)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function errOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return compareOutputs({ v: a } as Outputs, { v: b } as Outputs).v;
}
