"""PyTorch reference for the whole-step GPU benchmark (test/gpu/step_bench.ts): one training step of SSQL on SimSiam
and of plain SimSiam with a CIFAR ResNet-18 on CUDA, the same shapes as configs/cifar/resnet18_ssql_simsiam_cifar.yaml.

python3 bench/torch_ssql_step.py --batch 256 --steps 10 --warmup 3 --out torch-step.json [--methods ssql_simsiam,simsiam]
(--device cpu runs a small smoke test of the script itself without a GPU.)

The model: CIFAR ResNet-18 (3x3 stem, no max pool), SimSiam projector fc.0/fc.3/fc.6 (2048 wide, the last BN without
affine, the last bias frozen) and predictor (2048 -> 2048 -> 2048). SSQL's step, as the original: an FP pass of both
views that records the activation ranges (torch.aminmax of each quantized output, merged over the two views), then a
fake-quantized pass of both views through the same weights (4 encoder passes), the FP predictor on all four, and
L = (L_fp + L_q) / 2 with stop-gradient FP targets. Fake quantization uses torch.fake_quantize_per_channel_affine on
every conv/linear weight (symmetric, per output channel, scale max(|min|, |max|) / ((2^b - 1) / 2) from the live
weight) and torch.fake_quantize_per_tensor_affine with tensor qparams on the unit and block outputs (asymmetric, from
the FP pass's ranges), at fixed bits (--wbits/--abits, with the config's BIT_CONFIG overrides: stem w8/a8, the
projector w8/a0, conv2/downsample outputs a0). Unlike ours (and the original), the scale gets no gradient: that is what
torch.fake_quantize_* offers. SGD with momentum 0.9 and weight decay 5e-4; cudnn.benchmark on; TF32 off.
Timing: the median of --steps steps after --warmup, each timed between torch.cuda.synchronize() calls; peak memory is
torch.cuda.max_memory_allocated() over the timed steps, and peak_rss_bytes the process's peak resident memory (run one
method per process to compare it).
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Quant:
    """Per-step quantization state shared by every unit: 'fp', 'observe' (record output ranges) or 'quant'."""

    def __init__(self, wbits, abits):
        self.mode = "fp"
        self.wbits, self.abits = wbits, abits
        self.ranges = {}

    def weight(self, w, bits):
        if self.mode != "quant" or bits == 0:
            return w
        mn, mx = torch.aminmax(w.detach().reshape(w.shape[0], -1), dim=1)
        scale = (torch.maximum(mn.abs(), mx.abs()) / ((2**bits - 1) / 2)).clamp_min(1e-12)
        zp = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    def output(self, name, y, bits):
        if bits == 0 or self.mode == "fp":
            return y
        if self.mode == "observe":
            mn, mx = torch.aminmax(y.detach())
            if name in self.ranges:
                omn, omx = self.ranges[name]
                mn, mx = torch.minimum(omn, mn), torch.maximum(omx, mx)
            self.ranges[name] = (mn, mx)
            return y
        mn, mx = self.ranges[name]
        qmax = 2**bits - 1
        scale = ((mx - mn) / qmax).clamp_min(1e-12).reshape(1)
        zp = (-torch.round(mn / scale)).clamp(0, qmax).to(torch.int32).reshape(1)
        return torch.fake_quantize_per_tensor_affine(y, scale, zp, 0, qmax)


class ConvUnit(nn.Module):
    def __init__(self, q, name, cin, cout, k, stride, relu, wbits=None, abits=None):
        super().__init__()
        self.q, self.name, self.relu = q, name, relu
        self.wbits, self.abits = wbits, abits
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        wb = self.q.wbits if self.wbits is None else self.wbits
        ab = self.q.abits if self.abits is None else self.abits
        w = self.q.weight(self.conv.weight, wb)
        y = self.bn(F.conv2d(x, w, None, self.conv.stride, self.conv.padding))
        if self.relu:
            y = F.relu(y)
        return self.q.output(self.name, y, ab)


class BasicBlock(nn.Module):
    def __init__(self, q, name, cin, c, stride):
        super().__init__()
        self.q, self.name = q, name
        self.conv1 = ConvUnit(q, f"{name}.conv1", cin, c, 3, stride, True)
        self.conv2 = ConvUnit(q, f"{name}.conv2", c, c, 3, 1, False, abits=0)
        self.down = ConvUnit(q, f"{name}.downsample", cin, c, 1, stride, False, abits=0) if stride != 1 or cin != c else None

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return self.q.output(self.name, F.relu(out + (self.down(x) if self.down is not None else x)), self.q.abits)


class LinearUnit(nn.Module):
    def __init__(self, q, name, cin, cout, bias, bn_affine, relu):
        super().__init__()
        self.q, self.name, self.relu = q, name, relu
        self.fc = nn.Linear(cin, cout, bias=bias)
        self.bn = nn.BatchNorm1d(cout, affine=bn_affine)

    def forward(self, x):
        y = self.bn(F.linear(x, self.q.weight(self.fc.weight, 8), self.fc.bias))
        return F.relu(y) if self.relu else y


class Encoder(nn.Module):
    def __init__(self, q, dim=2048, hidden=2048):
        super().__init__()
        self.stem = ConvUnit(q, "conv1", 3, 64, 3, 1, True, wbits=8, abits=8)
        blocks, cin = [], 64
        for li, (c, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
            for b in range(2):
                blocks.append(BasicBlock(q, f"layer{li + 1}.{b}", cin, c, stride if b == 0 else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        last = LinearUnit(q, "fc.6", hidden, dim, True, False, False)
        last.fc.bias.requires_grad_(False)
        self.fc = nn.Sequential(LinearUnit(q, "fc.0", 512, hidden, False, True, True),
                                LinearUnit(q, "fc.3", hidden, hidden, False, True, True), last)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def predictor(dim=2048, hidden=2048):
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))


def neg_cos(p, z):
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run(method, batch, steps, warmup, wbits, abits, device):
    torch.manual_seed(0)
    q = Quant(wbits, abits)
    enc, pred = Encoder(q).to(device).train(), predictor().to(device).train()
    params = [p for p in list(enc.parameters()) + list(pred.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    x1 = torch.randn(batch, 3, 32, 32, device=device)
    x2 = torch.randn(batch, 3, 32, 32, device=device)

    def forward():
        if method == "simsiam":
            z1, z2 = enc(x1), enc(x2)
            return 0.5 * (neg_cos(pred(z1), z2) + neg_cos(pred(z2), z1))
        q.ranges = {}
        q.mode = "observe"
        z1, z2 = enc(x1), enc(x2)
        q.mode = "quant"
        z1q, z2q = enc(x1), enc(x2)
        q.mode = "fp"
        loss_fp = 0.5 * (neg_cos(pred(z1), z2) + neg_cos(pred(z2), z1))
        loss_q = 0.5 * (neg_cos(pred(z1q), z2) + neg_cos(pred(z2q), z1))
        return 0.5 * (loss_fp + loss_q)

    def step(marks=None):
        loss = forward()
        if marks is not None:
            sync(device)
            marks.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if marks is not None:
            sync(device)
            marks.append(time.perf_counter())
        opt.step()
        if marks is not None:
            sync(device)
            marks.append(time.perf_counter())
        return loss

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    setup_ms = (time.perf_counter() - t0) * 1000
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    each = []
    for _ in range(steps):
        t1 = time.perf_counter()
        loss = step()
        sync(device)
        each.append((time.perf_counter() - t1) * 1000)
    step_ms = statistics.median(each)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    phases = []
    for _ in range(3):
        marks = [time.perf_counter()]
        step(marks)
        phases.append([(b - a) * 1000 for a, b in zip(marks, marks[1:])])
    med = [sorted(p[k] for p in phases)[1] for k in range(3)]
    row = {"method": "SSQL_SimSiam" if method == "ssql_simsiam" else "SimSiam", "batch": batch, "steps": steps,
           "setup_ms": round(setup_ms), "step_ms": step_ms, "images_per_s": batch / (step_ms / 1000),
           "phases_ms": {"forward": med[0], "backward": med[1], "sgd": med[2]}, "peak_bytes": peak,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "loss": loss.item(), "parameters": sum(p.numel() for p in params),
           "bits": {"w": wbits, "a": abits} if method == "ssql_simsiam" else None}
    print(f"  {row['method']:14} batch {batch}/view: {step_ms:.1f} ms/step ({row['images_per_s']:.0f} img/s per view), "
          f"split fwd {med[0]:.1f} / bwd {med[1]:.1f} / sgd {med[2]:.1f} ms, peak {(peak or 0) / 2**20:.0f} MiB, "
          f"loss {row['loss']:.4f}, setup {row['setup_ms']} ms")
    del enc, pred, opt, x1, x2, q
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--wbits", type=int, default=4)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--methods", default="ssql_simsiam,simsiam")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    where = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"PyTorch {torch.__version__} (cuDNN {torch.backends.cudnn.version()}) on {where}:")
    rows = []
    for m in args.methods.split(","):
        try:
            rows.append(run(m, args.batch, args.steps, args.warmup, args.wbits, args.abits, args.device))
        except Exception as e:  # one method failing must not hide the other
            rows.append({"method": m, "error": repr(e)})
            print(f"  {m}: ERROR {e!r}")
        json.dump({"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                   "device": where, "rows": rows}, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
