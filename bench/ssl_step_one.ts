/**
 * One SSL method's CPU training step in a process of its own (so that its peak resident memory is its own):
 *   node bench/ssl_step_one.js CONFIG BATCH STEPS WARMUP OUT.json
 */
import { stepBench } from "../test/gpu/step_bench";

const [config, batch, steps, warmup, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node bench/ssl_step_one.js CONFIG BATCH STEPS WARMUP OUT.json");
  process.exit(2);
}
stepBench([config], Number(batch), Number(steps), Number(warmup), out, "cpu").then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
