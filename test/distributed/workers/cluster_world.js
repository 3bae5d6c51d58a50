// Joins the job its environment describes (torchrun, Slurm, a Kubernetes PyTorchJob or hand-set variables),
// all-reduces rank + 1 and prints {launcher, world, sum} as one JSON line.
"use strict";
const { clusterFromEnv } = require("../../../lib/distributed/cluster_env.js");
const { initProcessGroup, destroyProcessGroup } = require("../../../lib/distributed/process_group.js");
const { tensor } = require("../../../lib/tensor/tensor.js");

async function main() {
  const cluster = clusterFromEnv();
  const { world, group } = await initProcessGroup();
  const x = tensor(new Float32Array([world.rank + 1]), [1]);
  await group.allReduceAsync_(x, "sum");
  console.log(JSON.stringify({ launcher: cluster.launcher, world, sum: x.toArraySync()[0] }));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.message ? `error: ${e.message}` : String(e));
  process.exit(1);
});
