"""The packed weight word of a plan, made once for every core that reads the same weights.

A :class:`~mixq_hw.packing.cores.PackedMAC` with weights on the 18-bit B port makes the signed packed word
``W = sum w_i << o_i`` in fabric (a subtractor ``D - A`` and its registers), and one whose activation word
uses its port's sign bit needs ``W`` in fabric two stages after the inputs for the C-port correction.
Every core of a conv engine that reads the same weight codes (a kernel plan's cores of the other pixel
groups, a filter plan's cores of the other window columns) needs the same ``W``: :class:`WeightWord` makes
it once, registered at stage 1 (``word1``, what B2 reads) and stage 2 (``word2``, what the C correction
reads), and such cores take it with ``PackedMAC(..., shared_word=True)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cores import packed_weight_word

if TYPE_CHECKING:
    from .layout import Plan

__all__ = ["WeightWord", "weight_word_cost"]


class WeightWord(wiring.Component):
    """``word1`` / ``word2``: the packed weight word of ``weights`` (``plan``'s slot codes), one and two enabled
    cycles after the codes are at the input (the stages a :class:`~mixq_hw.packing.cores.PackedMAC` reads them
    at); both hold while ``en`` is low."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        word = signed(plan.weight_port_bits)
        super().__init__({
            "en": In(1, init=1),
            "weights": In(data.ArrayLayout((unsigned if plan.w_unsigned else signed)(plan.w_bits), plan.n_weights)),
            "word1": Out(word),
            "word2": Out(word),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.en):
            m.d.sync += [self.word1.eq(packed_weight_word(self.plan, self.weights.as_value())),
                         self.word2.eq(self.word1)]
        return m


def weight_word_cost(plan: Plan) -> tuple[int, int]:
    """Estimated (LUT, FF) of one :class:`WeightWord`: a subtractor of one LUT per port bit at most, and the
    registers the cores read (``word2`` only where the activation sign bit's correction reads it)."""
    bits = plan.weight_port_bits
    return bits, bits * (2 if plan.act_sign_bit else 1)
