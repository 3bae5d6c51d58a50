/**
 * All-reduce bus bandwidth of our Gloo process group on 2 CPU processes, for gradient-sized buffers (1 KB to
 * 64 MB), against PyTorch's Gloo all-reduce measured in the same run with the same method, and against this
 * machine's memcpy bandwidth (what a loopback transfer can at best reach).
 *
 *   npx tsc -p bench/tsconfig.json && node bench/allreduce.bench.js [nproc] [repeats]
 *   (PYTHON=path/to/python with torch for the reference; default .venv/bin/python)
 *
 * Ours and PyTorch's runs alternate `repeats` times (default 3) and each size keeps its best time, which keeps a
 * busy machine's noise out of the ratio. Bus bandwidth is NCCL's convention: bytes x 2(n-1)/n / time, comparable across process counts.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { findFreePort, spawnWorkers } from "../lib/distributed/launch";
import { destroyProcessGroup, initProcessGroup } from "../lib/distributed/process_group";
import { tensor } from "../lib/tensor/tensor";

const sizes = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536].map((kb) => kb * 1024);
const root = path.resolve(__dirname, "..");

interface Result {
  bytes: number;
  seconds: number;
}

async function worker(): Promise<void> {
  const { world, group } = await initProcessGroup();
  const results: Result[] = [];
  const done = tensor(Float32Array.from([0]), [1]);
  for (const bytes of sizes) {
    const x = tensor(new Float32Array(bytes / 4).fill(1), [bytes / 4]);
    // Warm up the connection and the JIT (more for the first, smallest size).
    for (let i = 0; i < (bytes === sizes[0] ? 50 : 2); i++) group.allReduce_(x, "sum");
    await group.barrier();
    let iters = 0;
    let elapsed = 0;
    const start = performance.now();
    // Same loop as the PyTorch reference: rank 0 decides when every rank stops.
    for (;;) {
      group.allReduce_(x, "sum");
      iters++;
      elapsed = (performance.now() - start) / 1000;
      done.ops.fill_(done.handle, (elapsed > 0.3 && iters >= 3) || iters >= 2000 ? 1 : 0);
      group.broadcast_(done, 0);
      if (done.itemSync()) break;
    }
    results.push({ bytes, seconds: elapsed / iters });
    x.dispose();
  }
  if (world.rank === 0) fs.writeFileSync(process.env.BENCH_OUT!, JSON.stringify(results));
  await destroyProcessGroup();
}

async function torchReference(nproc: number): Promise<Result[] | string> {
  const python = process.env.PYTHON ?? path.join(root, ".venv", "bin", "python");
  if (!fs.existsSync(python)) return `no Python with torch at ${python} (sh scripts/setup.sh --python, or set PYTHON)`;
  const port = await findFreePort();
  const ranks = Array.from({ length: nproc }, (_, r) => new Promise<string>((resolve, reject) => {
    const p = spawn(python, [path.join(__dirname, "allreduce_torch.py"), ...sizes.map(String)], {
      env: { ...process.env, RANK: String(r), WORLD_SIZE: String(nproc), MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), OMP_NUM_THREADS: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`PyTorch rank ${r} exited with ${code}`))));
  }));
  const outs = await Promise.all(ranks);
  return JSON.parse(outs[0]) as Result[];
}

function memcpyBandwidth(): number {
  const a = Buffer.alloc(64 * 1024 * 1024, 1);
  const b = Buffer.alloc(a.length);
  a.copy(b);
  let iters = 0;
  const start = performance.now();
  while (performance.now() - start < 500) {
    a.copy(b);
    iters++;
  }
  return (a.length * iters) / ((performance.now() - start) / 1000);
}

const human = (n: number) => (n >= 1 << 20 ? `${n / (1 << 20)} MB` : `${n / 1024} KB`);
const gbps = (bytesPerS: number) => (bytesPerS / 1e9).toFixed(2);

async function main(): Promise<void> {
  if (process.env.BENCH_WORKER) return worker();
  const nproc = Number(process.argv[2] ?? 2);
  const repeats = Number(process.argv[3] ?? 3);
  const out = path.join(root, ".cache", "allreduce.bench.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const best = (a: Result[] | null, b: Result[]) => (a ? a.map((r, i) => (b[i].seconds < r.seconds ? b[i] : r)) : b);
  let ours: Result[] | null = null;
  let ref: Result[] | string | null = null;
  for (let k = 0; k < repeats; k++) {
    const run = await spawnWorkers(nproc, [], { script: __filename, env: { BENCH_WORKER: "1", BENCH_OUT: out, OMP_NUM_THREADS: "1" } });
    if (run.exitCode !== 0) throw new Error(run.message ?? "benchmark workers failed");
    ours = best(ours, JSON.parse(fs.readFileSync(out, "utf8")) as Result[]);
    if (typeof ref === "string") continue;
    const t = await torchReference(nproc);
    ref = typeof t === "string" ? t : best(ref, t);
  }
  const memcpy = memcpyBandwidth();
  const factor = (2 * (nproc - 1)) / nproc;
  console.log(`all-reduce (sum, float32) on ${nproc} CPU processes over Gloo/TCP loopback; memcpy ${gbps(memcpy)} GB/s`);
  console.log(["size", "ours us", "ours busbw GB/s", "torch us", "torch busbw GB/s", "ours/torch", "of memcpy"].join("\t"));
  for (const [i, r] of ours!.entries()) {
    const t = typeof ref === "string" || !ref ? null : ref[i];
    const bus = (r.bytes * factor) / r.seconds;
    console.log([
      human(r.bytes),
      (r.seconds * 1e6).toFixed(1),
      gbps(bus),
      t ? (t.seconds * 1e6).toFixed(1) : "-",
      t ? gbps((t.bytes * factor) / t.seconds) : "-",
      t ? (t.seconds / r.seconds).toFixed(2) : "-",
      `${((100 * bus) / memcpy).toFixed(1)}%`,
    ].join("\t"));
  }
  if (typeof ref === "string") console.log(`PyTorch reference skipped: ${ref}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : String(e));
  process.exit(1);
});
