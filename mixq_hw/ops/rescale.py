"""The ``rescale`` op: one code tensor re-scaled to another step in integers, ``clip((m*x + round) >> shift)``.

The one-input form of ``add`` (:mod:`mixq_hw.ops.add` with ``m1 = 0``): export makes it where a residual
add's codes reach a consumer whose quantiser has another step (``m / 2**shift`` is the ratio of the steps)
or a LeakyReLU (``neg_shift``, with ``out_signed``).  Hardware: :class:`~mixq_hw.layers.residual.Rescale`.
"""

from __future__ import annotations

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input, fail, int_attr
from ..layers.reference import residual_add
from ..layers.residual import RescaleSpec, code_range, residual_sum_bits
from ..streams import codes_signed
from .add import MAX_MULTIPLIER, MAX_SHIFT, MAX_SUM_BITS, output_attrs
from .registry import OpDef, register

__all__ = ["RescaleOp"]


def _attrs(node: Node) -> tuple[int, int, int, bool, int | None]:
    m = int_attr(node, "m", -MAX_MULTIPLIER, MAX_MULTIPLIER)
    shift = int_attr(node, "shift", 0, MAX_SHIFT)
    return (m, shift, *output_attrs(node))


class RescaleOp(OpDef):
    """``rescale``: attributes m (integer multiplier), shift (>= 0), out_bits, optional out_signed and neg_shift
    (with out_signed: LeakyReLU of slope 2**-neg_shift before the rounding); one input of activation codes
    (unsigned or signed); output codes of out_bits."""

    name = "rescale"
    export_note = "made by the exporter where a residual add's codes reach a consumer of another step or a LeakyReLU"

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        m, shift, out_bits, out_signed, neg_shift = _attrs(node)
        width = residual_sum_bits((x.lo, x.hi), (0, 0), m, 0, shift) + (1 if neg_shift else 0)
        if width > MAX_SUM_BITS:
            raise fail(node, f"m={m}, shift={shift} need a {width}-bit sum, beyond {MAX_SUM_BITS}")
        return ValueInfo(x.shape, out_bits, False, out_signed)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        m, shift, out_bits, out_signed, neg_shift = _attrs(node)
        x = args[0]
        return residual_add(x, np.zeros_like(x), m, 0, shift, code_range(out_bits, out_signed), neg_shift)

    def details(self, node: Node) -> str:
        m, shift, out_bits, out_signed, neg_shift = _attrs(node)
        act = "" if not out_signed else " signed" if neg_shift is None else f" leaky{neg_shift}"
        return f"({m}*x) >> {shift}{act}"

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        m, shift, out_bits, out_signed, neg_shift = _attrs(node)
        c, h, w = src.shape
        spec = RescaleSpec(c, h, w, src.lanes, bits=src.bits, out_bits=out_bits, m=m, shift=shift,
                           signed_in=codes_signed(src), out_signed=out_signed, neg_shift=neg_shift, name=node.name)
        lowering.add(node.name, node.name, "rescale", spec, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", spec.out_shape, src.lanes, out_bits)


register(RescaleOp())
