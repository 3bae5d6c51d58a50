import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { crc32c } from "../../lib/io/crc32c";
import { encodeEvent, tfRecord } from "../../lib/io/tfevents";
import { MetricsLog } from "../../lib/train/metrics_log";
import { withRun } from "../../lib/train/run";
import { scalarsOf, TensorBoardSink } from "../../lib/train/tensorboard";

const root = path.resolve(__dirname, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-tb-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tensorboardPython(): string | null {
  const py = process.env.SSQL_PYTHON ?? path.join(root, ".venv", "bin", "python");
  try {
    execFileSync(py, ["-c", "import tensorboard"], { stdio: "ignore" });
    return py;
  } catch {
    return null;
  }
}
const py = tensorboardPython();
if (!py) console.log("TensorBoard read-back test skipped: no Python tensorboard (.venv/bin/pip install tensorboard==2.21.0)");

interface ReadBack {
  version: string | null;
  scalars: [number, string, number, number][];
}

function readBack(file: string): ReadBack {
  return JSON.parse(execFileSync(py!, [path.join(root, "test", "fixtures", "read_tfevents.py"), file], { encoding: "utf8" })) as ReadBack;
}

/** What a run writes: ssl steps and epochs, kNN at two bit settings, linear's validation, a ptq result. */
const records: Record<string, unknown>[] = [
  { kind: "step", epoch: 0, step: 0, globalStep: 0, loss: -0.125, lr: 0.05, wBits: 4, aBits: 6 },
  { kind: "step", epoch: 0, step: 1, globalStep: 1, loss: -0.25, lr: 0.05, wBits: 2, aBits: 8 },
  { kind: "epoch", epoch: 0, loss: -0.1875, lr: 0.05, seconds: 12.5, imagesPerSec: 123.456 },
  { kind: "knn", epoch: 0, bits: "fp", top1: 41.25, top5: 88.5, k: 200, bank: 384, queries: 384, seconds: 1.5 },
  { kind: "knn", epoch: 0, bits: "4w4f", top1: 30.0, top5: 80.75, k: 200, bank: 384, queries: 384, seconds: 2.5 },
  { kind: "step", epoch: 1, step: 0, globalStep: 2, loss: -0.5, lr: 0.025, wBits: 8, aBits: 4 },
  { kind: "epoch", epoch: 1, loss: -0.5, lr: 0.025, seconds: 11, imagesPerSec: 130.1 },
  { kind: "epoch", bits: "2w4f", epoch: 9, loss: 0.75, lr: 0.1, top1: 71.5, top5: 97.25, valLoss: 0.8 },
  { kind: "eval", bits: "8w8f", top1: 70.125, top5: 96.5, valLoss: 0.9 },
];

function expected(recs: Record<string, unknown>[]): [number, string, number][] {
  const out: [number, string, number][] = [];
  for (const r of recs) {
    const s = scalarsOf(r);
    for (const v of s?.scalars ?? []) out.push([s!.step, v.tag, Math.fround(v.value)]);
  }
  return out;
}

describe("TensorBoard event files", () => {
  it("CRC-32C is the Castagnoli CRC (RFC 3720 check value)", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it("maps the metrics records to tags: train, train_step, val, knn, with the bit setting last", () => {
    expect(expected(records.slice(3, 4))).toEqual([[0, "knn/top1/fp", 41.25], [0, "knn/top5/fp", 88.5]]);
    expect(expected(records.slice(7, 8)).map(([, t]) => t)).toEqual(["train/loss/2w4f", "train/lr/2w4f", "val/top1/2w4f", "val/top5/2w4f", "val/loss/2w4f"]);
    expect(expected(records.slice(0, 1)).map(([s, t]) => `${s} ${t}`)).toEqual(["0 train_step/loss", "0 train_step/lr", "0 train_step/w_bits", "0 train_step/a_bits"]);
  });

  it.skipIf(!py)("TensorBoard's reader gets every scalar, step and value as written", () => {
    const dir = path.join(tmp, "all");
    const log = new MetricsLog(path.join(dir, "metrics.jsonl"), [new TensorBoardSink(dir)]);
    for (const r of records) log.write(r);
    log.close();
    const files = fs.readdirSync(dir).filter((f) => f.startsWith("events.out.tfevents."));
    expect(files).toHaveLength(1);
    const got = readBack(path.join(dir, files[0]));
    expect(got.version).toBe("brain.Event:2");
    expect(got.scalars.map(([s, t, v]) => [s, t, v])).toEqual(expected(records));
    expect(got.scalars.length).toBe(4 + 4 + 3 + 2 + 2 + 4 + 3 + 5 + 3);
    for (const [, , , wall] of got.scalars) expect(Math.abs(wall - Date.now() / 1000)).toBeLessThan(600);
  });

  it.skipIf(!py)("epochs are on disk as soon as their record is written (a live tensorboard sees them)", () => {
    const dir = path.join(tmp, "live");
    const sink = new TensorBoardSink(dir);
    for (const r of records.slice(0, 3)) sink.write(r);
    // Not closed: the epoch record flushed the steps before it.
    expect(readBack(sink.file).scalars.map(([s, t, v]) => [s, t, v])).toEqual(expected(records.slice(0, 3)));
    sink.close();
  });

  it.skipIf(!py)("a truncated last record (killed mid-write) leaves every earlier record readable", () => {
    const dir = path.join(tmp, "cut");
    const sink = new TensorBoardSink(dir);
    for (const r of records) sink.write(r);
    sink.close();
    const whole = fs.readFileSync(sink.file);
    const extra = tfRecord(encodeEvent({ wallTime: 1, step: 99, scalars: [{ tag: "train/loss", value: 1 }] }));
    for (const cut of [3, 8, 13, 20, extra.length - 1]) {
      const f = path.join(dir, `events.out.tfevents.cut${cut}`);
      fs.writeFileSync(f, Buffer.concat([whole, extra.subarray(0, cut)]));
      expect(readBack(f).scalars.map(([s, t, v]) => [s, t, v]), `cut after ${cut} bytes`).toEqual(expected(records));
    }
    // The reader does check the CRCs: a record whose data CRC is wrong is not returned as data.
    const bad = Buffer.from(extra);
    bad[bad.length - 1] ^= 0xff;
    const f = path.join(dir, "events.out.tfevents.badcrc");
    fs.writeFileSync(f, Buffer.concat([whole, bad]));
    let steps: number[] = [];
    try {
      steps = readBack(f).scalars.map(([s]) => s);
    } catch {
      steps = [];
    }
    expect(steps).not.toContain(99);
  });

  it("TRAIN.TENSORBOARD False writes no event file; True writes one beside metrics.jsonl", async () => {
    const recipe = path.join(root, "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
    for (const on of [false, true]) {
      const cfg = loadConfig(recipe, [{ key: "TRAIN.TENSORBOARD", value: on }]);
      const out = path.join(tmp, `switch-${on}`);
      await withRun({ cfg, output: out, device: "cpu", workers: 1, quiet: true }, async (run) => {
        run.metricsLog(path.join(out, "metrics.jsonl"))!.write(records[2]);
      });
      expect(fs.readdirSync(out).filter((f) => f.startsWith("events.out.tfevents.")).length).toBe(on ? 1 : 0);
    }
  });
});
