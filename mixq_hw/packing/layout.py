"""A packing plan: what one packed DSP48E2 multiply computes, as plain data.

A plan places several signed weights on one multiplier input and several
unsigned activations on the other, so that the 45-bit product (accumulated in
the 48-bit P register) holds several *fields*, each the sum of a few products.
This module defines the plan's data, checks that a layout fits the DSP48E2's
ports, and gives two numpy references that every core is tested against:

- :func:`expected_fields` -- the plain arithmetic a plan promises
  (``sum over multiplies of sum over a field's terms of w * a``);
- :func:`emulate` -- the same result computed the way the hardware does it:
  pack both words, multiply at the DSP48E2's widths, accumulate in 48 bits, add
  the C-port constant, and slice the fields out of P with their correction.

A plan is exact when both agree for every input; the planner only returns such
plans and the tests check it exhaustively where the input space allows.

Conventions (fixed here, used by planner and cores alike):

- weights are signed narrow-range codes ``-(2**(w-1)-1) .. 2**(w-1)-1`` (a
  digit plan may cap them with ``w_max``, or take unsigned codes, ``w_unsigned``);
  activations are unsigned codes ``0 .. 2**a-1``, or with ``signed_act``
  two's-complement codes ``-2**(a-1) .. 2**(a-1)-1`` (after a LeakyReLU or a
  residual add);
- ``weight_port == "AD"``: packed weights go to the 27-bit pre-adder/A input,
  activations to the 18-bit B input; ``"B"``: the other way round;
- the packed weight word is ``sum(w[i] << weight_offsets[i])``; the packed
  activation word is ``sum(a[j] << act_offsets[j])`` (a plain concatenation
  of unsigned codes; with ``signed_act`` a signed word, made like the weight
  word from two concatenations, ``D - A``, and it must fit its signed port);
- ``fields`` are sorted by offset.  Without overlap, field ``f`` owns the P bits
  ``[offset_f, offset_f + width_f)`` and ``offset_{f+1} == offset_f + width_f``
  for every field but the top one; with ``overlap`` the fields share one bit
  (``offset_{f+1} == offset_f + width_f - 1``): the low bit of every field is
  its parity, known in fabric as the XOR of ``w & a & 1`` over its terms, and it
  is removed from P before slicing;
- ``correction == "borrow"``: a field is ``signed(slice) + borrow`` where the
  borrow is the P bit just below the slice; ``"offset"``: the constant
  ``sum(2**(top_f - 1))`` goes in once through the C port, so every slice is
  offset-binary and the field is the slice with its top bit inverted;
  ``"none"`` (only with ``w_unsigned``): every product and field is ``>= 0``,
  so no field borrows from the next and a field is its raw unsigned slice;
- ``w_unsigned``: the weight codes are unsigned ``0 .. weight_max`` (a digit
  of a mixed-rate split, :mod:`.mixed`): the packed word is a plain
  concatenation, every field is non-negative;
- ``act_sign_bit``: the activation word may use the top bit of its ``n``-bit
  port (``n`` = :attr:`Plan.act_port_bits`), which the DSP48E2 reads as a sign.
  A word ``X >= 2**(n-1)`` is multiplied as ``X - 2**n``, so the product is
  short by ``W * 2**n`` (``W`` the signed packed weight word); the C port adds
  ``W << n`` (a 45-bit value) on exactly those multiplies, and P, which wraps
  modulo ``2**48``, then holds the same sum as an unsigned multiplier would.
  Signed activation words (``signed_act``) never use it: they are signed
  values already, whose products are symmetric, ``|w * a| <= max|w| * 2**(a-1)``,
  so their fields need room for about half the unsigned magnitude.

LUT plans (``multiplier == "lut"``, built by :func:`~mixq_hw.packing.lut_layout.lut_plan`): either the same
kernel-packing layout in an ideal multiplier of unbounded width, fields
``signed_bits(depth * max|w| * max a)`` apart, or a ``"dot"`` layout whose
fields each sum one product per input lane.  No DSP48E2 runs them (its ports
and P do not bound them); :class:`~mixq_hw.packing.lut_core.LutMAC` computes
every field directly with shift-and-add products in fabric, so the offsets only
serve :func:`check` and :func:`emulate` is the exact arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .bits import act_codes, act_magnitude, act_range, weight_range
from .dsp_emulation import emulate, emulate_batch, expected_fields
from .explain import explain_layout
from .geometry import DEPTH_LIMIT, DSP48E2_GEOMETRY
from .protocol import Field, PackingPlan, fields_from_list, fields_to_list

__all__ = [
    "AD_BITS", "B_BITS", "P_BITS", "PRODUCT_BITS",
    "Field", "Plan", "weight_range", "act_range", "check", "max_depth", "expected_fields", "emulate",
    "emulate_batch", "MULTIPLIERS", "w_max_limit", "weight_code_max", "field_slice", "field_bound", "slice_fits",
    "check_lut", "lut_layout", "plan_name",
]

#: Multiplier kinds a plan runs on: packed DSP48E2 products, or shift-and-add products in LUTs.
MULTIPLIERS = ("dsp", "lut")

#: Signed width of the pre-adder output and A:D multiplier input of a DSP48E2 (:data:`DSP48E2_GEOMETRY`).
AD_BITS = DSP48E2_GEOMETRY.ad_bits
#: Signed width of the B multiplier input.
B_BITS = DSP48E2_GEOMETRY.b_bits
#: Width of the P register / post-adder (wraps modulo 2**48).
P_BITS = DSP48E2_GEOMETRY.p_bits
#: Width of the multiplier's product.
PRODUCT_BITS = DSP48E2_GEOMETRY.product_bits


def weight_code_max(w_bits: int, unsigned: bool) -> int:
    """Largest weight magnitude of ``w_bits``-bit codes: narrow signed ``2**(w-1)-1``, unsigned ``2**w - 1``."""
    return (1 << w_bits) - 1 if unsigned else weight_range(w_bits)[1]


def w_max_limit(w_bits: int, unsigned: bool = False) -> int:
    """Largest :attr:`Plan.w_max` a ``w_bits``-bit slot holds: ``2**(w-1)`` signed (the two's-complement
    minimum's magnitude), ``2**w - 1`` unsigned."""
    return (1 << w_bits) - 1 if unsigned else 1 << (w_bits - 1)


@dataclass(frozen=True)
class Plan(PackingPlan):
    """A packed-multiply layout for (``w_bits``, ``a_bits``, kernel size ``k``).

    ``kind`` says what the slots mean: ``"kernel"`` -- weight slot ``i`` is
    output channel ``i`` and activation slot ``j`` is output pixel ``j``, every
    field one product; ``"filter"`` -- weight slot ``i`` is tap ``i`` of a kernel
    row, activation slot ``j`` is input pixel ``j`` of a row, a field sums the
    taps that meet at one output pixel (a 1-D convolution per multiply); other
    kinds may be added by the planner, with their meaning in ``note``.

    ``depth`` is how many multiplies may accumulate into P (in time, or over a
    cascade) before the fields must be extracted; ``macs_per_dsp`` is the number
    of useful multiply-accumulates per DSP per cycle, the figure the cost model
    and the density table use.  ``act_sign_bit`` lets the activation word use
    its port's sign bit, corrected through C (see the module docstring).
    ``multiplier``: ``"dsp"`` (a packed DSP48E2) or ``"lut"`` (products in
    fabric, see :func:`~mixq_hw.packing.lut_layout.lut_plan`; ``macs_per_dsp`` is then 0).
    """

    w_bits: int
    a_bits: int
    k: int
    kind: str
    weight_port: Literal["AD", "B"]
    weight_offsets: tuple[int, ...]
    act_offsets: tuple[int, ...]
    fields: tuple[Field, ...]
    overlap: bool
    correction: Literal["borrow", "offset", "none"]
    depth: int
    macs_per_dsp: float
    note: str = ""
    act_sign_bit: bool = False
    multiplier: Literal["dsp", "lut"] = "dsp"
    #: Largest weight magnitude the plan holds: 0 = the whole narrow range ``2**(w_bits-1)-1``; a digit of a
    #: digit-split plan (:mod:`.split`) sets a smaller one, which :func:`check` and :func:`max_depth` then use.
    #: A signed plan may set ``2**(w_bits-1)``: its codes are then the whole two's-complement range
    #: ``-2**(w_bits-1) .. 2**(w_bits-1)-1`` (a ``floor`` high digit), bounded as magnitude ``2**(w_bits-1)``.
    w_max: int = 0
    #: Unsigned weight codes ``0 .. weight_max`` (``weight_max`` up to ``2**w_bits - 1``): every field is then
    #: non-negative and may use ``correction == "none"`` (a raw unsigned slice).
    w_unsigned: bool = False
    #: Signed two's-complement activation codes ``-2**(a_bits-1) .. 2**(a_bits-1)-1`` (``bits.signed_act_range``)
    #: instead of unsigned ones: the activation word is a signed packed word (no ``act_sign_bit``).
    signed_act: bool = False

    @property
    def weight_max(self) -> int:
        """Largest weight magnitude the plan must hold: ``w_max``, or when it is 0 ``2**(w_bits-1)-1``
        (``2**w_bits - 1`` for unsigned weights)."""
        return self.w_max or weight_code_max(self.w_bits, self.w_unsigned)

    @property
    def weight_min(self) -> int:
        """Smallest weight code the plan must hold: ``-weight_max``, or 0 for unsigned weights."""
        return 0 if self.w_unsigned else -self.weight_max

    @property
    def act_min(self) -> int:
        """Smallest activation code the plan holds: 0, or ``-2**(a_bits-1)`` with ``signed_act``."""
        return act_codes(self.a_bits, self.signed_act)[0]

    @property
    def act_max(self) -> int:
        """Largest activation code the plan holds: ``2**a_bits - 1``, or ``2**(a_bits-1) - 1`` with ``signed_act``."""
        return act_codes(self.a_bits, self.signed_act)[1]

    @property
    def n_weights(self) -> int:
        return len(self.weight_offsets)

    @property
    def lanes(self) -> int:
        """Input lanes a field sums over: the terms of a ``"dot"`` plan's field (LUT plans), else 1."""
        return len(self.fields[0].terms) if self.kind == "dot" and self.fields else 1

    @property
    def n_acts(self) -> int:
        return len(self.act_offsets)

    @property
    def weight_port_bits(self) -> int:
        return AD_BITS if self.weight_port == "AD" else B_BITS

    @property
    def act_port_bits(self) -> int:
        return B_BITS if self.weight_port == "AD" else AD_BITS

    @property
    def act_word_limit(self) -> int:
        """Largest activation word the port takes: ``2**(n-1) - 1``, or ``2**n - 1`` with ``act_sign_bit``."""
        n = self.act_port_bits
        return (1 << n) - 1 if self.act_sign_bit else (1 << (n - 1)) - 1

    def sign_correction(self, weight_word: int, act_word: int) -> int:
        """What C adds for one multiply so that a signed DSP48E2 multiplies ``act_word`` as unsigned.

        ``weight_word`` is the signed packed weight word, ``act_word`` the
        unsigned packed activation word; the DSP reads the latter as
        ``act_word - 2**n`` when its top bit is set, so C adds
        ``weight_word << n`` then (0 otherwise, and always 0 without ``act_sign_bit``).
        """
        n = self.act_port_bits
        if self.act_sign_bit and (act_word >> (n - 1)) & 1:
            return weight_word << n
        return 0

    def offset_constant(self) -> int:
        """The C-port constant of ``correction == "offset"``: one half-range bit per field."""
        if self.correction != "offset":
            return 0
        return sum(1 << (field_slice(self, f)[1] - 1) for f in range(len(self.fields)))

    def with_depth(self, depth: int) -> "Plan":
        """The same layout used with a shallower accumulation (e.g. one multiply)."""
        if not 1 <= depth <= self.depth:
            raise ValueError(f"depth {depth} outside 1..{self.depth} for plan w{self.w_bits}a{self.a_bits}k{self.k}")
        return dataclasses.replace(self, depth=depth)

    def to_dict(self) -> dict:
        """JSON-ready form (fields as lists, ``plan_type`` first; ``signed_act`` only when set, so the record of
        an unsigned-activation plan reads as before the flag existed)."""
        d = {"plan_type": self.plan_type, **dataclasses.asdict(self)}
        d["fields"] = fields_to_list(self.fields)
        if not self.signed_act:
            del d["signed_act"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        """The plan of a :meth:`to_dict` (checked)."""
        try:
            kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
            kw["fields"] = fields_from_list(d["fields"])
            kw["weight_offsets"] = tuple(d["weight_offsets"])
            kw["act_offsets"] = tuple(d["act_offsets"])
            p = cls(**kw)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"bad layout plan record: {err!r}") from err
        p.check()
        return p

    # -- the PackingPlan contract ------------------------------------------------------------------

    @property
    def plan_type(self) -> str:
        return "lut" if self.multiplier == "lut" else "layout"

    @property
    def name(self) -> str:
        return plan_name(self)

    @property
    def dsps(self) -> int:
        """1 (one packed DSP48E2 multiply), 0 for a LUT plan."""
        return 1 if self.multiplier == "dsp" else 0

    def check(self) -> None:
        check(self)

    def expected_fields(self, weights: Any, acts: Any) -> np.ndarray:
        return expected_fields(self, weights, acts)

    def emulate(self, weights: Any, acts: Any) -> list[int]:
        return emulate(self, weights, acts)

    def emulate_batch(self, weights: Any, acts: Any, *, repeat: int = 1) -> np.ndarray:
        return emulate_batch(self, weights, acts, repeat=repeat)

    def make_core(self, depth: int) -> Any:
        """:class:`~mixq_hw.packing.cores.PackedMAC` (a DSP plan) or :class:`~mixq_hw.packing.lut_core.LutMAC`."""
        from .lut_core import make_core     # Amaranth cores load only when a core is built (the cost model
        return make_core(self, depth)       # and the planner import this module without Amaranth)

    def fabric_cost(self, depth: int) -> tuple[int, int]:
        """:func:`~mixq_hw.packing.cores.packed_core_cost` (DSP) or
        :func:`~mixq_hw.packing.lut_core.lut_core_estimate` (LUT, ``depth`` deep)."""
        if self.multiplier == "lut":
            from .lut_core import lut_core_estimate
            return lut_core_estimate(self, depth)
        from .cores import packed_core_cost
        return packed_core_cost(self, depth=depth)

    def explain(self) -> str:
        return explain_layout(self)

    def field_slice(self, f: int) -> tuple[int, int]:
        """P bit range ``[lo, hi)`` that field ``f`` is sliced from (after parity removal)."""
        return field_slice(self, f)


def plan_name(plan: Plan) -> str:
    """``plan w4a4k3`` (``plan w4a4k3 signed-act`` for signed activations): how messages name a layout."""
    return f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k}" + (" signed-act" if plan.signed_act else "")


def field_slice(plan: Plan, f: int) -> tuple[int, int]:
    """P bit range ``[lo, hi)`` that field ``f`` is sliced from (after parity removal)."""
    fld = plan.fields[f]
    lo = fld.offset + (1 if plan.overlap else 0)
    hi = fld.offset + fld.width
    return lo, hi


def field_bound(plan: Plan, f: int, depth: int) -> int:
    """Largest magnitude field ``f`` can reach after ``depth`` multiplies."""
    return depth * len(plan.fields[f].terms) * plan.weight_max * act_magnitude(plan.a_bits, plan.signed_act)


def slice_fits(plan: Plan, f: int, depth: int) -> bool:
    """Whether field ``f``'s slice of P represents every value after ``depth`` multiplies.

    The slice holds the field (its upper bits ``(v - parity) / 2`` with
    overlap).  Borrow correction reads ``slice = g - borrow``, so ``g - 1``
    must fit too; offset correction reads ``g + 2**(s-1)`` with no borrow.
    """
    bound = field_bound(plan, f, depth)
    lo, hi = field_slice(plan, f)
    s = hi - lo
    if s < 1:
        return False            # an empty slice holds nothing (check() names it; max_depth says 0)
    g_min, g_max = (-((bound + 1) // 2), bound // 2) if plan.overlap else (-bound, bound)
    if plan.correction == "none":
        g_min, g_max = 0, (bound // 2 if plan.overlap else bound)
        return g_max <= (1 << s) - 1            # a raw unsigned slice
    if plan.correction == "borrow":
        g_min -= 1
    return -(1 << (s - 1)) <= g_min and g_max <= (1 << (s - 1)) - 1


def max_depth(plan: Plan, limit: int = DEPTH_LIMIT) -> int:
    """The deepest accumulation every field of this layout holds (0 if not even one multiply)."""
    if not plan.fields:
        return 0
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if all(slice_fits(plan, f, mid) for f in range(len(plan.fields))):
            lo = mid
        else:
            hi = mid - 1
    return lo


def check(plan: Plan) -> None:
    """Raise ``ValueError`` if the layout does not fit the DSP48E2 or a field can overflow.

    Checks port widths (signed weight word, unsigned activation word that
    uses the port's sign bit only with ``act_sign_bit``, and then must), field
    adjacency, that every field holds ``depth`` accumulated multiplies, that
    every product of the two words lands in exactly one listed field (or above
    the top field, where it cannot disturb them), and that P does not wrap
    under a listed field.
    """
    name = plan_name(plan)
    if plan.multiplier not in MULTIPLIERS:
        raise ValueError(f"{name}: multiplier {plan.multiplier!r} is not one of {MULTIPLIERS}")
    if plan.multiplier == "lut":
        check_lut(plan, name)
        return
    limit = w_max_limit(plan.w_bits, plan.w_unsigned)
    if not isinstance(plan.w_max, int) or not 0 <= plan.w_max <= limit:
        raise ValueError(f"{name}: w_max {plan.w_max!r} outside 0..{limit} "
                         f"(0 = every {'unsigned' if plan.w_unsigned else 'narrow signed'} {plan.w_bits}-bit code)")
    if plan.correction not in ("borrow", "offset", "none"):
        raise ValueError(f"{name}: correction {plan.correction!r} is not borrow, offset or none")
    if plan.correction == "none" and (not plan.w_unsigned or plan.signed_act):
        raise ValueError(f"{name}: correction 'none' (raw unsigned slices) needs unsigned weights (w_unsigned) and "
                         f"unsigned activations: signed products make negative fields that borrow from the next")
    if plan.signed_act and plan.act_sign_bit:
        raise ValueError(f"{name}: act_sign_bit corrects an unsigned activation word read as signed; a signed "
                         f"activation word (signed_act) must fit its signed port")
    lo_w, hi_w = plan.weight_min, plan.weight_max
    lo_a, hi_a = plan.act_min, plan.act_max
    # Weight word: signed, must fit the port for every code combination.
    wmax = sum(hi_w << o for o in plan.weight_offsets)
    wmin = sum(lo_w << o for o in plan.weight_offsets)
    pw = plan.weight_port_bits
    if wmax > (1 << (pw - 1)) - 1 or wmin < -(1 << (pw - 1)):
        raise ValueError(f"{name}: packed weights span [{wmin}, {wmax}], over the {pw}-bit signed port")
    # Activation word: unsigned on a signed port, so the sign bit stays clear -- unless the plan
    # corrects the signed reading of that bit through C (act_sign_bit).
    amax = sum(hi_a << o for o in plan.act_offsets)
    pa = plan.act_port_bits
    amin = sum(lo_a << o for o in plan.act_offsets)
    if plan.signed_act and (amin < -(1 << (pa - 1)) or amax > (1 << (pa - 1)) - 1):
        raise ValueError(f"{name}: packed signed activations span [{amin}, {amax}], over the {pa}-bit signed port")
    if amax > plan.act_word_limit:
        if plan.act_sign_bit:
            raise ValueError(f"{name}: packed activations reach {amax}, over the {pa}-bit port "
                             f"even with its sign bit (act_sign_bit)")
        raise ValueError(f"{name}: packed activations reach {amax}, over the {pa}-bit signed port "
                         f"(set act_sign_bit to use its sign bit with a C-port correction)")
    if plan.act_sign_bit and amax < 1 << (pa - 1):
        raise ValueError(f"{name}: act_sign_bit set, but the packed activations (at most {amax}) never "
                         f"reach the {pa}-bit port's sign bit; the C-port correction would be dead logic")
    occupied = sorted(plan.act_offsets)
    for x, y in zip(occupied, occupied[1:]):
        if y - x < plan.a_bits:
            raise ValueError(f"{name}: activation slots at {x} and {y} overlap")
    if plan.depth < 1:
        raise ValueError(f"{name}: depth {plan.depth} < 1")
    # Fields: sorted, abutting (or overlapping by one bit), wide enough, inside P.
    step = 1 if plan.overlap else 0
    for f, fld in enumerate(plan.fields):
        lo, hi = field_slice(plan, f)
        if hi > P_BITS or lo >= hi:
            raise ValueError(f"{name}: field {f} at bits [{lo}, {hi}) is outside P")
        if f + 1 < len(plan.fields):
            nxt = plan.fields[f + 1].offset
            if nxt != fld.offset + fld.width - step:
                raise ValueError(f"{name}: field {f + 1} at {nxt} does not follow field {f} "
                                 f"(offset {fld.offset}, width {fld.width}, overlap {plan.overlap})")
        if not slice_fits(plan, f, plan.depth):
            raise ValueError(f"{name}: field {f} may reach +-{field_bound(plan, f, plan.depth)} after "
                             f"{plan.depth} multiplies, over its {fld.width}-bit width "
                             f"({plan.correction} correction, overlap {plan.overlap})")
    # Every product lands where the plan says.
    where: dict[tuple[int, int], int] = {}
    for f, fld in enumerate(plan.fields):
        for t in fld.terms:
            if t in where:
                raise ValueError(f"{name}: term {t} listed in fields {where[t]} and {f}")
            where[t] = f
    top_end = field_slice(plan, len(plan.fields) - 1)[1] if plan.fields else 0
    for i, ow in enumerate(plan.weight_offsets):
        for j, oa in enumerate(plan.act_offsets):
            pos = ow + oa
            hit = where.get((i, j))
            if hit is None:
                if pos < top_end:
                    raise ValueError(f"{name}: product (w{i}, a{j}) at bit {pos} lands in no listed field")
            elif plan.fields[hit].offset != pos:
                raise ValueError(f"{name}: product (w{i}, a{j}) lands at bit {pos}, "
                                 f"not at field {hit}'s offset {plan.fields[hit].offset}")


# -- LUT plans (lut_layout.lut_plan builds them) -------------------------------------------------

def check_lut(plan: Plan, name: str) -> None:
    """:func:`~mixq_hw.packing.layout.check` for a LUT plan: :func:`lut_plan`'s layout, every field holding
    ``depth`` multiplies; ``name`` prefixes the messages."""
    if plan.kind not in ("kernel", "dot") or plan.overlap or plan.act_sign_bit or plan.correction != "borrow":
        raise ValueError(f"{name}: a LUT plan is a kernel or dot layout without overlap, sign bit or offset "
                         f"correction (got kind {plan.kind!r}, overlap {plan.overlap}, act_sign_bit "
                         f"{plan.act_sign_bit}, correction {plan.correction!r})")
    if plan.n_weights < 1 or plan.n_acts < 1 or plan.depth < 1 or not plan.fields:
        raise ValueError(f"{name}: a LUT plan needs weight and act slots, fields and depth >= 1, got "
                         f"{plan.n_weights} x {plan.n_acts}, {len(plan.fields)} fields, depth {plan.depth}")
    lanes, width = plan.lanes, plan.fields[0].width
    if plan.n_weights % lanes or plan.n_acts % lanes or (plan.kind == "dot") != (lanes > 1):
        raise ValueError(f"{name}: {plan.n_weights} x {plan.n_acts} slots are not {lanes} lanes of a "
                         f"{plan.kind} layout")
    want = lut_layout(plan.n_weights // lanes, plan.n_acts // lanes, lanes, width)
    if (plan.weight_offsets, plan.act_offsets, plan.fields) != want:
        raise ValueError(f"{name}: not lut_plan's layout of {plan.n_weights // lanes} x {plan.n_acts // lanes} "
                         f"fields over {lanes} lane(s), {width} bits each")
    if not slice_fits(plan, 0, plan.depth):
        raise ValueError(f"{name}: LUT fields of {width} bits cannot hold +-{field_bound(plan, 0, plan.depth)} "
                         f"after {plan.depth} multiplies")


def lut_layout(n_w: int, n_a: int, lanes: int, width: int) -> tuple:
    """(weight offsets, act offsets, fields) of a LUT plan with fields ``width`` bits apart.

    One lane: the kernel layout in an unbounded multiplier (weight ``i`` at ``i * n_a * width``, act ``j``
    at ``j * width``, so every product lands in its field).  Several lanes (a dot layout): weight slot
    ``i * lanes + l`` and act slot ``j * lanes + l`` meet in field ``i * n_a + j``; the offsets only
    number the slots (``slot * width``), no single multiplier word holds this layout.
    """
    fields = tuple(Field(offset=(i * n_a + j) * width, width=width,
                         terms=tuple((i * lanes + lane, j * lanes + lane) for lane in range(lanes)))
                   for i in range(n_w) for j in range(n_a))
    if lanes == 1:
        return tuple(i * n_a * width for i in range(n_w)), tuple(j * width for j in range(n_a)), fields
    return (tuple(s * width for s in range(n_w * lanes)), tuple(s * width for s in range(n_a * lanes)), fields)
