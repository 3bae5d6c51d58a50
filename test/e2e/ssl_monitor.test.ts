import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../lib/config";
import { loadCheckpoint } from "../../lib/io/checkpoint";
import { readMetrics } from "../../lib/train/metrics_log";
import { runSsl, type SslRunOptions } from "../../lib/train/ssl";

/**
 * The ssl command's watching tools on a tiny Fashion-MNIST run (32 images, 16x16, a narrow head): the kNN monitor
 * (which must leave training bit for bit as it was), and periodic checkpoints that share the latest one's file.
 */
const root = path.resolve(__dirname, "..", "..");
const recipe = path.join(root, "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-monitor-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(epochs: number, extra: Record<string, unknown> = {}): Config {
  const o = {
    "DATA.TRAIN_SUBSET": 32, "DATA.VAL_SUBSET": 32, "TRAIN.BATCH_SIZE": 16, "TRAIN.EPOCHS": epochs, "MODEL.INPUTSHAPE": [16, 16],
    "SSL.SETTING.DIM": 128, "SSL.SETTING.HIDDEN_DIM": 64, "TRAIN.LR_SCHEDULER.BASE_LR": 0.1, ...extra,
  };
  return loadConfig(recipe, Object.entries(o).map(([key, value]) => ({ key, value })));
}

function options(cfg: Config, output: string, more: Partial<SslRunOptions> = {}): SslRunOptions {
  return { cfg, output, device: "cpu", workers: 1, printFreq: 0, resume: false, quiet: true, ...more };
}

async function finalState(dir: string): Promise<{ tensors: Map<string, Buffer>; method: unknown; sha: string }> {
  const ck = await loadCheckpoint(path.join(dir, "checkpoint.json"));
  const tensors = new Map<string, Buffer>();
  for (const [k, t] of Object.entries(ck.tensors)) {
    const d = t.data as unknown as { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
    tensors.set(k, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return { tensors, method: ck.manifest.method, sha: ck.manifest.tensors.sha256 };
}

describe("ssl: the kNN monitor", () => {
  it("reports kNN top-1/top-5 at fp and 4w4f each epoch and leaves training untouched (monitor off, then resumed with it on = on throughout)", async () => {
    const knn = { "TRAIN.KNN.EVERY": 1, "TRAIN.KNN.BITS": ["fp", "4w4f"] };
    const watched = path.join(tmp, "watched");
    await runSsl(options(config(2, knn), watched));
    const mixed = path.join(tmp, "mixed");
    await runSsl(options(config(2, { "TRAIN.KNN.EVERY": 0 }), mixed, { stopAfterEpochs: 1 }));
    await runSsl(options(config(2, knn), mixed, { resume: true }));

    const a = await finalState(watched);
    const b = await finalState(mixed);
    expect(a.sha).toBe(b.sha);
    expect([...a.tensors.keys()].filter((k) => !a.tensors.get(k)!.equals(b.tensors.get(k)!))).toEqual([]);
    expect(b.method).toEqual(a.method);

    const rows = readMetrics(path.join(watched, "metrics.jsonl")).filter((r) => r.kind === "knn");
    expect(rows.map((r) => `${r.epoch} ${r.bits}`)).toEqual(["0 fp", "0 4w4f", "1 fp", "1 4w4f"]);
    for (const r of rows) {
      expect(r.bank).toBe(32);
      expect(r.queries).toBe(32);
      expect(r.top1).toBeGreaterThanOrEqual(0);
      expect(r.top5).toBeGreaterThanOrEqual(r.top1 as number);
      expect(r.top5).toBeLessThanOrEqual(100);
      // Percentages of 32 queries.
      const hits = ((r.top1 as number) * 32) / 100;
      expect(Math.abs(hits - Math.round(hits))).toBeLessThan(1e-9);
    }
    // The mixed run evaluated only after its resumed epoch.
    expect(readMetrics(path.join(mixed, "metrics.jsonl")).filter((r) => r.kind === "knn").map((r) => r.epoch)).toEqual([1, 1]);
    expect(fs.readdirSync(watched).some((f) => f.startsWith("events.out.tfevents."))).toBe(true);
  }, 600_000);
});

describe("ssl: periodic checkpoints", () => {
  it("6 epochs with SAVE_FREQ 1 and KEEP_CHECKPOINTS 2 hold at most 3 weight files, 2 on disk; the kept ones load", async () => {
    const out = path.join(tmp, "keep");
    const cfg = config(6, { "DATA.TRAIN_SUBSET": 16, "TRAIN.SAVE_FREQ": 1, "TRAIN.KEEP_CHECKPOINTS": 2, "TRAIN.KNN.EVERY": 0 });
    await runSsl(options(cfg, out));
    const files = fs.readdirSync(out);
    const weights = files.filter((f) => f.endsWith(".safetensors"));
    expect(weights.length).toBeLessThanOrEqual(3);
    expect(new Set(weights.map((f) => fs.statSync(path.join(out, f)).ino)).size).toBe(2);
    expect(files.filter((f) => /^checkpoint_\d+\.json$/.test(f)).sort()).toEqual(["checkpoint_0004.json", "checkpoint_0005.json"]);
    const latest = await loadCheckpoint(path.join(out, "checkpoint.json"));
    const p5 = await loadCheckpoint(path.join(out, "checkpoint_0005.json"));
    const p4 = await loadCheckpoint(path.join(out, "checkpoint_0004.json"));
    expect(p5.manifest.tensors.sha256).toBe(latest.manifest.tensors.sha256);
    expect(p5.manifest.epoch).toBe(6);
    expect(p4.manifest.epoch).toBe(5);
    expect(fs.statSync(path.join(out, p5.manifest.tensors.file)).ino).toBe(fs.statSync(path.join(out, latest.manifest.tensors.file)).ino);
    // No temporary file is left behind.
    expect(files.filter((f) => f.startsWith("."))).toEqual([]);
  }, 600_000);

  it("SAVE_FREQ 20 keeps the original's epochs: 0 and the last", async () => {
    const out = path.join(tmp, "freq");
    await runSsl(options(config(3, { "DATA.TRAIN_SUBSET": 16, "TRAIN.KNN.EVERY": 0, "TRAIN.TENSORBOARD": false }), out));
    const files = fs.readdirSync(out);
    expect(files.filter((f) => /^checkpoint_\d+\.json$/.test(f)).sort()).toEqual(["checkpoint_0000.json", "checkpoint_0002.json"]);
    expect(files.some((f) => f.startsWith("events.out.tfevents."))).toBe(false);
  }, 600_000);
});
