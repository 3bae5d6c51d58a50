import type { BatchNorm, Conv2d } from "../../nn/layers";
import type { ResNet } from "../../nn/resnet";
import { convUnit } from "../../nn/units";
import { maxPool2d } from "../../tensor/ops/pool";
import { tensor, type Tensor } from "../../tensor/tensor";

/** Reconstruction granularity: the original's BRECQ (a residual block, or the stem conv) or AdaRound's single layer. */
export type Granularity = "block" | "layer";

/** One conv unit of a ResNet (conv + BN + optional ReLU), under the original's module name. */
export interface ConvUnitRef {
  readonly name: string;
  readonly conv: Conv2d;
  readonly bn: BatchNorm;
  readonly relu: boolean;
}

/**
 * What is reconstructed at once: its units, how the model computes its input from images (`prefix`) and its own
 * forward (`run`). Both call the model's quantization hooks, so the caller chooses FP or quantized weights.
 */
export interface Piece {
  readonly name: string;
  /** "block" pieces are residual blocks (regularizer weight 1e-2 in the original), else a single layer (1e-3). */
  readonly isBlock: boolean;
  readonly units: readonly ConvUnitRef[];
  prefix(images: Tensor): Tensor;
  run(x: Tensor): Tensor;
}

interface BlockLike {
  conv1: Conv2d;
  bn1: BatchNorm;
  conv2: Conv2d;
  bn2: BatchNorm;
  conv3?: Conv2d;
  bn3?: BatchNorm;
  downsample: { layers: unknown[] } | null;
  forward(x: Tensor): Tensor;
}

/** The units of a residual block in forward order, each with what its input is ("block" input or a unit's output). */
function blockUnits(name: string, b: BlockLike): { unit: ConvUnitRef; input: string | null }[] {
  const bottleneck = b.conv3 !== undefined;
  const out: { unit: ConvUnitRef; input: string | null }[] = [
    { unit: { name: `${name}.conv1`, conv: b.conv1, bn: b.bn1, relu: true }, input: null },
    { unit: { name: `${name}.conv2`, conv: b.conv2, bn: b.bn2, relu: bottleneck }, input: `${name}.conv1` },
  ];
  if (bottleneck) out.push({ unit: { name: `${name}.conv3`, conv: b.conv3!, bn: b.bn3!, relu: false }, input: `${name}.conv2` });
  if (b.downsample) {
    const [conv, bn] = b.downsample.layers as [Conv2d, BatchNorm];
    out.push({ unit: { name: `${name}.downsample`, conv, bn, relu: false }, input: null });
  }
  return out;
}

function unitForward(model: ResNet, u: ConvUnitRef, x: Tensor): Tensor {
  return convUnit(model.slot, u.name, u.conv, u.bn, u.relu, x);
}

/**
 * The pieces of a ResNet in forward order. "block": the stem conv unit, then each residual block (the original's
 * recog_modules walk: every top-level QuantBasic; the classifier is left out, ptq keeps it in full precision).
 * "layer": every conv unit alone.
 */
export function resnetPieces(model: ResNet, granularity: Granularity): Piece[] {
  const stemUnit: ConvUnitRef = { name: "conv1", conv: model.conv1, bn: model.bn1, relu: true };
  const stem = (x: Tensor) => {
    const y = unitForward(model, stemUnit, x);
    return model.spec.stem === "imagenet" ? maxPool2d(y, 3, 2, 1) : y;
  };
  const blocks: { name: string; block: BlockLike }[] = [];
  model.layers.forEach((layer, li) => layer.layers.forEach((b, bi) => blocks.push({ name: `layer${li + 1}.${bi}`, block: b as unknown as BlockLike })));
  const upTo = (k: number) => (images: Tensor) => {
    let y = stem(images);
    for (let i = 0; i < k; i++) y = blocks[i].block.forward(y);
    return y;
  };
  // The stem piece ends at the conv unit's output (the ImageNet stem's max-pool is no quantized module there).
  const pieces: Piece[] = [{ name: "conv1", isBlock: false, units: [stemUnit], prefix: (x) => x, run: (x) => unitForward(model, stemUnit, x) }];
  blocks.forEach(({ name, block }, k) => {
    const units = blockUnits(name, block);
    if (granularity === "block") {
      pieces.push({ name, isBlock: true, units: units.map((u) => u.unit), prefix: upTo(k), run: (x) => block.forward(x) });
      return;
    }
    for (const { unit, input } of units) {
      const chain: ConvUnitRef[] = [];
      for (let at = input; at !== null; ) {
        const prev = units.find((u) => u.unit.name === at)!;
        chain.unshift(prev.unit);
        at = prev.input;
      }
      pieces.push({
        name: unit.name,
        isBlock: false,
        units: [unit],
        prefix: (images) => chain.reduce((y, u) => unitForward(model, u, y), upTo(k)(images)),
        run: (x) => unitForward(model, unit, x),
      });
    }
  });
  return pieces;
}

/** Rows of one tensor kept in host memory (the original's cached_inps / cached_outs with KEEP_GPU off). */
export class HostRows {
  private readonly chunks: Float32Array[] = [];
  private rowShape: number[] | null = null;

  async append(t: Tensor): Promise<void> {
    const shape = t.shape.slice(1);
    if (this.rowShape && shape.join() !== this.rowShape.join()) throw new Error(`HostRows: row shape [${shape}] after [${this.rowShape}]`);
    this.rowShape = shape;
    const data = (await t.toArray()) as Float32Array;
    const size = this.rowSize;
    for (let i = 0; i < t.shape[0]; i++) this.chunks.push(data.slice(i * size, (i + 1) * size));
  }

  get length(): number {
    return this.chunks.length;
  }

  private get rowSize(): number {
    return (this.rowShape ?? []).reduce((a, b) => a * b, 1);
  }

  /** The rows at `idx`, stacked, on `device`. */
  gather(idx: ArrayLike<number>, device: Tensor["device"]): Tensor {
    const size = this.rowSize;
    const out = new Float32Array(idx.length * size);
    for (let i = 0; i < idx.length; i++) out.set(this.chunks[idx[i]], i * size);
    return tensor(out, [idx.length, ...(this.rowShape ?? [])], device);
  }
}
