"""PyTorch CPU reference for bench/batch_norm.ts: reads {"threads", "reps", "warmup", "shapes"} on stdin and prints,
per shape, the median and minimum milliseconds of training-mode batch norm forward and backward."""
import json
import sys

import torch

from torch_conv2d import timed


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(req["threads"])
    out = []
    for shape in req["shapes"]:
        C = shape[1]
        x, w, b = torch.randn(*shape), torch.ones(C), torch.zeros(C)
        rm, rv = torch.zeros(C), torch.ones(C)
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5)
        gy = torch.randn_like(y)
        out.append({
            "forward": timed(lambda: torch.ops.aten.native_batch_norm(x, w, b, rm, rv, True, 0.1, 1e-5),
                             req["reps"], req["warmup"]),
            "backward": timed(lambda: torch.ops.aten.native_batch_norm_backward(
                gy, x, w, rm, rv, mean, invstd, True, 1e-5, [True, True, True]), req["reps"], req["warmup"]),
        })
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
