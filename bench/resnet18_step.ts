import { cpuOps } from "../lib/tensor/binding";
import { resetBatchNorm, kaimingNormal_ } from "../lib/nn/init";
import { SGD } from "../lib/optim/sgd";
import { backward } from "../lib/tensor/autograd";
import { conv2d } from "../lib/tensor/ops/conv";
import { add, relu } from "../lib/tensor/ops/elementwise";
import { linear } from "../lib/tensor/ops/linear";
import { crossEntropy } from "../lib/tensor/ops/loss";
import { batchNorm } from "../lib/tensor/ops/norm";
import { adaptiveAvgPool2d } from "../lib/tensor/ops/pool";
import { Generator } from "../lib/tensor/ops/random";
import { flatten } from "../lib/tensor/ops/shape";
import { tidy } from "../lib/tensor/scope";
import { Tensor, parameter, tensor, zeros } from "../lib/tensor/tensor";
import { type Timing, runPython, table, time } from "./common";

/** A whole training step of CIFAR ResNet-18 (3x3 stem, no max pool), written with the functional ops, vs PyTorch. */
const N = 32;

interface BN {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

function makeBN(c: number): BN {
  const [weight, bias] = [parameter(zeros([c])), parameter(zeros([c]))];
  const [runningMean, runningVar] = [zeros([c]).keep(), zeros([c]).keep()];
  resetBatchNorm(weight, bias, runningMean, runningVar);
  return { weight, bias, runningMean, runningVar };
}

function makeConv(gen: Generator, o: number, i: number, k: number): Tensor {
  return kaimingNormal_(parameter(zeros([o, i, k, k])), gen, { mode: "fan_out", nonlinearity: "relu" });
}

function bn(x: Tensor, p: BN): Tensor {
  return batchNorm(x, p.runningMean, p.runningVar, p.weight, p.bias, true);
}

interface Block {
  conv1: Tensor;
  bn1: BN;
  conv2: Tensor;
  bn2: BN;
  stride: number;
  down?: { conv: Tensor; bn: BN };
}

function resnet18(gen: Generator) {
  const stem = { conv: makeConv(gen, 64, 3, 3), bn: makeBN(64) };
  const blocks: Block[] = [];
  let inC = 64;
  for (const [c, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]])
    for (let b = 0; b < 2; b++) {
      const s = b === 0 ? stride : 1;
      blocks.push({
        conv1: makeConv(gen, c, inC, 3), bn1: makeBN(c), conv2: makeConv(gen, c, c, 3), bn2: makeBN(c), stride: s,
        down: s !== 1 || inC !== c ? { conv: makeConv(gen, c, inC, 1), bn: makeBN(c) } : undefined,
      });
      inC = c;
    }
  const fc = { weight: parameter(gen.uniform([10, 512], -1 / Math.sqrt(512), 1 / Math.sqrt(512))), bias: parameter(zeros([10])) };
  const forward = (x: Tensor) => {
    let h = relu(bn(conv2d(x, stem.conv, null, { padding: 1 }), stem.bn));
    for (const b of blocks) {
      const out = bn(conv2d(relu(bn(conv2d(h, b.conv1, null, { stride: b.stride, padding: 1 }), b.bn1)), b.conv2, null, { padding: 1 }), b.bn2);
      const shortcut = b.down ? bn(conv2d(h, b.down.conv, null, { stride: b.stride }), b.down.bn) : h;
      h = relu(add(out, shortcut));
    }
    return linear(flatten(adaptiveAvgPool2d(h)), fc.weight, fc.bias);
  };
  const params = [stem.conv, stem.bn.weight, stem.bn.bias, ...blocks.flatMap((b) => [b.conv1, b.bn1.weight, b.bn1.bias, b.conv2, b.bn2.weight, b.bn2.bias, ...(b.down ? [b.down.conv, b.down.bn.weight, b.down.bn.bias] : [])]), fc.weight, fc.bias];
  return { forward, params };
}

export function benchResnet18Step(reps = 5, warmup = 2): unknown {
  const threads = cpuOps().getNumThreads();
  const gen = new Generator(0);
  const model = resnet18(gen);
  const opt = new SGD(model.params, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const x = gen.normal([N, 3, 32, 32]).keep();
  const target = tensor(Int32Array.from({ length: N }, (_, i) => i % 10), [N]).keep();
  let loss = 0;
  const ours: Timing = time(() => {
    loss = tidy(() => {
      const l = crossEntropy(model.forward(x), target);
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l.itemSync();
    });
  }, reps, warmup);
  const torch = runPython<{ torch: string; threads: number; step: Timing }>("torch_resnet18_step.py", { threads, reps, warmup, batch: N });
  console.log(`CIFAR ResNet-18 training step, batch ${N}, ${threads} threads; PyTorch ${torch.torch} with ${torch.threads} threads (last loss ${loss.toFixed(3)})`);
  console.log(table([["", "ours ms", "torch ms", "ours/torch"], ["step", ours.medianMs, torch.step.medianMs, ours.medianMs / torch.step.medianMs]]));
  return { threads, batch: N, ours, torch };
}
