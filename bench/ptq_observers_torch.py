"""The original's side of bench/ptq_observers.bench.ts: its observer classes (quant_tools/observers, imported through
test/fixtures/original_code.py, scipy for KL_HISTOGRAM) over the same ResNet-18-shaped tensors, with the request's
thread count. Reads a JSON request on stdin, prints {observer: {case: seconds}}.

Each case is one calibration as the original's QuantModel runs it: a weight through update() (PERCENTILE and
KL_HISTOGRAM first through calc_init_params, without which they crash), an activation batch through
calc_init_params then update. Where the original would take minutes (KL_HISTOGRAM per channel: a Python loop over
~900 candidate thresholds per channel), it runs the first `sample_channels` channels and scales the time to all of
them ("extrapolated" lists those cases).
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
import original_code  # noqa: E402

original_code.STUBBED = tuple(s for s in original_code.STUBBED if s != "scipy")
req = json.load(sys.stdin)
torch.set_num_threads(req["threads"])
o = original_code.original()
build = o.quant_tools.observers.build_observer
CN = original_code.CfgNode
gen = torch.Generator().manual_seed(0)
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "extrapolated": []}


def calibrate(name, kind, x, granularity, bits):
    axis = 0 if kind == "weight" else 1
    cfg = CN(GRANULARITY=granularity, SYMMETRY=kind == "weight", BIT=bits,
             OBSERVER_METHOD=CN(NAME=name, ALPHA=req["alpha"], BINS=req["bins"]))
    obs = build(cfg, axis)
    t0 = time.perf_counter()
    if kind == "weight":
        if name in ("PERCENTILE", "KL_HISTOGRAM"):
            obs.calc_init_params(x)
        obs.update(x.clone())
    else:
        obs.calc_init_params(x)
        obs.update(x)
    obs.calc_quant_params()
    return time.perf_counter() - t0


for name in req["observers"]:
    res = {}
    for case in req["cases"]:
        shape, kind = case["shape"], case["kind"]
        x = torch.randn(*shape, generator=gen) * (0.05 if kind == "weight" else 1.0)
        if kind == "act":
            x = torch.relu(x)
        gran = "channelwise" if kind == "weight" else "layerwise"
        if name == "KL_HISTOGRAM" and gran == "channelwise" and shape[0] > req["sample_channels"]:
            n = req["sample_channels"]
            res[case["name"]] = calibrate(name, kind, x[:n].contiguous(), gran, req["bits"]) * shape[0] / n
            out["extrapolated"].append(f"{name} {case['name']}")
        else:
            res[case["name"]] = calibrate(name, kind, x, gran, req["bits"])
    out[name] = res
original_code.assert_no_stub_called()
print(json.dumps(out))
