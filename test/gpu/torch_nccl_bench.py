"""PyTorch's NCCL all-reduce with one rank, the reference for the timings of test/gpu/nccl_check.ts (same sizes,
same plain in-place sum, wall clock between synchronizations):

python3 test/gpu/torch_nccl_bench.py --out torch-nccl.json
"""
import argparse
import json
import socket
import time

import torch
import torch.distributed as dist


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    rows = []
    print(f"PyTorch {torch.__version__} NCCL {'.'.join(map(str, torch.cuda.nccl.version()))} all-reduce, one rank:")
    nbytes = 1024
    while nbytes <= 64 * 2**20:
        x = torch.ones(nbytes // 4, device="cuda")
        for _ in range(5):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        iters = max(10, min(200, round(2e8 / nbytes)))
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(x)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000 / iters
        rows.append({"bytes": nbytes, "iters": iters, "ms": ms, "algbw_gbps": nbytes / ms / 1e6})
        print(f"  {nbytes:9d} B  {ms:.4f} ms  algbw {nbytes / ms / 1e6:.1f} GB/s")
        nbytes *= 4
    dist.destroy_process_group()
    json.dump({"torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version())), "rows": rows},
              open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
