// k SGD steps of the tiny model on a fixed global batch per step, data-parallel over however many ranks the
// launcher started (each takes its contiguous slice), or in one process when started without the torchrun
// variables. Writes the final parameters, gradient presence and buffers to $OUT_DIR/rank<R>.json.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup, destroyProcessGroup } from "../../../lib/distributed/process_group";
import { DistributedDataParallel } from "../../../lib/distributed/ddp";
import { tidy } from "../../../lib/tensor/scope";
import { tensor, liveTensorCount } from "../../../lib/tensor/tensor";
import { cpuOps } from "../../../lib/tensor/binding";
import { buildModel, D } from "./tiny_model";
import { randomArray } from "../../helpers/random";

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
  const gradSeen: Record<string, boolean> = {};
  let bucketsStartedInBackward = 0;
  const memory: Record<string, number>[] = [];
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
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `rank${r}.json`), JSON.stringify(out));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
