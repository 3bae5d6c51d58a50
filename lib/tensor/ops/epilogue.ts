import type { Device } from "../binding";
import type { FusedFakeQuantArgs, QuantRounding } from "../native/quant";
import type { Tensor } from "../tensor";

/** A per-tensor fake quant that the op producing its input can run in its own pass (a per-tensor QParams fits). */
export interface OutputFakeQuant {
  readonly scale: Tensor;
  readonly zeroPoint: Tensor;
  readonly enabled: Tensor | null;
  readonly quantMin: number;
  readonly quantMax: number;
  /** "divide" (the original's rule) when absent. */
  readonly rounding?: QuantRounding;
}

/** What an op producing a unit's output may also do in its pass (batch norm's and addRelu's epilogue). */
export interface Epilogue {
  /** The output's [min, max], for a per-tensor observer (where the backend computes it in the pass). */
  withRange?: boolean;
  /** Fake-quantize the output (where fusesFakeQuant(device)); not together with withRange. */
  fakeQuant?: OutputFakeQuant | null;
}

/** The output of such an op, its range when asked for and computed, and whether it is already fake-quantized. */
export interface EpilogueOutput {
  y: Tensor;
  range: Tensor | null;
  fakeQuantized: boolean;
}

/** Whether `device`'s producing ops fuse an output fake quant (the CPU's; elsewhere the quantizer runs its own op). */
export function fusesFakeQuant(device: Device): boolean {
  return device === "cpu";
}

/** The native ops' trailing fake-quant arguments, or none. */
export function fakeQuantArgs(x: Tensor, e: Epilogue): FusedFakeQuantArgs {
  const fq = e.fakeQuant;
  if (!fq) return [];
  if (!fusesFakeQuant(x.device)) throw new Error(`a fused output fake quant runs on the CPU only, not on ${x.device}`);
  if (e.withRange) throw new Error("an op's epilogue computes the output range or fake-quantizes it, not both");
  return [fq.scale.handle, fq.zeroPoint.handle, fq.enabled?.handle ?? null, fq.quantMin, fq.quantMax, fq.rounding ?? "divide"];
}
