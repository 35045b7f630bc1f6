"""The single-layout search: every exact packed-multiply layout for a DSP geometry, best first.

:class:`LayoutSearch` owns the search and its caches for one :class:`~mixq_hw.packing.geometry.DspGeometry`;
the digit-split searches (:mod:`.split`, :mod:`.mixed`) and the :class:`~mixq_hw.packing.planner.Planner`
ask it for layouts.  The layout families, the ranking and the depth rules are described in
:mod:`mixq_hw.packing.planner`.

The search lays layouts out at the geometry's port widths; :func:`~mixq_hw.packing.layout.check`, which
every returned layout passes through (:meth:`LayoutSearch.checked`), checks them at the DSP48E2's.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

from .bits import PACKED_BITS, act_magnitude, act_range
from .geometry import DEPTH_LIMIT, DSP48E2_GEOMETRY, DspGeometry
from .layout import Field, Plan, check, max_depth, weight_code_max

__all__ = ["KINDS", "KERNEL_SIZES", "DEPTH_ENOUGH", "DEPTH_LIMIT", "LayoutSearch", "validate", "search_arguments",
           "search_layouts", "DEFAULT_SEARCH"]

#: Layout families the planner knows (see :mod:`mixq_hw.packing.planner`).
KINDS = ("kernel", "filter", "filter_bank")
#: Kernel sizes the planner plans for.
KERNEL_SIZES = (1, 3, 5)
#: Depths beyond this are all "deep enough" when ranking (3x3x512 = 4608 MACs per output is the
#: longest accumulation in the target networks); ties are then broken by fabric cost.
DEPTH_ENOUGH = 1 << 13

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


def validate(w_bits: int, a_bits: int, k: int) -> None:
    """ValueError naming ``w_bits``, ``a_bits`` or ``k`` unless the planner plans for them."""
    for name, value in (("w_bits", w_bits), ("a_bits", a_bits)):
        if not isinstance(value, int) or value not in PACKED_BITS:
            raise ValueError(f"{name}={value!r} outside {PACKED_BITS.start}..{PACKED_BITS.stop - 1}")
    if not isinstance(k, int) or k not in KERNEL_SIZES:
        raise ValueError(f"kernel size k={k!r} not in {KERNEL_SIZES}")


def _capacity(slice_bits: int, overlap: bool, correction: str) -> int:
    """Largest accumulated magnitude a field slice of ``slice_bits`` holds (mirrors layout.slice_fits)."""
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


def _fits(dsp: DspGeometry, geo: _Geometry, stride: int, w_bits: int, a_bits: int, sign_bit: bool = False,
          w_max: int = 0, w_unsigned: bool = False, signed_act: bool = False) -> bool:
    """Whether both packed words fit their ports at this stride (monotone: fails for every larger one).

    ``sign_bit``: the activation word may use its port's sign bit (one more bit); ``w_max``: the weight
    magnitude (0: the narrow range of ``w_bits``, or every unsigned code with ``w_unsigned``); ``signed_act``:
    signed activation codes, whose most negative word ``-sum 2**(a-1) << o`` bounds the port (the most positive
    one is then in range too).
    """
    pw, pa = (dsp.ad_bits, dsp.b_bits) if geo.weight_port == "AD" else (dsp.b_bits, dsp.ad_bits)
    hi_w = w_max or weight_code_max(w_bits, w_unsigned)
    if signed_act:
        act_fits = _word_max(act_magnitude(a_bits, True), geo.a_pos, stride) <= 1 << (pa - 1)
    else:
        act_fits = _word_max(act_range(a_bits)[1], geo.a_pos, stride) <= (1 << (pa if sign_bit else pa - 1)) - 1
    return (_word_max(hi_w, geo.w_pos, stride) <= (1 << (pw - 1)) - 1 and act_fits
            and geo.fields[-1][0] * stride < dsp.p_bits)


def _depth(dsp: DspGeometry, geo: _Geometry, stride: int, overlap: bool, correction: str, product_max: int) -> int:
    """Accumulation depth of the geometry at this stride (fields ``stride`` apart, the top one clipped to P)."""
    top_pos, top_terms = geo.fields[-1]
    top_bits = min(stride, dsp.p_bits - top_pos * stride - int(overlap))
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


def _best_scheme(dsp: DspGeometry, geo: _Geometry, first_stride: int, w_bits: int, a_bits: int, product_max: int,
                 min_depth: int, w_max: int = 0, w_unsigned: bool = False, signed_act: bool = False) -> tuple | None:
    """The geometry's best (stride, scheme) as
    ``(no sign bit, depth rank, -cost, -stride, depth, stride, (overlap, correction, sign bit))``.

    A stride at which the activation word fits without the sign bit never uses it (same depth,
    more fabric); wider strides use it until the word overflows even the full port.  Signed activation
    words (``signed_act``) never use it.
    """
    best = None
    schemes = _UNSIGNED_SCHEMES if w_unsigned and not signed_act else _SCHEMES
    for stride in range(first_stride, dsp.p_bits + 1):
        sign_bit = not _fits(dsp, geo, stride, w_bits, a_bits, w_max=w_max, w_unsigned=w_unsigned,
                             signed_act=signed_act)
        if sign_bit and (signed_act or not _fits(dsp, geo, stride, w_bits, a_bits, sign_bit=True, w_max=w_max,
                                                 w_unsigned=w_unsigned)):
            break       # the words only grow with the stride
        for cost, (overlap, correction) in enumerate(schemes):
            depth = _depth(dsp, geo, stride, overlap, correction, product_max)
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


def _note(dsp: DspGeometry, geo: _Geometry, stride: int, sign_bit: bool, w_unsigned: bool = False,
          signed_act: bool = False) -> str:
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
    if signed_act:
        note += ("; signed activation codes: the signed packed activation word (sum a_j << o_j) is made in fabric "
                 "as D - A (the codes' two's-complement bits concatenated, minus each code's sign bit at its offset "
                 "+ a_bits) into the activation port's second register")
    if sign_bit:
        act_port = "B" if geo.weight_port == "AD" else "A:D"
        n = dsp.b_bits if geo.weight_port == "AD" else dsp.ad_bits
        note += (f"; the activation word uses {act_port}'s sign bit (bit {n - 1}): when it is set the DSP48E2 "
                 f"multiplies by the word - 2**{n}, so C adds the weight word << {n} on that multiply")
    return note


def _build(dsp: DspGeometry, geo: _Geometry, stride: int, overlap: bool, correction: str, sign_bit: bool, w_bits: int,
           a_bits: int, k: int, depth: int, w_max: int = 0, w_unsigned: bool = False, signed_act: bool = False) -> Plan:
    top = len(geo.fields) - 1
    fields = tuple(
        Field(pos * stride,
              (stride if f < top else min(stride, dsp.p_bits - pos * stride - int(overlap))) + int(overlap), terms)
        for f, (pos, terms) in enumerate(geo.fields))
    return Plan(w_bits=w_bits, a_bits=a_bits, k=k, kind=geo.kind,
                weight_port=geo.weight_port,  # type: ignore[arg-type]  # "AD" or "B" (Plan.check)
                weight_offsets=tuple(p * stride for p in geo.w_pos),
                act_offsets=tuple(p * stride for p in geo.a_pos), fields=fields, overlap=overlap,
                correction=correction,  # type: ignore[arg-type]  # one of Plan's corrections (Plan.check)
                depth=depth, macs_per_dsp=geo.macs,
                note=_note(dsp, geo, stride, sign_bit, w_unsigned, signed_act), act_sign_bit=sign_bit, w_max=w_max,
                w_unsigned=w_unsigned, signed_act=signed_act)


def search_layouts(dsp: DspGeometry, w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int,
                   min_depth: int, w_max: int = 0, *, w_unsigned: bool = False,
                   signed_act: bool = False) -> tuple[Plan, ...]:
    """Every geometry's best exact layout for ``dsp``, best first (unchecked and uncached: use
    :meth:`LayoutSearch.layouts`).

    ``w_max`` caps the weight magnitude (digit plans of :mod:`.split`; up to ``2**(w_bits-1)``, the whole
    two's-complement range); 0: no cap.  ``w_unsigned``: unsigned weight codes ``0 .. w_max`` (or
    ``2**w_bits - 1``), laid out with raw unsigned field slices (:mod:`.mixed`'s low digits).  ``signed_act``:
    signed two's-complement activation codes (products of either sign; no sign-bit trick, no raw slices).
    """
    hi_w = w_max or weight_code_max(w_bits, w_unsigned)
    product_max = hi_w * act_magnitude(a_bits, signed_act)
    raw = w_unsigned and not signed_act          # non-negative fields: raw unsigned slices, one bit more
    # No field is narrower than one product needs, even with overlap: that bounds the field count.
    min_stride = max(1, math.ceil(math.log2(product_max * min_depth + 1)) - raw)
    limit = dsp.p_bits // min_stride + 1
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
                local = _best_scheme(dsp, geo, max(min_stride, slot_stride), w_bits, a_bits, product_max, min_depth,
                                     w_max, w_unsigned, signed_act)
                if local is not None:
                    found.append((_rank(geo, local), geo, local))
    found.sort(key=lambda item: item[0], reverse=True)
    return tuple(_build(dsp, geo, stride, ov, corr, sign_bit, w_bits, a_bits, k, depth, w_max, w_unsigned, signed_act)
                 for _, geo, (*_, depth, stride, (ov, corr, sign_bit)) in found)


def search_arguments(dsp: DspGeometry, w_bits: int, a_bits: int, k: int, kinds: Sequence[str], max_acts: int | None,
               min_depth: int) -> tuple[tuple[str, ...], int]:
    validate(w_bits, a_bits, k)
    kinds = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
    unknown = [x for x in kinds if x not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds {kinds!r}: each must be one of {KINDS}")
    if max_acts is not None and (not isinstance(max_acts, int) or max_acts < 1):
        raise ValueError(f"max_acts={max_acts!r} must be a positive int or None")
    if not isinstance(min_depth, int) or not 1 <= min_depth <= DEPTH_LIMIT:
        raise ValueError(f"min_depth={min_depth!r} outside 1..{DEPTH_LIMIT}")
    return tuple(sorted(set(kinds), key=KINDS.index)), (max_acts or dsp.ad_bits)


class LayoutSearch:
    """The single-layout search for one DSP geometry, with its caches.

    :meth:`layouts` is every geometry's best layout (unchecked, cached), :meth:`checked` a layout after
    :func:`~mixq_hw.packing.layout.check` and a depth cross-check (cached), :meth:`arguments` the
    validated, normalised search options.
    """

    def __init__(self, dsp: DspGeometry = DSP48E2_GEOMETRY):
        self.dsp = dsp
        self._layouts = functools.lru_cache(maxsize=4096)(self._search)
        self._checked = functools.lru_cache(maxsize=1 << 16)(self._check)

    def _search(self, w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int, min_depth: int,
                w_max: int = 0, w_unsigned: bool = False, signed_act: bool = False) -> tuple[Plan, ...]:
        return search_layouts(self.dsp, w_bits, a_bits, k, kinds, max_acts, min_depth, w_max, w_unsigned=w_unsigned,
                              signed_act=signed_act)

    def layouts(self, w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int, min_depth: int,
                w_max: int = 0, *, w_unsigned: bool = False, signed_act: bool = False) -> tuple[Plan, ...]:
        """:func:`search_layouts` (cached; arguments as :meth:`arguments` returns them, not validated)."""
        if signed_act:
            return self._layouts(w_bits, a_bits, k, kinds, max_acts, min_depth, w_max, w_unsigned, True)
        return self._layouts(w_bits, a_bits, k, kinds, max_acts, min_depth, w_max, w_unsigned)

    def arguments(self, w_bits: int, a_bits: int, k: int, kinds: Sequence[str], max_acts: int | None,
                  min_depth: int) -> tuple[tuple[str, ...], int]:
        """The search options validated: ``(kinds in KINDS order, activation slot cap)``."""
        return search_arguments(self.dsp, w_bits, a_bits, k, kinds, max_acts, min_depth)

    def _check(self, p: Plan) -> Plan:
        check(p)
        if p.depth != min(max_depth(p, DEPTH_LIMIT), DEPTH_LIMIT):
            raise AssertionError(f"planner depth {p.depth} != max_depth {max_depth(p, DEPTH_LIMIT)} for {p}")
        return p

    def checked(self, p: Plan) -> Plan:
        """``p`` after :func:`check` and a depth cross-check: the search mirrors them, this keeps them from
        drifting (cached)."""
        return self._checked(p)

    def cache_clear(self) -> None:
        """Empty the caches (benchmarks time the search from cold)."""
        self._layouts.cache_clear()
        self._checked.cache_clear()


#: The DSP48E2's layout search (the default planner's, and the split searches' default).
DEFAULT_SEARCH = LayoutSearch(DSP48E2_GEOMETRY)
