import { Tensor, zeros } from "../tensor/tensor";

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export type ParamGroupInput = { params: Tensor[] } & Partial<SGDOptions>;

/** Optimizer state without the parameters, as torch's state_dict(): params are indices in group order. */
export interface SGDStateDict {
  state: Record<number, { momentumBuffer: Tensor }>;
  paramGroups: (Omit<ParamGroup, "params"> & { params: number[] })[];
}

/** torch.optim.SGD: weight decay, momentum with dampening, Nesterov, per-group hyperparameters (one fused native step per tensor). */
export class SGD {
  readonly paramGroups: ParamGroup[];
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(params: Tensor[] | ParamGroupInput[], defaults: SGDOptions) {
    const groups: ParamGroupInput[] = params.length && !(params[0] instanceof Tensor) ? (params as ParamGroupInput[]) : [{ params: params as Tensor[] }];
    this.paramGroups = groups.map((g) => {
      const group: ParamGroup = {
        params: [...g.params],
        lr: g.lr ?? defaults.lr,
        momentum: g.momentum ?? defaults.momentum ?? 0,
        dampening: g.dampening ?? defaults.dampening ?? 0,
        weightDecay: g.weightDecay ?? defaults.weightDecay ?? 0,
        nesterov: g.nesterov ?? defaults.nesterov ?? false,
      };
      checkGroup(group);
      return group;
    });
    const all = this.paramGroups.flatMap((g) => g.params);
    if (new Set(all).size !== all.length) throw new Error("SGD: a parameter appears in more than one group");
  }

  step(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        let buf: Tensor | null = null;
        let init = false;
        if (group.momentum > 0) {
          buf = this.buffers.get(p) ?? null;
          if (!buf) {
            buf = zeros(p.shape, p.device).keep();
            this.buffers.set(p, buf);
            init = true;
          }
        }
        p.ops.sgdStep_(p.handle, p.grad.handle, buf ? buf.handle : null, group.lr, group.momentum, group.weightDecay, group.dampening, group.nesterov, init);
      }
    }
  }

  /** Frees every parameter's gradient (set_to_none, PyTorch's default). */
  zeroGrad(): void {
    for (const group of this.paramGroups)
      for (const p of group.params) {
        p.grad?.dispose();
        p.grad = null;
      }
  }

  /** Frees the momentum buffers (the optimizer is done; the parameters stay). */
  dispose(): void {
    for (const buf of this.buffers.values()) buf.dispose();
    this.buffers.clear();
  }

  /** The momentum buffers (shared, not copied) and hyperparameters, keyed like torch's state_dict(). */
  stateDict(): SGDStateDict {
    const state: SGDStateDict["state"] = {};
    let index = 0;
    const paramGroups = this.paramGroups.map(({ params, ...hyper }) => {
      const ids = params.map((p) => {
        const buf = this.buffers.get(p);
        if (buf) state[index] = { momentumBuffer: buf };
        return index++;
      });
      return { ...hyper, params: ids };
    });
    return { state, paramGroups };
  }

  /** Restores hyperparameters and copies of the momentum buffers; the groups must match this optimizer's. */
  loadStateDict(sd: SGDStateDict): void {
    if (sd.paramGroups.length !== this.paramGroups.length) throw new Error("SGD.loadStateDict(): the number of parameter groups differs");
    const byIndex: Tensor[] = [];
    sd.paramGroups.forEach((saved, i) => {
      const group = this.paramGroups[i];
      if (saved.params.length !== group.params.length) throw new Error(`SGD.loadStateDict(): group ${i} has ${saved.params.length} parameters, expected ${group.params.length}`);
      const { params, ...hyper } = saved;
      Object.assign(group, hyper);
      checkGroup(group);
      saved.params.forEach((id, j) => (byIndex[id] = group.params[j]));
    });
    for (const buf of this.buffers.values()) buf.dispose();
    this.buffers.clear();
    for (const [key, { momentumBuffer }] of Object.entries(sd.state)) {
      const p = byIndex[Number(key)];
      if (!p) throw new Error(`SGD.loadStateDict(): state for unknown parameter ${key}`);
      if (momentumBuffer.device !== p.device) throw new Error(`SGD.loadStateDict(): momentum buffer ${key} is on ${momentumBuffer.device}, parameter on ${p.device}`);
      const shape = momentumBuffer.shape;
      if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i]))
        throw new Error(`SGD.loadStateDict(): momentum buffer ${key} has shape [${shape.join(", ")}], parameter has [${p.shape.join(", ")}]`);
      this.buffers.set(p, p.wrap(momentumBuffer.ops.clone(momentumBuffer.handle)).keep());
    }
  }
}

function checkGroup(g: ParamGroup): void {
  if (!(g.lr >= 0)) throw new RangeError(`SGD: invalid learning rate ${g.lr}`);
  if (!(g.momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${g.momentum}`);
  if (!(g.weightDecay >= 0)) throw new RangeError(`SGD: invalid weight decay ${g.weightDecay}`);
  if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new RangeError("SGD: Nesterov momentum requires a momentum and zero dampening");
}
