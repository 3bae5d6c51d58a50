"""PyTorch's knn_predict (SimSiam's monitor) at the size bench/knn.ts asks for, on random normalised features, in
blocks of 1024 queries (the whole [10k, 50k] similarity matrix at once would need 2 GB). Prints median/min ms."""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from knn_reference import knn_predict  # noqa: E402


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
            pred, _ = knn_predict(queries[s : s + 1024], bank, labels, r["classes"], r["k"], r["t"])
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
