import type { Device } from "../binding";
import { opsFor } from "../binding";
import type { NativeTensor } from "../native";
import { Tensor } from "../tensor";

/** A generator's whole state: checkpoints store it to resume the same random stream. */
export interface GeneratorState {
  seed: number;
  offset: number;
}

const MAX_SAFE = 2 ** 53;

function checkCounter(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_SAFE) throw new RangeError(`Generator: ${name} must be an integer in [0, 2^53], got ${v}`);
  return v;
}

/**
 * Seeded source of random tensors on any device, drawn from the native counter-based Philox generator:
 * the same seed and offset give the same numbers on the CPU and on CUDA. Each draw of n values consumes
 * ceil(n / 4) counters.
 */
export class Generator {
  private _seed: number;
  private _offset = 0;

  constructor(seed = 0) {
    this._seed = checkCounter("seed", seed);
  }

  get seed(): number {
    return this._seed;
  }

  get offset(): number {
    return this._offset;
  }

  manualSeed(seed: number): this {
    this._seed = checkCounter("seed", seed);
    this._offset = 0;
    return this;
  }

  getState(): GeneratorState {
    return { seed: this._seed, offset: this._offset };
  }

  setState(state: GeneratorState): this {
    this._seed = checkCounter("seed", state.seed);
    this._offset = checkCounter("offset", state.offset);
    return this;
  }

  /** Draws `shape` from the next counters, advancing the offset past them once the draw succeeded. */
  private draw(shape: readonly number[], device: Device, op: (offset: number) => NativeTensor): Tensor {
    const next = checkCounter("offset", this._offset + Math.ceil(shape.reduce((a, b) => a * b, 1) / 4));
    const t = new Tensor(op(this._offset), device, shape);
    this._offset = next;
    return t;
  }

  /** Values uniform in [low, high). */
  uniform(shape: readonly number[], low = 0, high = 1, device: Device = "cpu"): Tensor {
    return this.draw(shape, device, (offset) => opsFor(device).uniform(shape, low, high, this._seed, offset));
  }

  /** Normally distributed values (Box-Muller). */
  normal(shape: readonly number[], mean = 0, std = 1, device: Device = "cpu"): Tensor {
    return this.draw(shape, device, (offset) => opsFor(device).normal(shape, mean, std, this._seed, offset));
  }
}
