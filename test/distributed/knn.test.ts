import { beforeAll, describe, expect, it } from "vitest";
import type { KnnResult } from "../../lib/train/knn_monitor";
import { ensureCompiled, launch, readRanks, tempDir } from "./helpers";

/**
 * The kNN monitor on 2 Gloo ranks equals one process: each rank extracts its shard of the bank and of the queries
 * (uneven shards, and a rank without any query), the bank is gathered back in order, the counts summed.
 */
const cases = [
  // Evaluation batches of 16: bank 40 = 16 + 16 + 8 (rank 0 holds 24, rank 1 16), queries 24 = 16 + 8.
  { "DATA.TRAIN_SUBSET": 40, "DATA.VAL_SUBSET": 24, "TRAIN.BATCH_SIZE": 8, "TRAIN.KNN.K": 10 },
  // Queries 10: one batch, so rank 1 scores none; k above the bank (all 20 vote, the nearest by far the most at T 0.02).
  { "DATA.TRAIN_SUBSET": 20, "DATA.VAL_SUBSET": 10, "TRAIN.BATCH_SIZE": 8, "TRAIN.KNN.K": 200, "TRAIN.KNN.T": 0.02 },
];

describe("kNN monitor across processes", () => {
  beforeAll(() => ensureCompiled());

  it("2 ranks give exactly the one-process kNN accuracy, at fp and 4w4f", async () => {
    const env = { KNN_CASES: JSON.stringify(cases), SSQL_DIST_TIMEOUT: "120" };
    const oneDir = tempDir("knn-one");
    const one = await launch("knn_monitor.js", 1, { ...env, OUT_DIR: oneDir });
    expect(one.exitCode, one.stderr).toBe(0);
    const twoDir = tempDir("knn-two");
    const two = await launch("knn_monitor.js", 2, { ...env, OUT_DIR: twoDir });
    expect(two.exitCode, two.stderr).toBe(0);
    const [ref] = readRanks<{ results: KnnResult[][] }>(oneDir, 1).map((r) => r.results);
    const ranks = readRanks<{ results: KnnResult[][] }>(twoDir, 2).map((r) => r.results);
    const strip = (rs: KnnResult[][]) => rs.map((r) => r.map(({ bits, top1, top5, bank, queries }) => ({ bits, top1, top5, bank, queries })));
    expect(strip(ref).map((r) => r.map((x) => `${x.bits} ${x.bank}/${x.queries}`))).toEqual([["fp 40/24", "4w4f 40/24"], ["fp 20/10", "4w4f 20/10"]]);
    for (const r of ranks) expect(strip(r)).toEqual(strip(ref));
    console.log(`kNN top-1 (1 process = 2 ranks): ${strip(ref).flat().map((x) => `${x.bits} ${x.top1.toFixed(2)}`).join(", ")}`);
  }, 900_000);
});
