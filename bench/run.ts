/** `npm run bench`: every microbenchmark in turn, each against PyTorch measured in the same run. */
import { benchBatchNorm } from "./batch_norm";
import { benchConv2d } from "./conv2d";
import { benchResnet18Step } from "./resnet18_step";
import { writeResult } from "./common";

const benches: Record<string, () => unknown> = {
  conv2d: () => benchConv2d(),
  batch_norm: () => benchBatchNorm(),
  resnet18_step: () => benchResnet18Step(),
};

const only = process.argv.slice(2);
for (const [name, run] of Object.entries(benches)) {
  if (only.length && !only.includes(name)) continue;
  const result = run();
  console.log(`results: ${writeResult(name, result)}\n`);
}
