"""Mixed-rate weight digit splits: a signed high digit on ``copies`` DSP48E2s, an unsigned low digit on one.

A :class:`~mixq_hw.packing.split.SplitPlan` runs both digits of the weight
through one layout.  Cutting a weight with ``floor`` at ``shift`` instead gives
digits of different kinds::

    hi = w >> shift        signed, -2**(w-1-shift) .. 2**(w-1-shift) - 1  (a full (w-shift)-bit code)
    lo = w & (2**shift-1)  unsigned, 0 .. 2**shift - 1

Both are bit slices of the weight code (no logic).  The unsigned low digit
times the unsigned activations makes only non-negative fields: no sign room,
no borrow or offset, a raw slice (``Plan.w_unsigned``, ``correction="none"``),
so its layout packs much denser than a signed digit's.  A
:class:`MixedSplitPlan` runs the low digit's layout (``lo``, all ``n_acts``
activation slots, one DSP48E2) next to ``copies`` DSP48E2s running the high
digit's layout (``hi``) on consecutive groups of ``hi.n_acts`` activation
slots; every multiply takes the same weights on all of them.  Copy ``c``'s term
``(i, j)`` is the low layout's term ``(i, j + c * hi.n_acts)``; every field of
the low layout is the sum of the high copies' fields whose terms it holds (a
filter layout's partial end fields of neighbouring copies add, as neighbouring
pixel groups' do in a conv engine) -- :attr:`MixedSplitPlan.combine` -- and
recombined in fabric as::

    field = (sum of its high copies' fields << shift) + low field

so ``macs_per_dsp`` is the low layout's MACs per multiply over ``copies + 1``
DSPs.  w8a2 3x3: ``hi`` is a 5-bit w5a2 filter layout of 3 taps x 3 pixels
(magnitude 16: ``-127 >> 3 == -16``), ``lo`` a 3-bit unsigned filter layout of
3 taps x 6 pixels (fields 0..63 in 5-bit strides with the parity overlap);
18 MACs on 3 DSP48E2s = 6 per DSP.

References (numpy), as for a Plan: :func:`expected_fields` (the unsplit
arithmetic), :func:`emulate_batch` / :func:`emulate` (each digit through its
plan's DSP48E2 emulation, the copies combined, then recombined), :func:`digits`.
:class:`MixedSplitMAC` is the core with :class:`~mixq_hw.packing.cores.PackedMAC`'s
ports, signature and latency.  :func:`mixed_split_plans` is the search;
:meth:`~mixq_hw.packing.planner.Planner.splits` includes it with ``mixed=True``
(as :func:`~mixq_hw.packing.planner.best_plan` asks; the conv engine does not).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
from amaranth import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bits import act_magnitude
from .cores import PackedMAC
from .layout import P_BITS, Field, Plan, check, max_depth, w_max_limit, weight_range
from .layout import emulate as layout_emulate
from .layout import emulate_batch as layout_emulate_batch
from .layout import expected_fields as layout_expected_fields
from .explain import explain_mixed
from .geometry import DEPTH_LIMIT
from .protocol import FunctionPlan, PlanFunctions, fields_from_list, fields_to_list
from .search import DEFAULT_SEARCH, DEPTH_ENOUGH, LayoutSearch
from .split import checked_codes
from .split_core import MultiCoreMAC

__all__ = ["MixedSplitPlan", "mixed_digits", "combination", "make_mixed", "check_mixed", "digits",
           "expected_fields", "emulate", "emulate_batch", "mixed_split_plans", "MixedSplitMAC", "MixedRecombine"]

#: Fabric cost rank next to split._COST: after every same-layout split of equal density (more DSPs, more adders).
COST = 4


def mixed_digits(codes, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight codes as ``(hi, lo)`` with ``hi = w >> shift`` (signed) and ``lo = w & (2**shift - 1)`` (unsigned)."""
    c = np.asarray(codes, dtype=np.int64)
    return c >> shift, c & ((1 << shift) - 1)


@dataclass(frozen=True)
class MixedSplitPlan(FunctionPlan):
    """A weight split into a signed high digit (``hi`` layout on ``copies`` DSP48E2s) and an unsigned low digit
    (``lo`` layout on one), recombined per field as ``(sum of combine[f]'s hi fields << shift) + lo field f``.

    ``fields``: the low layout's fields (terms over all ``n_acts`` activation
    slots) with widths that hold the recombined sums after ``depth``
    multiplies; ``combine[f]``: the ``(copy, hi field)`` pairs whose terms make
    up field ``f``.
    """

    w_bits: int
    a_bits: int
    k: int
    shift: int
    hi: Plan
    lo: Plan
    copies: int
    depth: int
    fields: tuple[Field, ...]
    combine: tuple[tuple[tuple[int, int], ...], ...]
    macs_per_dsp: float
    note: str = ""

    #: The split operand and how its digits are cut (SplitPlan's attributes, for tables and ranking).
    operand: ClassVar[str] = "weight"
    rounding: ClassVar[str] = "floor"
    #: The digit multiplies run on packed DSP48E2s.
    multiplier: ClassVar[str] = "dsp"  # type: ignore[misc]  # a fixed figure of this plan kind
    #: The full weight codes are signed (mac_signature reads this).
    w_unsigned: ClassVar[bool] = False  # type: ignore[misc]  # a fixed figure of this plan kind

    @property
    def name(self) -> str:
        return (f"mixed split plan w{self.w_bits}a{self.a_bits}k{self.k}{' signed-act' if self.signed_act else ''} "
                f"(weight digits at shift {self.shift})")

    @property
    def signed_act(self) -> bool:
        """Signed activation codes (both digit plans')."""
        return self.lo.signed_act

    @property
    def dsps(self) -> int:
        """DSP48E2s of one core: ``copies`` for the high digit, one for the low digit."""
        return self.copies + 1

    @property
    def kind(self) -> str:  # type: ignore[override]  # read-only here: the digit layouts' kind
        return self.lo.kind

    @property
    def n_weights(self) -> int:
        return self.lo.n_weights

    @property
    def n_acts(self) -> int:
        return self.lo.n_acts

    @property
    def weight_port(self) -> str:
        return self.lo.weight_port

    @property
    def overlap(self) -> bool:
        return self.lo.overlap

    @property
    def correction(self) -> str:
        return self.lo.correction

    @property
    def act_sign_bit(self) -> bool:
        return self.hi.act_sign_bit or self.lo.act_sign_bit

    @property
    def digit_bits(self) -> int:
        """Bits of the high digit's codes (the low digit has ``shift`` unsigned bits)."""
        return self.hi.w_bits

    def with_depth(self, depth: int) -> "MixedSplitPlan":
        """The same split with a shallower accumulation (narrower recombined fields)."""
        if not 1 <= depth <= self.depth:
            raise ValueError(f"{self.name}: depth {depth} outside 1..{self.depth}")
        return dataclasses.replace(self, depth=depth, fields=_recombined(self.lo, self.w_bits, self.a_bits, depth))

    def to_dict(self) -> dict:
        """JSON-ready form (digit plans nested, fields as lists, ``plan_type`` first)."""
        return {"plan_type": self.plan_type, "w_bits": self.w_bits, "a_bits": self.a_bits, "k": self.k,
                "operand": self.operand, "shift": self.shift, "rounding": self.rounding, "copies": self.copies,
                "depth": self.depth, "dsps": self.dsps, "macs_per_dsp": self.macs_per_dsp, "kind": self.kind,
                "note": self.note, "fields": fields_to_list(self.fields),
                "combine": [[list(pair) for pair in pairs] for pairs in self.combine],
                "hi": self.hi.to_dict(), "lo": self.lo.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "MixedSplitPlan":
        """The mixed split of a :meth:`to_dict` (checked)."""
        try:
            combine = tuple(tuple((int(c), int(g)) for c, g in pairs) for pairs in d["combine"])
            plan = cls(int(d["w_bits"]), int(d["a_bits"]), int(d["k"]), int(d["shift"]), Plan.from_dict(d["hi"]),
                       Plan.from_dict(d["lo"]), int(d["copies"]), int(d["depth"]), fields_from_list(d["fields"]),
                       combine, float(d["macs_per_dsp"]), d.get("note", ""))
        except (KeyError, TypeError) as err:
            raise ValueError(f"bad mixed split plan record: {err!r}") from err
        check_mixed(plan)
        return plan

    # -- the PackingPlan contract ------------------------------------------------------------------

    plan_type: ClassVar[str] = "mixed"

    def make_core(self, depth: int) -> "MixedSplitMAC":
        return MixedSplitMAC(self, depth=depth)

    def fabric_cost(self, depth: int) -> tuple[int, int]:
        """The ``copies`` high-digit cores, the low-digit core and one recombination adder per field (the
        sum of its high copy fields, shifted, plus the low field), counted as for a digit split; not
        calibrated against synthesis (the conv engine does not build mixed splits)."""
        hi_lut, hi_ff = self.hi.fabric_cost(depth)
        lo_lut, lo_ff = self.lo.fabric_cost(depth)
        adders = sum(max(0, f.width - self.shift) * len(pairs) for f, pairs in zip(self.fields, self.combine))
        return self.copies * hi_lut + lo_lut + adders, self.copies * hi_ff + lo_ff

    def explain(self) -> str:
        return explain_mixed(self)

    def core_names(self) -> tuple[str, ...]:
        return tuple(f"hi{c}" for c in range(self.copies)) + ("lo",)

    def split_figures(self) -> dict:
        return {"split": self.operand, "dsps": self.dsps, "mixed": True, "copies": self.copies,
                "shift": self.shift, "rounding": self.rounding, "digit_bits": self.digit_bits}


def _bound(w_bits: int, a_bits: int, terms: int, depth: int, signed_act: bool = False) -> int:
    return depth * terms * weight_range(w_bits)[1] * act_magnitude(a_bits, signed_act)


def _recombined(lo: Plan, w_bits: int, a_bits: int, depth: int) -> tuple[Field, ...]:
    return tuple(Field(f.offset, _bound(w_bits, a_bits, len(f.terms), depth, lo.signed_act).bit_length() + 1,
                       f.terms)
                 for f in lo.fields)


def combination(hi: Plan, lo: Plan, copies: int) -> tuple[tuple[tuple[int, int], ...], ...] | None:
    """Per field of ``lo``, the ``(copy, hi field)`` pairs that sum to it, or None if ``copies`` copies of ``hi`` on
    consecutive activation groups do not make up exactly ``lo``'s fields (same weight slots, every term once)."""
    if hi.kind != lo.kind or hi.n_weights != lo.n_weights or copies < 1 or hi.n_acts * copies != lo.n_acts:
        return None
    owner = {t: f for f, fld in enumerate(lo.fields) for t in fld.terms}
    pairs: list[list[tuple[int, int]]] = [[] for _ in lo.fields]
    covered: list[set] = [set() for _ in lo.fields]
    for c in range(copies):
        for g, fld in enumerate(hi.fields):
            mapped = {(i, j + c * hi.n_acts) for i, j in fld.terms}
            targets = {owner.get(t) for t in mapped}
            if len(targets) != 1 or None in targets:
                return None
            f = targets.pop()
            assert f is not None
            pairs[f].append((c, g))
            covered[f] |= mapped
    if any(cov != set(fld.terms) for cov, fld in zip(covered, lo.fields)):
        return None
    return tuple(tuple(p) for p in pairs)


def make_mixed(w_bits: int, a_bits: int, k: int, shift: int, hi: Plan, lo: Plan, *,
               depth: int | None = None) -> MixedSplitPlan:
    """The mixed split of ``w_bits`` weights at ``shift`` on digit layouts ``hi`` and ``lo`` (checked).

    ``hi``: a signed ``w_bits - shift``-bit layout whose ``w_max`` is re-set to the high digits' magnitude;
    ``lo``: an unsigned ``shift``-bit layout (``w_unsigned``); ``copies`` follows from their activation slots.
    ``depth`` defaults to the deepest all allow.
    """
    name = f"mixed split plan w{w_bits}a{a_bits}k{k}"
    if not isinstance(shift, int) or not 1 <= shift <= w_bits - 2:
        raise ValueError(f"{name}: shift {shift!r} outside 1..{w_bits - 2} (the high digit needs 2 bits or more)")
    if hi.n_acts < 1 or lo.n_acts % hi.n_acts:
        raise ValueError(f"{name}: the low layout's {lo.n_acts} activation slots are no multiple of the high "
                         f"layout's {hi.n_acts}")
    copies = lo.n_acts // hi.n_acts
    hi = dataclasses.replace(hi, w_max=w_max_limit(w_bits - shift), depth=1)
    hi = dataclasses.replace(hi, depth=max(max_depth(hi, DEPTH_LIMIT), 1))
    lo = dataclasses.replace(lo, depth=max(max_depth(lo, DEPTH_LIMIT), 1))
    combine = combination(hi, lo, copies) or ()
    if depth is None:
        per_multiply = _bound(w_bits, a_bits, max(len(f.terms) for f in lo.fields), 1, lo.signed_act)
        depth = min(hi.depth, lo.depth, ((1 << (P_BITS - 1)) - 1) // per_multiply)
    plan = MixedSplitPlan(w_bits, a_bits, k, shift, hi, lo, copies, depth,
                          _recombined(lo, w_bits, a_bits, depth), combine, lo.macs_per_dsp / (copies + 1),
                          _note(w_bits, a_bits, shift, hi, lo, copies))
    check_mixed(plan)
    return plan


def _note(w_bits: int, a_bits: int, shift: int, hi: Plan, lo: Plan, copies: int) -> str:
    (h0, h1), (l0, l1) = ((int(x.min()), int(x.max())) for x in mixed_digits(np.arange(*_span(w_bits)), shift))
    return (f"mixed-rate weight digit split: hi = w >> {shift} in [{h0}, {h1}] (signed {hi.w_bits}-bit slices) on "
            f"{copies} DSP48E2s running w{hi.w_bits}a{a_bits} {hi.kind} layouts of {hi.n_acts} activation slots "
            f"each, lo = w & {(1 << shift) - 1} in [{l0}, {l1}] (unsigned {shift}-bit slices) on one DSP48E2 running "
            f"an unsigned-weight {lo.kind} layout of all {lo.n_acts} slots (raw field slices, no correction); "
            f"neighbouring hi copies' fields that share a field add, then every field is (hi << {shift}) + lo; "
            f"{lo.macs_per_dsp:g} MACs per multiply over {copies + 1} DSPs")


def _span(w_bits: int) -> tuple[int, int]:
    lo, hi = weight_range(w_bits)
    return lo, hi + 1


def check_mixed(plan: MixedSplitPlan) -> None:
    """Raise ``ValueError`` unless the digit plans are checked layouts that hold every digit of every code at
    ``depth``, the high copies make up exactly the low layout's fields, and the recombined fields hold the sums."""
    name = plan.name
    if not isinstance(plan.shift, int) or not 1 <= plan.shift <= plan.w_bits - 2:
        raise ValueError(f"{name}: shift {plan.shift!r} outside 1..{plan.w_bits - 2}")
    for digit, p in (("hi", plan.hi), ("lo", plan.lo)):
        try:
            check(p)
        except ValueError as err:
            raise ValueError(f"{name}: {digit} digit plan: {err}") from err
        if p.k != plan.k or p.multiplier != "dsp" or p.a_bits != plan.a_bits:
            raise ValueError(f"{name}: {digit} digit plan is for a{p.a_bits} k={p.k} on {p.multiplier!r}, not "
                             f"a{plan.a_bits} k={plan.k} on dsp")
    (h0, h1), (l0, l1) = ((int(x.min()), int(x.max())) for x in mixed_digits(np.arange(*_span(plan.w_bits)),
                                                                              plan.shift))
    hi, lo = plan.hi, plan.lo
    if hi.signed_act != lo.signed_act:
        raise ValueError(f"{name}: the hi digit plan takes {'signed' if hi.signed_act else 'unsigned'} activations, "
                         f"the lo one {'signed' if lo.signed_act else 'unsigned'}")
    if hi.w_unsigned or hi.w_bits != plan.w_bits - plan.shift or max(-h0, h1) > hi.weight_max:
        raise ValueError(f"{name}: hi digits span [{h0}, {h1}] ({plan.w_bits - plan.shift}-bit signed codes), "
                         f"outside the hi digit plan's w{hi.w_bits} codes of magnitude {hi.weight_max}"
                         f"{' (unsigned)' if hi.w_unsigned else ''}")
    if not lo.w_unsigned or lo.w_bits != plan.shift or l1 > lo.weight_max:
        raise ValueError(f"{name}: lo digits span [{l0}, {l1}] (unsigned {plan.shift}-bit codes), outside the lo "
                         f"digit plan's {'unsigned' if lo.w_unsigned else 'signed'} w{lo.w_bits} codes up to "
                         f"{lo.weight_max}")
    if not isinstance(plan.copies, int) or plan.copies < 1 or plan.copies * hi.n_acts != lo.n_acts:
        raise ValueError(f"{name}: {plan.copies!r} copies of {hi.n_acts} hi activation slots do not cover the lo "
                         f"layout's {lo.n_acts}")
    want = combination(hi, lo, plan.copies)
    if want is None:
        raise ValueError(f"{name}: {plan.copies} copies of the hi layout ({hi.kind}, {hi.n_weights} weights x "
                         f"{hi.n_acts} acts) do not make up the lo layout's fields ({lo.kind}, {lo.n_weights} x "
                         f"{lo.n_acts})")
    if plan.combine != want:
        raise ValueError(f"{name}: combine {plan.combine} is not the hi copies' fields per lo field {want}")
    if not isinstance(plan.depth, int) or not 1 <= plan.depth <= min(hi.depth, lo.depth):
        raise ValueError(f"{name}: depth {plan.depth!r} outside 1..{min(hi.depth, lo.depth)} (the digit plans' "
                         f"depths)")
    if len(plan.fields) != len(lo.fields):
        raise ValueError(f"{name}: {len(plan.fields)} fields, the lo layout has {len(lo.fields)}")
    for f, (fld, lo_fld) in enumerate(zip(plan.fields, lo.fields)):
        bound = _bound(plan.w_bits, plan.a_bits, len(fld.terms), plan.depth, plan.signed_act)
        if fld.terms != lo_fld.terms:
            raise ValueError(f"{name}: field {f} terms {fld.terms} differ from the lo layout's {lo_fld.terms}")
        if not bound < 1 << (fld.width - 1) or fld.width > P_BITS:
            raise ValueError(f"{name}: recombined field {f} ({fld.width} bits) must hold +-{bound} after "
                             f"{plan.depth} multiplies within {P_BITS} bits")
    if plan.macs_per_dsp != lo.macs_per_dsp / plan.dsps:
        raise ValueError(f"{name}: macs_per_dsp {plan.macs_per_dsp} != {lo.macs_per_dsp} / {plan.dsps}")


def digits(plan: MixedSplitPlan, weights, acts) -> tuple[list[tuple[np.ndarray, np.ndarray]],
                                                          tuple[np.ndarray, np.ndarray]]:
    """``([(hi weights, copy c's acts) per copy], (lo weights, acts))``: what each DSP48E2 multiplies."""
    w, a = checked_codes(plan, weights, acts)
    w_hi, w_lo = mixed_digits(w, plan.shift)
    n = plan.hi.n_acts
    return [(w_hi, a[..., c * n:(c + 1) * n]) for c in range(plan.copies)], (w_lo, a)


def expected_fields(plan: MixedSplitPlan, weights, acts) -> np.ndarray:
    """The arithmetic a mixed split promises: the unsplit sums of its fields' terms (as for a Plan)."""
    w, a = checked_codes(plan, weights, acts)
    return layout_expected_fields(plan, w, a)      # reads only the fields' terms


def _combined(plan: MixedSplitPlan, hi_fields: Sequence, lo_fields):
    """``(sum of each field's hi copy fields << shift) + lo field``, for numpy arrays or Python lists."""
    out = []
    for f, pairs in enumerate(plan.combine):
        h = sum(hi_fields[c][..., g] if isinstance(hi_fields[c], np.ndarray) else hi_fields[c][g] for c, g in pairs)
        low = lo_fields[..., f] if isinstance(lo_fields, np.ndarray) else lo_fields[f]
        out.append((h << plan.shift) + low)
    return out


def emulate_batch(plan: MixedSplitPlan, weights, acts, *, repeat: int = 1) -> np.ndarray:
    """Each digit through its plan's DSP48E2 emulation (``layout.emulate_batch``), copies combined, recombined."""
    his, (w_lo, a_lo) = digits(plan, weights, acts)
    if not 1 <= w_lo.shape[-2] * repeat <= plan.depth or repeat < 1:
        raise ValueError(f"{plan.name}: need 1..{plan.depth} multiplies, got {w_lo.shape[-2]} rows x "
                         f"repeat {repeat}")
    hi = [layout_emulate_batch(plan.hi, w, a, repeat=repeat) for w, a in his]
    lo = layout_emulate_batch(plan.lo, w_lo, a_lo, repeat=repeat)
    return np.stack(_combined(plan, hi, lo), axis=-1)


def emulate(plan: MixedSplitPlan, weights: Sequence[Sequence[int]], acts: Sequence[Sequence[int]]) -> list[int]:
    """:func:`emulate_batch` for one accumulation in Python integers (``layout.emulate`` per DSP48E2)."""
    if not 1 <= len(weights) == len(acts) <= plan.depth:
        raise ValueError(f"{plan.name}: need 1..{plan.depth} multiplies, got {len(weights)} weight and "
                         f"{len(acts)} act rows")
    his, (w_lo, a_lo) = digits(plan, weights, acts)
    hi = [layout_emulate(plan.hi, w.tolist(), a.tolist()) for w, a in his]
    lo = layout_emulate(plan.lo, w_lo.tolist(), a_lo.tolist())
    return [int(v) for v in _combined(plan, hi, lo)]


MixedSplitPlan.functions = PlanFunctions(check_mixed, expected_fields, emulate, emulate_batch)


# -- the search ------------------------------------------------------------------------------------

def rank(plan: MixedSplitPlan) -> tuple:
    """:func:`~mixq_hw.packing.split.split_rank`'s order: MACs per DSP, no sign-bit correction, depth, fabric,
    fewer fields, smaller shift."""
    return (plan.macs_per_dsp, not plan.act_sign_bit, min(plan.depth, DEPTH_ENOUGH), -COST, -len(plan.fields),
            -plan.shift)


def mixed_split_plans(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
                      max_acts: int | None = None, min_depth: int = 1,
                      search: LayoutSearch = DEFAULT_SEARCH, signed_act: bool = False) -> list[MixedSplitPlan]:
    """Every shift's best mixed split of (w, a, k), best first (options as for ``planner.plan``; ``search``:
    the layout search the digit layouts come from).  With ``signed_act`` the low digit's fields are signed too
    (unsigned weights times signed activations): borrow or offset correction, no raw slices.

    For each shift (high digit of 2 bits or more) and each unsigned low-digit
    layout, the high-digit layout of the same kind and weight slots with the
    most activation slots that divide the low layout's (fewest copies) and
    make up its fields.
    """
    kinds_t, acts = search.arguments(w_bits, a_bits, k, kinds, max_acts, min_depth)
    found: dict[MixedSplitPlan, tuple] = {}
    for shift in range(1, w_bits - 1):
        his = search.layouts(w_bits - shift, a_bits, k, kinds_t, acts, min_depth, w_max_limit(w_bits - shift),
                             signed_act=signed_act)
        los = search.layouts(shift, a_bits, k, kinds_t, acts, min_depth, w_unsigned=True, signed_act=signed_act)
        by_shape: dict[tuple, list[Plan]] = {}
        for h in his:
            by_shape.setdefault((h.kind, h.n_weights, h.n_acts), []).append(h)
        best = None
        for lo in los:                    # best first, so densest first
            if best is not None and lo.macs_per_dsp / 2 < best.macs_per_dsp:
                break                     # not even one copy would reach the best
            for copies in range(1, lo.n_acts + 1):
                if lo.n_acts % copies:
                    continue
                hi = next((h for h in by_shape.get((lo.kind, lo.n_weights, lo.n_acts // copies), ())
                           if combination(h, lo, copies) is not None), None)
                if hi is None:
                    continue
                if best is None or lo.macs_per_dsp / (copies + 1) >= best.macs_per_dsp:
                    candidate = make_mixed(w_bits, a_bits, k, shift, search.checked(hi), search.checked(lo))
                    if candidate.depth >= min_depth and (best is None or rank(candidate) > rank(best)):
                        best = candidate
                break                     # more copies of this lo layout only cost more DSPs
        if best is not None:
            found[best] = rank(best)
    return sorted(found, key=found.__getitem__, reverse=True)


# -- the core --------------------------------------------------------------------------------------

class MixedRecombine(wiring.Component):
    """The fabric after the digit cores' field registers: per field, ``(sum of its hi copy fields << shift) + lo``,
    combinational (its own module, so synthesis reports what the combination and recombination cost)."""

    def __init__(self, plan: MixedSplitPlan, hi_width: int, lo_width: int, width: int):
        self.plan = plan
        super().__init__({
            "hi": In(data.ArrayLayout(data.ArrayLayout(signed(hi_width), len(plan.hi.fields)), plan.copies)),
            "lo": In(data.ArrayLayout(signed(lo_width), len(plan.fields))),
            "fields": Out(data.ArrayLayout(signed(width), len(plan.fields))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        for f, pairs in enumerate(self.plan.combine):
            h = sum((self.hi[c][g] for c, g in pairs[1:]), self.hi[pairs[0][0]][pairs[0][1]])
            m.d.comb += self.fields[f].eq(h.shift_left(self.plan.shift) + self.lo[f])
        return m


class MixedSplitMAC(MultiCoreMAC):
    """A :class:`MixedSplitPlan` on ``copies + 1`` DSP48E2s: :class:`~mixq_hw.packing.cores.PackedMAC`'s ports and
    latency.

    ``weights`` / ``acts`` take full codes (``w_bits`` signed, ``a_bits``
    unsigned, or signed with ``signed_act``).  The digits are bit slices: ``hi = w[shift:]`` (signed) to
    every high copy, ``lo = w[:shift]`` (unsigned) to the low core; high copy
    ``c`` takes activation slots ``c * hi.n_acts ..``, the low core all of them.
    All PackedMACs run in lock step on ``en``, ``i_valid``, ``i_first``,
    ``i_last``; :class:`MixedRecombine` (combinational after their field
    registers, so it holds while ``en`` is low) gives every field.  ``o_valid``,
    ``fields`` and :attr:`LATENCY` mean exactly what they mean for PackedMAC.
    """

    def __init__(self, plan: MixedSplitPlan, *, depth: int | None = None):
        check_mixed(plan)
        super().__init__(plan, depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        his = [PackedMAC(plan.hi, depth=self.depth) for _ in range(plan.copies)]
        for c, core in enumerate(his):
            m.submodules[f"hi{c}"] = core
        m.submodules.lo = lo = PackedMAC(plan.lo, depth=self.depth)
        wb, ab, n = plan.w_bits, plan.a_bits, plan.hi.n_acts
        weights, acts = self.weights.as_value(), self.acts.as_value()
        for core in his + [lo]:
            m.d.comb += [core.en.eq(self.en), core.i_valid.eq(self.i_valid), core.i_first.eq(self.i_first),
                         core.i_last.eq(self.i_last)]
        for i in range(plan.n_weights):
            code = weights[i * wb:(i + 1) * wb]
            m.d.comb += [core.weights[i].eq(code[plan.shift:].as_signed()) for core in his]
            m.d.comb += lo.weights[i].eq(code[:plan.shift])
        for c, core in enumerate(his):
            m.d.comb += core.acts.as_value().eq(acts[c * n * ab:(c + 1) * n * ab])
        m.d.comb += lo.acts.as_value().eq(acts)
        m.submodules.recombine = recombine = MixedRecombine(plan, his[0].field_width, lo.field_width,
                                                            self.field_width)
        m.d.comb += [recombine.hi[c].eq(core.fields) for c, core in enumerate(his)]
        m.d.comb += [recombine.lo.eq(lo.fields), self.fields.eq(recombine.fields), self.o_valid.eq(lo.o_valid)]
        return m
