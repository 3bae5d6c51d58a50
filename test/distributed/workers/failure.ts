// A training-like loop of gradient all-reduces that goes wrong on purpose, for the launcher's failure handling.
// FAIL_MODE: "throw" (FAIL_RANK throws at FAIL_STEP), "hang" (FAIL_RANK stops taking part at FAIL_STEP),
// "none" (runs until killed). Every rank writes its pid to $OUT_DIR/pid<R> and prints "step S" as it goes.
import * as fs from "node:fs";
import * as path from "node:path";
import { initProcessGroup } from "../../../lib/distributed/process_group";
import { tensor } from "../../../lib/tensor/tensor";

const mode = process.env.FAIL_MODE ?? "none";
const failRank = Number(process.env.FAIL_RANK ?? 1);
const failStep = Number(process.env.FAIL_STEP ?? 3);

async function main() {
  const { world, group } = await initProcessGroup();
  fs.writeFileSync(path.join(process.env.OUT_DIR!, `pid${world.rank}`), String(process.pid));
  const grad = tensor(new Float32Array(1 << 16).fill(1), [1 << 16]);
  for (let step = 0; ; step++) {
    if (world.rank === failRank && step === failStep) {
      if (mode === "throw") throw new Error(`boom from rank ${world.rank} at step ${step}`);
      if (mode === "hang") await new Promise((r) => setTimeout(r, 120_000));
    }
    await group.allReduceAsync_(grad, "avg");
    console.log(`step ${step}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
