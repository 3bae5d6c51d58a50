// k SGD steps of the tiny model on a fixed global batch per step, data-parallel over however many ranks the
// launcher started (each takes its contiguous slice), or in one process when started without the torchrun
// variables. Writes the final parameters, gradient presence and buffers to $OUT_DIR/rank<R>.json.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { initProcessGroup, destroyProcessGroup } = require("../../../lib/distributed/process_group.js");
const { DistributedDataParallel } = require("../../../lib/distributed/ddp.js");
const { tidy } = require("../../../lib/tensor/scope.js");
const { tensor, liveTensorCount } = require("../../../lib/tensor/tensor.js");
const { cpuOps } = require("../../../lib/tensor/binding.js");
const { buildModel, D } = require("./tiny_model.js");
const { randomArray } = require("../../helpers/random.js");

const steps = Number(process.env.STEPS ?? 5);
const globalBatch = Number(process.env.GLOBAL_BATCH ?? 8);
const lr = 0.05;

async function main() {
  const { world, group } = await initProcessGroup();
  const r = world.rank;
  const local = globalBatch / group.size;
  if (!Number.isInteger(local)) throw new Error(`global batch ${globalBatch} does not split over ${group.size} ranks`);
  // Different initial weights per rank: DDP must replace them with rank 0's.
  const model = buildModel(100 + r, { group, syncBn: process.env.SYNCBN === "1" });
  const ddp = await DistributedDataParallel.create(group, model.parameters, model.bufferList, {
    bucketCapMb: Number(process.env.BUCKET_MB ?? 25),
    firstBucketCapMb: Number(process.env.BUCKET_MB ?? 1),
  });
  // Rows [0, globalBatch/2) of every global batch take the branch parameter.
  const branchRows = Math.max(0, Math.min(local, globalBatch / 2 - r * local));
  const gradSeen = {};
  let bucketsStartedInBackward = 0;
  const memory = [];
  for (let step = 0; step < steps; step++) {
    const xs = randomArray(globalBatch * D, 1000 + step).subarray(r * local * D, (r + 1) * local * D);
    const ys = randomArray(globalBatch, 2000 + step).subarray(r * local, (r + 1) * local);
    await ddp.broadcastBuffers();
    tidy(() => {
      const loss = model.loss(tensor(Float32Array.from(xs), [local, D]), tensor(Float32Array.from(ys), [local]), branchRows);
      ddp.backward(loss);
    });
    bucketsStartedInBackward = ddp.bucketsInFlight;
    await ddp.finishGradientSync();
    for (const name of model.names) {
      const p = model.params[name];
      gradSeen[name] = p.grad !== null;
      if (!p.grad) continue; // as torch.optim.SGD, parameters without a gradient are skipped
      p.ops.addScaled_(p.handle, p.grad.handle, -lr);
      p.grad.dispose();
      p.grad = null;
    }
    memory.push({ tensors: liveTensorCount(), ...cpuOps().memoryStats() });
  }
  const localBuffers = Object.fromEntries(Object.entries(model.buffers).map(([k, t]) => [k, Array.from(t.toArraySync())]));
  await ddp.broadcastBuffers();
  const out = {
    rank: r,
    size: group.size,
    buckets: ddp.buckets.map((b) => b.map((i) => model.names[i])),
    params: Object.fromEntries(model.names.map((n) => [n, Array.from(model.params[n].toArraySync())])),
    gradSeen,
    bucketsStartedInBackward,
    memory,
    localBuffers,
    buffers: Object.fromEntries(Object.entries(model.buffers).map(([k, t]) => [k, Array.from(t.toArraySync())])),
  };
  fs.writeFileSync(path.join(process.env.OUT_DIR, `rank${r}.json`), JSON.stringify(out));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
