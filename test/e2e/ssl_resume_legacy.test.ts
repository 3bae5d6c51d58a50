import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../lib/config";
import { loadCheckpoint } from "../../lib/io/checkpoint";
import { methodStateOf } from "../../lib/ssl/method_state";
import { runSsl, type SslRunOptions } from "../../lib/train/ssl";

/**
 * Checkpoints written before SSL methods owned their state kept it under the manifest key `rng` as
 * {sampler, mocoQueuePtr, mocoKeySteps}; they must still resume exactly. SSQL_MoCo has all three.
 */

const recipe = path.resolve(__dirname, "..", "..", "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-legacy-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(): Config {
  // The recipe's BIT_CONFIG names SimSiam's projector layers; MoCo's head has others.
  const o = { "SSL.TYPE": "SSQL_MoCo", "TRAIN.LOSS.CRITERION.NAME": "CrossEntropy", "QUANT.BIT_CONFIG": [], "SSL.SETTING.MOCO_K": 48, "DATA.TRAIN_SUBSET": 24, "TRAIN.BATCH_SIZE": 16, "TRAIN.EPOCHS": 2,
    "MODEL.INPUTSHAPE": [16, 16], "SSL.SETTING.DIM": 32, "SSL.SETTING.HIDDEN_DIM": 32, "TRAIN.LR_SCHEDULER.BASE_LR": 0.05,
    "TRAIN.KNN.EVERY": 0 }; // the recipe's kNN monitor has its own tests (ssl_monitor.test.ts)
  return loadConfig(recipe, Object.entries(o).map(([key, value]) => ({ key, value })));
}

const options = (output: string, more: Partial<SslRunOptions> = {}): SslRunOptions => ({
  cfg: config(), output, device: "cpu", workers: 1, printFreq: 0, resume: false, quiet: true, ...more,
});

/** Rewrites a checkpoint's manifest as the trainer wrote it before the `method` key. */
function toLegacy(manifestFile: string): void {
  const m = JSON.parse(fs.readFileSync(manifestFile, "utf8")) as Record<string, unknown>;
  const s = m.method as { sampler: unknown; queuePtr: number; keySteps: number };
  delete m.method;
  m.rng = { sampler: s.sampler, mocoQueuePtr: s.queuePtr, mocoKeySteps: s.keySteps };
  fs.writeFileSync(manifestFile, JSON.stringify(m, null, 2) + "\n");
}

async function tensorBytes(file: string): Promise<Map<string, Buffer>> {
  const ck = await loadCheckpoint(file);
  const out = new Map<string, Buffer>();
  for (const [k, t] of Object.entries(ck.tensors)) {
    const d = t.data as ArrayLike<number> & { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
    out.set(k, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return out;
}

describe("the SSL method's checkpoint state", () => {
  it("reads the `method` key and the legacy `rng` key alike, and names bad values", () => {
    const sampler = { algorithm: "xoshiro128**", state: [1, 2, 3, 4], draws: 5 };
    expect(methodStateOf({ method: { sampler, queuePtr: 16, keySteps: 3 } }, "a.json")).toEqual({ sampler, queuePtr: 16, keySteps: 3 });
    expect(methodStateOf({ rng: { sampler, mocoQueuePtr: 16, mocoKeySteps: 3 } }, "a.json")).toEqual({ sampler, queuePtr: 16, keySteps: 3 });
    expect(methodStateOf({ rng: null }, "a.json")).toEqual({});
    expect(methodStateOf({ rng: { sampler } }, "a.json")).toEqual({ sampler });
    expect(() => methodStateOf({ rng: { mocoQueuePtr: -1 } }, "a.json")).toThrow("a.json: the checkpoint's MoCo queue pointer must be a whole number >= 0, got -1");
    expect(() => methodStateOf({ method: [1] }, "a.json")).toThrow(/a.json: the checkpoint's method state is not a mapping/);
  });

  it("resumes SSQL_MoCo from a checkpoint in the old format exactly (bit sampler, queue pointer, key shuffle)", { timeout: 600_000 }, async () => {
    const straight = path.join(tmp, "straight");
    const split = path.join(tmp, "split");
    await runSsl(options(straight));
    await runSsl(options(split, { stopAfterEpochs: 1 }));
    const ckpt = path.join(split, "checkpoint.json");
    const saved = (await loadCheckpoint(ckpt)).manifest.method as { sampler: { draws: number }; queuePtr: number; keySteps: number };
    // 24 images, batches of 16 with the last partial one dropped: 1 step of 16 keys into a queue of 48.
    expect(saved).toMatchObject({ sampler: { draws: 1 }, queuePtr: 16, keySteps: 1 });
    toLegacy(ckpt);
    const resumed = await runSsl(options(split, { resume: true }));
    expect(resumed.losses).toHaveLength(1);

    const a = await tensorBytes(path.join(straight, "checkpoint.json"));
    const b = await tensorBytes(path.join(split, "checkpoint.json"));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    expect([...a.keys()].filter((k) => !a.get(k)!.equals(b.get(k)!))).toEqual([]);
    const ma = (await loadCheckpoint(path.join(straight, "checkpoint.json"))).manifest;
    const mb = (await loadCheckpoint(path.join(split, "checkpoint.json"))).manifest;
    expect(ma.method).toMatchObject({ sampler: { draws: 2 }, queuePtr: 32, keySteps: 2 });
    expect(mb.method).toEqual(ma.method);
  });
});
