"""Do a network's weights fit on chip?  Checked before any folding, elaboration or simulation.

mixq keeps every weight in the PL (registers, LUTRAM or block RAM next to its engine); it does not build
off-chip weight streaming.  A network whose weight bits exceed the block RAM the accelerator may use cannot be
built however it is folded, so the build stops at once with a :class:`WeightsDoNotFit` that gives the bits
needed, the bits the device has, where the weights would have to go and the layers that hold most of them.
"""

from __future__ import annotations

from typing import Mapping

from .graph import Graph
from .ops import op_def

__all__ = ["BRAM36_BITS", "WeightsDoNotFit", "graph_weight_bits", "check_weights_fit"]

#: Bits of one BRAM36 (36 Kb, parity bits included: the most a weight memory can use).
BRAM36_BITS = 36 * 1024

#: Layers named in the message.
TOP_LAYERS = 5


class WeightsDoNotFit(ValueError):
    """The weights need more on-chip memory than the device has; the message says how much and where."""


def graph_weight_bits(graph: Graph) -> dict[str, int]:
    """Weight bits of every conv/linear node of ``graph`` (values x ``w_bits``), in graph order."""
    return {n.name: int(n.tensors["weight"].size) * int(n.attrs["w_bits"]) for n in graph if op_def(n.op).folded}


def _mbit(bits: float) -> str:
    return f"{bits / 1e6:.2f} Mbit"


def check_weights_fit(layer_bits: Mapping[str, int], *, network: str, board: str, device_bram36: float,
                      available_bram36: float) -> None:
    """WeightsDoNotFit unless the sum of ``layer_bits`` fits ``available_bram36`` BRAM36 (the accelerator's
    share of the device's ``device_bram36``).

    This is a lower bound on what the weights need (perfectly packed memories): a network that passes may
    still fail the folding, one that fails it cannot be built at all."""
    total = sum(layer_bits.values())
    available = int(available_bram36 * BRAM36_BITS)
    if total <= available:
        return
    device = int(device_bram36 * BRAM36_BITS)
    top = sorted(layer_bits.items(), key=lambda kv: -kv[1])[:TOP_LAYERS]
    share = sum(bits for _, bits in top)
    who = f"The {len(top)} largest layers hold" if len(top) > 1 else "Its one layer holds"
    layers = ", ".join(f"{name} {bits:,} ({100 * bits / total:.0f} %)" for name, bits in top)
    raise WeightsDoNotFit(
        f"{network} does not fit the {board}: its weights need {total:,} bits ({_mbit(total)}), but the "
        f"accelerator may use {available_bram36:g} BRAM36 = {available:,} bits ({_mbit(available)}; the whole "
        f"device has {device_bram36:g} BRAM36 = {device:,} bits, {_mbit(device)}), {total / device:.2f}x the "
        f"device's block RAM.  mixq keeps every weight on chip; these would have to be streamed from the "
        f"board's off-chip DDR memory (weight streaming), which mixq does not build.  {who} "
        f"{100 * share / total:.0f} % of the bits: {layers}.  Train it with fewer weight bits "
        f"(python -m mixq_nn.train --bitw) or build a narrower network")
