import { opsFor, type Device } from "./binding";
import type { AnyTypedArray, DType, DeviceOps, NativeTensor } from "./native";
import { trackInScope, untrack } from "./scope";

/** One step of the autograd tape: maps the output gradient to one gradient per input (null where none). */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  backward(grad: Tensor): (Tensor | null)[];
}

let liveTensors = 0;

/** A native tensor owned by JavaScript; `dispose()` frees it at once, a step scope frees temporaries. */
export class Tensor {
  private _handle: NativeTensor | null;
  private _shape: readonly number[] | undefined;
  private _dtype: DType | undefined;
  readonly device: Device;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;

  constructor(handle: NativeTensor, device: Device, shape?: readonly number[]) {
    this._handle = handle;
    this.device = device;
    this._shape = shape;
    liveTensors++;
    trackInScope(this);
  }

  get ops(): DeviceOps {
    return opsFor(this.device);
  }

  get handle(): NativeTensor {
    if (!this._handle) throw new TypeError("tensor is disposed");
    return this._handle;
  }

  get disposed(): boolean {
    return this._handle === null;
  }

  get shape(): readonly number[] {
    if (!this._shape) this._shape = Object.freeze(this.ops.shape(this.handle));
    return this._shape;
  }

  get dtype(): DType {
    if (!this._dtype) this._dtype = this.ops.dtype(this.handle);
    return this._dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Wraps a native result on the same device as this tensor. */
  wrap(h: NativeTensor): Tensor {
    return new Tensor(h, this.device);
  }

  /** Leaves the enclosing step scope's cleanup: the caller now owns this tensor. */
  keep(): this {
    untrack(this);
    return this;
  }

  dispose(): void {
    if (!this._handle) return;
    this.ops.dispose(this._handle);
    this._handle = null;
    this.gradFn = null;
    liveTensors--;
    untrack(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Copies the data to JavaScript (waits for queued device work). */
  toArray(): Promise<AnyTypedArray> {
    return this.ops.toArrayAsync(this.handle);
  }

  async item(): Promise<number> {
    if (this.numel !== 1) throw new RangeError(`item(): tensor of shape [${this.shape.join(", ")}] is not a single value`);
    return (await this.toArray())[0];
  }

  /** Synchronous read-back; on CUDA it waits for the stream, so keep it out of the training loop. */
  toArraySync(): AnyTypedArray {
    return this.ops.toArray(this.handle);
  }

  itemSync(): number {
    return this.ops.item(this.handle);
  }

  toString(): string {
    return `Tensor(${this.device}, ${this.dtype}, [${this.shape.join(", ")}]${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

export function liveTensorCount(): number {
  return liveTensors;
}

/** A new tensor from JavaScript data (copied). */
export function tensor(data: AnyTypedArray | number[], shape: readonly number[], device: Device = "cpu"): Tensor {
  const arr = Array.isArray(data) ? Float32Array.from(data) : data;
  return new Tensor(opsFor(device).fromArray(arr, shape), device, shape);
}

export function full(shape: readonly number[], value: number, device: Device = "cpu", dtype: DType = "float32"): Tensor {
  return new Tensor(opsFor(device).full(shape, value, dtype), device, shape);
}

export function zeros(shape: readonly number[], device: Device = "cpu", dtype: DType = "float32"): Tensor {
  return full(shape, 0, device, dtype);
}

export function ones(shape: readonly number[], device: Device = "cpu"): Tensor {
  return full(shape, 1, device);
}

/** A trainable leaf tensor, owned by its module (never freed by a step scope). */
export function parameter(t: Tensor): Tensor {
  t.keep();
  t.requiresGrad = true;
  return t;
}
