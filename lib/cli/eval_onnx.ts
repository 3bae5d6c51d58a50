import { parseArgs } from "node:util";
import { loadConfig } from "../config";
import { evaluateOnnx } from "../export/eval_onnx";
import { resolveDevice } from "./resolve_device";

const usage = `usage: node lib/main.js eval-onnx --model FILE --config FILE [--from DIR] [--device D] [--threads N] [--opts KEY VALUE ...]

Runs an exported classifier (.onnx) in ONNX Runtime over the config's validation set and prints its top-1/top-5
beside our own evaluation of the setting folder it was exported from (--from, else the model's ssql.source).`;

/** `eval-onnx --model FILE --config FILE [--from DIR] [--device D] [--threads N] [--opts K V ...]` */
export async function evalOnnxCommand(argv: string[]): Promise<number> {
  const at = argv.indexOf("--opts");
  const head = at < 0 ? argv : argv.slice(0, at);
  const tail = at < 0 ? [] : argv.slice(at + 1);
  const { values } = parseArgs({
    args: head,
    options: {
      model: { type: "string" }, config: { type: "string" }, from: { type: "string" }, device: { type: "string" }, threads: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.model || !values.config) {
    console.error(`eval-onnx: ${!values.model ? "--model" : "--config"} is required\n\n${usage}`);
    return 2;
  }
  if (tail.length % 2 === 1) throw new Error(`--opts expects KEY VALUE pairs; '${tail[tail.length - 1]}' has no value`);
  const overrides = [];
  for (let i = 0; i < tail.length; i += 2) overrides.push({ key: tail[i]!, value: tail[i + 1]!, source: "--opts" });
  const threads = values.threads === undefined ? 0 : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 0) throw new Error(`--threads: expected a non-negative integer, got '${values.threads}'`);
  const cfg = loadConfig(values.config, overrides);
  const device = resolveDevice(values.device ?? cfg.DEVICE);
  const r = await evaluateOnnx({ model: values.model, cfg, device, from: values.from, threads });
  const row = (name: string, a: { top1: number; top5: number }) => `| ${name} | ${a.top1.toFixed(2)} | ${a.top5.toFixed(2)} |`;
  console.log(`${r.images} validation images\n\n| model | top-1 | top-5 |\n|---|---|---|\n${row(`ONNX Runtime (${values.model})`, r.onnx)}`);
  if (r.ours) console.log(`${row(`ours (${r.source})`, r.ours)}\n\nlogits: normalized difference ${r.logitsNormErr!.toExponential(2)}, largest ${r.logitsMaxAbs!.toExponential(2)}`);
  else console.log("\n(no setting folder to compare with: pass --from DIR)");
  return 0;
}
