import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, withOverrides } from "../../lib/config";
import { sslResumeRequest } from "../../lib/train/resume_request";
import { runSsl } from "../../lib/train/ssl";

/**
 * The original's resume keys: TRAIN.START_EPOCH starts the loop (and the schedule) at that epoch, and
 * MODEL.CHECKPOINT resumes through the same path as --resume, which wins when both are given.
 */
const recipe = path.resolve(__dirname, "..", "..", "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-start-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg = loadConfig(recipe, Object.entries({
  "DATA.TRAIN_SUBSET": 32, "TRAIN.BATCH_SIZE": 32, "TRAIN.EPOCHS": 2, "MODEL.INPUTSHAPE": [16, 16],
  "SSL.SETTING.DIM": 64, "SSL.SETTING.HIDDEN_DIM": 32, "TRAIN.LR_SCHEDULER.BASE_LR": 0.1, "TRAIN.START_EPOCH": 1,
  "TRAIN.KNN.EVERY": 0, // the recipe's kNN monitor has its own tests (ssl_monitor.test.ts)
}).map(([key, value]) => ({ key, value })));

describe("ssl: TRAIN.START_EPOCH and MODEL.CHECKPOINT", () => {
  it("starts at TRAIN.START_EPOCH with the schedule of that epoch, then MODEL.CHECKPOINT resumes from the checkpoint's epoch", async () => {
    const out = path.join(tmp, "run");
    const r = await runSsl({ cfg, output: out, device: "cpu", workers: 1, printFreq: 0, resume: false, quiet: true });
    expect(r.losses).toHaveLength(1);
    const epochs = fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((m) => m.kind === "epoch");
    expect(epochs.map((m) => m.epoch)).toEqual([1]);
    expect(epochs[0].lr).toBeCloseTo(0.1 * 0.5 * (1 + Math.cos(Math.PI / 2)), 12);

    // MODEL.CHECKPOINT names the finished run's checkpoint: it is what ssl resumes from (epoch 2 of 2: nothing left).
    const withCkpt = withOverrides(cfg, [{ key: "MODEL.CHECKPOINT", value: path.join(out, "checkpoint.json") }]);
    expect(sslResumeRequest(false, withCkpt)).toBe(path.join(out, "checkpoint.json"));
    expect(sslResumeRequest("other.json", withCkpt)).toBe("other.json");
    expect(sslResumeRequest(true, withCkpt)).toBe(true);
    const again = await runSsl({ cfg: withCkpt, output: path.join(tmp, "again"), device: "cpu", workers: 1, printFreq: 0, resume: sslResumeRequest(false, withCkpt), quiet: true });
    expect(again.losses).toHaveLength(0);
  });
});
