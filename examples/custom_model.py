"""Your own mixq model: train it briefly on the digits, build its accelerator, check it bit-exact in simulation.

    python examples/custom_model.py                                  # 16x16 digits, 3 epochs, pysim
    python examples/custom_model.py --size 32 --backend cxxrtl --images 8

The model is written with mixq's quantised layers (``QConv2d``, ``QLinear``: each quantises its own
input, so the bit widths sit on the layers), trained with plain PyTorch, exported to the integer
Graph, folded under the Ultra96-V2 budget, emitted as Verilog with its Vivado project, and run in
simulation on real test images against the Graph's golden model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

import mixq_hw
import mixq_nn


class SmallNet(nn.Module):
    """conv3x3 (w4, 8-bit pixels) -> BN -> ReLU -> pool -> conv3x3 (w2a2) -> BN -> ReLU -> pool -> linear (w4a3)."""

    def __init__(self, size: int, classes: int = 10) -> None:
        super().__init__()
        self.conv0 = mixq_nn.QConv2d(1, 16, 3, padding=1, bitw=4, bita=8, first=True)
        self.bn0 = nn.BatchNorm2d(16)
        self.conv1 = mixq_nn.QConv2d(16, 32, 3, padding=1, bitw=2, bita=2)
        self.bn1 = nn.BatchNorm2d(32)
        self.fc = mixq_nn.QLinear(32 * (size // 4) ** 2, classes, bitw=4, bita=3)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn0(self.conv0(x))))
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


def train(model: nn.Module, shape: tuple[int, int, int], epochs: int) -> float:
    """Adam on the digits' training split; returns the fake-quant test accuracy in %."""
    train_set = mixq_nn.get_dataset("digits", "train", shape)
    test_set = mixq_nn.get_dataset("digits", "test", shape)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for epoch in range(epochs):
        model.train()
        for images, target in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(images), target).backward()
            opt.step()
    if epochs == 0:          # untrained: let BN see data once, so the ranges are realistic
        model.train()
        with torch.no_grad():
            for images, _ in loader:
                model(images)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in DataLoader(test_set, batch_size=256))
    return 100.0 * correct / len(test_set)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=16, help="input height and width (multiple of 4; default 16)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (default 3; 0: untrained)")
    parser.add_argument("--images", type=int, default=4, help="test images to simulate (default 4)")
    parser.add_argument("--backend", default="pysim", help="simulator: pysim or cxxrtl (default pysim)")
    parser.add_argument("--out", type=Path, default=Path("build/smallnet"), help="build folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no build progress")
    args = parser.parse_args(argv)
    if args.size < 4 or args.size % 4:
        parser.error(f"--size must be a positive multiple of 4, got {args.size}")
    shape = (1, args.size, args.size)
    torch.manual_seed(0)

    model = SmallNet(args.size)
    accuracy = train(model, shape, args.epochs)
    print(f"fake-quant test accuracy {accuracy:.2f} %")

    # the in-memory model goes straight to the build (export, folding, Verilog, Vivado project, report)
    result = mixq_hw.build_accelerator(model, input_shape=shape, name="smallnet", out=args.out,
                                       quiet=args.quiet)
    print(f"{result.cycles_per_frame:,} cycles per frame, {result.fps:,.0f} fps; Verilog in {result.verilog}")

    pixels = mixq_nn.get_images_uint8("digits", "test", shape, count=args.images)
    run = result.simulate(pixels, backend=args.backend, progress=not args.quiet)
    print(f"simulation ({args.backend}): {run.bit_exact}/{run.images} images bit-exact against the Graph, "
          f"{run.cycles_per_frame:,} cycles per frame")
    return 0 if run.all_exact else 1


if __name__ == "__main__":
    sys.exit(main())
