"""Writes the checkpoints of bench/checkpoint_load.sh with PyTorch (run by the script).

    python bench/make_checkpoints.py DIR

- DIR/resnet34.pth: the state dict of a ResNet-34 (the torchvision architecture, written
  out here so that torchvision is not needed; random weights): 218 tensors, ~83 MiB, the
  size of the 85 MiB real checkpoint issue 18 timed;
- DIR/synthetic_1gib.pth: 16 float32 tensors of 64 MiB each.
"""

import sys
from pathlib import Path

import torch
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )


class ResNet34(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (cout, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
            layer = []
            for b in range(blocks):
                layer.append(BasicBlock(cin, cout, 2 if b == 0 and i > 0 else 1))
                cin = cout
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(512, 1000)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if not (out / "resnet34.pth").exists():
        torch.save(ResNet34().state_dict(), out / "resnet34.pth")
    if not (out / "synthetic_1gib.pth").exists():
        sd = {f"w{i}": torch.randn(4096, 4096) for i in range(16)}
        torch.save(sd, out / "synthetic_1gib.pth")


if __name__ == "__main__":
    main()
