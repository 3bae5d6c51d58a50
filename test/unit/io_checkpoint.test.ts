import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CHECKPOINT_FORMAT, loadCheckpoint, saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { saveSafetensors } from "../../lib/io/safetensors";

const tensors = (scale = 1): HostTensors => ({
  "model.conv1.weight": { dtype: "float32", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6].map((v) => v * scale)) },
  "model.bn1.num_batches_tracked": { dtype: "int64", shape: [], data: BigInt64Array.from([12n]) },
  "optimizer.momentum_buffer.model.conv1.weight": { dtype: "float32", shape: [2, 3], data: new Float32Array(6).fill(0.5) },
});
const state = {
  epoch: 7,
  step: 700,
  config: { TRAIN: { EPOCHS: 400, LR_SCHEDULER: { BASE_LR: 0.05 } } },
  optimizer: { name: "sgd", lr: 0.05, momentum: 0.9, weight_decay: 5e-4 },
  rng: { philox: { seed: 18446744073709551615n, offset: 123n }, bits: [3, 7] },
  metrics: { loss: -0.91, knn: NaN, best: Infinity },
};
const fresh = () => mkdtempSync(join(tmpdir(), "ckpt-"));
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489", "hex");

describe("trainer checkpoints (safetensors + JSON manifest)", () => {
  it("round-trips tensors and state, bigints and non-finite metrics included", async () => {
    const dir = fresh();
    const manifest = await saveCheckpoint(join(dir, "checkpoint"), tensors(), state);
    const loaded = await loadCheckpoint(join(dir, "checkpoint"));
    expect(loaded.manifest).toEqual(manifest);
    expect(loaded.manifest).toMatchObject({ format: CHECKPOINT_FORMAT, version: 1, ...state });
    expect(loaded.manifest.rng).toEqual({ philox: { seed: 18446744073709551615n, offset: 123n }, bits: [3, 7] });
    expect(Number.isNaN((loaded.manifest.metrics as { knn: number }).knn)).toBe(true);
    for (const [k, t] of Object.entries(tensors())) expect(loaded.tensors[k]).toEqual(t);
    expect(readdirSync(dir).sort()).toEqual(["checkpoint.json", manifest.tensors.file].sort());
    // The same checkpoint is found through its manifest's name and through its folder.
    expect((await loadCheckpoint(join(dir, "checkpoint.json"))).manifest.step).toBe(700);
  });

  it("loads a checkpoint saved as a folder", async () => {
    const dir = fresh();
    await saveCheckpoint(join(dir, "checkpoint"), tensors(), state);
    expect((await loadCheckpoint(dir)).manifest.epoch).toBe(7);
  });

  it("overwriting keeps one tensors file and the newest content", async () => {
    const dir = fresh();
    await saveCheckpoint(join(dir, "checkpoint"), tensors(1), state);
    const second = await saveCheckpoint(join(dir, "checkpoint"), tensors(2), { ...state, epoch: 8 });
    expect(readdirSync(dir).sort()).toEqual(["checkpoint.json", second.tensors.file].sort());
    const loaded = await loadCheckpoint(join(dir, "checkpoint"));
    expect(loaded.manifest.epoch).toBe(8);
    expect(Array.from(loaded.tensors["model.conv1.weight"].data as Float32Array)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it("a run killed after writing the new tensors but before the manifest still has its previous checkpoint", async () => {
    const dir = fresh();
    await saveCheckpoint(join(dir, "checkpoint"), tensors(1), state);
    // What a kill between the two commits leaves: the next tensors file and a stray temporary.
    await saveSafetensors(join(dir, "checkpoint.0123456789abcdef.safetensors"), tensors(3));
    writeFileSync(join(dir, ".checkpoint.json.123.abcd.tmp"), '{"format": "ssql-tr');
    const loaded = await loadCheckpoint(join(dir, "checkpoint"));
    expect(loaded.manifest.epoch).toBe(7);
    expect(Array.from(loaded.tensors["model.conv1.weight"].data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  describe("load names the problem", () => {
    const setup = async () => {
      const dir = fresh();
      const m = await saveCheckpoint(join(dir, "ck"), tensors(), state);
      return { dir, json: join(dir, "ck.json"), st: join(dir, m.tensors.file) };
    };

    it("a missing checkpoint", async () => {
      await expect(loadCheckpoint(join(fresh(), "nothing"))).rejects.toThrow(/nothing\.json: no checkpoint here: the manifest file does not exist/);
    });

    it("a missing tensors file", async () => {
      const { dir, st } = await setup();
      const { unlinkSync } = await import("node:fs");
      unlinkSync(st);
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/\.safetensors: the tensors file named by .*ck\.json does not exist/);
    });

    it("a truncated tensors file", async () => {
      const { dir, st } = await setup();
      writeFileSync(st, readFileSync(st).subarray(0, 40));
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/\.safetensors: 40 bytes, but .* records \d+: the file is truncated/);
    });

    it("a corrupt tensors file (same size, one bit flipped)", async () => {
      const { dir, st } = await setup();
      const bytes = readFileSync(st);
      bytes[bytes.length - 1] ^= 1;
      writeFileSync(st, bytes);
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/\.safetensors: sha256 [0-9a-f]{64} differs from [0-9a-f]{64} recorded in .*ck\.json: the file is corrupt/);
    });

    it("a truncated manifest", async () => {
      const { dir, json } = await setup();
      writeFileSync(json, readFileSync(json).subarray(0, 50));
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/ck\.json: the manifest is not valid JSON, so it is truncated or corrupt/);
    });

    it("a newer format version", async () => {
      const { dir, json } = await setup();
      const m = JSON.parse(readFileSync(json, "utf-8"));
      writeFileSync(json, JSON.stringify({ ...m, version: 2 }));
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/ck\.json: written in checkpoint format version 2, newer than this program reads \(1\)/);
    });

    it("a PNG renamed to the manifest", async () => {
      const dir = fresh();
      writeFileSync(join(dir, "ck.json"), PNG);
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/ck\.json: not a checkpoint manifest: the file is a PNG image/);
    });

    it("a PyTorch checkpoint given where a trainer checkpoint is expected", async () => {
      const dir = fresh();
      writeFileSync(join(dir, "ck.json"), readFileSync(join(__dirname, "../fixtures/checkpoints/tensors.pt")));
      await expect(loadCheckpoint(join(dir, "ck.json"))).rejects.toThrow(/a zip archive .*loadTorchCheckpoint/);
    });

    it("another program's JSON", async () => {
      const dir = fresh();
      writeFileSync(join(dir, "ck.json"), '{"epoch": 3}');
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/not a checkpoint manifest: no "format"/);
    });

    it("a manifest whose tensors entry points outside its folder", async () => {
      const { dir, json } = await setup();
      const m = JSON.parse(readFileSync(json, "utf-8"));
      writeFileSync(json, JSON.stringify({ ...m, tensors: { ...m.tensors, file: "../etc/passwd" } }));
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/tensors entry is malformed/);
    });

    it("a PNG renamed to the tensors file", async () => {
      const { dir, st } = await setup();
      const size = readFileSync(st).length;
      writeFileSync(st, Buffer.concat([PNG, Buffer.alloc(size - PNG.length)]));
      await expect(loadCheckpoint(join(dir, "ck"))).rejects.toThrow(/sha256 .* differs/);
    });
  });

  it("refuses an epoch that is not an integer before writing anything", async () => {
    const dir = fresh();
    await expect(saveCheckpoint(join(dir, "ck"), tensors(), { ...state, epoch: 1.5 })).rejects.toThrow(/epoch and step must be integers/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
