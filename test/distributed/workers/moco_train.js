// STEPS MoCo steps on 2 ranks with DDP and SGD, the shuffle-BN across ranks and the queue of the global batch
// (workers/moco_data.js). Writes per step each rank's loss, permutation and queue, and the final queue_ptr, to
// $OUT_DIR/rank<R>.json; with DUMP_GRADS=1 rank 0 also writes the averaged gradients of step 0 (float32, parameter
// order) to $OUT_DIR/grads0.bin. A MoCo K that is not a multiple of the global batch is reported as `error`.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { initProcessGroup, destroyProcessGroup } = require("../../../lib/distributed/process_group.js");
const { DistributedDataParallel } = require("../../../lib/distributed/ddp.js");
const { loadConfig } = require("../../../lib/config/index.js");
const { buildSslMethod } = require("../../../lib/ssl/build.js");
const { SGD } = require("../../../lib/optim/sgd.js");
const { Generator } = require("../../../lib/tensor/ops/random.js");
const { tidy } = require("../../../lib/tensor/scope.js");
const { tensor } = require("../../../lib/tensor/tensor.js");
const d = require("./moco_data.js");

async function main() {
  const { world, group } = await initProcessGroup();
  const r = world.rank;
  const cfg = loadConfig(d.configFile(process.env.SSL_TYPE), d.overrides(Number(process.env.MOCO_K ?? 32)));
  const built = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0), { group });
  const moco = built.method;
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
        const grads = params.filter((p) => p.grad).map((p) => p.grad.toArraySync());
        const flat = new Float32Array(grads.reduce((n, g) => n + g.length, 0));
        grads.reduce((o, g) => (flat.set(g, o), o + g.length), 0);
        fs.writeFileSync(path.join(process.env.OUT_DIR, "grads0.bin"), flat);
      }
      optimizer.step();
      optimizer.zeroGrad();
      steps.push({
        loss: loss.itemSync(),
        permutation: Array.from(moco.lastPermutation),
        queue: Array.from(moco.queue.toArraySync()),
        queuePtr: moco.queuePtr,
      });
      loss.dispose();
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
  }
  const out = { rank: r, steps, queuePtr: moco.queuePtr, keySteps: moco.keySteps, error };
  fs.writeFileSync(path.join(process.env.OUT_DIR, `rank${r}.json`), JSON.stringify(out));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
