"""PyTorch's knn_predict (SimSiam's monitor) at the size bench/knn.ts asks for, on random normalised features, in
blocks of 1024 queries (the whole [10k, 50k] similarity matrix at once would need 2 GB). Prints median/min ms."""
import json
import sys
import time

import torch
import torch.nn.functional as F


def knn_predict(feature, feature_bank, feature_labels, classes, knn_k, knn_t):
    sim_matrix = torch.mm(feature, feature_bank)
    sim_weight, sim_indices = sim_matrix.topk(k=knn_k, dim=-1)
    sim_labels = torch.gather(feature_labels.expand(feature.size(0), -1), dim=-1, index=sim_indices)
    sim_weight = (sim_weight / knn_t).exp()
    one_hot_label = torch.zeros(feature.size(0) * knn_k, classes, device=sim_labels.device)
    one_hot_label = one_hot_label.scatter(dim=-1, index=sim_labels.view(-1, 1), value=1.0)
    pred_scores = torch.sum(one_hot_label.view(feature.size(0), -1, classes) * sim_weight.unsqueeze(dim=-1), dim=1)
    return pred_scores.argsort(dim=-1, descending=True)


def main():
    r = json.load(sys.stdin)
    g = torch.Generator().manual_seed(0)
    bank = F.normalize(torch.rand(r["n"], r["d"], generator=g) * 2 - 1, dim=1).t().contiguous()
    queries = F.normalize(torch.rand(r["b"], r["d"], generator=g) * 2 - 1, dim=1)
    labels = torch.arange(r["n"]) * 7 % r["classes"]
    targets = torch.arange(r["b"]) * 3 % r["classes"]

    def run():
        correct = 0
        for s in range(0, r["b"], 1024):
            pred = knn_predict(queries[s : s + 1024], bank, labels, r["classes"], r["k"], r["t"])
            correct += (pred[:, 0] == targets[s : s + 1024]).sum().item()
        return correct

    run()
    ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    print(json.dumps({"medianMs": ms[1], "minMs": ms[0], "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
