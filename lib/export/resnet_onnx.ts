import type { HostTensors } from "../io/host_tensor";
import type { ResNetSpec } from "../nn/resnet";
import { entryTensors, type QuantizerEntry, type QuantizerState } from "../quant/state";
import { foldBatchNorm, scaleOutputChannels } from "./fold_bn";
import { OnnxGraph } from "./onnx_graph";
import { containerWidth, intTypeFor, packIntegers, weightIntegers } from "./qdq";

/**
 * One of our ResNets as an ONNX graph for inference, reproducing the eval-mode forward of the fake-quantized model:
 * BN folded into each convolution (fold_bn.ts); a quantized weight becomes an integer initializer and a per-channel
 * DequantizeLinear whose scale is the saved scale times the BN factor s_c (the integers are the ones our fake
 * quantization rounds to, so the folded weight is (q - zp) * (scale_c * s_c), negative where gamma is); a quantized
 * output becomes QuantizeLinear + DequantizeLinear with the saved scale and zero point. Where both a convolution's
 * input and weight are 8-bit, its bias is int32 on the grid x_scale * w_scale (what lets ONNX Runtime run it as an
 * integer convolution); elsewhere the bias stays float32, added after a quantized conv (see convUnit).
 */
export interface ResNetExport {
  arch: string;
  spec: ResNetSpec;
  /** Our (torchvision) names: conv1.weight, bn1.running_mean, layer1.0.conv1.weight, fc.weight, ... */
  tensors: HostTensors;
  /** Logits through fc when true; the pooled features otherwise. */
  classifier: boolean;
  state: QuantizerState | null;
  /** [channels, height, width]. */
  inputShape: readonly number[];
  metadata: Record<string, string>;
}

const BN_EPS = 1e-5;

export function buildResNetOnnx(m: ResNetExport): Uint8Array {
  const g = new OnnxGraph();
  const entries = new Map((m.state?.entries ?? []).map((e) => [e.name, e]));
  const used = new Set<string>();
  const width = containerWidth(Math.max(1, ...[...entries.values()].filter((e) => e.enabled).map((e) => e.bits)));
  const entry = (name: string): QuantizerEntry | null => {
    const e = entries.get(name);
    if (!e) return null;
    used.add(name);
    return e;
  };
  const f32 = (key: string): Float32Array => {
    const t = m.tensors[key];
    if (!t) throw new Error(`ONNX export: tensor '${key}' is missing from the weights`);
    if (t.dtype !== "float32") throw new Error(`ONNX export: tensor '${key}' is ${t.dtype}, expected float32`);
    return t.data as Float32Array;
  };
  const shapeOf = (key: string) => m.tensors[key]!.shape;

  /** Q/DQ of an output; returns the new value and its per-tensor 8-bit scale (null otherwise). */
  const quantizeOutput = (x: string, e: QuantizerEntry | null, rank: number): { y: string; scale: number | null } => {
    if (!e || !e.enabled) return { y: x, scale: null };
    const t = entryTensors(m.state!, e);
    const it = intTypeFor(e.bits, e.quantMin, width);
    const perAxis = e.axis !== null;
    const dims = perAxis ? [t.scale.length] : [];
    const scale = g.float(`${e.name}.scale`, dims, t.scale);
    const zp = g.raw(`${e.name}.zero_point`, it.type, dims, packIntegers(t.zeroPoint, it));
    const axis: Record<string, number> = perAxis ? { axis: e.axis! } : {};
    let v = x;
    if (!it.exact) {
      // The container's range is wider than the grid: clip to the grid's float range first.
      const lo = Float32Array.from(t.scale, (s, c) => Math.fround((e.quantMin - t.zeroPoint[c]!) * s));
      const hi = Float32Array.from(t.scale, (s, c) => Math.fround((e.quantMax - t.zeroPoint[c]!) * s));
      const bdims = perAxis ? [1, t.scale.length, ...new Array<number>(rank - 2).fill(1)] : [];
      v = g.node("Max", [g.node("Min", [v, g.float(`${e.name}.clip_max`, bdims, hi)], `${e.name}.clip_hi`), g.float(`${e.name}.clip_min`, bdims, lo)], `${e.name}.clipped`);
    }
    const q = g.node("QuantizeLinear", [v, scale, zp], `${e.name}.q`, axis);
    const y = g.node("DequantizeLinear", [q, scale, zp], `${e.name}.dq`, axis);
    return { y, scale: !perAxis && e.bits === 8 ? t.scale[0]! : null };
  };

  /** The (folded) weight of a unit: an initializer, or integers + DequantizeLinear; returns its per-channel scales when 8-bit. */
  const weight = (unit: string, key: string, fold: Float32Array | null): { w: string; scales8: Float32Array | null } => {
    const w = f32(key);
    const shape = shapeOf(key);
    const C = shape[0]!;
    const e = entry(`${unit}.weight`);
    if (!e || !e.enabled) return { w: g.float(key, shape, fold ? scaleOutputChannels(w, C, fold) : w), scales8: null };
    const t = entryTensors(m.state!, e);
    const it = intTypeFor(e.bits, e.quantMin, width);
    const perChannel = e.axis !== null;
    if (perChannel && (e.axis !== 0 || t.scale.length !== C)) throw new Error(`ONNX export: '${e.name}' has ${t.scale.length} scales along axis ${e.axis}; the weight has ${C} output channels (axis 0)`);
    const scale = perChannel ? t.scale : new Float32Array(C).fill(t.scale[0]!);
    const zp = perChannel ? t.zeroPoint : new Int32Array(C).fill(t.zeroPoint[0]!);
    const ints = weightIntegers(w, scale, zp, e.quantMin, e.quantMax, e.rounding);
    const folded = fold ? Float32Array.from(scale, (s, c) => Math.fround(s * fold[c]!)) : scale;
    const q = g.raw(`${key}_quantized`, it.type, shape, packIntegers(ints, it));
    const dq = g.node("DequantizeLinear", [q, g.float(`${key}_scale`, [C], folded), g.raw(`${key}_zero_point`, it.type, [C], packIntegers(zp, it))], `${key}_dequantized`, { axis: 0 });
    return { w: dq, scales8: e.bits === 8 ? folded : null };
  };

  const convUnit = (x: { y: string; scale: number | null }, unit: string, conv: string, bn: string, stride: number, relu: boolean) => {
    const shape = shapeOf(`${conv}.weight`);
    const k = shape[2]!;
    const p = (k - 1) / 2;
    const fold = foldBatchNorm({ gamma: f32(`${bn}.weight`), beta: f32(`${bn}.bias`), mean: f32(`${bn}.running_mean`), var: f32(`${bn}.running_var`), eps: BN_EPS });
    const { w, scales8 } = weight(unit, `${conv}.weight`, fold.scale);
    const attrs = { kernel_shape: [k, k], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group: 1 };
    let y: string;
    if (scales8 && x.scale !== null) {
      const bs = Float32Array.from(scales8, (s) => Math.fround(x.scale! * s));
      const bq = Int32Array.from(fold.shift, (b, c) => Math.round(b / bs[c]!));
      const bias = g.node("DequantizeLinear", [g.int32(`${conv}.bias_quantized`, [bq.length], bq), g.float(`${conv}.bias_scale`, [bs.length], bs), g.int32(`${conv}.bias_zero_point`, [bq.length], new Int32Array(bq.length))], `${conv}.bias`, { axis: 0 });
      y = g.node("Conv", [x.y, w, bias], `${unit}.conv`, attrs);
    } else if (w.endsWith("_dequantized") && x.y !== "input") {
      // ONNX Runtime quantizes the float bias of a Q/DQ conv to int32 itself (a basic-level rewrite), which at 4 bits
      // moves the outputs by a few percent: added after the conv, the bias stays float and the graph exact.
      const b = g.float(`${conv}.bias`, [1, fold.shift.length, 1, 1], fold.shift);
      y = g.node("Add", [g.node("Conv", [x.y, w], `${unit}.conv_nobias`, attrs), b], `${unit}.conv`);
    } else y = g.node("Conv", [x.y, w, g.float(`${conv}.bias`, [fold.shift.length], fold.shift)], `${unit}.conv`, attrs);
    if (relu) y = g.node("Relu", [y], `${unit}.relu`);
    return quantizeOutput(y, entry(`${unit}.output`), 4);
  };

  const imagenet = m.spec.stem === "imagenet";
  let x = convUnit({ y: "input", scale: null }, "conv1", "conv1", "bn1", imagenet ? 2 : 1, true);
  if (imagenet) x = { y: g.node("MaxPool", [x.y], "maxpool", { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), scale: x.scale };
  for (let li = 0; li < 4; li++) {
    for (let b = 0; b < m.spec.layers[li]!; b++) {
      const name = `layer${li + 1}.${b}`;
      const stride = b === 0 && li > 0 ? 2 : 1;
      let out: { y: string; scale: number | null };
      if (m.spec.block === "basic") {
        out = convUnit(x, `${name}.conv1`, `${name}.conv1`, `${name}.bn1`, stride, true);
        out = convUnit(out, `${name}.conv2`, `${name}.conv2`, `${name}.bn2`, 1, false);
      } else {
        out = convUnit(x, `${name}.conv1`, `${name}.conv1`, `${name}.bn1`, 1, true);
        out = convUnit(out, `${name}.conv2`, `${name}.conv2`, `${name}.bn2`, stride, true);
        out = convUnit(out, `${name}.conv3`, `${name}.conv3`, `${name}.bn3`, 1, false);
      }
      const identity = m.tensors[`${name}.downsample.0.weight`] ? convUnit(x, `${name}.downsample`, `${name}.downsample.0`, `${name}.downsample.1`, stride, false) : x;
      const sum = g.node("Relu", [g.node("Add", [out.y, identity.y], `${name}.add`)], `${name}.relu`);
      x = quantizeOutput(sum, entry(`${name}.output`), 4);
    }
  }
  let y = g.node("Flatten", [g.node("GlobalAveragePool", [x.y], "avgpool")], "pooled", { axis: 1 });
  let outDim = m.spec.block === "basic" ? 512 : 2048;
  if (m.classifier) {
    const { w } = weight("fc", "fc.weight", null);
    outDim = shapeOf("fc.weight")[0]!;
    y = g.node("Gemm", [y, w, g.float("fc.bias", [outDim], f32("fc.bias"))], "fc", { transB: 1 });
    y = quantizeOutput(y, entry("fc.output"), 2).y;
  }
  const unused = [...entries.keys()].filter((n) => !used.has(n));
  if (unused.length) throw new Error(`ONNX export: the quantizer state names quantizers this ${m.arch} graph does not have: ${unused.join(", ")}`);
  const output = m.classifier ? "logits" : "features";
  const last = g.node("Identity", [y], output);
  if (last !== output) throw new Error(`ONNX export: output name '${output}' was taken`);
  return g.encode({ input: "input", shape: m.inputShape, output, outputDim: outDim, metadata: m.metadata, name: m.arch });
}

