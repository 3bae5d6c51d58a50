"""PyTorch CPU reference for bench/resnet18_step.ts: one SGD training step of CIFAR ResNet-18 (3x3 stem, no max pool).
Reads {"threads", "reps", "warmup", "batch"} on stdin and prints the median and minimum milliseconds per step."""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_conv2d import timed


class BasicBlock(nn.Module):
    def __init__(self, cin, c, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.down = None
        if stride != 1 or cin != c:
            self.down = nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.down(x) if self.down is not None else x))


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for c, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for b in range(2):
                blocks.append(BasicBlock(cin, c, stride if b == 0 else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        h = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(req["threads"])
    torch.manual_seed(0)
    model = ResNet18().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(req["batch"], 3, 32, 32)
    target = torch.arange(req["batch"]) % 10

    def step():
        loss = F.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()

    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
               "step": timed(step, req["reps"], req["warmup"])}, sys.stdout)


if __name__ == "__main__":
    main()
