"""The ``add`` op: residual add of two code tensors at different scales, aligned exactly in integers.

``clip((m0*a + m1*b + round) >> shift, lo, hi)`` (:func:`~mixq_hw.layers.reference.residual_add`): the
export chooses the integer multipliers ``m0``, ``m1`` and the ``shift`` so that each branch's step is
``m / 2**shift`` output steps; the clip to unsigned codes fuses the ReLU after the add, to signed codes
(``out_signed``) it leaves the sum signed.  Hardware: :class:`~mixq_hw.layers.residual.Residual`, with a
FIFO on the branch that arrives first, its depth from the schedules (as for the concat).
"""

from __future__ import annotations


import numpy as np

from ..graph.checks import Node, ValueInfo, arity, bool_attr, codes_input, fail, int_attr
from ..layers.reference import residual_add
from ..layers.residual import ResidualSpec, code_range, residual_sum_bits
from ..packing.bits import NEG_SHIFTS
from ..streams import codes_signed
from .registry import OpDef, register

__all__ = ["AddOp", "output_attrs", "MAX_MULTIPLIER", "MAX_SHIFT", "MAX_SUM_BITS"]

#: bound on |m0|, |m1| (constant multipliers built from shifts and adds)
MAX_MULTIPLIER = 1 << 16
#: largest right shift of the aligned sum
MAX_SHIFT = 40
#: widest exact sum the Residual block computes: the rounding term at MAX_SHIFT with 8 bits of room above it
MAX_SUM_BITS = MAX_SHIFT + 8


def output_attrs(node: Node) -> tuple[int, bool, int | None]:
    """``(out_bits, out_signed, neg_shift)`` of an add or rescale node, checked: a LeakyReLU slope
    (``neg_shift``) needs signed output codes, and signed codes need at least 2 bits."""
    out_bits = int_attr(node, "out_bits", 1, 16)
    out_signed = bool_attr(node, "out_signed") if "out_signed" in node.attrs else False
    neg_shift = int_attr(node, "neg_shift", NEG_SHIFTS.start, NEG_SHIFTS.stop - 1) \
        if "neg_shift" in node.attrs else None
    if neg_shift is not None and not out_signed:
        raise fail(node, f"neg_shift={neg_shift} (LeakyReLU) needs out_signed=True")
    if out_signed and out_bits < 2:
        raise fail(node, f"out_signed needs out_bits >= 2, got {out_bits}")
    return out_bits, out_signed, neg_shift


def _attrs(node: Node) -> tuple[int, int, int, int, bool, int | None]:
    m0 = int_attr(node, "m0", -MAX_MULTIPLIER, MAX_MULTIPLIER)
    m1 = int_attr(node, "m1", -MAX_MULTIPLIER, MAX_MULTIPLIER)
    shift = int_attr(node, "shift", 0, MAX_SHIFT)
    return (m0, m1, shift, *output_attrs(node))


class AddOp(OpDef):
    """``add``: attributes m0, m1 (integer multipliers), shift (>= 0), out_bits, optional out_signed and
    neg_shift (with out_signed: LeakyReLU of slope 2**-neg_shift before the rounding); two inputs of activation codes (unsigned or signed, any bits) of equal shape; output codes of out_bits."""

    name = "add"
    export_note = "made by the exporter from the zoo's QAdd, with the branch alignment chosen at export"

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 2)
        for i, x in enumerate(ins):
            codes_input(node, x, i, allow_signed=True)
        a, b = ins
        if a.shape != b.shape:
            raise fail(node, f"input {node.inputs[0]!r} is {a} but {node.inputs[1]!r} is {b}; add needs "
                             f"equal shapes")
        m0, m1, shift, out_bits, out_signed, neg_shift = _attrs(node)
        if out_signed and out_bits < 2:
            raise fail(node, f"out_signed needs out_bits >= 2, got {out_bits}")
        width = residual_sum_bits((a.lo, a.hi), (b.lo, b.hi), m0, m1, shift) + (1 if neg_shift else 0)
        if width > MAX_SUM_BITS:
            raise fail(node, f"m0={m0}, m1={m1}, shift={shift} need a {width}-bit sum, beyond {MAX_SUM_BITS}")
        return ValueInfo(a.shape, out_bits, False, out_signed)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        m0, m1, shift, out_bits, out_signed, neg_shift = _attrs(node)
        return residual_add(args[0], args[1], m0, m1, shift, code_range(out_bits, out_signed), neg_shift)

    def details(self, node: Node) -> str:
        m0, m1, shift, out_bits, out_signed, neg_shift = _attrs(node)
        act = "" if not out_signed else " signed" if neg_shift is None else f" leaky{neg_shift}"
        return f"({m0}*a + {m1}*b) >> {shift}{act}"

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        srcs, lanes, fed = lowering.joined(node)
        m0, m1, shift, out_bits, out_signed, neg_shift = _attrs(node)
        c, h, w = srcs[0].shape
        spec = ResidualSpec(c, h, w, lanes, bits_a=srcs[0].bits, bits_b=srcs[1].bits, out_bits=out_bits, m0=m0,
                            m1=m1, shift=shift, signed_a=codes_signed(srcs[0]), signed_b=codes_signed(srcs[1]),
                            out_signed=out_signed, neg_shift=neg_shift, name=node.name)
        lowering.add(node.name, node.name, "add", spec, fed, ["i0", "i1"])
        lowering.produce(node.name, node.name, "o", spec.out_shape, lanes, out_bits)


register(AddOp())
