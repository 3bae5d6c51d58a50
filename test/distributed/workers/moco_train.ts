// STEPS MoCo steps on 2 ranks with DDP and SGD, the shuffle-BN across ranks and the queue of the global batch
// (workers/moco_data.js). Writes per step each rank's loss, permutation and queue, and the final queue_ptr, to
// $OUT_DIR/rank<R>.json; with DUMP_GRADS=1 rank 0 also writes the averaged gradients of step 0 (float32, parameter
// order) to $OUT_DIR/grads0.bin. A MoCo K that is not a multiple of the global batch is reported as `error`.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup, destroyProcessGroup } from "../../../lib/distributed/process_group";
import { DistributedDataParallel } from "../../../lib/distributed/ddp";
import { loadConfig } from "../../../lib/config/index";
import { buildSslMethod } from "../../../lib/ssl/build";
import type { MoCo } from "../../../lib/ssl/moco";
import { SGD } from "../../../lib/optim/sgd";
import { Generator } from "../../../lib/tensor/ops/random";
import { tidy } from "../../../lib/tensor/scope";
import { tensor } from "../../../lib/tensor/tensor";
import * as d from "./moco_data";

async function main() {
  const { world, group } = await initProcessGroup();
  const r = world.rank;
  const cfg = loadConfig(d.configFile(process.env.SSL_TYPE), d.overrides(Number(process.env.MOCO_K ?? 32)));
  const built = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0), { group });
  const moco = built.method as MoCo;
  moco.train();
  const params = moco.parameters();
  const ddp = await DistributedDataParallel.create(group, params, moco.namedBuffers().map(([, t]) => t));
  const optimizer = new SGD(params, d.SGD_OPTIONS);
  const mine = Array.from({ length: d.PER_RANK }, (_, i) => r * d.PER_RANK + i);
  const shape = [d.PER_RANK, ...d.IMAGE];
  const steps = [];
  let error = null;
  for (let s = 0; s < d.STEPS && !error; s++) {
    const { xq, xk } = d.globalViews(s);
    await ddp.broadcastBuffers();
    try {
      const loss = tidy(() => {
        const out = moco.step(tensor(d.imageRows(xq, mine), shape), tensor(d.imageRows(xk, mine), shape));
        ddp.backward(out.loss);
        return out.loss;
      });
      await ddp.finishGradientSync();
      if (s === 0 && r === 0 && process.env.DUMP_GRADS === "1") {
        const grads = params.filter((p) => p.grad).map((p) => p.grad!.toArraySync() as Float32Array);
        const flat = new Float32Array(grads.reduce((n, g) => n + g.length, 0));
        grads.reduce((o, g) => (flat.set(g, o), o + g.length), 0);
        fs.writeFileSync(path.join(process.env.OUT_DIR!, "grads0.bin"), flat);
      }
      optimizer.step();
      optimizer.zeroGrad();
      steps.push({
        loss: loss.itemSync(),
        permutation: Array.from(moco.lastPermutation!),
        queue: Array.from(moco.queue.toArraySync() as Float32Array),
        queuePtr: moco.queuePtr,
      });
      loss.dispose();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
  }
  const out = { rank: r, steps, queuePtr: moco.queuePtr, keySteps: moco.keySteps, error };
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `rank${r}.json`), JSON.stringify(out));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
