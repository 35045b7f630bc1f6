"""Residual add of two code streams, aligned exactly in integers: ``clip((m0*a + m1*b + round) >> shift, lo, hi)``.

The integer contract (:func:`~mixq_hw.layers.reference.residual_add` is the reference): ``a`` and ``b`` are
codes of the two branches (each unsigned or signed, its own width), ``m0`` and ``m1`` integer multipliers
and ``shift`` >= 0 chosen at export so that ``m0 * step_a / 2**shift`` and ``m1 * step_b / 2**shift``
are the branches' steps in units of the output step; ``round = 2**(shift-1)`` (0 when shift is 0) and
``>>`` is an arithmetic shift, so the result is round-half-up.  The block computes the sum at
:attr:`Residual.sum_bits`, the exact two's-complement width of every value it can take (so nothing wraps),
and clamps to the output code range: ``[0, 2**out_bits - 1]`` (fusing the ReLU after the add) or the
signed range with ``out_signed=True``.  The multipliers are constants, built as shifts and adds of their
canonical signed digits (:func:`csd_digits`), so synthesis spends no DSP48E2 on them (a ``*`` by a constant
maps to DSPs).  :class:`Rescale` is the one-input form (``m1 = 0``): a code stream re-scaled to another step.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ..packing.bits import NEG_SHIFTS
from ._checks import check_int, check_positive, layer_label
from .reference import residual_bounds
from .spec import LayerSpec, SpecComponent

__all__ = ["Residual", "ResidualSpec", "Rescale", "RescaleSpec", "code_range", "csd_digits", "residual_sum_bits", "residual_cycles", "residual_cost"]


def csd_digits(value: int) -> list[tuple[int, int]]:
    """Canonical signed-digit form of ``value``: (shift, +1 or -1) pairs with ``sum(sign << shift) == value``,
    no two digits adjacent, the fewest non-zero digits of any signed-binary form."""
    digits, shift = [], 0
    while value:
        if value & 1:
            digit = 2 - (value & 3)         # +1 if value = 1 (mod 4), -1 if value = 3 (mod 4)
            digits.append((shift, digit))
            value -= digit
        value >>= 1
        shift += 1
    return digits


def _times(value, multiplier: int):
    """``value * multiplier`` as shifts and adds of the multiplier's canonical signed digits."""
    terms = [value.shift_left(shift) if sign > 0 else -value.shift_left(shift) for shift, sign in
             csd_digits(multiplier)]
    if not terms:
        return 0
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _check_neg_shift(neg_shift: object, out_signed: bool, where: str) -> None:
    if neg_shift is None:
        return
    if isinstance(neg_shift, bool) or not isinstance(neg_shift, int) or neg_shift not in NEG_SHIFTS:
        raise ValueError(f"neg_shift (LeakyReLU slope 2**-k) must be an integer {NEG_SHIFTS.start}.."
                         f"{NEG_SHIFTS.stop - 1}, not {neg_shift!r} {where}")
    if not out_signed:
        raise ValueError(f"neg_shift {neg_shift} (LeakyReLU) needs out_signed: unsigned codes clip every "
                         f"negative value to 0 {where}")


def code_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive range of ``bits``-bit codes: two's complement when ``signed``."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def residual_sum_bits(range_a: tuple[int, int], range_b: tuple[int, int], m0: int, m1: int, shift: int) -> int:
    """Signed width that holds ``m0*a + m1*b + round`` exactly over the two code ranges."""
    lo, hi = residual_bounds(range_a, range_b, m0, m1, shift)
    return max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1


def residual_cycles(channels: int, height: int, width: int, lanes: int) -> int:
    """One beat of each input and of the output per cycle: H * W * C / lanes."""
    return height * width * (channels // lanes)


def residual_cost(lanes: int, sum_bits: int, m0: int, m1: int, out_bits: int, *, shift: int = 0,
                  neg_shift: int | None = None) -> Resources:
    """Per lane: one adder of about ``sum_bits`` per signed digit of ``m0`` and ``m1`` beyond the first, at 1.5
    LUTs a bit, and the clamp's select (out_bits + 2); the output register (estimate; calibrated on yosys
    ``synth_xilinx -family xcup``, 4 lanes of 8-bit codes: 690 LUTs at m = (45, 83), 66 at (1, 1), where
    this gives 716 and 104).  With a LeakyReLU (``neg_shift``), per lane its rounding adder and its choice
    between the two slices (``sum_bits - shift + out_bits`` LUTs)."""
    adders = max(0, len(csd_digits(m0)) + len(csd_digits(m1)) - 1)
    per_lane = math.ceil(1.5 * adders * sum_bits) + out_bits + 2
    if neg_shift is not None:
        per_lane += sum_bits - shift + out_bits
    return Resources(lut=lanes * per_lane + 4, ff=lanes * out_bits + 1)


class ResidualSpec(LayerSpec):
    """Adds two (C, H, W) streams ``i0`` (codes ``a``) and ``i1`` (codes ``b``) beat by beat into ``o``.

    Ports: ``i0``: ``ArrayLayout(bits_a, lanes)``, ``i1``: ``ArrayLayout(bits_b, lanes)``, ``o``:
    ``ArrayLayout(out_bits, lanes)`` (each element signed or unsigned as its flag says).  The inputs run in
    lock step (a beat leaves both together); a branch that arrives early waits in a FIFO upstream.
    Throughput one beat per cycle; latency 1 cycle (the output register).  ``neg_shift = k`` (with
    ``out_signed``): LeakyReLU of slope ``2**-k`` before the rounding, a negative sum rounded at
    ``shift + k`` (:func:`~mixq_hw.layers.reference.residual_add`).
    """

    kind = "Residual"

    def __init__(self, channels: int, height: int, width: int, lanes: int, *, bits_a: int, bits_b: int,
                 out_bits: int, m0: int, m1: int, shift: int, signed_a: bool = False, signed_b: bool = False,
                 out_signed: bool = False, neg_shift: int | None = None, name: str = ""):
        where = layer_label(name, self.kind)
        _check_neg_shift(neg_shift, out_signed, where)
        self.neg_shift = neg_shift
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits_a=bits_a,
                       bits_b=bits_b, out_bits=out_bits)
        check_int(where, 0, shift=shift)
        for key, value in (("m0", m0), ("m1", m1)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{key} must be an integer, not {value!r} {where}")
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        self.channels, self.height, self.width, self.lanes, self.name = channels, height, width, lanes, name
        self.m0, self.m1, self.shift = m0, m1, shift
        self.range_a, self.range_b = code_range(bits_a, signed_a), code_range(bits_b, signed_b)
        self.out_range = code_range(out_bits, out_signed)
        self.sum_bits = residual_sum_bits(self.range_a, self.range_b, m0, m1, shift)
        self.bits = (bits_a, bits_b, out_bits)
        self.layouts = [data.ArrayLayout(Shape(b, signed=s), lanes)
                        for b, s in ((bits_a, signed_a), (bits_b, signed_b), (out_bits, out_signed))]
        self.declare_ports({"i0": In(stream.Signature(self.layouts[0])), "i1": In(stream.Signature(self.layouts[1])),
                          "o": Out(stream.Signature(self.layouts[2]))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, self.height, self.width

    def cycles_per_frame(self) -> int:
        """See :func:`residual_cycles`."""
        return residual_cycles(self.channels, self.height, self.width, self.lanes)

    def estimate(self) -> Resources:
        """See :func:`residual_cost`."""
        return residual_cost(self.lanes, self.sum_bits, self.m0, self.m1, self.bits[2], shift=self.shift,
                             neg_shift=self.neg_shift)


class Residual(ResidualSpec, SpecComponent):
    """The hardware of :class:`ResidualSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        a, b, o = self.i0, self.i1, self.o
        fire = a.valid & b.valid & (~o.valid | o.ready)
        m.d.comb += [a.ready.eq(fire), b.ready.eq(fire)]
        result = Signal(self.layouts[2])
        for lane in range(self.lanes):
            total = _times(a.payload[lane], self.m0) + _times(b.payload[lane], self.m1)
            m.d.comb += result[lane].eq(_code(m, lane, total, self.sum_bits, self.shift, self.neg_shift,
                                              self.out_range))
        with m.If(fire):
            m.d.sync += [o.valid.eq(1), o.payload.eq(result)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


def _code(m: Module, lane: int, product, sum_bits: int, shift: int, neg_shift: int | None,
          out_range: tuple[int, int]):
    """The output code of one lane: ``product`` (a sum of multiples of the codes) rounded half up at ``shift``
    (with ``neg_shift``, a negative result at ``shift + neg_shift``), clipped to ``out_range``."""
    rnd = (1 << shift) >> 1
    total = Signal(signed(sum_bits), name=f"sum{lane}")
    scaled = Signal(signed(sum_bits), name=f"scaled{lane}")
    m.d.comb += total.eq(product + rnd)
    if neg_shift is None:
        m.d.comb += scaled.eq(total >> shift)
    else:       # the negative side gains what rounds it at shift + neg_shift instead of shift
        neg_round = (1 << (shift + neg_shift - 1)) - rnd
        m.d.comb += scaled.eq(Mux((total >> shift) < 0, (total + neg_round) >> (shift + neg_shift), total >> shift))
    lo, hi = out_range
    return Mux(scaled < lo, lo, Mux(scaled > hi, hi, scaled))


ResidualSpec.component_class = Residual


class RescaleSpec(LayerSpec):
    """Re-scales one (C, H, W) code stream ``i`` (codes ``x``) into ``o``: ``clip((m*x + round) >> shift)``.

    The one-input form of :class:`ResidualSpec` (``m1 = 0``): the same constant multiply by shifts and adds,
    rounding, optional LeakyReLU (``neg_shift``) and clip.  Ports: ``i``: ``ArrayLayout(bits, lanes)``, ``o``:
    ``ArrayLayout(out_bits, lanes)`` (each signed or unsigned as its flag says).  Throughput one beat per
    cycle; latency 1 cycle (the output register).
    """

    kind = "Rescale"

    def __init__(self, channels: int, height: int, width: int, lanes: int, *, bits: int, out_bits: int, m: int,
                 shift: int, signed_in: bool = False, out_signed: bool = False, neg_shift: int | None = None,
                 name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits,
                       out_bits=out_bits)
        check_int(where, 0, shift=shift)
        if not isinstance(m, int) or isinstance(m, bool):
            raise ValueError(f"m must be an integer, not {m!r} {where}")
        _check_neg_shift(neg_shift, out_signed, where)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        self.channels, self.height, self.width, self.lanes, self.name = channels, height, width, lanes, name
        self.m, self.shift, self.neg_shift = m, shift, neg_shift
        self.in_range, self.out_range = code_range(bits, signed_in), code_range(out_bits, out_signed)
        self.sum_bits = residual_sum_bits(self.in_range, (0, 0), m, 0, shift)
        self.bits = (bits, out_bits)
        self.layouts = [data.ArrayLayout(Shape(b, signed=s), lanes)
                        for b, s in ((bits, signed_in), (out_bits, out_signed))]
        self.declare_ports({"i": In(stream.Signature(self.layouts[0])), "o": Out(stream.Signature(self.layouts[1]))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, self.height, self.width

    def cycles_per_frame(self) -> int:
        """See :func:`residual_cycles`."""
        return residual_cycles(self.channels, self.height, self.width, self.lanes)

    def estimate(self) -> Resources:
        """:func:`residual_cost` with one multiplier (plus the LeakyReLU's rounding adder and select)."""
        return residual_cost(self.lanes, self.sum_bits, self.m, 0, self.bits[1], shift=self.shift,
                             neg_shift=self.neg_shift)


class Rescale(RescaleSpec, SpecComponent):
    """The hardware of :class:`RescaleSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i, self.o
        fire = i.valid & (~o.valid | o.ready)
        m.d.comb += i.ready.eq(fire)
        result = Signal(self.layouts[1])
        for lane in range(self.lanes):
            m.d.comb += result[lane].eq(_code(m, lane, _times(i.payload[lane], self.m), self.sum_bits, self.shift,
                                              self.neg_shift, self.out_range))
        with m.If(fire):
            m.d.sync += [o.valid.eq(1), o.payload.eq(result)]
        with m.Elif(o.ready):
            m.d.sync += o.valid.eq(0)
        return m


RescaleSpec.component_class = Rescale
