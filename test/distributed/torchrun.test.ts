import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../lib/io/checkpoint";
import { findFreePort } from "../../lib/distributed/launch";
import { ensureCompiled, reproducible, root, tempDir, workers } from "./helpers";

/*
 * The ssl command under the real torchrun of the venv (torch 2.13): its ranks join the agent's c10d TCPStore and
 * train to the same losses and weights, bit for bit on the CPU with Gloo, as under our own launcher.
 */
const torchrun = path.join(root, ".venv", "bin", "torchrun");
const haveTorchrun = fs.existsSync(torchrun);
const haveFmnist = fs.existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
if (!haveTorchrun) console.log("torchrun tests skipped: no .venv/bin/torchrun (sh scripts/setup.sh --python installs it)");
else if (!haveFmnist) console.log("torchrun training tests skipped: no Fashion-MNIST (Debian's dataset-fashion-mnist)");

const recipe = path.join(root, "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
// 32 images in batches of 16 per process: one step per epoch on 2 processes, sized for two slow cores.
const opts = ["DATA.TRAIN_SUBSET", "32", "TRAIN.BATCH_SIZE", "16", "TRAIN.EPOCHS", "2", "MODEL.INPUTSHAPE", "[16,16]", "SSL.SETTING.DIM", "64", "SSL.SETTING.HIDDEN_DIM", "32",
  "TRAIN.KNN.EVERY", "0"]; // the recipe's kNN monitor has its own tests (knn.test.ts, ssl_monitor.test.ts)
const sslArgs = (output: string, ...flags: string[]) => ["ssl", "--config", recipe, "--output", output, "-j", "1", "--device", "cpu", ...flags, "--opts", ...opts];
// Same threads everywhere (torchrun sets 1 per worker, our launcher cores / N), a bounded rendezvous, no proxy of ours.
const env = { ...process.env, ...reproducible, OMP_NUM_THREADS: "1", SSQL_DIST_TIMEOUT: "120", SSQL_LAUNCHER: "" };
const RUN_MS = 300_000;

interface Exit {
  code: number | null;
  output: string;
}

/** Runs a command to its end (killed after RUN_MS), with stdout and stderr together. */
function run(cmd: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: root, env: { ...env, ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d: Buffer) => (output += d.toString()));
    p.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), RUN_MS);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function torchrunArgs(flags: readonly string[], program: readonly string[]): string[] {
  return [...flags, "--monitor-interval", "0.2", "--no-python", process.execPath, ...program];
}

const ourMain = path.join(root, "lib", "main.js");

/** What must be equal between two runs: every step's loss and bit-width, and every tensor of the last checkpoint. */
async function outcome(output: string): Promise<{ steps: unknown[]; tensors: Map<string, Buffer> }> {
  const steps = fs
    .readFileSync(path.join(output, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((m) => m.kind === "step")
    .map(({ epoch, step, loss, wBits, aBits }) => ({ epoch, step, loss, wBits, aBits }));
  const ck = await loadCheckpoint(path.join(output, "checkpoint.json"));
  const tensors = new Map<string, Buffer>();
  for (const [k, t] of Object.entries(ck.tensors)) {
    const d = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
    tensors.set(k, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return { steps, tensors };
}

async function expectSameRun(output: string, reference: string): Promise<void> {
  const a = await outcome(output);
  const b = await outcome(reference);
  expect(a.steps).toHaveLength(2);
  expect(a.steps).toEqual(b.steps);
  expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
  expect([...a.tensors.keys()].filter((k) => !a.tensors.get(k)!.equals(b.tensors.get(k)!))).toEqual([]);
}

describe.skipIf(!haveTorchrun || !haveFmnist)("ssl under torchrun", () => {
  const dir = haveTorchrun && haveFmnist ? tempDir("torchrun") : "";
  const reference = path.join(dir, "ours");
  let referenceDone = false;

  async function ourLauncher(): Promise<void> {
    if (referenceDone) return;
    ensureCompiled();
    const r = await run(process.execPath, [ourMain, ...sslArgs(reference, "--nproc-per-node", "2")]);
    expect(r.code, r.output).toBe(0);
    referenceDone = true;
  }

  it("2 processes, static rendezvous: the same losses and weights as our --nproc-per-node 2", async () => {
    await ourLauncher();
    const out = path.join(dir, "static");
    const port = await findFreePort();
    const r = await run(torchrun, torchrunArgs(["--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", String(port)], [ourMain, ...sslArgs(out)]));
    expect(r.code, r.output).toBe(0);
    expect(r.output).not.toContain("port " + port + " is in use");
    await expectSameRun(out, reference);
  }, 2 * RUN_MS);

  it("2 nodes x 1 process with --rdzv-backend c10d (two agents on this machine): the same run", async () => {
    await ourLauncher();
    const out = path.join(dir, "c10d");
    const port = await findFreePort();
    const node = (rank: number) =>
      run(torchrun, torchrunArgs(["--nnodes", "2", "--node-rank", String(rank), "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", `127.0.0.1:${port}`, "--rdzv-id", "ssql-test"], [ourMain, ...sslArgs(out)]));
    const [a, b] = await Promise.all([node(0), node(1)]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    await expectSameRun(out, reference);
  }, 2 * RUN_MS);

  it("2 nodes x 1 process, static rendezvous (--node-rank in two shells): the same run", async () => {
    await ourLauncher();
    const out = path.join(dir, "static-nodes");
    const port = await findFreePort();
    const node = (rank: number) =>
      run(torchrun, torchrunArgs(["--nnodes", "2", "--node-rank", String(rank), "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", String(port)], [ourMain, ...sslArgs(out)]));
    const [a, b] = await Promise.all([node(0), node(1)]);
    expect(a.code, a.output).toBe(0);
    expect(b.code, b.output).toBe(0);
    await expectSameRun(out, reference);
  }, 2 * RUN_MS);

  // The static rendezvous keeps the agent's store across restarts (the killed attempt's address is still published
  // there); the elastic one starts a fresh store per round.
  for (const rdzv of ["static", "c10d"] as const)
    it(`--max-restarts 1, ${rdzv} rendezvous: a worker killed after the first epoch is restarted and the run resumes to the same result`, async () => {
      await ourLauncher();
      const out = path.join(dir, `restart-${rdzv}`);
      const port = await findFreePort();
      const r = await run(
        torchrun,
        torchrunArgs(["--nproc-per-node", "2", "--max-restarts", "1", ...(rdzv === "c10d" ? ["--rdzv-backend", "c10d", "--rdzv-endpoint", `127.0.0.1:${port}`] : ["--master-addr", "127.0.0.1", "--master-port", String(port)])], [path.join(workers, "crash_once.js"), ...sslArgs(out)]),
        { CRASH_RANK: "1", CRASH_AFTER: path.join(out, "checkpoint_0000.json") },
      );
      expect(r.code, r.output).toBe(0);
      expect(r.output).toMatch(/SIGKILL|Signal 9|exitcode\s*:\s*-9/);
      const restarted = r.output.slice(r.output.indexOf(`torchrun restart 1: resuming from ${path.join(out, "checkpoint.json")}`));
      expect(restarted.length, r.output).toBeLessThan(r.output.length);
      // Killed during epoch 1: the second attempt resumed from epoch 0's checkpoint and trained epoch 1 again.
      expect(restarted).toMatch(/epochs 1\.\.1/);
      // The resumed attempt trains epoch 1 only; the checkpoint it ends with is the uninterrupted run's.
      const ck = await outcome(out);
      const ref = await outcome(reference);
      expect(ck.steps.at(-1)).toEqual(ref.steps.at(-1));
      expect([...ck.tensors.keys()].filter((k) => !ck.tensors.get(k)!.equals(ref.tensors.get(k)!))).toEqual([]);
    }, 2 * RUN_MS);
});

describe.skipIf(!haveTorchrun)("failures under torchrun", () => {
  it("a rank that fails ends the job with its error (no hang)", async () => {
    ensureCompiled();
    const out = tempDir("torchrun-fail");
    const port = await findFreePort();
    const r = await run(torchrun, torchrunArgs(["--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", String(port)], [path.join(workers, "failure.js")]), {
      FAIL_MODE: "throw",
      FAIL_RANK: "1",
      FAIL_STEP: "2",
      OUT_DIR: out,
      SSQL_DIST_TIMEOUT: "30",
    });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain("boom from rank 1 at step 2");
    expect(r.output).toMatch(/step 1/); // the ranks did train together through the agent's store
  }, RUN_MS);
});
