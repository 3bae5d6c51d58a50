/** `npm run bench`: every benchmark in turn, each against PyTorch measured in the same run (`npm run bench -- NAME...` picks some). */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { benchBatchNorm } from "./batch_norm";
import { root, writeResult } from "./common";
import { benchConv2d } from "./conv2d";
import { benchKnn } from "./knn";
import { benchPtqReconstruct } from "./ptq_reconstruct";
import { benchSslStep } from "./ssl_step";

/** Benchmarks that run in their own processes (allocator state, worker pools or several ranks). */
const standalone = (file: string, ...args: string[]) => () => {
  execFileSync(process.execPath, [path.join(root, "bench", file), ...args], { stdio: "inherit" });
  return { see: `output of bench/${file}` };
};

const benches: Record<string, () => unknown> = {
  conv2d: () => benchConv2d(),
  batch_norm: () => benchBatchNorm(),
  ssl_step: () => benchSslStep(),
  // Not `ssl_step_128`: `npm run bench -- ssl_step` would then run both (the family rule below).
  ssl_step128: () => benchSslStep(128, 3, 1, 1),
  knn: () => benchKnn(),
  fake_quant: standalone("fake_quant.bench.js"),
  data: standalone("data.bench.js"),
  allreduce: standalone("allreduce.bench.js", "2", "3"),
  ddp_step: standalone("ddp_step.bench.js"),
  // `ptq` runs both parts (the family rule in main()).
  ptq_observers: standalone("ptq_observers.bench.js"),
  ptq_reconstruct: () => benchPtqReconstruct(),
  onnx_int8: standalone("onnx_int8.bench.js"),
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  for (const [name, run] of Object.entries(benches)) {
    // A family name picks its parts too: `ptq` runs ptq_reconstruct (and any other ptq_* bench).
    if (only.length && !only.some((o) => name === o || name.startsWith(`${o}_`))) continue;
    const result = await run();
    console.log(`results: ${writeResult(name, result)}\n`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
