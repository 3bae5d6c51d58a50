import { type Tensor } from "../../../lib/tensor/tensor";
import type { ProcessGroup } from "../../../lib/distributed/process_group";
declare const D = 8;
declare const H = 16;
declare function buildModel(seed: number, { group, syncBn }?: {
    group?: ProcessGroup | null;
    syncBn?: boolean;
}): {
    names: ("w1" | "b1" | "gamma" | "beta" | "w2" | "b2" | "branch" | "unused")[];
    params: Record<"w1" | "b1" | "gamma" | "beta" | "w2" | "b2" | "branch" | "unused", Tensor>;
    parameters: Tensor[];
    buffers: {
        runningMean: Tensor;
        runningVar: Tensor;
        inputMean: Tensor;
    };
    bufferList: Tensor[];
    loss: (x: Tensor, target: Tensor, branchRows: number) => Tensor;
};
export { buildModel, D, H };
