import { cpuOps } from "../tensor/binding";
import { topkCorrect } from "../tensor/ops/loss";
import { tidy } from "../tensor/scope";
import { Tensor, tensor } from "../tensor/tensor";
import { toDevice } from "../tensor/transfer";

/**
 * The weighted kNN classifier of InstDisc (Wu et al. 2018) as SimSiam's and MoCo's monitors use it: the cosine
 * similarity of a query's L2-normalised feature to every feature of a bank, its k most similar bank entries each
 * voting for its class with weight exp(sim / T), the class with the largest vote predicted.
 */
export interface FeatureBank {
  /** L2-normalised features [N, D] on the run's device. */
  readonly features: Tensor;
  /** Each bank entry's class, int32 [N], on the CPU (where the vote runs). */
  readonly labels: Tensor;
  readonly classes: number;
}

export interface KnnParams {
  /** Neighbours per query; more than the bank holds means all of it. */
  k: number;
  /** Temperature of the vote weights exp(sim / T). */
  t: number;
}

/** Similarity rows scored per native call: bounds the [rows, N] similarity block to 2^26 floats (256 MB). */
const SIM_BLOCK = 1 << 26;

/**
 * Class scores [B, classes] (float32, on the CPU) of L2-normalised queries [B, D]: the similarity matrix is a
 * matmul on the queries' device, in blocks of rows; the top-k selection and vote run on the CPU (native
 * knnClassScores), after the block is read back when the run is on a GPU.
 */
export function knnScores(queries: Tensor, bank: FeatureBank, p: KnnParams): Tensor {
  const n = bank.features.shape[0];
  if (n === 0) throw new Error("kNN: the feature bank is empty");
  if (queries.shape[1] !== bank.features.shape[1])
    throw new RangeError(`kNN: queries have ${queries.shape[1]} features, the bank ${bank.features.shape[1]}`);
  const k = Math.min(p.k, n);
  const rows = Math.max(1, Math.floor(SIM_BLOCK / n));
  const b = queries.shape[0];
  const cpu = cpuOps();
  const parts: Tensor[] = [];
  try {
    for (let start = 0; start < b; start += rows) {
      const len = Math.min(rows, b - start);
      parts.push(
        tidy(() => {
          const q = queries.wrap(queries.ops.narrow(queries.handle, 0, start, len));
          const sim = q.wrap(q.ops.matmul(q.handle, bank.features.handle, false, true));
          const host = toDevice(sim, "cpu");
          return new Tensor(cpu.knnClassScores(host.handle, bank.labels.handle, k, p.t, bank.classes), "cpu");
        }).keep(),
      );
    }
    if (parts.length === 1) return parts.pop()!;
    return new Tensor(cpu.concat(parts.map((t) => t.handle), 0), "cpu");
  } finally {
    for (const t of parts) t.dispose();
  }
}

/** Correct top-1 and top-5 counts (top-min(5, classes)) of the kNN predictions for `queries` with int32 CPU labels. */
export function knnCorrect(queries: Tensor, labels: Tensor, bank: FeatureBank, p: KnnParams): { top1: number; top5: number } {
  if (labels.shape[0] !== queries.shape[0]) throw new RangeError(`kNN: ${queries.shape[0]} queries but ${labels.shape[0]} labels`);
  if (queries.shape[0] === 0) return { top1: 0, top5: 0 };
  const counts = tidy(() => topkCorrect(knnScores(queries, bank, p), labels, [1, Math.min(5, bank.classes)]));
  try {
    const c = counts.toArraySync();
    return { top1: Number(c[0]), top5: Number(c[1]) };
  } finally {
    counts.dispose();
  }
}

/** A bank from features already normalised and labels on the host. */
export function featureBank(features: Tensor, labels: Int32Array, classes: number): FeatureBank {
  if (labels.length !== features.shape[0]) throw new RangeError(`kNN bank: ${features.shape[0]} features but ${labels.length} labels`);
  return { features, labels: tensor(labels, [labels.length]).keep(), classes };
}
