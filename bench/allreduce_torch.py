"""PyTorch's Gloo all-reduce on CPU tensors, the reference for bench/allreduce.bench.ts (same sizes, same timing).

Run as one rank of a job: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT in the environment; sizes in bytes as
arguments. Rank 0 prints one JSON line: [{"bytes": n, "seconds": per all-reduce}, ...].
"""
import json
import sys
import time

import torch
import torch.distributed as dist


def main() -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://")
    results = []
    for nbytes in map(int, sys.argv[1:]):
        x = torch.ones(nbytes // 4, dtype=torch.float32)
        for _ in range(50 if nbytes == int(sys.argv[1]) else 2):
            dist.all_reduce(x)
        iters, elapsed = 0, 0.0
        dist.barrier()
        start = time.perf_counter()
        # Every rank must run the same number of iterations: rank 0 decides when to stop.
        while True:
            dist.all_reduce(x)
            iters += 1
            elapsed = time.perf_counter() - start
            done = torch.tensor([1 if (elapsed > 0.3 and iters >= 3) or iters >= 2000 else 0])
            dist.broadcast(done, 0)
            if done.item():
                break
        results.append({"bytes": nbytes, "seconds": elapsed / iters})
    if dist.get_rank() == 0:
        print(json.dumps(results), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
