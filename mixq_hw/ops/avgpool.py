"""The ``avgpool`` op: average pooling of activation codes as an exact integer sum (an accumulator).

The node sums each ``kh`` x ``kw`` window (stride = window; the whole map when ``kh``/``kw`` are absent:
the global average pool); its 1/(kh*kw) scale belongs to the ``requant`` that reads the sum, exactly as
the scale of a conv's accumulator does.  Hardware: :class:`~mixq_hw.layers.avgpool.SumPool` with its
output in the accumulator-group format that the Requant (and the output's AccBias) read.
"""

from __future__ import annotations

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input, fail, int_attr
from ..layers.avgpool import SumPoolSpec, sum_bits
from ..layers.reference import sum_pool
from ..packing.bits import act_magnitude
from ..streams import codes_signed
from .registry import OpDef, register

__all__ = ["AvgPoolOp", "avgpool_window", "avgpool_bound"]


def avgpool_window(node: Node, height: int, width: int) -> tuple[int, int]:
    """The node's (kh, kw): its ``kh``/``kw`` attributes, each defaulting to the whole input axis."""
    kh = int_attr(node, "kh", 1, height) if "kh" in node.attrs else height
    kw = int_attr(node, "kw", 1, width) if "kw" in node.attrs else width
    return kh, kw


def avgpool_bound(node: Node, a_bits: int, height: int, width: int, signed: bool = False) -> int:
    """Largest sum magnitude the node produces from ``a_bits``-bit codes (unsigned, or two's complement with
    ``signed``) of an (H, W) map."""
    kh, kw = avgpool_window(node, height, width)
    return kh * kw * act_magnitude(a_bits, signed)


class AvgPoolOp(OpDef):
    """``avgpool``: optional ``kh``, ``kw`` (window = stride; default the whole map); one input of unsigned or
    signed codes (C, H, W), H and W multiples of the window -> (C, H/kh, W/kw) signed sums (an accumulator that a
    ``requant`` or the ``output`` reads)."""

    name = "avgpool"
    accumulates = True
    export_note = ("made by the exporter from the zoo's QGlobalAvgPool / QAvgPool2d, whose quantiser gives "
                   "the input codes; the consumer's requant applies the 1/(kh*kw) scale")

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        c, h, w = x.shape
        kh, kw = avgpool_window(node, h, w)
        if h % kh or w % kw:
            raise fail(node, f"input {node.inputs[0]!r} is {h}x{w}, not a multiple of the {kh}x{kw} window")
        if x.signed_codes:
            return ValueInfo((c, h // kh, w // kw), sum_bits(x.bits, kh * kw, True), True)
        return ValueInfo((c, h // kh, w // kw), sum_bits(x.bits, kh * kw) + 1, True)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        x = args[0]
        return sum_pool(x, avgpool_window(node, x.shape[2], x.shape[3]))

    def details(self, node: Node) -> str:
        return " ".join(f"{k}{node.attrs[k]}" for k in ("kh", "kw") if k in node.attrs) or "global"

    def row_map(self, node: Node) -> None:
        return None     # the window's last row completes it (the global pool: the whole frame)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        spec = SumPoolSpec(c, h, w, src.lanes, src.bits, kernel=avgpool_window(node, h, w),
                           signed=codes_signed(src), grouped=True, name=node.name)
        lowering.add(node.name, node.name, "avgpool", spec, [(src.stage, src.port)])
        # pixels = 1, pe = lanes: the raster order of the sums is the accumulator-group order
        lowering.produce(node.name, node.name, "o", spec.out_shape, src.lanes, spec.acc_bits, grouped=True,
                         pe=src.lanes, pixels=1, cycles_per_beat=1)


register(AvgPoolOp())
