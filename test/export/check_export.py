"""Checks of exported models from Python (run by test/export/export.test.ts).

  check_export.py onnx MODEL INPUT.f32 SHAPE_JSON EXPECTED.f32
      onnx.checker on MODEL, then Python onnxruntime (CPU) on INPUT; prints {"norm_err", "max_abs", "opset", "ir"}
      against EXPECTED (our logits).
  check_export.py state_dict FILE INPUT.f32 SHAPE_JSON FEATURES.f32 NUM_CLASSES
      loads FILE (.pth with torch.load(weights_only=True), or .safetensors) into the CIFAR ResNet-18 below with
      strict=True; prints {"norm_err"} of its pooled features against FEATURES (ours), and the keys it held.
"""
import json
import struct
import sys

import numpy as np


def read_f32(path, shape):
    return np.fromfile(path, dtype=np.float32).reshape(shape)


def check_onnx(model, inp, shape, expected):
    import onnx
    import onnxruntime as ort

    m = onnx.load(model)
    onnx.checker.check_model(m, full_check=True)
    x = read_f32(inp, shape)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    ref = np.fromfile(expected, dtype=np.float32).reshape(y.shape)
    err = float(np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30))
    print(json.dumps({"norm_err": err, "max_abs": float(np.abs(y - ref).max()), "opset": m.opset_import[0].version, "ir": m.ir_version,
                      "types": sorted({onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name if t.data_type not in (21, 22) else ("uint4" if t.data_type == 21 else "int4") for t in m.graph.initializer})}))


def resnet18_cifar(num_classes):
    import torch.nn as nn

    class BasicBlock(nn.Module):
        def __init__(self, inp, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or inp != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (self.downsample(x) if self.downsample is not None else x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            inp = 64
            for i, planes in enumerate([64, 128, 256, 512]):
                blocks = []
                for b in range(2):
                    blocks.append(BasicBlock(inp, planes, 2 if b == 0 and i > 0 else 1))
                    inp = planes
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(512, num_classes) if num_classes > 0 else None

        def features(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return x.mean((2, 3))

    return ResNet()


def read_safetensors(path):
    import torch

    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    kinds = {"F32": np.float32, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=kinds[v["dtype"]]).reshape(v["shape"]).copy())
    return out


def check_state_dict(path, inp, shape, features, num_classes):
    import torch

    sd = torch.load(path, weights_only=True) if path.endswith(".pth") else read_safetensors(path)
    model = resnet18_cifar(num_classes).eval()
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        f = model.features(torch.from_numpy(read_f32(inp, shape))).numpy()
    ref = np.fromfile(features, dtype=np.float32).reshape(f.shape)
    print(json.dumps({"norm_err": float(np.linalg.norm(f - ref) / np.linalg.norm(ref)), "keys": len(sd)}))


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "onnx":
        check_onnx(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5])
    else:
        check_state_dict(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
