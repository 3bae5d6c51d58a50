"""PyTorch side of bench/ptq_reconstruct.ts: the original's reconstruct_modules (quant_tools/finetune/brecq) on one
piece of a seeded cifar_resnet18, timed at two iteration counts so that the capture of inputs/outputs cancels.
Request on stdin: {"threads", "pieces": [names], "iters": [n1, n2], "batch", "images", "size", "bits"}; answer: seconds
per 1000 iterations per piece."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from original_code import assert_no_stub_called, config_for, original  # noqa: E402

req = json.load(sys.stdin)
torch.set_num_threads(req["threads"])
o = original()
brecq = __import__("quant_tools.finetune.brecq.reconstruct", fromlist=["x"])
blocks = o.quant_tools.blocks
brecq.LossFunction.__call__.__globals__["print"] = lambda *a, **k: None  # its every-500-steps log line

cfg = config_for(None, "CrossEntropy")
cfg.QUANT.W.QUANTIZER = "adaRound"
cfg.QUANT.W.BIT = req["bits"]
cfg.QUANT.A.BIT = 0
cfg.QUANT.BIT_CONFIG = []
torch.manual_seed(0)
import builtins  # noqa: E402
real_print = builtins.print
builtins.print = lambda *a, **k: None  # QuantModel prints module names while it wraps them
qm = o.quant_tools.QuantModel(o.models.__dict__["cifar_resnet18"](num_classes=10).eval(), cfg)
builtins.print = real_print
qm.set_quant_state(True, False, w_init=True)
calib = torch.randn(req["images"], 3, req["size"], req["size"], generator=torch.Generator().manual_seed(1))
net = qm.model
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "seconds_per_1000": {}}
for name in req["pieces"]:
    mod = net
    for part in name.split("."):
        mod = getattr(mod, part)
    times = []
    for iters in req["iters"]:
        t0 = time.perf_counter()
        brecq.reconstruct_modules(model=qm, module=mod, cali_data=calib, batch_size=req["batch"], iters=iters,
                                  asym=True, act_quant=False, opt_mode="mse", warmup=0.2)
        times.append(time.perf_counter() - t0)
    n1, n2 = req["iters"]
    out["seconds_per_1000"][name] = (times[1] - times[0]) / (n2 - n1) * 1000
assert_no_stub_called()
print(json.dumps(out))
