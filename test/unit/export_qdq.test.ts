import { describe, expect, it } from "vitest";
import { foldBatchNorm, scaleOutputChannels } from "../../lib/export/fold_bn";
import { containerWidth, intTypeFor, packIntegers, TENSOR_TYPE, weightIntegers } from "../../lib/export/qdq";
import { parseTorchCheckpoint } from "../../lib/io/torch_pickle";
import { torchSaveStateDict } from "../../lib/io/torch_save";
import { BatchNorm, Conv2d } from "../../lib/nn/layers";
import { weightQuantizer } from "../../lib/quant/quantizer";
import { noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tensor } from "../../lib/tensor/tensor";
import { normErr, randomArray } from "../helpers/numeric";

describe("ONNX export building blocks", () => {
  for (const bits of [2, 4, 8]) {
    for (const rounding of ["divide", "reciprocal"] as const) {
      it(`the weight integers are the ones our ${bits}-bit fake quantization (${rounding}) rounds to: (q - zp) * scale is its output bit for bit`, () => {
        const w = tensor(randomArray(16 * 8 * 3 * 3, 11 + bits), [16, 8, 3, 3]).keep();
        const q = weightQuantizer({ bits, rounding });
        noGrad(() => q.observe(w));
        const { qp } = q.qparams();
        const fq = noGrad(() => q.apply(w)).toArraySync() as Float32Array;
        const scale = qp.scale.toArraySync() as Float32Array;
        const zp = qp.zeroPoint.toArraySync() as Int32Array;
        const ints = weightIntegers(w.toArraySync() as Float32Array, scale, zp, qp.quantMin, qp.quantMax, rounding);
        const per = ints.length / 16;
        const deq = Float32Array.from(ints, (v, i) => Math.fround((v - zp[Math.floor(i / per)]!) * scale[Math.floor(i / per)]!));
        expect(Array.from(deq)).toEqual(Array.from(fq));
        expect(Math.min(...ints)).toBe(qp.quantMin); // the symmetric max-abs scale reaches -2^(b-1)
        q.dispose();
        w.dispose();
      });
    }
  }

  it("packs 4-bit integers two to a byte, the first in the low nibble, two's complement", () => {
    expect(Array.from(packIntegers(Int32Array.of(-8, 7, -1, 0, 3), intTypeFor(4, -8, 4)))).toEqual([0x78, 0x0f, 0x03]);
    expect(Array.from(packIntegers(Int32Array.of(15, 1), intTypeFor(4, 0, 4)))).toEqual([0x1f]);
    expect(Array.from(packIntegers(Int32Array.of(-128, 127), intTypeFor(8, -128, 8)))).toEqual([0x80, 0x7f]);
  });

  it("one container width per model; narrower grids are marked inexact (activations get clipped)", () => {
    expect([containerWidth(2), containerWidth(4), containerWidth(5), containerWidth(8), containerWidth(12)]).toEqual([4, 4, 8, 8, 16]);
    expect(intTypeFor(2, -2, 4)).toEqual({ type: TENSOR_TYPE.INT4, width: 4, signed: true, exact: false });
    expect(intTypeFor(4, 0, 4)).toEqual({ type: TENSOR_TYPE.UINT4, width: 4, signed: false, exact: true });
    expect(intTypeFor(4, 0, 8)).toEqual({ type: TENSOR_TYPE.UINT8, width: 8, signed: false, exact: false });
    expect(() => intTypeFor(8, 0, 4)).toThrow(/8-bit quantizer does not fit a 4-bit container/);
    expect(() => containerWidth(17)).toThrow(/17-bit quantizers cannot be exported/);
  });

  it("BN folded into the conv (negative gammas included) gives conv followed by BN in eval mode", () => {
    const conv = new Conv2d(4, 6, 3, new Generator(2), { padding: 1 });
    const bn = new BatchNorm(6);
    const gamma = Float32Array.of(1.2, -0.7, 0.9, -1.5, 0.3, 1);
    const beta = Float32Array.of(0.1, -0.2, 0.3, 0, 0.05, -0.4);
    const mean = Float32Array.of(0.2, -0.1, 0, 0.4, -0.3, 0.1);
    const vr = Float32Array.of(0.5, 1.5, 2, 0.8, 1, 1.2);
    bn.loadStateDict(new Map([["weight", tensor(gamma, [6])], ["bias", tensor(beta, [6])], ["running_mean", tensor(mean, [6])], ["running_var", tensor(vr, [6])]]), true);
    bn.eval();
    const x = tensor(randomArray(2 * 4 * 5 * 5, 5), [2, 4, 5, 5]);
    const ref = noGrad(() => bn.forward(conv.convolve(x, conv.weight))).toArraySync() as Float32Array;
    const { scale, shift } = foldBatchNorm({ gamma, beta, mean, var: vr, eps: 1e-5 });
    const w = scaleOutputChannels(conv.weight.toArraySync() as Float32Array, 6, scale);
    const y = noGrad(() => conv.convolve(x, tensor(w, [6, 4, 3, 3]))).toArraySync() as Float32Array;
    const folded = Float32Array.from(y, (v, i) => v + shift[Math.floor(i / 25) % 6]!);
    expect(normErr(folded, ref)).toBeLessThan(1e-6);
    expect(() => foldBatchNorm({ gamma: Float32Array.of(1), beta: null, mean, var: vr, eps: 1e-5 })).toThrow(/gamma has 1 channels, running_mean 6/);
  });

  it("torch.save zip written here reads back through our torch reader, keys in order", () => {
    const sd = {
      "conv1.weight": { dtype: "float32" as const, shape: [2, 1, 1, 1], data: Float32Array.of(1.5, -2) },
      "bn1.num_batches_tracked": { dtype: "int64" as const, shape: [], data: BigInt64Array.of(0n) },
    };
    const bytes = Buffer.concat(torchSaveStateDict(sd));
    const back = parseTorchCheckpoint(bytes, "mem.pth") as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(["conv1.weight", "bn1.num_batches_tracked"]);
    expect(back["conv1.weight"]).toEqual(sd["conv1.weight"]);
  });
});
