"""Random-weight models with realistic integer ranges: hardware experiments and tests without a data set.

A freshly built zoo model has BatchNorm statistics of 0 / 1, so its requantisation would see ranges no
trained model has.  :func:`calibrate_random` gives every BatchNorm random affine parameters and the
statistics of a few train-mode passes over random 8-bit images, so the exported integer graph has
multipliers, biases and activation codes of the sizes a trained network's have.  Seeded: the same
arguments give the same model.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["calibrate_random"]


def calibrate_random(model: nn.Module, shape: tuple[int, int, int], *, seed: int = 0, passes: int = 2,
                     batch: int = 4) -> nn.Module:
    """Random BN affine parameters (weight 0.5..1.5, bias -0.3..0.3), then BN statistics as the cumulative
    average of ``passes`` train-mode batches of ``batch`` random images of ``shape``; returns the model in
    eval mode.  Build the model (after ``torch.manual_seed``) before calling: its own weights are not touched."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.momentum = None       # cumulative average: exactly the statistics of the batches below
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(torch.randint(0, 256, (batch, *shape), generator=gen).float() / 256)
    return model.eval()
