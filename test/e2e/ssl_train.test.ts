import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../lib/config";
import { loadCheckpoint } from "../../lib/io/checkpoint";
import { SGD } from "../../lib/optim/sgd";
import { buildSslMethod } from "../../lib/ssl/build";
import { backward } from "../../lib/tensor/autograd";
import { cpuOps } from "../../lib/tensor/binding";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import { liveTensorCount } from "../../lib/tensor/tensor";
import { runSsl, type SslRunOptions } from "../../lib/train/ssl";

/**
 * The ssl command end to end on the built-in Fashion-MNIST (Debian's dataset-fashion-mnist), sized for two slow
 * cores: 64 images, batches of 32, 16x16 views, a narrow head. SSQL_SimSiam throughout (bits drawn per step).
 */

const root = path.resolve(__dirname, "..", "..");
const recipe = path.join(root, "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-e2e-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(epochs: number, extra: Record<string, unknown> = {}): Config {
  const o = { "DATA.TRAIN_SUBSET": 64, "TRAIN.BATCH_SIZE": 32, "TRAIN.EPOCHS": epochs, "MODEL.INPUTSHAPE": [16, 16],
    "SSL.SETTING.DIM": 128, "SSL.SETTING.HIDDEN_DIM": 64, "TRAIN.LR_SCHEDULER.BASE_LR": 0.1,
    // The kNN monitor the recipe turns on has its own tests (ssl_monitor.test.ts); off here, as these runs were.
    "TRAIN.KNN.EVERY": 0, ...extra };
  return loadConfig(recipe, Object.entries(o).map(([key, value]) => ({ key, value })));
}

function options(cfg: Config, output: string, more: Partial<SslRunOptions> = {}): SslRunOptions {
  return { cfg, output, device: "cpu", workers: 1, printFreq: 0, resume: false, quiet: true, ...more };
}

async function checkpointTensors(file: string): Promise<Map<string, Uint8Array>> {
  const ck = await loadCheckpoint(file);
  const out = new Map<string, Uint8Array>();
  for (const [k, t] of Object.entries(ck.tensors)) {
    const d = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
    out.set(k, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return out;
}

describe("ssl training on Fashion-MNIST", () => {
  it("lowers the SSQL loss over three epochs", async () => {
    const before = liveTensorCount();
    const r = await runSsl(options(config(3), path.join(tmp, "learn")));
    expect(r.epochs).toBe(3);
    expect(r.losses).toHaveLength(3);
    for (const l of r.losses) expect(Number.isFinite(l)).toBe(true);
    // SimSiam's loss is -cos in [-1, 1]; from a random start it falls as the views' projections align.
    console.log(`SSQL_SimSiam epoch losses: ${r.losses.map((l) => l.toFixed(4)).join(", ")}`);
    expect(r.losses[2]).toBeLessThan(r.losses[0] - 0.01);
    // Nothing the run created outlives it.
    expect(liveTensorCount()).toBe(before);
    const metrics = fs.readFileSync(path.join(tmp, "learn", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const steps = metrics.filter((m) => m.kind === "step");
    expect(steps).toHaveLength(6);
    for (const s of steps) {
      expect(s.wBits).toBeGreaterThanOrEqual(2);
      expect(s.wBits).toBeLessThanOrEqual(8);
      expect(s.aBits).toBeGreaterThanOrEqual(4);
      expect(s.aBits).toBeLessThanOrEqual(8);
    }
  });

  it("resumes exactly: 2 epochs straight = 1 epoch, resume, 1 epoch (every tensor bit for bit)", async () => {
    const straight = path.join(tmp, "straight");
    const split = path.join(tmp, "split");
    const cfg = config(2, { "DATA.TRAIN_SUBSET": 32, "TRAIN.BATCH_SIZE": 16 }); // 2 steps per epoch
    await runSsl(options(cfg, straight));
    const first = await runSsl(options(cfg, split, { stopAfterEpochs: 1 }));
    expect(first.epochs).toBe(1);
    const resumed = await runSsl(options(cfg, split, { resume: true }));
    expect(resumed.epochs).toBe(2);
    expect(resumed.losses).toHaveLength(1);

    const a = await checkpointTensors(path.join(straight, "checkpoint.json"));
    const b = await checkpointTensors(path.join(split, "checkpoint.json"));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].some((k) => k.startsWith("optimizer."))).toBe(true);
    const differ = [...a.keys()].filter((k) => !Buffer.from(a.get(k)!).equals(Buffer.from(b.get(k)!)));
    expect(differ).toEqual([]);
    const ma = (await loadCheckpoint(path.join(straight, "checkpoint.json"))).manifest;
    const mb = (await loadCheckpoint(path.join(split, "checkpoint.json"))).manifest;
    expect(mb.epoch).toBe(ma.epoch);
    expect(ma.method).toMatchObject({ sampler: { draws: 4 } });
    expect(mb.method).toEqual(ma.method); // the bit sampler continued where it stopped
  });

  it("keeps live tensors and native bytes flat from step to step", () => {
    const cfg = config(1);
    const built = buildSslMethod(cfg, new Generator(1));
    const method = built.method;
    method.train();
    const opt = new SGD(method.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    const gen = new Generator(2);
    const x1 = gen.normal([4, 3, 16, 16]).keep();
    const x2 = gen.normal([4, 3, 16, 16]).keep();
    const step = () => {
      tidy(() => {
        backward(method.step(x1, x2).loss);
      });
      opt.step();
      opt.zeroGrad();
      method.afterStep();
    };
    step(); // the first step creates the optimizer's momentum buffers
    step();
    const live = liveTensorCount();
    const bytes = cpuOps().memoryStats().bytes;
    for (let i = 0; i < 3; i++) {
      step();
      expect(liveTensorCount(), `live tensors after step ${i + 3}`).toBe(live);
      expect(cpuOps().memoryStats().bytes, `native bytes after step ${i + 3}`).toBe(bytes);
    }
    x1.dispose();
    x2.dispose();
    method.dispose();
    built.quant?.dispose();
  });
});

describe("config errors through the CLI", () => {
  const run = promisify(execFile);
  const cli = async (...args: string[]) => {
    try {
      const r = await run(process.execPath, [path.join(root, "lib", "main.js"), ...args], { cwd: root });
      return { code: 0, out: r.stdout + r.stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, out: err.stdout + err.stderr };
    }
  };
  const out = path.join(tmp, "cli");

  it("names an unknown key of the yaml, with its line and a suggestion", async () => {
    const bad = path.join(tmp, "bad.yaml");
    fs.writeFileSync(bad, `BASE_CONFIG: ${recipe}\nTRAIN:\n  EPOCH: 3\n`);
    const r = await cli("ssl", "--config", bad, "--output", out);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("bad.yaml:3: unknown key TRAIN.EPOCH");
    expect(r.out).toContain("TRAIN.EPOCHS");
  });

  it("names a bad --opts value and an unknown method", async () => {
    let r = await cli("ssl", "--config", recipe, "--output", out, "--opts", "TRAIN.BATCH_SIZE", "abc");
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/TRAIN\.BATCH_SIZE: expected int/);
    r = await cli("ssl", "--config", recipe, "--output", out, "--opts", "SSL.TYPE", "SSQL_SimSaim");
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/SSL\.TYPE: unknown SSL method 'SSQL_SimSaim'/);
  });

  it("refuses a MoCo queue that the global batch does not divide before the first step", async () => {
    const cfg = path.join(root, "configs", "cifar", "resnet18_moco_cifar.yaml");
    const dir = path.join(tmp, "moco-k");
    const r = await cli("ssl", "--config", cfg, "--output", dir, "--opts", "TRAIN.DATASET", "fmnist", "DATA.TRAIN_SUBSET", "64", "TRAIN.BATCH_SIZE", "32", "SSL.SETTING.MOCO_K", "48");
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("MoCo: SSL.SETTING.MOCO_K (48) must be a multiple of the global batch (32)");
    expect(r.out).not.toContain("steps/epoch"); // the line that starts training
    expect(fs.existsSync(path.join(dir, "metrics.jsonl")) && fs.readFileSync(path.join(dir, "metrics.jsonl"), "utf8").includes('"step"')).toBe(false);
    expect(fs.existsSync(path.join(dir, "checkpoint.json"))).toBe(false);
  });

  it("requires --config", async () => {
    const r = await cli("ssl", "--output", out);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("--config");
  });
});
