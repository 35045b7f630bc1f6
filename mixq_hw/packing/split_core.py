"""The digit-split cores: :class:`SplitMAC` runs a :class:`~mixq_hw.packing.split.SplitPlan` on two
:class:`~mixq_hw.packing.cores.PackedMAC`s and recombines their fields (:class:`Recombine`);
:class:`MultiCoreMAC` is what every core made of several PackedMACs shares (the mixed-rate split's too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth import Module, Mux, signed
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cores import PackedMAC, mac_signature

if TYPE_CHECKING:
    from .split import SplitPlan

__all__ = ["MultiCoreMAC", "SplitMAC", "Recombine"]


def _weight_digits(w: Value, shift: int, rounding: str) -> tuple[Value, Value]:
    """Fabric for :func:`split_weights` on one signed code: ``(hi, lo)``."""
    if rounding == "floor":
        return w[shift:].as_signed(), w[:shift]                 # lo: the low bits, unsigned
    if rounding == "trunc":
        hi = (w + Mux(w[-1], (1 << shift) - 1, 0)) >> shift
    else:
        hi = (w + (1 << (shift - 1))) >> shift
    return hi, w - hi.shift_left(shift)


class Recombine(wiring.Component):
    """The fabric after both digit cores' field registers: ``field = (hi << shift) + lo``, combinational.

    Its own module so that synthesis reports what recombination costs.
    """

    def __init__(self, split: SplitPlan, digit_width: int, width: int):
        self.split = split
        n = len(split.fields)
        super().__init__({
            "hi": In(data.ArrayLayout(signed(digit_width), n)),
            "lo": In(data.ArrayLayout(signed(digit_width), n)),
            "fields": Out(data.ArrayLayout(signed(width), n)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        for f in range(len(self.split.fields)):
            m.d.comb += self.fields[f].eq(self.hi[f].shift_left(self.split.shift) + self.lo[f])
        return m


class MultiCoreMAC(wiring.Component):
    """What every core made of several PackedMACs shares: PackedMAC's latency, ``mac_signature`` ports, and an
    accumulation ``depth`` within the plan's (``plan.fields`` give the output field widths)."""

    #: Enabled cycles from an accumulation's ``i_last`` multiply to its ``o_valid`` (PackedMAC's).
    LATENCY = PackedMAC.LATENCY

    def __init__(self, plan, depth: int | None = None):
        if depth is None:
            depth = plan.depth
        if not isinstance(depth, int) or not 1 <= depth <= plan.depth:
            raise ValueError(f"{plan.name}: depth {depth!r} outside 1..{plan.depth} (the split's accumulation "
                             f"depth)")
        self.plan = plan
        self.depth = depth
        self.latency = self.LATENCY
        self.field_width = max(f.width for f in plan.fields)
        super().__init__(mac_signature(plan, self.field_width))


class SplitMAC(MultiCoreMAC):
    """A :class:`SplitPlan` on two DSP48E2s: :class:`~mixq_hw.packing.cores.PackedMAC`'s ports and latency.

    ``weights`` / ``acts`` take full-width codes (``w_bits`` signed,
    ``a_bits`` unsigned, or signed with ``signed_act``); the digits are cut in front of the two cores' input
    registers (bit slices, or for ``trunc`` / ``round`` weight digits an adder
    and a subtractor of ``w_bits + 1`` bits per weight slot); both PackedMACs run in lock step on ``en``,
    ``i_valid``, ``i_first``, ``i_last``, and every field comes out as
    ``(hi field << shift) + lo field`` (:class:`Recombine`, combinational after
    the cores' field registers, so it holds while ``en`` is low).  ``o_valid``,
    ``fields`` and :attr:`LATENCY` mean exactly what they mean for PackedMAC:
    ``fields[f]`` is the exact sum of ``split.fields[f].terms`` over the
    accumulation, at most :attr:`depth` multiplies.
    """

    def __init__(self, split: SplitPlan, *, depth: int | None = None):
        split.check()
        super().__init__(split, depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        split = self.plan
        m.submodules.hi = hi = PackedMAC(split.hi, depth=self.depth)
        m.submodules.lo = lo = PackedMAC(split.lo, depth=self.depth)
        for core in (hi, lo):
            m.d.comb += [core.en.eq(self.en), core.i_valid.eq(self.i_valid), core.i_first.eq(self.i_first),
                         core.i_last.eq(self.i_last)]
        wb, ab = split.w_bits, split.a_bits
        if split.operand == "weight":
            for i in range(split.n_weights):
                d_hi, d_lo = _weight_digits(self.weights.as_value()[i * wb:(i + 1) * wb].as_signed(), split.shift,
                                            split.rounding)
                m.d.comb += [hi.weights[i].eq(d_hi), lo.weights[i].eq(d_lo)]
            m.d.comb += [hi.acts.as_value().eq(self.acts.as_value()), lo.acts.as_value().eq(self.acts.as_value())]
        else:
            for j in range(split.n_acts):
                code = self.acts.as_value()[j * ab:(j + 1) * ab]
                hi_digit = code[split.shift:].as_signed() if split.signed_act else code[split.shift:]
                m.d.comb += [hi.acts[j].eq(hi_digit), lo.acts[j].eq(code[:split.shift])]
            m.d.comb += [hi.weights.as_value().eq(self.weights.as_value()),
                         lo.weights.as_value().eq(self.weights.as_value())]
        m.submodules.recombine = recombine = Recombine(split, hi.field_width, self.field_width)
        m.d.comb += [recombine.hi.eq(hi.fields), recombine.lo.eq(lo.fields), self.fields.eq(recombine.fields),
                     self.o_valid.eq(hi.o_valid)]
        return m
