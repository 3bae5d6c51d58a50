import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteCheckpoint, linkCheckpoint, loadCheckpoint, saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-link-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tensors = (v: number): HostTensors => ({ "model.w": { dtype: "float32", shape: [4], data: Float32Array.from([v, v + 1, v + 2, v + 3]) } });

describe("a second checkpoint name for the same state", () => {
  it("shares the tensors file (a hard link), survives the latest being overwritten, and deletes cleanly", async () => {
    const latest = path.join(tmp, "checkpoint.json");
    await saveCheckpoint(latest, tensors(1), { epoch: 1, step: 10 });
    const { manifest, linked } = await linkCheckpoint(latest, path.join(tmp, "checkpoint_0000.json"));
    expect(linked).toBe(true);
    const first = await loadCheckpoint(latest);
    expect(manifest.tensors.sha256).toBe(first.manifest.tensors.sha256);
    expect(manifest.epoch).toBe(1);
    const ino = (f: string) => fs.statSync(path.join(tmp, f)).ino;
    expect(ino(manifest.tensors.file)).toBe(ino(first.manifest.tensors.file));

    // The next epoch replaces the latest (and unlinks its old name); the periodic one still loads, unchanged.
    await saveCheckpoint(latest, tensors(5), { epoch: 2, step: 20 });
    const periodic = await loadCheckpoint(path.join(tmp, "checkpoint_0000.json"));
    expect(Array.from(periodic.tensors["model.w"].data as Float32Array)).toEqual([1, 2, 3, 4]);
    expect(Array.from((await loadCheckpoint(latest)).tensors["model.w"].data as Float32Array)).toEqual([5, 6, 7, 8]);

    await deleteCheckpoint(path.join(tmp, "checkpoint_0000.json"));
    const left = fs.readdirSync(tmp).sort();
    expect(left.filter((f) => f.startsWith("checkpoint_0000"))).toEqual([]);
    expect(left.filter((f) => f.endsWith(".safetensors"))).toHaveLength(1);
    await loadCheckpoint(latest);
    // Deleting what is not there is not an error.
    await deleteCheckpoint(path.join(tmp, "checkpoint_0000.json"));
  });

  it("linking a checkpoint that does not exist names the file", async () => {
    await expect(linkCheckpoint(path.join(tmp, "nope.json"), path.join(tmp, "x.json"))).rejects.toThrow(/nope\.json/);
  });
});
