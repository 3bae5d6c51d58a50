import { beforeAll, describe, expect, it } from "vitest";
import { batchIndices } from "../../lib/data/sampler";
import { tensor } from "../../lib/tensor/tensor";
import { accuracy, type Accuracy, type LabelledBatch } from "../../lib/train/evaluate";
import { ensureCompiled, launch, readRanks, tempDir } from "./helpers";
import * as d from "./workers/evaluate_data";

interface Case {
  n: number;
  shard: number[];
  acc?: Accuracy;
  error?: string;
}

/** The one-process evaluation: the whole set in order, in batches of BATCH. */
async function single(n: number): Promise<Accuracy> {
  const set = d.evalSet(n);
  const C = d.CLASSES;
  const batches: LabelledBatch[] = batchIndices(Int32Array.from({ length: n }, (_, i) => i), d.BATCH, false).map((idx) => {
    const x = tensor(set.logits.slice(idx[0] * C, (idx[idx.length - 1] + 1) * C), [idx.length, C]).keep();
    const labels = tensor(set.labels.slice(idx[0], idx[idx.length - 1] + 1), [idx.length]).keep();
    return { x, labels, size: idx.length, dispose: () => (x.dispose(), labels.dispose()) };
  });
  return accuracy((x) => x, batches, C);
}

/** Top-1 and top-5 hits counted by hand from the logits. */
function handCounts(n: number): [number, number] {
  const { logits, labels } = d.evalSet(n);
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * d.CLASSES, (i + 1) * d.CLASSES);
    const above = row.filter((v) => v > row[labels[i]]).length;
    if (above === 0) top1++;
    if (above < 5) top5++;
  }
  return [top1, top5];
}

describe("validation split across 2 processes", () => {
  beforeAll(() => ensureCompiled());

  it("each rank evaluates a disjoint shard and every rank reports the accuracy of the whole set", async () => {
    const dir = tempDir("evaluate");
    // A short collective timeout: a rank that skipped a collective would leave the others waiting.
    const run = await launch("evaluate.js", 2, { OUT_DIR: dir, SSQL_DIST_TIMEOUT: "30" });
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    const [r0, r1] = readRanks<{ cases: Case[] }>(dir, 2).map((r) => r.cases);
    expect(r0.map((c) => c.n)).toEqual(d.SIZES);
    for (let k = 0; k < d.SIZES.length; k++) {
      const n = d.SIZES[k];
      const [a, b] = [r0[k], r1[k]];
      // Disjoint shards that cover the set.
      expect([...a.shard, ...b.shard].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
      if (n === 0) {
        for (const c of [a, b]) expect(c.error).toBe("evaluation: the validation set gave no images");
        continue;
      }
      const ref = await single(n);
      const [top1, top5] = handCounts(n);
      expect(ref.images).toBe(n);
      expect(ref.top1).toBe((100 * top1) / n);
      expect(ref.top5).toBe((100 * top5) / n);
      for (const c of [a, b]) {
        expect(c.acc!.images, `n=${n}`).toBe(n);
        expect(c.acc!.top1, `n=${n}`).toBe(ref.top1);
        expect(c.acc!.top5, `n=${n}`).toBe(ref.top5);
        expect(Math.abs(c.acc!.loss - ref.loss) / ref.loss, `n=${n}`).toBeLessThan(1e-6);
      }
    }
    // The uneven split: whole batches, 64 and 36 images; one batch leaves rank 1 with nothing.
    expect([r0[0].shard.length, r1[0].shard.length]).toEqual([64, 36]);
    expect([r0[1].shard.length, r1[1].shard.length]).toEqual([20, 0]);
  }, 120_000);
});
