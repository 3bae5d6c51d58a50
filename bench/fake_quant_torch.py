"""PyTorch side of bench/fake_quant.bench.js: prints one JSON object of best-of-REPS milliseconds.

  python bench/fake_quant_torch.py THREADS REPS
"""
import json
import sys
import time

import torch

threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
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


class STE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, grad):
        return grad


res = {"torch": torch.__version__, "threads": torch.get_num_threads()}

w = (torch.randn(512, 512, 3, 3, generator=gen) * 0.05).requires_grad_(True)
gw = torch.randn(w.shape, generator=gen)
ws = w.detach().abs().amax(dim=(1, 2, 3)) / 7.5
wz = torch.zeros(512, dtype=torch.int32)
a = torch.randn(128, 64, 32, 32, generator=gen).relu().requires_grad_(True)
ga = torch.randn(a.shape, generator=gen)
as_ = torch.tensor([float(a.max()) / 255])
az = torch.tensor([0], dtype=torch.int32)


def weight_autograd():
    w.grad = None
    torch.fake_quantize_per_channel_affine(w, ws, wz, 0, -8, 7).backward(gw)


def weight_ops(keep_out=True):
    out, mask = torch.ops.aten.fake_quantize_per_channel_affine_cachemask(w.detach(), ws, wz, 0, -8, 7)
    if not keep_out:
        del out
    return gw * mask


def act_autograd():
    a.grad = None
    torch.fake_quantize_per_tensor_affine(a, as_, az, 0, 255).backward(ga)


en = torch.ones(1, dtype=torch.int32)


def act_ops(keep_out=True):
    out, mask = torch.ops.aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams(a.detach(), as_, az, en, 0, 255)
    if not keep_out:
        del out
    return ga * mask


def original_weight():
    # The original's weight path: observer min/max over the live weight, calc_quant_params, STE round, clamp.
    w.grad = None
    data = w.reshape(512, -1)
    mn, mx = data.min(dim=1).values, data.max(dim=1).values
    scale = (torch.maximum(mn.abs(), mx.abs()) / 7.5).reshape(-1, 1, 1, 1)
    xq = torch.clamp(STE.apply(w / scale), -8, 7)
    (xq * scale).backward(gw)


res["weight_autograd_ms"] = best_ms(weight_autograd)
res["weight_ops_ms"] = best_ms(weight_ops)
res["act_autograd_ms"] = best_ms(act_autograd)
res["act_ops_ms"] = best_ms(act_ops)
res["weight_kernels_ms"] = best_ms(lambda: weight_ops(False))
res["act_kernels_ms"] = best_ms(lambda: act_ops(False))
res["original_weight_ms"] = best_ms(original_weight)
big = torch.empty(16 << 20)
dst = torch.empty_like(big)
res["copy_ms_64MiB"] = best_ms(lambda: dst.copy_(big))
print(json.dumps(res))
