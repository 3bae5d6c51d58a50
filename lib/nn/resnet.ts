import { addRelu } from "../tensor/ops/elementwise";
import { maxPool2d } from "../tensor/ops/pool";
import { mean } from "../tensor/ops/reduce";
import { flatten } from "../tensor/ops/shape";
import { freeTemporaries } from "../tensor/scope";
import type { Generator as RandomGenerator } from "../tensor/ops/random";
import type { Tensor } from "../tensor/tensor";
import { HookSlot, epilogueFor, type QuantUnit } from "./hooks";
import { BatchNorm, Conv2d, Linear } from "./layers";
import { kaimingNormal_, zeros_ } from "./init";
import { Layer, Sequential } from "./module";
import { convUnit } from "./units";

/**
 * ResNets with the original code's module names: the CIFAR variant (3x3 stride-1 stem, no max-pool,
 * models/cifar_resnet.py) and the torchvision-style ImageNet variant (7x7 stride-2 stem and max-pool).
 */
export interface ResNetSpec {
  block: "basic" | "bottleneck";
  layers: [number, number, number, number];
  stem: "cifar" | "imagenet";
}

export const ARCHS: Record<string, ResNetSpec> = {
  cifar_resnet18: { block: "basic", layers: [2, 2, 2, 2], stem: "cifar" },
  cifar_resnet34: { block: "basic", layers: [3, 4, 6, 3], stem: "cifar" },
  cifar_resnet50: { block: "bottleneck", layers: [3, 4, 6, 3], stem: "cifar" },
  cifar_resnet101: { block: "bottleneck", layers: [3, 4, 23, 3], stem: "cifar" },
  cifar_resnet152: { block: "bottleneck", layers: [3, 8, 36, 3], stem: "cifar" },
  resnet18: { block: "basic", layers: [2, 2, 2, 2], stem: "imagenet" },
  resnet34: { block: "basic", layers: [3, 4, 6, 3], stem: "imagenet" },
  resnet50: { block: "bottleneck", layers: [3, 4, 6, 3], stem: "imagenet" },
  resnet101: { block: "bottleneck", layers: [3, 4, 23, 3], stem: "imagenet" },
};

abstract class Block extends Layer {
  abstract readonly lastBn: BatchNorm;
  abstract units(): QuantUnit[];
}

function downsampleUnit(slot: HookSlot, name: string, ds: Sequential | null, x: Tensor): Tensor {
  if (!ds) return x;
  return convUnit(slot, `${name}.downsample`, ds.layers[0] as Conv2d, ds.layers[1] as BatchNorm, false, x);
}

/** A block's end, relu(out + identity), as one op that also does what the output hook asks of its pass. */
function blockOutput(slot: HookSlot, name: string, out: Tensor, identity: Tensor): Tensor {
  const { y, ...produced } = addRelu(out, identity, epilogueFor(slot, name, out));
  return slot.hooks.output(name, y, produced);
}

function makeDownsample(inPlanes: number, outPlanes: number, stride: number, gen: RandomGenerator): Sequential | null {
  if (stride === 1 && inPlanes === outPlanes) return null;
  return new Sequential(new Conv2d(inPlanes, outPlanes, 1, gen, { stride }), new BatchNorm(outPlanes));
}

class BasicBlock extends Block {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly downsample: Sequential | null;

  constructor(private readonly slot: HookSlot, private readonly name: string, inPlanes: number, planes: number, stride: number, gen: RandomGenerator) {
    super();
    this.conv1 = this.registerModule("conv1", new Conv2d(inPlanes, planes, 3, gen, { stride, padding: 1 }));
    this.bn1 = this.registerModule("bn1", new BatchNorm(planes));
    this.conv2 = this.registerModule("conv2", new Conv2d(planes, planes, 3, gen, { padding: 1 }));
    this.bn2 = this.registerModule("bn2", new BatchNorm(planes));
    this.downsample = this.registerModule("downsample", makeDownsample(inPlanes, planes, stride, gen));
  }

  get lastBn(): BatchNorm {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    return freeTemporaries(() => {
      let out = convUnit(this.slot, `${this.name}.conv1`, this.conv1, this.bn1, true, x);
      out = convUnit(this.slot, `${this.name}.conv2`, this.conv2, this.bn2, false, out);
      const identity = downsampleUnit(this.slot, this.name, this.downsample, x);
      return blockOutput(this.slot, this.name, out, identity);
    });
  }

  units(): QuantUnit[] {
    const u: QuantUnit[] = [
      { name: `${this.name}.conv1`, hasWeight: true, channels: this.conv1.outChannels },
      { name: `${this.name}.conv2`, hasWeight: true, channels: this.conv2.outChannels },
    ];
    if (this.downsample) u.push({ name: `${this.name}.downsample`, hasWeight: true, channels: this.conv2.outChannels });
    u.push({ name: this.name, hasWeight: false });
    return u;
  }
}

class Bottleneck extends Block {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  readonly downsample: Sequential | null;

  constructor(private readonly slot: HookSlot, private readonly name: string, inPlanes: number, planes: number, stride: number, gen: RandomGenerator) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule("conv1", new Conv2d(inPlanes, planes, 1, gen));
    this.bn1 = this.registerModule("bn1", new BatchNorm(planes));
    this.conv2 = this.registerModule("conv2", new Conv2d(planes, planes, 3, gen, { stride, padding: 1 }));
    this.bn2 = this.registerModule("bn2", new BatchNorm(planes));
    this.conv3 = this.registerModule("conv3", new Conv2d(planes, out, 1, gen));
    this.bn3 = this.registerModule("bn3", new BatchNorm(out));
    this.downsample = this.registerModule("downsample", makeDownsample(inPlanes, out, stride, gen));
  }

  get lastBn(): BatchNorm {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    return freeTemporaries(() => {
      let out = convUnit(this.slot, `${this.name}.conv1`, this.conv1, this.bn1, true, x);
      out = convUnit(this.slot, `${this.name}.conv2`, this.conv2, this.bn2, true, out);
      out = convUnit(this.slot, `${this.name}.conv3`, this.conv3, this.bn3, false, out);
      const identity = downsampleUnit(this.slot, this.name, this.downsample, x);
      return blockOutput(this.slot, this.name, out, identity);
    });
  }

  units(): QuantUnit[] {
    const u: QuantUnit[] = [1, 2, 3].map((k) => ({
      name: `${this.name}.conv${k}`,
      hasWeight: true,
      channels: (this as unknown as Record<string, Conv2d>)[`conv${k}`].outChannels,
    }));
    if (this.downsample) u.push({ name: `${this.name}.downsample`, hasWeight: true, channels: this.conv3.outChannels });
    u.push({ name: this.name, hasWeight: false });
    return u;
  }
}

export interface ResNetOptions {
  numClasses: number;
  /** Zero the last BN gamma of each residual branch (applied only by the ImageNet ResNets, as in the original). */
  zeroInitResidual?: boolean;
  slot?: HookSlot;
}

export class ResNet extends Layer {
  readonly slot: HookSlot;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly layers: Sequential[];
  /** Width of the pooled feature (512 for ResNet-18/34, 2048 for ResNet-50 and deeper). */
  readonly featureDim: number;
  fc: Layer;

  constructor(readonly arch: string, readonly spec: ResNetSpec, gen: RandomGenerator, opts: ResNetOptions) {
    super();
    this.slot = opts.slot ?? new HookSlot();
    const imagenet = spec.stem === "imagenet";
    this.conv1 = this.registerModule("conv1", imagenet ? new Conv2d(3, 64, 7, gen, { stride: 2, padding: 3 }) : new Conv2d(3, 64, 3, gen, { padding: 1 }));
    this.bn1 = this.registerModule("bn1", new BatchNorm(64));
    const expansion = spec.block === "basic" ? 1 : 4;
    let inPlanes = 64;
    this.layers = [64, 128, 256, 512].map((planes, li) => {
      const blocks: Block[] = [];
      for (let b = 0; b < spec.layers[li]; b++) {
        const stride = b === 0 && li > 0 ? 2 : 1;
        const name = `layer${li + 1}.${b}`;
        blocks.push(spec.block === "basic" ? new BasicBlock(this.slot, name, inPlanes, planes, stride, gen) : new Bottleneck(this.slot, name, inPlanes, planes, stride, gen));
        inPlanes = planes * expansion;
      }
      return this.registerModule(`layer${li + 1}`, new Sequential(...blocks));
    });
    this.featureDim = 512 * expansion;
    this.fc = this.registerModule("fc", new Linear(this.featureDim, opts.numClasses, gen));
    if (imagenet) this.imagenetInit(gen, opts.zeroInitResidual ?? false);
  }

  /**
   * models/resnet.py's init: every conv kaiming-normal (fan_out, relu), every BN weight 1 and bias 0 (already so),
   * and with zero_init_residual the last BN of each residual branch at 0. The CIFAR ResNets
   * (models/cifar_resnet.py) keep PyTorch's default layer init, as there.
   */
  private imagenetInit(gen: RandomGenerator, zeroInitResidual: boolean): void {
    for (const [, m] of this.namedModules()) if (m instanceof Conv2d) kaimingNormal_(m.weight, gen, { mode: "fan_out", nonlinearity: "relu" });
    if (zeroInitResidual) for (const blk of this.blocks()) if (blk.lastBn.weight) zeros_(blk.lastBn.weight);
  }

  /** Installs a new head (the SSL projector, or a fresh classifier). */
  setHead(head: Layer): void {
    this.fc.dispose();
    this.fc = this.registerModule("fc", head);
  }

  private *blocks(): Generator<Block> {
    for (const layer of this.layers) for (const b of layer.layers) yield b as Block;
  }

  /** The pooled, flattened backbone feature [N, featureDim]. */
  features(x: Tensor): Tensor {
    return freeTemporaries(() => {
      let y = convUnit(this.slot, "conv1", this.conv1, this.bn1, true, x);
      if (this.spec.stem === "imagenet") y = maxPool2d(y, 3, 2, 1);
      for (const layer of this.layers) y = layer.forward(y);
      return flatten(mean(y, [2, 3], true));
    });
  }

  forward(x: Tensor): Tensor {
    return freeTemporaries(() => this.fc.forward(this.features(x)));
  }

  /** Backbone quantization units in forward order (the head adds its own). */
  backboneUnits(): QuantUnit[] {
    const u: QuantUnit[] = [{ name: "conv1", hasWeight: true, channels: 64 }];
    for (const b of this.blocks()) u.push(...b.units());
    return u;
  }
}

export function createResNet(arch: string, gen: RandomGenerator, opts: ResNetOptions): ResNet {
  const spec = ARCHS[arch];
  if (!spec) throw new Error(`unknown MODEL.ARCH '${arch}'; known: ${Object.keys(ARCHS).join(", ")}`);
  return new ResNet(arch, spec, gen, opts);
}
