"""PyTorch reference of the fake-quant benchmark (test/gpu/fq_bench.ts), same shapes, same GPU, same run:

python3 test/gpu/torch_fq_bench.py --out torch-fq.json

torch.fake_quantize_per_channel_affine / torch.fake_quantize_per_tensor_affine (tensor qparams) and their autograd
backward (PyTorch saves the clamp mask in the forward and multiplies the gradient by it), torch.aminmax as the
observer, and a device-to-device copy for the bandwidth bound. Timed with CUDA events over 100 calls after 10.
Bytes per element as ours: forward 9 (x, out, mask), backward 9 (grad, mask, dx), copy 8.
"""
import argparse
import json

import torch


def timed(f, iters=100, warmup=10):
    for _ in range(warmup):
        f()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        f()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    rows = []

    def measure(key, name, nbytes, f):
        row = {"key": key, "name": name, "bytes": nbytes}
        try:
            row["ms"] = timed(f)
            row["gbps"] = nbytes / row["ms"] / 1e6
        except Exception as e:  # one failure must not hide the others
            row["error"] = repr(e)
        rows.append(row)

    n = 64 * 2**20
    src, dst = torch.empty(n, device=dev).uniform_(-1, 1), torch.empty(n, device=dev)
    measure("copy", "copy 256 MiB (device to device)", 8 * n, lambda: dst.copy_(src))
    del src, dst
    copy = rows[0].get("gbps")

    cases = {
        "weight": dict(shape=(512, 512, 3, 3), axis=0, qmin=-8, qmax=7, bits=4, symmetric=True),
        "activation": dict(shape=(128, 64, 32, 32), axis=None, qmin=0, qmax=255, bits=8, symmetric=False),
    }
    for kind, s in cases.items():
        x = torch.empty(s["shape"], device=dev).uniform_(-0.5, 0.5)
        g = torch.empty(s["shape"], device=dev).uniform_(-1, 1)
        numel = x.numel()
        if s["axis"] is None:
            mn, mx = torch.aminmax(x)
            scale = ((mx - mn) / (2 ** s["bits"] - 1)).reshape(1)
            zp = (-torch.round(mn / scale)).to(torch.int32).reshape(1)

            def fq(t):
                return torch.fake_quantize_per_tensor_affine(t, scale, zp, s["qmin"], s["qmax"])

            def observe():
                return torch.aminmax(x)
        else:
            flat = x.reshape(x.shape[0], -1)
            mn, mx = torch.aminmax(flat, dim=1)
            scale = torch.maximum(mn.abs(), mx.abs()) / ((2 ** s["bits"] - 1) / 2)
            zp = torch.zeros_like(scale, dtype=torch.int32)

            def fq(t):
                return torch.fake_quantize_per_channel_affine(t, scale, zp, s["axis"], s["qmin"], s["qmax"])

            def observe():
                return torch.aminmax(flat, dim=1)

        xg = x.detach().clone().requires_grad_()

        def fwd_bwd():
            y = fq(xg)
            return torch.autograd.grad(y, xg, g)

        def fwd():
            with torch.no_grad():
                return fq(x)

        label = f"{kind} [{','.join(map(str, s['shape']))}] {'per tensor' if s['axis'] is None else 'per channel'} {s['bits']} bit"
        measure(f"{kind}:fwd+bwd", f"{label}: forward + backward (mask)", 18 * numel, fwd_bwd)
        measure(f"{kind}:fwd", f"{label}: forward (no mask)", 8 * numel, fwd)
        measure(f"{kind}:observer", f"{label}: observer torch.aminmax", 4 * numel, observe)
        del x, g, xg
    for r in rows:
        if copy and r.get("gbps"):
            r["ofCopy"] = r["gbps"] / copy
    print(f"PyTorch {torch.__version__} fake quant on {torch.cuda.get_device_name()}:")
    for r in rows:
        print(f"  {r['name']:86} {r.get('ms', float('nan')):.4f} ms  {r.get('gbps', float('nan')):.0f} GB/s"
              + (f"  {100 * r['ofCopy']:.0f}% of copy" if "ofCopy" in r else "") + (f"  ERROR {r['error']}" if "error" in r else ""))
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "copy_gbps": copy, "rows": rows},
              open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
