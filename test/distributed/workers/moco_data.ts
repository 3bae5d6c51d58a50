// The 2-process MoCo test's setup, shared by the worker and the test's single-process reference: the config, the
// optimizer and each step's global batch of query and key images (rank r takes rows [r*PER_RANK, (r+1)*PER_RANK)).
import * as path from "node:path";
import { randomArray } from "../../helpers/random";

const configs = path.resolve(__dirname, "../../../configs/cifar");
const PER_RANK = 4;
const RANKS = 2;
const IMAGE = [3, 16, 16];
const STEPS = 3;
const SGD_OPTIONS = { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 };

/** The shipped config of MoCo or SSQL_MoCo. */
function configFile(type = "MoCo") {
  return path.join(configs, type === "SSQL_MoCo" ? "resnet18_ssql_moco_cifar.yaml" : "resnet18_moco_cifar.yaml");
}

/** --opts overrides: a small projector, a fast-moving key encoder, and MoCo K (32 unless given). */
function overrides(k = 32) {
  return [
    { key: "SSL.SETTING.DIM", value: 16 },
    { key: "SSL.SETTING.HIDDEN_DIM", value: 32 },
    { key: "SSL.SETTING.MOMENTUM", value: 0.9 },
    { key: "SSL.SETTING.MOCO_K", value: k },
  ];
}

/** Step `step`'s global batch: { xq, xk } as float32 [RANKS*PER_RANK, ...IMAGE]. */
function globalViews(step: number) {
  const n = RANKS * PER_RANK * IMAGE.reduce((a, b) => a * b, 1);
  return { xq: randomArray(n, 100 + 2 * step), xk: randomArray(n, 101 + 2 * step) };
}

/** The rows `rows` of a float32 [N, ...IMAGE] array, concatenated. */
function imageRows(x: Float32Array, rows: readonly number[]) {
  const per = IMAGE.reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length * per);
  rows.forEach((r: number, i: number) => out.set(x.subarray(r * per, (r + 1) * per), i * per));
  return out;
}

export { configFile, PER_RANK, RANKS, IMAGE, STEPS, SGD_OPTIONS, overrides, globalViews, imageRows };
