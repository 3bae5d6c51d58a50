#!/usr/bin/env node
import { demo } from "./cli/demo";
import { evalOnnxCommand } from "./cli/eval_onnx";
import { exportCommand } from "./cli/export";
import { info } from "./cli/info";
import { launch } from "./cli/launch";
import { linear } from "./cli/linear";
import { ptq } from "./cli/ptq";
import { report } from "./cli/report";
import { reproduce } from "./cli/reproduce";
import { ssl } from "./cli/ssl";
import { watchLauncher } from "./distributed/launch";

const usage = `usage: node lib/main.js <command> [options]

commands:
  ssl        self-supervised pretraining (SimSiam, SSQL_SimSiam, BYOL, SSQL_BYOL, MoCo, SSQL_MoCo, SimCLR)
  linear     linear evaluation / fine-tuning of a pretrained backbone at one or more bit-widths
  ptq        calibrate and validate a trained classifier at bit-widths, with PTQ methods (--methods)
  export     write a trained model as ONNX (Q/DQ at its bit setting) or a torchvision state dict (.safetensors, .pth)
  eval-onnx  top-1/top-5 of an exported ONNX classifier in ONNX Runtime, beside ours
  report     merge the results of several linear/ptq runs into one table and chart
  reproduce  SSQL vs SimSiam on Fashion-MNIST at a time budget: pretraining, bit-width sweep, results page
  launch     run a command on N data-parallel processes (as torchrun): launch --nproc-per-node N <command> ...
  demo       the built-in demo: SSQL and SimSiam on Fashion-MNIST, then a bit-width sweep
  info       versions, backends and devices on this machine

Run 'node lib/main.js <command> --help' for a command's options; 'node lib/main.js --version' prints the version.`;

type Command = (argv: string[]) => void | number | Promise<void | number>;

/** The original's main.py commands that have no counterpart here, with what to use instead. */
const ORIGINAL_ONLY: Record<string, string> = {
  default:
    "the original's 'default' worker (supervised training from random weights) is not a command here; to fine-tune a " +
    "pretrained backbone use 'linear' with TRAIN.LINEAR_EVAL False",
  draw: "the original's 'draw' worker (a t-SNE plot of CIFAR-10 backbone features) is not implemented; 'report' charts top-1 against bit setting",
};

const commands: Record<string, Command> = {
  demo,
  "eval-onnx": evalOnnxCommand,
  export: exportCommand,
  info: () => info(),
  launch,
  linear,
  ptq,
  report,
  reproduce,
  ssl,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-V") {
    const pkg = require("../package.json") as { name: string; version: string };
    console.log(`${pkg.name} ${pkg.version}`);
    return 0;
  }
  if (!name || name === "--help" || name === "-h") {
    console.log(usage);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd && ORIGINAL_ONLY[name]) {
    console.error(`command '${name}': ${ORIGINAL_ONLY[name]}`);
    return 2;
  }
  if (!cmd) {
    console.error(`unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  return (await cmd(rest)) ?? 0;
}

watchLauncher();
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.SSQL_DEBUG) console.error(err);
    process.exit(1);
  },
);
