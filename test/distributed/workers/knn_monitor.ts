// The kNN monitor of a freshly built SSQL_SimSiam encoder on tiny Fashion-MNIST sets, at fp and 4w4f, for every
// case of KNN_CASES (JSON: a list of config overrides); run by 1 or 2 processes (launched), each rank writing
// its results to $OUT_DIR/rank<R>.json.
import * as fs from "node:fs";
import * as path from "node:path";
import { loadConfig } from "../../../lib/config";
import { worldFromEnv } from "../../../lib/distributed/launch";
import { destroyProcessGroup, initProcessGroup } from "../../../lib/distributed/process_group";
import { openDataset } from "../../../lib/data/datasets";
import { subset } from "../../../lib/data/subset";
import { buildSslMethod } from "../../../lib/ssl/build";
import { Generator } from "../../../lib/tensor/ops/random";
import { KnnMonitor, type KnnResult } from "../../../lib/train/knn_monitor";
import { withRun } from "../../../lib/train/run";

const recipe = path.resolve(__dirname, "..", "..", "..", "configs", "fmnist", "resnet18_ssql_simsiam_fmnist.yaml");

async function main() {
  const cases = JSON.parse(process.env.KNN_CASES!) as Record<string, unknown>[];
  const out = process.env.OUT_DIR!;
  const results: KnnResult[][] = [];
  let rank = 0;
  // One job for every case: joining and leaving once per case would race rank 0's store of the last case.
  const world = worldFromEnv();
  if (world && world.worldSize > 1) await initProcessGroup({ world });
  for (const [i, extra] of cases.entries()) {
    const o = { "MODEL.INPUTSHAPE": [16, 16], "SSL.SETTING.DIM": 128, "SSL.SETTING.HIDDEN_DIM": 64, "TRAIN.KNN.EVERY": 1, "TRAIN.KNN.BITS": ["fp", "4w4f"], ...extra };
    const cfg = loadConfig(recipe, Object.entries(o).map(([key, value]) => ({ key, value })));
    await withRun({ cfg, output: path.join(out, `case${i}`), device: "cpu", workers: 1, quiet: true }, async (run) => {
      rank = run.rank;
      const train = subset(await openDataset(cfg.TRAIN.DATASET, "train", {}), cfg.DATA.TRAIN_SUBSET);
      const { method } = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0), { group: run.group });
      const monitor = await KnnMonitor.create(run, train);
      try {
        results.push(await monitor!.evaluate(method.encoder));
      } finally {
        monitor!.dispose();
        method.dispose();
        train.dispose();
      }
    });
  }
  await destroyProcessGroup();
  fs.writeFileSync(path.join(out, `rank${rank}.json`), JSON.stringify({ rank, results }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
