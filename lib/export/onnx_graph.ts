import { onnx } from "onnx-proto";
import { TENSOR_TYPE } from "./qdq";

type Attr = number | number[] | string;

/** A small ONNX graph under construction: float32/integer initializers, nodes with attributes, unique names. */
export class OnnxGraph {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inits: onnx.ITensorProto[] = [];
  private readonly names = new Set<string>();
  /** Opset 21 (INT4/UINT4 Q/DQ) with IR version 10: ONNX Runtime refuses IR versions newer than it knows. */
  readonly opset = 21;

  private unique(base: string): string {
    let n = base;
    for (let i = 1; this.names.has(n); i++) n = `${base}_${i}`;
    this.names.add(n);
    return n;
  }

  /** An initializer from raw little-endian bytes. */
  raw(name: string, type: number, dims: readonly number[], bytes: Uint8Array): string {
    const n = this.unique(name);
    this.inits.push({ name: n, dataType: type, dims: [...dims], rawData: bytes });
    return n;
  }

  float(name: string, dims: readonly number[], data: Float32Array): string {
    return this.raw(name, TENSOR_TYPE.FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  int32(name: string, dims: readonly number[], data: Int32Array): string {
    return this.raw(name, TENSOR_TYPE.INT32, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  int64(name: string, dims: readonly number[], data: readonly number[]): string {
    return this.raw(name, 7, dims, new Uint8Array(BigInt64Array.from(data.map(BigInt)).buffer));
  }

  /** Adds a node; returns its (single) output's name. */
  node(op: string, inputs: readonly string[], output: string, attrs: Record<string, Attr> = {}): string {
    const out = this.unique(output);
    const T = onnx.AttributeProto.AttributeType;
    const attribute = Object.entries(attrs).map(([name, v]): onnx.IAttributeProto =>
      typeof v === "string"
        ? { name, type: T.STRING, s: Buffer.from(v) }
        : Array.isArray(v)
          ? { name, type: T.INTS, ints: v }
          : Number.isInteger(v)
            ? { name, type: T.INT, i: v }
            : { name, type: T.FLOAT, f: v },
    );
    this.nodes.push({ opType: op, input: [...inputs], output: [out], name: out, attribute });
    return out;
  }

  /**
   * The model: float32 input `input` [batch, ...shape] (batch dynamic) and output `output` [batch, features].
   */
  encode(o: { input: string; shape: readonly number[]; output: string; outputDim: number; metadata: Record<string, string>; name: string }): Uint8Array {
    const f32 = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
      name,
      type: { tensorType: { elemType: TENSOR_TYPE.FLOAT, shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) } } },
    });
    const model: onnx.IModelProto = {
      irVersion: 10,
      opsetImport: [{ domain: "", version: this.opset }],
      producerName: "ssql-trainer",
      producerVersion: "0.1.0",
      graph: {
        name: o.name,
        node: this.nodes,
        initializer: this.inits,
        input: [f32(o.input, ["batch", ...o.shape])],
        output: [f32(o.output, ["batch", o.outputDim])],
      },
      metadataProps: Object.entries(o.metadata).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
