/** The kNN monitor's scoring at CIFAR size (50k bank, 10k queries, 512-d, k 200, T 0.1), against PyTorch's knn_predict. */
import { normalize } from "../lib/tensor/ops/norm";
import { Generator } from "../lib/tensor/ops/random";
import { tensor } from "../lib/tensor/tensor";
import { featureBank, knnCorrect } from "../lib/train/knn";
import { runPython, table, time } from "./common";

export function benchKnn(n = 50000, b = 10000, d = 512, classes = 10, k = 200, t = 0.1): unknown {
  const raw = new Generator(1234).uniform([n + b, d], -1, 1).keep();
  const x = normalize(raw).keep();
  raw.dispose();
  const bankX = x.wrap(x.ops.narrow(x.handle, 0, 0, n)).keep();
  const queries = x.wrap(x.ops.narrow(x.handle, 0, n, b)).keep();
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % classes);
  const qLabels = tensor(Int32Array.from({ length: b }, (_, i) => (i * 3) % classes), [b]).keep();
  const bank = featureBank(bankX, labels, classes);
  const ours = time(() => void knnCorrect(queries, qLabels, bank, { k, t }), 3, 1);
  for (const z of [x, bankX, queries, qLabels, bank.labels]) z.dispose();
  const torch = runPython<{ medianMs: number; minMs: number; threads: number }>("knn_torch.py", { n, b, d, classes, k, t });
  console.log(`kNN scoring, ${n} bank x ${b} queries x ${d}-d, k ${k} (CPU):`);
  console.log(table([["", "median s", "min s"], ["ours", ours.medianMs / 1000, ours.minMs / 1000], [`PyTorch (${torch.threads} threads)`, torch.medianMs / 1000, torch.minMs / 1000]]));
  return { n, b, d, classes, k, t, ours, torch };
}
