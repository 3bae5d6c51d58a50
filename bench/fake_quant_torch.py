"""PyTorch side of bench/fake_quant.bench.ts: one case, printed as one JSON object of best-of-REPS milliseconds.

  python bench/fake_quant_torch.py THREADS REPS weight|act|ssql|memcpy GROW_HEAP(0|1)
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from generate_quant import STE  # noqa: E402  (the original's straight-through round)

threads, reps, case, grow = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
torch.set_num_threads(threads)
if grow:
    torch.empty(64 << 20).fill_(0)  # grow the heap once, as the JavaScript side does
gen = torch.Generator().manual_seed(0)


def best_ms(fn):
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


res = {"torch": torch.__version__, "threads": torch.get_num_threads()}

if case in ("weight", "ssql"):
    w = (torch.randn(512, 512, 3, 3, generator=gen) * 0.05).requires_grad_(True)
    g = torch.randn(w.shape, generator=gen)
if case == "weight":
    s = w.detach().abs().amax(dim=(1, 2, 3)) / 7.5
    z = torch.zeros(512, dtype=torch.int32)

    def fwd():
        return torch.ops.aten.fake_quantize_per_channel_affine_cachemask(w.detach(), s, z, 0, -8, 7)

    mask = fwd()[1]

    def live():
        out, m = fwd()
        return g * m

    def autograd():
        w.grad = None
        torch.fake_quantize_per_channel_affine(w, s, z, 0, -8, 7).backward(g)

    res.update(live=best_ms(live), kernels=best_ms(fwd) + best_ms(lambda: g * mask), autograd=best_ms(autograd))
elif case == "act":
    a = torch.randn(128, 64, 32, 32, generator=gen).relu().requires_grad_(True)
    g = torch.randn(a.shape, generator=gen)
    s = torch.tensor([float(a.max()) / 255])
    z = torch.tensor([0], dtype=torch.int32)
    en = torch.ones(1, dtype=torch.int32)

    def fwd():
        return torch.ops.aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams(a.detach(), s, z, en, 0, 255)

    mask = fwd()[1]

    def live():
        out, m = fwd()
        return g * m

    def autograd():
        a.grad = None
        torch.fake_quantize_per_tensor_affine(a, s, z, 0, 255).backward(g)

    res.update(live=best_ms(live), kernels=best_ms(fwd) + best_ms(lambda: g * mask), autograd=best_ms(autograd))
elif case == "ssql":

    def original():
        # The original's weight path: MinMax observer on the live weight, calc_quant_params, STE round, clamp, dequant.
        # (Leaner than generate_quant.original_forward: no zero-point ops, which are zeros here, and no min(scale) check.)
        w.grad = None
        data = w.reshape(512, -1)
        mn, mx = data.min(dim=1).values, data.max(dim=1).values
        scale = (torch.maximum(mn.abs(), mx.abs()) / 7.5).reshape(-1, 1, 1, 1)
        xq = torch.clamp(STE.apply(w / scale), -8, 7)
        (xq * scale).backward(g)

    res.update(autograd=best_ms(original))
elif case == "memcpy":
    big = torch.empty(16 << 20)
    dst = torch.empty_like(big)
    res.update(copy_ms_64MiB=best_ms(lambda: dst.copy_(big)))
print(json.dumps(res))
