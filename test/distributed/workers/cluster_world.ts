// Joins the job its environment describes (torchrun, Slurm, a Kubernetes PyTorchJob or hand-set variables),
// all-reduces rank + 1 and prints {launcher, world, sum} as one JSON line.
import { clusterFromEnv } from "../../../lib/distributed/cluster_env";
import { destroyProcessGroup, initProcessGroup } from "../../../lib/distributed/process_group";
import { tensor } from "../../../lib/tensor/tensor";

async function main(): Promise<void> {
  const cluster = clusterFromEnv();
  const { world, group } = await initProcessGroup();
  const x = tensor(new Float32Array([world.rank + 1]), [1]);
  await group.allReduceAsync_(x, "sum");
  console.log(JSON.stringify({ launcher: cluster?.launcher, world, sum: x.toArraySync()[0] }));
  await destroyProcessGroup();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? `error: ${e.message}` : String(e));
  process.exit(1);
});
