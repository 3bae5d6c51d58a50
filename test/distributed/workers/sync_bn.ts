// SyncBN on a global batch [6, 3, 2, 2] split unevenly over 2 ranks (rows 0-3 and 4-5), with upstream gradient G:
// writes each rank's output rows, input gradient rows, local weight/bias gradients and running stats.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup, destroyProcessGroup } from "../../../lib/distributed/process_group";
import { syncBatchNorm } from "../../../lib/distributed/sync_bn";
import { backward } from "../../../lib/tensor/autograd";
import { mul } from "../../../lib/tensor/ops/elementwise";
import { sum } from "../../../lib/tensor/ops/reduce";
import { tensor, parameter, type Tensor } from "../../../lib/tensor/tensor";
import { batch } from "./sync_bn_data";

async function main() {
  const { world, group } = await initProcessGroup();
  const rows = world.rank === 0 ? [0, 4] : [4, 6];
  const { x, g, weight, bias, shape } = batch();
  const per = shape[1] * shape[2] * shape[3];
  const local = [rows[1] - rows[0], ...shape.slice(1)];
  const xt = parameter(tensor(x.slice(rows[0] * per, rows[1] * per), local));
  const gt = tensor(g.slice(rows[0] * per, rows[1] * per), local);
  const w = parameter(tensor(weight, [shape[1]]));
  const b = parameter(tensor(bias, [shape[1]]));
  const rm = tensor(new Float32Array(shape[1]).fill(0.5), [shape[1]]);
  const rv = tensor(new Float32Array(shape[1]).fill(2), [shape[1]]);
  const y = syncBatchNorm(xt, w, b, rm, rv, { group, training: true, momentum: 0.1, eps: 1e-5 });
  backward(sum(mul(y, gt)));
  const arr = (t: Tensor | null) => Array.from(t!.toArraySync() as ArrayLike<number>);
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `rank${world.rank}.json`), JSON.stringify({
    y: arr(y), dx: arr(xt.grad), dw: arr(w.grad), db: arr(b.grad), runningMean: arr(rm), runningVar: arr(rv),
  }));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
