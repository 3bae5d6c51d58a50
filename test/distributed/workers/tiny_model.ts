// A small model from the ops this worktree has (broadcast-multiply-and-sum as the matmul), shaped like the real
// thing: parameters and buffers in registration order and a forward over a batch. Swap in a ResNet with the same
// interface ({ names, parameters, buffers, forward(x, branchRows) }) to run the DDP test on it.
import { add, sub, mul, relu, square } from "../../../lib/tensor/ops/elementwise";
import { sum, mean } from "../../../lib/tensor/ops/reduce";
import { reshape, narrow, concat } from "../../../lib/tensor/ops/shape";
import { tensor, parameter, zeros, type Tensor } from "../../../lib/tensor/tensor";
import type { ProcessGroup } from "../../../lib/distributed/process_group";
import { syncBatchNorm } from "../../../lib/distributed/sync_bn";
import { randomArray } from "../../helpers/random";

const D = 8;
const H = 16;

function buildModel(seed: number, { group = null, syncBn = false }: { group?: ProcessGroup | null; syncBn?: boolean } = {}) {
  const p = (shape: number[], s: number, scale = 0.5) => parameter(tensor(randomArray(shape.reduce((a: number, b: number) => a * b, 1), seed + s).map((v) => v * scale), shape));
  const params: Record<"w1" | "b1" | "gamma" | "beta" | "w2" | "b2" | "branch" | "unused", Tensor> = {
    w1: p([D, H], 1),
    b1: p([H], 2, 0.1),
    gamma: parameter(tensor(new Float32Array(H).fill(1), [H])),
    beta: parameter(tensor(new Float32Array(H), [H])),
    w2: p([H], 3),
    b2: p([1], 4, 0.1),
    branch: p([H], 5), // used only for rows [0, branchRows) of a batch
    unused: p([3], 6), // never in the graph
  };
  const buffers = {
    runningMean: zeros([H]).keep(),
    runningVar: tensor(new Float32Array(H).fill(1), [H]).keep(),
    inputMean: zeros([D]).keep(), // each rank's own statistic: broadcast_buffers makes rank 0's win
  };
  const names = Object.keys(params) as (keyof typeof params)[];

  function forward(x: Tensor, branchRows: number): Tensor {
    const B = x.shape[0];
    const pre = add(sum(mul(reshape(x, [B, D, 1]), reshape(params.w1, [1, D, H])), 1), params.b1);
    let h = relu(pre);
    if (syncBn) h = syncBatchNorm(h, params.gamma, params.beta, buffers.runningMean, buffers.runningVar, { group, training: true });
    const xm = x.wrap(x.ops.mean(x.handle, [0]));
    x.ops.mulScalar_(buffers.inputMean.handle, 0.9);
    x.ops.addScaled_(buffers.inputMean.handle, xm.handle, 0.1);
    let out = add(sum(mul(h, params.w2), 1), params.b2);
    if (branchRows > 0) {
      const extra = sum(mul(narrow(h, 0, 0, branchRows), params.branch), 1);
      const head = add(narrow(out, 0, 0, branchRows), extra);
      out = branchRows < B ? concat([head, narrow(out, 0, branchRows, B - branchRows)]) : head;
    }
    return out;
  }

  function loss(x: Tensor, target: Tensor, branchRows: number): Tensor {
    return mean(square(sub(forward(x, branchRows), target)));
  }

  return { names, params, parameters: names.map((n) => params[n]), buffers, bufferList: Object.values(buffers), loss };
}

export { buildModel, D, H };
