"""What several benchmarks share: full-size zoo networks with random weights and calibrated BatchNorm, and a
description of the machine a figure was measured on."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from mixq_hw.graph import Graph
from mixq_nn import models
from mixq_nn.calibrate import calibrate_random
from mixq_nn.export import export

#: The DAC-SDC input size every full-size benchmark uses (channels, height, width).
FULL_SHAPE = (3, 160, 320)


def calibrated_model(name: str, *, bitw: str | Sequence[int] | None = None, bita: str | Sequence[int] | None = None,
                     shape: tuple[int, int, int] = FULL_SHAPE, seed: int = 0, **opts: Any) -> nn.Module:
    """Zoo model ``name`` (registry bit widths unless given; ``opts`` such as ``channels`` go to
    :func:`mixq_nn.models.build`) with random weights, random BN affine parameters and BN statistics from two
    train-mode passes over random 8-bit images: realistic integer ranges without a data set."""
    torch.manual_seed(seed)
    model = models.build(name, bitw=bitw, bita=bita, input_shape=shape, **opts)
    return calibrate_random(model, shape, seed=seed)


def calibrated_graph(name: str, *, bitw: str | Sequence[int] | None = None, bita: str | Sequence[int] | None = None,
                     shape: tuple[int, int, int] = FULL_SHAPE, seed: int = 0, **opts: Any) -> Graph:
    """:func:`calibrated_model` exported to the integer Graph."""
    return export(calibrated_model(name, bitw=bitw, bita=bita, shape=shape, seed=seed, **opts), shape, name=name)


def machine() -> dict:
    """Date, CPU, load and tool versions: the context a measured figure needs."""
    import amaranth

    try:
        gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        gxx = "missing"
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")), "") if cpuinfo.exists() else platform.processor()
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "platform": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
            "python": platform.python_version(), "amaranth": amaranth.__version__, "torch": torch.__version__,
            "gxx": gxx}


def ultra96_folding(graph: Graph, clock_mhz: float = 300.0):
    """The folding ``python -m mixq_hw.build --board ultra96`` chooses for ``graph`` (the realistic budget: the
    default utilisation target less the board's shell); a :class:`mixq_hw.folding.FoldingResult`, analytic."""
    from boards import get_board
    from mixq_hw.estimate import Resources
    from mixq_hw.folding import choose_folding
    from mixq_hw.utilization import DEFAULT_UTILIZATION

    board = get_board("ultra96")
    return choose_folding(graph, Resources(**board.budget.to_dict()), clock_mhz=clock_mhz,
                          utilization=DEFAULT_UTILIZATION, reserve=Resources(**board.shell.to_dict()))


def run_training(argv: list[str], name: str) -> float:
    """``python -m mixq_nn.train`` with ``argv``, in this process; its wall seconds (SystemExit naming ``name``
    when the training fails)."""
    import time

    from mixq_nn import train

    print(f"== python -m mixq_nn.train {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    if train.main(argv):
        raise SystemExit(f"training {name} failed")
    return time.perf_counter() - start
