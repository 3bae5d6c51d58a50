import type { Device } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { freeTemporaries } from "../tensor/scope";
import { toDevice } from "../tensor/transfer";

/**
 * A PyTorch-style module: named parameters, buffers and children in registration order, so that
 * state-dict keys (`layer1.0.conv1.weight`) match the original code's one to one.
 */
export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module | null>();

  protected registerParameter(name: string, t: Tensor | null): void {
    if (t) {
      t.keep();
      t.requiresGrad = true;
    }
    this._params.set(name, t);
  }

  protected registerBuffer(name: string, t: Tensor): void {
    t.keep();
    this._buffers.set(name, t);
  }

  protected registerModule<M extends Module | null>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** Replaces a registered parameter or buffer's tensor (used when loading weights). */
  protected replaceTensor(name: string, t: Tensor): void {
    if (this._params.has(name)) {
      const old = this._params.get(name);
      t.keep();
      t.requiresGrad = old?.requiresGrad ?? true;
      old?.dispose();
      this._params.set(name, t);
    } else if (this._buffers.has(name)) {
      t.keep();
      this._buffers.get(name)?.dispose();
      this._buffers.set(name, t);
    } else {
      throw new Error(`${this.constructor.name} has no parameter or buffer '${name}'`);
    }
    this.onTensorReplaced(name, t);
  }

  /** Subclasses that cache tensor fields refresh them here. */
  protected onTensorReplaced(_name: string, _t: Tensor): void {}

  *namedChildren(): Generator<[string, Module]> {
    for (const [n, m] of this._children) if (m) yield [n, m];
  }

  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  /** Every parameter once, in registration order (shared parameters are listed at their first name). */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      for (const [n, t] of m._params) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([mp ? `${mp}.${n}` : n, t]);
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [mp, m] of this.namedModules(prefix)) for (const [n, t] of m._buffers) out.push([mp ? `${mp}.${n}` : n, t]);
    return out;
  }

  /** Parameters and buffers by dotted name, as PyTorch's state_dict(). */
  stateDict(prefix = ""): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [mp, m] of this.namedModules(prefix)) {
      const full = (n: string) => (mp ? `${mp}.${n}` : n);
      for (const [n, t] of m._params) if (t) out.set(full(n), t);
      for (const [n, t] of m._buffers) out.set(full(n), t);
    }
    return out;
  }

  /**
   * Copies tensors into this module's parameters and buffers. Shapes must match. With `strict`, a missing or
   * unexpected key is an error listing them; otherwise the lists are returned.
   */
  loadStateDict(state: Map<string, Tensor>, strict = true): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const parts = [];
      if (missing.length) parts.push(`missing keys: ${missing.join(", ")}`);
      if (unexpected.length) parts.push(`unexpected keys: ${unexpected.join(", ")}`);
      throw new Error(`loadStateDict: ${parts.join("; ")}`);
    }
    for (const [k, dst] of own) {
      const src = state.get(k);
      if (!src) continue;
      if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i]))
        throw new RangeError(`loadStateDict: '${k}' has shape [${src.shape.join(", ")}], the model expects [${dst.shape.join(", ")}]`);
      if (src.dtype !== dst.dtype) throw new TypeError(`loadStateDict: '${k}' is ${src.dtype}, the model expects ${dst.dtype}`);
      dst.ops.copy_(dst.handle, src.handle);
    }
    return { missing, unexpected };
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Moves every parameter and buffer to `device` (torch's .to()); gradients are dropped. */
  to(device: Device): this {
    for (const [, m] of this.namedModules()) {
      for (const [n, t] of [...m._params, ...m._buffers]) {
        if (!t || t.device === device) continue;
        const moved = toDevice(t, device);
        moved.gradFn = null;
        m.replaceTensor(n, moved);
      }
    }
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const t of this.stateDict().values()) t.dispose();
  }
}

/** Modules whose forward maps one tensor to one tensor. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor): Tensor;
}

export class Sequential extends Layer {
  readonly layers: Layer[];

  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.registerModule(String(i), l));
  }

  forward(x: Tensor): Tensor {
    return freeTemporaries(() => {
      let y = x;
      for (const l of this.layers) y = l.forward(y);
      return y;
    });
  }
}
