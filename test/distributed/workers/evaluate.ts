// accuracy() on each set of workers/evaluate_data.js split across the launched ranks by DistributedEvalSampler,
// the counts summed over the process group; writes each set's shard and result (or error) to $OUT_DIR/rank<R>.json.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup, destroyProcessGroup } from "../../../lib/distributed/process_group";
import { DistributedEvalSampler, batchIndices } from "../../../lib/data/sampler";
import { accuracy } from "../../../lib/train/evaluate";
import { tensor } from "../../../lib/tensor/tensor";
import { CLASSES, BATCH, SIZES, evalSet } from "./evaluate_data";

function* batches(set: { logits: Float32Array; labels: Int32Array }, shard: Int32Array) {
  for (const idx of batchIndices(shard, BATCH, false)) {
    const rows = new Float32Array(idx.length * CLASSES);
    idx.forEach((i, j) => rows.set(set.logits.subarray(i * CLASSES, (i + 1) * CLASSES), j * CLASSES));
    const logits = tensor(rows, [idx.length, CLASSES]).keep();
    const labels = tensor(Int32Array.from(idx, (i) => set.labels[i]), [idx.length]).keep();
    yield { x: logits, labels, size: idx.length, dispose: () => (logits.dispose(), labels.dispose()) };
  }
}

async function main() {
  const { world, group } = await initProcessGroup();
  const cases = [];
  for (const n of SIZES) {
    const shard = new DistributedEvalSampler({ length: n, batchSize: BATCH, numReplicas: group.size, rank: world.rank }).indices();
    try {
      const acc = await accuracy((x) => x, batches(evalSet(n), shard), CLASSES, group);
      cases.push({ n, shard: Array.from(shard), acc });
    } catch (e) {
      cases.push({ n, shard: Array.from(shard), error: e instanceof Error ? e.message : String(e) });
    }
  }
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `rank${world.rank}.json`), JSON.stringify({ rank: world.rank, cases }));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
