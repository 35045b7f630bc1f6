"""The DSP48E2 packing planner: the exact layout with the most useful MACs per multiply.

For a (weight bits, activation bits, kernel size) the planner searches every
layout family below, at every field stride that fits the ports, with both port
assignments, both corrections and with or without one-bit field overlap, and
keeps only layouts that :func:`~mixq_hw.packing.layout.check` accepts (so
:func:`~mixq_hw.packing.layout.emulate` equals
:func:`~mixq_hw.packing.layout.expected_fields` for every input):

- ``"kernel"``: ``n_w`` weights (output channels, or depthwise taps) times
  ``n_a`` activations (pixels), every product its own field.  The product
  positions form a two-level nest (activations inner: ``a_j`` at ``j*S``,
  ``w_i`` at ``i*n_a*S``; or weights inner): a brute-force search over all
  arithmetic-progression slot strides (products above the top field allowed)
  found nothing denser at any (w, a);
- ``"filter"``: ``Kp`` taps of one kernel row times ``N`` adjacent pixels at a
  common stride ``S``; field ``p`` sums the taps meeting at output pixel ``p``
  (a 1-D convolution per multiply).  The partial fields at both ends combine
  with the neighbouring pixel group's in fabric, so all ``Kp*N`` products are
  useful: ``k*N / ceil(k/Kp)`` MACs per multiply;
- ``"filter_bank"``: ``F`` filters' taps side by side on the weight port, each
  convolving the same ``N`` pixels into its own run of fields.

A field needs room for its accumulated value: ``depth * terms * max|w| * max a``
must fit its slice (see :func:`~mixq_hw.packing.layout.max_depth`).

Every layout is also tried with its activation word in the port's sign bit
(``act_sign_bit``, corrected through C, see :mod:`~mixq_hw.packing.layout`):
that lets the activation word be one bit wider, so a geometry fits at a wider
stride or at all.  It costs fabric (a C-side adder and mux, a copy of the
weight word), so a layout only uses it where the same geometry has no exact
layout without it, and it ranks after every layout without it of equal MACs.

Ranking: MACs per multiply, then no sign-bit correction before it, then
accumulation depth (compared up to :data:`DEPTH_ENOUGH`), then fewer fields,
then less fabric (no overlap before overlap, offset before borrow correction,
weights on the pre-adder before B), then fewer activation slots.

:func:`plan` returns one layout per multiply (what the conv engine builds).
:func:`best_plan` also weighs digit-split plans (:mod:`~mixq_hw.packing.split`:
one operand in two digits, each on its own DSP48E2, recombined by a shift-add)
and mixed-rate weight splits (:mod:`~mixq_hw.packing.mixed`: a signed high
digit on several DSP48E2s, an unsigned low digit on one, whose layouts
``_search(..., w_unsigned=True)`` finds with raw unsigned field slices) and
returns one where it has strictly more MACs per DSP; :func:`density_table`
and the command line report it.  The bit-map account :func:`explain` lives in
:mod:`.explain`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from .layout import AD_BITS, B_BITS, P_BITS, Field, Plan, _code_max, act_range, check, max_depth

if TYPE_CHECKING:
    from .mixed import MixedSplitPlan
    from .split import SplitPlan

__all__ = ["KINDS", "KERNEL_SIZES", "BIT_WIDTHS", "DEPTH_ENOUGH", "MIXQ_PUBLISHED",
           "plan", "plans", "best_plan", "macs_per_dsp", "density_table", "explain"]

#: Layout families the planner knows (see the module docstring).
KINDS = ("kernel", "filter", "filter_bank")
#: Kernel sizes the planner plans for.
KERNEL_SIZES = (1, 3, 5)
#: Weight and activation bit widths the planner plans for.
BIT_WIDTHS = range(2, 9)
#: Depths beyond this are all "deep enough" when ranking (3x3x512 = 4608 MACs per output is the
#: longest accumulation in the target networks); ties are then broken by fabric cost.
DEPTH_ENOUGH = 1 << 13
#: Depth reported for layouts that could accumulate longer (the limit of :func:`max_depth`).
DEPTH_LIMIT = 1 << 20

#: DeepBurning-MixQ generator lookup, via shared/REFERENCE.md: MACs per DSP48E2 per cycle as published
#: (some entries are not exact on a DSP48E2; see benchmarks/results/packing.md);
#: ``MIXQ_PUBLISHED[k][w][a]`` for k in (1, 3), w and a in 2..8.
MIXQ_PUBLISHED: dict[int, dict[int, dict[int, float]]] = {
    k: {w: dict(zip(range(2, 9), row)) for w, row in zip(range(2, 9), rows)}
    for k, rows in {
        1: ((12, 9, 8, 6, 4.5, 4, 4), (9, 6, 6, 6, 4, 4, 3), (8, 6, 4, 4, 4, 4, 3), (6, 6, 4, 4, 4, 2, 2),
            (4.5, 4, 4, 4, 2, 2, 2), (4, 4, 4, 2, 2, 2, 2), (4, 3, 3, 2, 2, 2, 2)),
        3: ((18, 15, 12, 9, 7.5, 6, 6), (15, 12, 7.5, 6, 6, 6, 4), (12, 7.5, 6, 6, 6, 6, 3), (9, 6, 6, 6, 6, 4, 3),
            (7.5, 6, 6, 4.5, 3, 3, 3), (6, 6, 4.5, 4, 3, 3, 2.25), (6, 4, 3, 3, 3, 3, 2)),
    }.items()
}

# (overlap, correction) in order of fabric cost: no overlap is free, an offset costs a C-port
# constant, a borrow an incrementer per field, overlap a parity tracker per field.
_SCHEMES = ((False, "offset"), (False, "borrow"), (True, "offset"), (True, "borrow"))
# Unsigned weights (w_unsigned digit plans): every field is >= 0, a raw slice needs no correction at all.
_UNSIGNED_SCHEMES = ((False, "none"), (True, "none"))


@dataclass(frozen=True)
class _Geometry:
    """A layout up to its stride ``S``: slot and field positions in units of ``S``."""

    kind: str
    weight_port: str
    w_pos: tuple[int, ...]
    a_pos: tuple[int, ...]
    fields: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]   # (position, terms), sorted
    macs: float
    note: str

    @functools.cached_property
    def inner_terms(self) -> int:
        """Most terms in any field but the top one (0 if there is only one field)."""
        return max((len(terms) for _, terms in self.fields[:-1]), default=0)


def _validate(w_bits: int, a_bits: int, k: int) -> None:
    for name, value in (("w_bits", w_bits), ("a_bits", a_bits)):
        if not isinstance(value, int) or value not in BIT_WIDTHS:
            raise ValueError(f"{name}={value!r} outside {BIT_WIDTHS.start}..{BIT_WIDTHS.stop - 1}")
    if not isinstance(k, int) or k not in KERNEL_SIZES:
        raise ValueError(f"kernel size k={k!r} not in {KERNEL_SIZES}")


def _capacity(slice_bits: int, overlap: bool, correction: str) -> int:
    """Largest accumulated magnitude a field slice of ``slice_bits`` holds (mirrors layout._slice_fits)."""
    if slice_bits < 1:
        return -1
    if correction == "none":        # unsigned fields: (v - parity) / 2 or v itself in an unsigned slice
        return (1 << (slice_bits + overlap)) - 1
    if not overlap:
        return (1 << (slice_bits - 1)) - 1
    return (1 << slice_bits) - (1 if correction == "offset" else 2)


def _word_max(code_max: int, positions: Sequence[int], stride: int) -> int:
    return sum(code_max << (p * stride) for p in positions)


def _min_gap(positions: Sequence[int]) -> int:
    s = sorted(positions)
    return min((y - x for x, y in zip(s, s[1:])), default=1 << 30)


def _fits(geo: _Geometry, stride: int, w_bits: int, a_bits: int, sign_bit: bool = False, w_max: int = 0,
          w_unsigned: bool = False) -> bool:
    """Whether both packed words fit their ports at this stride (monotone: fails for every larger one).

    ``sign_bit``: the activation word may use its port's sign bit (one more bit); ``w_max``: the weight
    magnitude (0: the narrow range of ``w_bits``, or every unsigned code with ``w_unsigned``).
    """
    pw, pa = (AD_BITS, B_BITS) if geo.weight_port == "AD" else (B_BITS, AD_BITS)
    hi_w = w_max or _code_max(w_bits, w_unsigned)
    _, hi_a = act_range(a_bits)
    return (_word_max(hi_w, geo.w_pos, stride) <= (1 << (pw - 1)) - 1
            and _word_max(hi_a, geo.a_pos, stride) <= (1 << (pa if sign_bit else pa - 1)) - 1
            and geo.fields[-1][0] * stride < P_BITS)


def _depth(geo: _Geometry, stride: int, overlap: bool, correction: str, product_max: int) -> int:
    """Accumulation depth of the geometry at this stride (fields ``stride`` apart, the top one clipped to P)."""
    top_pos, top_terms = geo.fields[-1]
    top_bits = min(stride, P_BITS - top_pos * stride - int(overlap))
    depth = min(DEPTH_LIMIT, _capacity(top_bits, overlap, correction) // (len(top_terms) * product_max))
    if geo.inner_terms:
        depth = min(depth, _capacity(stride, overlap, correction) // (geo.inner_terms * product_max))
    return max(depth, 0)


def _kernel_geometries(port: str, max_acts: int, limit: int) -> Iterator[_Geometry]:
    for n_w in range(1, limit + 1):
        for n_a in range(1, min(max_acts, limit) + 1):
            if n_w * n_a > limit:
                break
            nests = ("acts inner", "weights inner") if n_w > 1 and n_a > 1 else ("acts inner",)
            for nest in nests:
                if nest == "acts inner":
                    w_pos = tuple(i * n_a for i in range(n_w))
                    a_pos = tuple(range(n_a))
                else:
                    w_pos = tuple(range(n_w))
                    a_pos = tuple(j * n_w for j in range(n_a))
                fields = tuple(sorted((w_pos[i] + a_pos[j], ((i, j),)) for i in range(n_w) for j in range(n_a)))
                yield _Geometry("kernel", port, w_pos, a_pos, fields, float(n_w * n_a),
                                f"kernel packing: {n_w} weight(s) (output channels, or depthwise taps) x "
                                f"{n_a} activation(s) (pixels), {nest}; every field is one product")


def _filter_geometries(port: str, k: int, max_acts: int, limit: int, bank: bool) -> Iterator[_Geometry]:
    for kp in range(2, k + 1):
        groups = math.ceil(k / kp)
        for n in range(1, min(max_acts, limit) + 1):
            run = kp + n - 1
            for f in (range(2, limit + 1) if bank else (1,)):
                if f * run > limit:
                    break
                w_pos = tuple(g * run + i for g in range(f) for i in range(kp))
                fields = tuple((g * run + p, tuple((g * kp + i, p - i) for i in range(kp) if 0 <= p - i < n))
                               for g in range(f) for p in range(run))
                what = (f"{f} filters x {kp} taps" if bank else f"{kp} taps") + f" of a {k}-tap kernel row"
                yield _Geometry("filter_bank" if bank else "filter", port, w_pos, tuple(range(n)), fields,
                                f * k * n / groups,
                                f"filter packing: {what} x {n} adjacent pixel(s); field p sums the taps "
                                f"meeting at output pixel p ({groups} multipl{'y' if groups == 1 else 'ies'} "
                                f"per kernel row, partial end fields "
                                f"combine with the neighbouring pixel group's in fabric)")


def _best_scheme(geo: _Geometry, first_stride: int, w_bits: int, a_bits: int, product_max: int,
                 min_depth: int, w_max: int = 0, w_unsigned: bool = False) -> tuple | None:
    """The geometry's best (stride, scheme) as
    ``(no sign bit, depth rank, -cost, -stride, depth, stride, (overlap, correction, sign bit))``.

    A stride at which the activation word fits without the sign bit never uses it (same depth,
    more fabric); wider strides use it until the word overflows even the full port.
    """
    best = None
    for stride in range(first_stride, P_BITS + 1):
        sign_bit = not _fits(geo, stride, w_bits, a_bits, w_max=w_max, w_unsigned=w_unsigned)
        if sign_bit and not _fits(geo, stride, w_bits, a_bits, sign_bit=True, w_max=w_max, w_unsigned=w_unsigned):
            break       # the words only grow with the stride
        for cost, (overlap, correction) in enumerate(_UNSIGNED_SCHEMES if w_unsigned else _SCHEMES):
            depth = _depth(geo, stride, overlap, correction, product_max)
            if depth >= min_depth:
                key = (not sign_bit, min(depth, DEPTH_ENOUGH), -cost, -stride, depth, stride,
                       (overlap, correction, sign_bit))
                if best is None or key > best:
                    best = key
    return best


def _rank(geo: _Geometry, local: tuple) -> tuple:
    """Global order: MACs, no sign bit, depth (capped), fewer fields, cheaper scheme/port, fewer act then
    weight slots."""
    no_sign_bit, depth_rank, neg_cost, neg_stride = local[:4]
    port_cost = 0 if geo.weight_port == "AD" else 0.5
    return (geo.macs, no_sign_bit, depth_rank, -len(geo.fields), neg_cost - port_cost, -len(geo.a_pos),
            -len(geo.w_pos), neg_stride)


def _note(geo: _Geometry, stride: int, sign_bit: bool, w_unsigned: bool = False) -> str:
    if w_unsigned:
        side = "A:D side (D alone, A = 0)" if geo.weight_port == "AD" else "18-bit B side"
        port = (f"unsigned weight codes concatenated on the {side}, activations on the other port; every "
                f"field is >= 0, so it is its raw unsigned slice (no borrow, no offset)")
    elif geo.weight_port == "AD":
        port = ("weights on the 27-bit A:D side, activations on B; the signed packed weight word is made by "
                "the pre-adder with no fabric logic: D = the weight codes' two's-complement bits concatenated "
                "at their offsets, A = each weight's sign bit at (its offset + w_bits), D - A = sum w_i << o_i")
    else:
        port = ("weights on the 18-bit B side, activations on A:D; B has no pre-adder, so the signed packed "
                "weight word (sum w_i << o_i) is stored precomputed (weights are constants) or made by an "
                "18-bit fabric subtractor D - A as on the A:D side")
    note = f"{geo.note}; field stride {stride} bits; {port}"
    if sign_bit:
        act_port = "B" if geo.weight_port == "AD" else "A:D"
        n = B_BITS if geo.weight_port == "AD" else AD_BITS
        note += (f"; the activation word uses {act_port}'s sign bit (bit {n - 1}): when it is set the DSP48E2 "
                 f"multiplies by the word - 2**{n}, so C adds the weight word << {n} on that multiply")
    return note


def _build(geo: _Geometry, stride: int, overlap: bool, correction: str, sign_bit: bool, w_bits: int,
           a_bits: int, k: int, depth: int, w_max: int = 0, w_unsigned: bool = False) -> Plan:
    top = len(geo.fields) - 1
    fields = tuple(
        Field(pos * stride, (stride if f < top else min(stride, P_BITS - pos * stride - int(overlap))) + int(overlap),
              terms)
        for f, (pos, terms) in enumerate(geo.fields))
    return Plan(w_bits=w_bits, a_bits=a_bits, k=k, kind=geo.kind, weight_port=geo.weight_port,
                weight_offsets=tuple(p * stride for p in geo.w_pos),
                act_offsets=tuple(p * stride for p in geo.a_pos), fields=fields, overlap=overlap,
                correction=correction, depth=depth, macs_per_dsp=geo.macs,
                note=_note(geo, stride, sign_bit, w_unsigned), act_sign_bit=sign_bit, w_max=w_max,
                w_unsigned=w_unsigned)


@functools.lru_cache(maxsize=4096)
def _search(w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int, min_depth: int,
            w_max: int = 0, *, w_unsigned: bool = False) -> tuple[Plan, ...]:
    """Every geometry's best exact layout, best first (uncached callers should use :func:`plans`).

    ``w_max`` caps the weight magnitude (digit plans of :mod:`.split`; up to ``2**(w_bits-1)``, the whole
    two's-complement range); 0: no cap.  ``w_unsigned``: unsigned weight codes ``0 .. w_max`` (or
    ``2**w_bits - 1``), laid out with raw unsigned field slices (:mod:`.mixed`'s low digits).
    """
    hi_w = w_max or _code_max(w_bits, w_unsigned)
    _, hi_a = act_range(a_bits)
    product_max = hi_w * hi_a
    # No field is narrower than one product needs, even with overlap: that bounds the field count.
    min_stride = max(1, math.ceil(math.log2(product_max * min_depth + 1)) - w_unsigned)   # unsigned: +1 bit
    limit = P_BITS // min_stride + 1
    found: list[tuple[tuple, _Geometry, tuple]] = []
    for port in ("AD", "B"):
        families: list[Iterator[_Geometry]] = []
        if "kernel" in kinds:
            families.append(_kernel_geometries(port, max_acts, limit))
        if "filter" in kinds and k > 1:
            families.append(_filter_geometries(port, k, max_acts, limit, bank=False))
        if "filter_bank" in kinds and k > 1:
            families.append(_filter_geometries(port, k, max_acts, limit, bank=True))
        for family in families:
            for geo in family:
                # Slots must not overlap: the cores concatenate codes (the pre-adder's D word).
                slot_stride = max(-(-w_bits // _min_gap(geo.w_pos)), -(-a_bits // _min_gap(geo.a_pos)))
                local = _best_scheme(geo, max(min_stride, slot_stride), w_bits, a_bits, product_max, min_depth,
                                     w_max, w_unsigned)
                if local is not None:
                    found.append((_rank(geo, local), geo, local))
    found.sort(key=lambda item: item[0], reverse=True)
    return tuple(_build(geo, stride, ov, corr, sign_bit, w_bits, a_bits, k, depth, w_max, w_unsigned)
                 for _, geo, (*_, depth, stride, (ov, corr, sign_bit)) in found)


def _arguments(w_bits: int, a_bits: int, k: int, kinds: Sequence[str], max_acts: int | None,
               min_depth: int) -> tuple[tuple[str, ...], int]:
    _validate(w_bits, a_bits, k)
    kinds = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    unknown = [x for x in kinds if x not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds {kinds!r}: each must be one of {KINDS}")
    if max_acts is not None and (not isinstance(max_acts, int) or max_acts < 1):
        raise ValueError(f"max_acts={max_acts!r} must be a positive int or None")
    if not isinstance(min_depth, int) or not 1 <= min_depth <= DEPTH_LIMIT:
        raise ValueError(f"min_depth={min_depth!r} outside 1..{DEPTH_LIMIT}")
    return tuple(sorted(set(kinds), key=KINDS.index)), (max_acts or AD_BITS)


def plans(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
          max_acts: int | None = None, min_depth: int = 1) -> list[Plan]:
    """All exact candidate layouts (each layout shape at its best stride and scheme), best first.

    For folding: the conv engine picks among them (e.g. by how the activation
    slots divide a row).  ValueError names a bad argument, or says that no
    layout meets ``min_depth`` / ``kinds``.
    """
    return [_checked(p) for p in _candidates(w_bits, a_bits, k, kinds, max_acts, min_depth)]


def _candidates(w_bits: int, a_bits: int, k: int, kinds: Sequence[str], max_acts: int | None,
                min_depth: int) -> tuple[Plan, ...]:
    kinds_t, acts = _arguments(w_bits, a_bits, k, kinds, max_acts, min_depth)
    found = _search(w_bits, a_bits, k, kinds_t, acts, min_depth)
    if not found:
        raise ValueError(f"no exact layout for w{w_bits}a{a_bits} k={k} with kinds={kinds_t}, "
                         f"max_acts={max_acts}, min_depth={min_depth}"
                         + (" (filter packing needs k > 1)" if k == 1 and "kernel" not in kinds_t else ""))
    return found


@functools.lru_cache(maxsize=1 << 16)
def _checked(p: Plan) -> Plan:
    """``p`` after :func:`check` and a depth cross-check: the search mirrors them, this keeps them from drifting."""
    check(p)
    if p.depth != min(max_depth(p, DEPTH_LIMIT), DEPTH_LIMIT):
        raise AssertionError(f"planner depth {p.depth} != max_depth {max_depth(p, DEPTH_LIMIT)} for {p}")
    return p


@functools.lru_cache(maxsize=4096)
def _checked_best(w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int | None,
                  min_depth: int) -> Plan:
    return _checked(_candidates(w_bits, a_bits, k, kinds, max_acts, min_depth)[0])


def plan(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
         max_acts: int | None = None, min_depth: int = 1) -> Plan:
    """The exact layout with the most useful MACs per DSP48E2 multiply for ``w_bits``/``a_bits``/``k`` (cached).

    ``kinds`` restricts the layout families (:data:`KINDS`); ``max_acts`` caps
    the activation slots (pixel lanes); ``min_depth`` asks for at least that
    many accumulated multiplies before extraction.
    """
    kinds_t = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    return _checked_best(w_bits, a_bits, k, kinds_t, max_acts, min_depth)


@functools.lru_cache(maxsize=None)
def macs_per_dsp(w_bits: int, a_bits: int, k: int) -> float:
    """Useful MACs per DSP48E2 per cycle of the best exact layout (the search's cost model uses this)."""
    return plan(w_bits, a_bits, k).macs_per_dsp


@functools.lru_cache(maxsize=4096)
def _best(w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int | None, min_depth: int
          ) -> "Plan | SplitPlan | MixedSplitPlan":
    from .split import split_plans      # split imports this module (and amaranth): only when asked for

    try:
        single = plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth)
    except ValueError:
        single = None                   # no single layout that deep; a split may still have one
    splits = split_plans(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth, mixed=True)
    if splits and (single is None or splits[0].macs_per_dsp > single.macs_per_dsp):
        return splits[0]
    if single is None:
        plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth)   # raises its ValueError
    return single


def best_plan(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
              max_acts: int | None = None, min_depth: int = 1) -> "Plan | SplitPlan | MixedSplitPlan":
    """The densest exact plan: :func:`plan`'s layout, or a digit-split plan (2 DSP48E2s, or a mixed-rate split on
    ``copies + 1``) with more MACs per DSP.

    Options as for :func:`plan` (for a split they apply to its digit layouts
    and its depth).  A :class:`~mixq_hw.packing.split.SplitPlan` runs on
    :class:`~mixq_hw.packing.split.SplitMAC`, a :class:`~mixq_hw.packing.mixed.MixedSplitPlan` on
    :class:`~mixq_hw.packing.mixed.MixedSplitMAC`, a Plan on PackedMAC.
    """
    kinds_t = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    return _best(w_bits, a_bits, k, kinds_t, max_acts, min_depth)


def density_table(ks: Sequence[int] = KERNEL_SIZES, *, split: bool = True) -> list[dict]:
    """One row per (w, a, k): MACs per DSP per cycle and how the best layout gets there.

    With ``split`` (default) the row is :func:`best_plan`'s (``split`` names the
    split operand, ``dsps`` its DSP48E2s per core, the layout keys describe the
    digit layout -- a mixed split's (``mixed``) low-digit layout, its high digit on
    ``copies`` DSPs); ``single_macs_per_dsp`` is :func:`plan`'s density either way.
    """
    rows = []
    for k in ks:
        for w in BIT_WIDTHS:
            for a in BIT_WIDTHS:
                single = plan(w, a, k)
                p = best_plan(w, a, k) if split else single
                is_split = not isinstance(p, Plan)
                rows.append({"w": w, "a": a, "k": k, "macs_per_dsp": p.macs_per_dsp, "kind": p.kind,
                             "depth": p.depth, "weight_port": p.weight_port, "overlap": p.overlap,
                             "correction": p.correction, "n_weights": p.n_weights, "n_acts": p.n_acts,
                             "n_fields": len(p.fields), "act_sign_bit": p.act_sign_bit,
                             "split": p.operand if is_split else None, "dsps": p.dsps if is_split else 1,
                             "mixed": hasattr(p, "copies"), "copies": getattr(p, "copies", None),
                             "shift": p.shift if is_split else None, "rounding": p.rounding if is_split else None,
                             "digit_bits": p.digit_bits if is_split else None,
                             "single_macs_per_dsp": single.macs_per_dsp})
    return rows


from .explain import explain  # noqa: E402  (the bit-map account lives in its own module; public here too)
