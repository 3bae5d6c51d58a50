import { opsFor, type Device } from "./binding";
import type { AnyTypedArray, DType, DeviceOps, NativeTensor } from "./native";
import { isReleaseDeferred, trackInScope, untrack } from "./scope";

/** One step of the autograd tape: maps the output gradient to one gradient per input (null where none). */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  /** Every tensor `backward` reads (torch's saved tensors); they outlive their release until this backward has run. */
  readonly saved: readonly Tensor[];
  /**
   * `into(i)`: input i's gradient so far when only this input holds it (else null); a backward may add its gradient
   * for input i into that tensor in place and return it, instead of a new one for the tape to add.
   */
  backward(grad: Tensor, into?: (i: number) => Tensor | null): (Tensor | null)[];
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
  /** The tensor whose storage this view shares (reshape, detach), or null when it owns its storage. */
  base: Tensor | null = null;
  private savedBy = 0;
  private releasePending = false;

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

  /** A view of the same storage with another shape (no copy). */
  view(shape: readonly number[]): Tensor {
    const v = this.wrap(this.ops.reshape(this.handle, shape));
    v.base = this.base ?? this;
    return v;
  }

  dispose(): void {
    if (!this._handle) return;
    this.freeStorage();
    this.gradFn = null;
  }

  /**
   * Gives the tensor up: nothing outside the tape reads it anymore (an intermediate result). Its storage is freed
   * now, or, while a recorded backward still needs it, right after the last such backward has run (until then it
   * stays in its step scope, which frees it if no backward comes). Unlike dispose(), its place in the graph stays,
   * so gradients still flow through it.
   */
  release(): void {
    if (!this._handle || isReleaseDeferred()) return;
    // Backward functions read the shapes of inputs that were freed.
    void this.shape;
    if (this.savedBy > 0) this.releasePending = true;
    else this.freeStorage();
  }

  /** Called by the tape: a recorded backward reads this tensor. */
  retainForBackward(): void {
    this.savedBy++;
  }

  /** Called by the tape once a backward that read this tensor has run (or can no longer run). */
  releaseFromBackward(): void {
    if (this.savedBy > 0) this.savedBy--;
    if (this.savedBy === 0 && this.releasePending) this.freeStorage();
  }

  private freeStorage(): void {
    if (!this._handle) return;
    this.ops.dispose(this._handle);
    this._handle = null;
    this.releasePending = false;
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
