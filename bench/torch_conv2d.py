"""PyTorch CPU reference for bench/conv2d.ts: reads {"threads", "reps", "warmup", "problems"} on stdin and prints,
per problem, the median and minimum milliseconds of conv2d forward, backward-data and backward-weight."""
import json
import sys
import time

import torch


def timed(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return {"medianMs": ms[len(ms) // 2], "minMs": ms[0]}


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(req["threads"])
    reps, warmup = req["reps"], req["warmup"]
    out = []
    for p in req["problems"]:
        x = torch.randn(p["N"], p["C"], p["H"], p["W"])
        w = torch.randn(p["O"], p["C"], p["k"], p["k"])
        s, pad = [p["stride"]] * 2, [p["padding"]] * 2
        with torch.no_grad():
            y = torch.conv2d(x, w, None, s, pad)
        gy = torch.randn_like(y)

        def backward(mask):
            return torch.ops.aten.convolution_backward(gy, x, w, None, s, pad, [1, 1], False, [0, 0], 1, mask)

        with torch.no_grad():
            out.append({
                "forward": timed(lambda: torch.conv2d(x, w, None, s, pad), reps, warmup),
                "backwardData": timed(lambda: backward([True, False, False]), reps, warmup),
                "backwardWeight": timed(lambda: backward([False, True, False]), reps, warmup),
            })
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
