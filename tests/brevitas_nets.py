"""Small Brevitas CNV-like networks for the QONNX tests: train briefly on digits, export QONNX.

``exact_net``: power-of-two scales (FixedPoint quantizers), FLOOR-rounded activations, no BatchNorm or
bias: every requant is dyadic, so mixq's integer Graph reproduces QONNX's execution exactly.
``default_net``: Brevitas' default float-scaled quantizers (ROUND), BatchNorm and float biases: the
requants are approximations whose error bound tests/test_qonnx.py checks layer by layer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

warnings.filterwarnings("ignore", module="brevitas")
import brevitas.nn as qnn
from brevitas.export import export_qonnx
from brevitas.inject.enum import FloatToIntImplType, ScalingImplType
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint

from mixq_nn.data import get_dataset

SHAPE = (1, 8, 8)


class FloorAct(Uint8ActPerTensorFixedPoint):
    """Unsigned activations, power-of-two scale, rounded down (exported as rounding_mode FLOOR)."""

    float_to_int_impl_type = FloatToIntImplType.FLOOR


class PixelQuant(Uint8ActPerTensorFixedPoint):
    """The image ``pixel / 256`` as its 8-bit codes: a constant scale of 2**-8."""

    scaling_impl_type = ScalingImplType.CONST
    scaling_const = 1.0
    max_val = 1.0
    bit_width = 8


class ExactNet(nn.Module):
    """conv 1->4, conv 4->8, pool, conv 8->8 (3-bit weights), pool, linear 32->10; W4A4/A3."""

    def __init__(self) -> None:
        super().__init__()

        def conv(i: int, o: int, bits: int) -> nn.Module:
            return qnn.QuantConv2d(i, o, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                                   weight_bit_width=bits)

        def relu(bits: int) -> nn.Module:
            return qnn.QuantReLU(act_quant=FloorAct, bit_width=bits, return_quant_tensor=True)

        self.inp = qnn.QuantIdentity(act_quant=PixelQuant, return_quant_tensor=True)
        self.c1, self.r1 = conv(1, 4, 4), relu(4)
        self.c2, self.r2 = conv(4, 8, 4), relu(4)
        self.c3, self.r3 = conv(8, 8, 3), relu(3)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(32, 10, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r1(self.c1(self.inp(x)))
        x = self.pool(self.r2(self.c2(x)))
        x = self.pool(self.r3(self.c3(x)))
        return self.fc(torch.flatten(x, 1))


class DefaultNet(nn.Module):
    """The same shape with Brevitas' default quantizers, BatchNorm and biases (first conv reads the image)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1, self.r1 = qnn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4), nn.BatchNorm2d(4), \
            qnn.QuantReLU(bit_width=4)
        self.c2, self.b2, self.r2 = qnn.QuantConv2d(4, 8, 3, padding=1, weight_bit_width=4), nn.BatchNorm2d(8), \
            qnn.QuantReLU(bit_width=4)
        self.pool = nn.MaxPool2d(2)
        self.c3, self.r3 = qnn.QuantConv2d(8, 8, 3, padding=1, weight_bit_width=3), qnn.QuantReLU(bit_width=3)
        self.fc = qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r1(self.b1(self.c1(x)))
        x = self.pool(self.r2(self.b2(self.c2(x))))
        x = self.pool(self.r3(self.c3(x)))
        return self.fc(torch.flatten(x, 1))


def train_and_export(model: nn.Module, path: Path, *, seed: int = 0) -> tuple[nn.Module, float]:
    """Train ``model`` for one epoch of digits (21 batches of 64), export QONNX to ``path``;
    returns the model (eval mode) and its test accuracy."""
    torch.manual_seed(seed)
    train = get_dataset("digits", "train", SHAPE)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    model.train()
    for x, y in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    test = get_dataset("digits", "test", SHAPE)
    with torch.no_grad():
        accuracy = float((model(test.images.float() / 256).argmax(1) == test.targets).float().mean())
    export_qonnx(model, torch.rand(1, *SHAPE), export_path=str(path), dynamo=False)
    return model, accuracy
