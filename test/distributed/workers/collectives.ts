// Runs every collective on rank-dependent data and writes what each rank received to $OUT_DIR/rank<R>.json.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup, destroyProcessGroup } from "../../../lib/distributed/process_group";
import { tensor, type Tensor } from "../../../lib/tensor/tensor";
import { allReduceCounts, allReduceMean } from "../../../lib/distributed/reduce_metrics";

async function main() {
  const { world, group } = await initProcessGroup();
  const r = world.rank;
  const out: Record<string, unknown> = { rank: r, size: group.size };
  const f = (vals: number[], shape?: number[]) => tensor(Float32Array.from(vals), shape ?? [vals.length]);
  const i32 = (vals: number[]) => tensor(Int32Array.from(vals), [vals.length]);
  const read = (t: Tensor): number[] => Array.from(t.toArraySync() as ArrayLike<number>);

  // Async and blocking reductions, one tensor and a coalesced list of mixed shapes.
  const a = f([1 + r, 2 * r, -r, 0.5], [2, 2]);
  await group.allReduceAsync_(a, "sum");
  out.sum = read(a);
  const b1 = f([r, r + 1, r + 2]);
  const b2 = f([10 * r]);
  const b3 = f([1, 2, 3, 4, 5, 6].map((v) => v * (r + 1)), [2, 3]);
  group.allReduce_([b1, b2, b3], "avg");
  out.avgList = [read(b1), read(b2), read(b3)];
  const m = f([r, -r, 3]);
  await group.allReduceAsync_(m, "max");
  out.max = read(m);
  const n = i32([r, 7 - r, 100]);
  group.allReduce_(n, "min");
  out.minInt = read(n);
  const c = i32([1, r, 1 << 20]);
  await group.allReduceAsync_(c, "sum");
  out.sumInt = read(c);
  // A large buffer crosses Gloo's segment size.
  const big = new Float32Array(3_000_001).map((_, k) => (k % 97) * (r + 1));
  const bt = tensor(big, [big.length]);
  await group.allReduceAsync_(bt, "sum");
  const bv = bt.toArraySync();
  out.bigChecks = [bv[0], bv[96], bv[97], bv[3_000_000]];

  // Broadcast from the last rank, a list with mixed dtypes.
  const root = group.size - 1;
  const x = f([r, r, r]);
  const y = i32([r * 5, 9]);
  group.broadcast_([x, y], root);
  out.broadcast = [read(x), read(y)];
  const z = f([r + 0.25]);
  await group.broadcastAsync_(z, 0);
  out.broadcastAsync = read(z);

  // All-gather: blocking and async, a matrix and a scalar.
  const g = group.allGather(f([r, r + 0.5, r + 1, r + 1.5], [2, 2]));
  out.gather = { shape: g.shape, values: read(g) };
  const gs = await group.allGatherAsync(tensor(Int32Array.from([r * 3]), []));
  out.gatherScalar = { shape: gs.shape, values: read(gs) };

  // Many collectives in flight at once complete in issue order, a blocking one issued behind them included.
  const many = Array.from({ length: 20 }, (_, k) => f([k + r]));
  const inFlight = many.map((t) => group.allReduceAsync_(t, "sum"));
  const behind = f([100 * r]);
  group.allReduce_(behind, "sum");
  out.behind = read(behind);
  await Promise.all(inFlight);
  out.many = many.map((t) => read(t)[0]);

  // Validation metrics: exact integer counts beyond float32's 2^24, and float means.
  out.counts = await allReduceCounts(group, [20_000_001 + r, r]);
  out.means = await allReduceMean(group, [r, 1.5]);

  await group.barrier();
  // Bad input is an error, not a crash.
  try {
    group.allReduce_([f([1]), i32([1])], "sum");
  } catch (e) {
    out.mixedDtypeError = (e as Error).message;
  }
  try {
    group.allReduce_(i32([1]), "avg");
  } catch (e) {
    out.intAvgError = (e as Error).message;
  }
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `rank${r}.json`), JSON.stringify(out));
  await destroyProcessGroup();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
