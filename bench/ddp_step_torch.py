"""PyTorch reference for bench/ddp_step.bench.ts: the SimSiam CIFAR ResNet-18 step of bench/torch_ssql_step.py at
--batch per rank, one process per rank (RANK/WORLD_SIZE/MASTER_* from the environment), under
DistributedDataParallel over Gloo as the original wraps its model (find_unused_parameters=True, broadcast_buffers on)
when WORLD_SIZE > 1, plain otherwise. Writes {"stepMs", "waitMs"} (medians over --steps after 3 warm-up steps) to --out;
waitMs stays 0: DDP's reducer waits for its last buckets inside backward().
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn as nn

from torch_ssql_step import Encoder, Quant, neg_cos, predictor


class SimSiam(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.pred = Encoder(Quant(0, 0)), predictor()

    def forward(self, x1, x2):
        z1, z2 = self.enc(x1), self.enc(x2)
        return 0.5 * (neg_cos(self.pred(z1), z2) + neg_cos(self.pred(z2), z1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    model = SimSiam().train()
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(100 + rank)
    x1 = torch.randn(a.batch, 3, 32, 32, generator=g)
    x2 = torch.randn(a.batch, 3, 32, 32, generator=g)
    times = []
    for i in range(a.steps + 3):
        t0 = time.perf_counter()
        loss = model(x1, x2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1000)
    with open(a.out, "w") as f:
        json.dump({"stepMs": statistics.median(times), "waitMs": 0}, f)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
