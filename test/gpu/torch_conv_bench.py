"""PyTorch eager reference for the conv2d benchmark of scripts/gpu-check.sh (same shapes, same GPU, same run).

python3 test/gpu/torch_conv_bench.py --shapes test/gpu/resnet18-cifar-convs.json --out torch.json

cuDNN benchmark mode (as ours: every algorithm timed once per shape) and no TF32 (as ours by default). The three
passes are separate aten.convolution_backward calls, like our conv2d / conv2dBackwardData / conv2dBackwardWeight.
"""
import argparse
import json

import torch


def timed(f, iters):
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
    ap.add_argument("--shapes", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    spec = json.load(open(args.shapes))
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    n, iters = spec["batch"], spec["iters"]
    rows = []
    print(f"PyTorch {torch.__version__} (cuDNN {torch.backends.cudnn.version()}) on {torch.cuda.get_device_name()}, batch {n}:")
    for L in spec["layers"]:
        k, s = L["k"], L["stride"]
        pad = (k - 1) // 2
        oh = (L["hw"] + 2 * pad - k) // s + 1
        x = torch.empty(n, L["cin"], L["hw"], L["hw"], device=dev).uniform_(-1, 1)
        w = torch.empty(L["cout"], L["cin"], k, k, device=dev).uniform_(-0.1, 0.1)
        gy = torch.empty(n, L["cout"], oh, oh, device=dev).uniform_(-1, 1)
        conv = dict(stride=[s, s], padding=[pad, pad], dilation=[1, 1], transposed=False, output_padding=[0, 0], groups=1)

        def fwd():
            return torch.nn.functional.conv2d(x, w, None, s, pad)

        def bwd_data():
            return torch.ops.aten.convolution_backward(gy, x, w, None, **conv, output_mask=[True, False, False])[0]

        def bwd_weight():
            return torch.ops.aten.convolution_backward(gy, x, w, None, **conv, output_mask=[False, True, False])[1]

        row = {"name": L["name"], "count": L["count"]}
        try:
            for f in (fwd, bwd_data, bwd_weight):
                for _ in range(2):
                    f()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            row["fwd_ms"] = timed(fwd, iters)
            row["bwd_data_ms"] = timed(bwd_data, iters)
            row["bwd_weight_ms"] = timed(bwd_weight, iters)
            row["peak_bytes"] = torch.cuda.max_memory_allocated()
            print(f"  {L['name']:22} fwd {row['fwd_ms']:.3f}  bwd-data {row['bwd_data_ms']:.3f}  "
                  f"bwd-weight {row['bwd_weight_ms']:.3f}  peak {row['peak_bytes'] / 2**20:.0f} MiB")
        except Exception as e:  # one layer failing must not hide the others
            row["error"] = repr(e)
            print(f"  {L['name']}: ERROR {e!r}")
        rows.append(row)
        del x, w, gy
    out = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "device": torch.cuda.get_device_name(),
           "batch": n, "iters": iters, "layers": rows}
    json.dump(out, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
