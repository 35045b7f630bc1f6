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

:func:`plan` returns one layout per multiply; :func:`engine_plan` the densest plan the conv engine
builds (that layout or a digit split), which the search's cost model prices.
:func:`best_plan` also weighs digit-split plans (:mod:`~mixq_hw.packing.split`:
one operand in two digits, each on its own DSP48E2, recombined by a shift-add)
and mixed-rate weight splits (:mod:`~mixq_hw.packing.mixed`: a signed high
digit on several DSP48E2s, an unsigned low digit on one, whose layouts
the layout search finds (``w_unsigned``) with raw unsigned field slices) and
returns one where it has strictly more MACs per DSP; :func:`density_table`
and the command line report it.  The bit-map account :func:`explain` lives in
:mod:`.explain`.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from .bits import PACKED_BITS
from .explain import explain
from .geometry import DEPTH_LIMIT, DSP48E2_GEOMETRY, DspGeometry
from .layout import Plan
from .mixed import mixed_split_plans
from .mixed import rank as mixed_rank
from .protocol import PackingPlan
from .search import DEFAULT_SEARCH, DEPTH_ENOUGH, KERNEL_SIZES, KINDS, LayoutSearch
from .split import split_plans
from .split import split_rank

__all__ = ["KINDS", "KERNEL_SIZES", "BIT_WIDTHS", "DEPTH_ENOUGH", "DEPTH_LIMIT", "MIXQ_PUBLISHED", "ENGINE_PLAN_TYPES",
           "Planner", "PLANNER", "plan", "plans", "best_plan", "engine_plan", "all_splits", "macs_per_dsp",
           "engine_macs_per_dsp", "density_table", "cost_table", "explain"]

#: Weight and activation bit widths the planner plans for (:data:`~mixq_hw.packing.bits.PACKED_BITS`).
BIT_WIDTHS = PACKED_BITS

#: Plan kinds (:attr:`~mixq_hw.packing.protocol.PackingPlan.plan_type`) the conv engine builds; a mixed-rate
#: split (``"mixed"``) is a table-only entry: :meth:`Planner.engine_plan` never returns one, so neither the
#: engine nor the search's cost model uses it.
ENGINE_PLAN_TYPES = ("layout", "lut", "split")

#: DeepBurning-MixQ generator lookup, via shared/REFERENCE.md: MACs per DSP48E2 per cycle as published
#: (some entries are not exact on a DSP48E2; see benchmarks/results/packing.md);
#: ``MIXQ_PUBLISHED[k][w][a]`` for k in (1, 3), w and a in 2..8.
MIXQ_PUBLISHED: dict[int, dict[int, dict[int, float]]] = {
    k: {w: dict(zip(BIT_WIDTHS, row)) for w, row in zip(BIT_WIDTHS, rows)}
    for k, rows in {
        1: ((12, 9, 8, 6, 4.5, 4, 4), (9, 6, 6, 6, 4, 4, 3), (8, 6, 4, 4, 4, 4, 3), (6, 6, 4, 4, 4, 2, 2),
            (4.5, 4, 4, 4, 2, 2, 2), (4, 4, 4, 2, 2, 2, 2), (4, 3, 3, 2, 2, 2, 2)),
        3: ((18, 15, 12, 9, 7.5, 6, 6), (15, 12, 7.5, 6, 6, 6, 4), (12, 7.5, 6, 6, 6, 6, 3), (9, 6, 6, 6, 6, 4, 3),
            (7.5, 6, 6, 4.5, 3, 3, 3), (6, 6, 4.5, 4, 3, 3, 2.25), (6, 4, 3, 3, 3, 3, 2)),
    }.items()
}


class Planner:
    """The packing planner for one DSP geometry: the layout search, the split searches and their caches.

    :meth:`plan` is the best single layout (what a PackedMAC runs), :meth:`best_plan` the densest plan of
    any kind, :meth:`density_table` the table of both.  :data:`PLANNER` is the DSP48E2's; the module
    functions of the same names use it.
    """

    def __init__(self, dsp: DspGeometry = DSP48E2_GEOMETRY):
        self.dsp = dsp
        self.search = DEFAULT_SEARCH if dsp == DEFAULT_SEARCH.dsp else LayoutSearch(dsp)
        self._best_layout = functools.lru_cache(maxsize=4096)(self._best_layout_uncached)
        self._best = functools.lru_cache(maxsize=4096)(self._best_uncached)
        self._macs = functools.lru_cache(maxsize=None)(self._macs_uncached)
        self._engine = functools.lru_cache(maxsize=None)(self._engine_uncached)
        self._engine_macs = functools.lru_cache(maxsize=None)(self._engine_macs_uncached)

    def cache_clear(self) -> None:
        """Empty every cache (benchmarks time the planner from cold)."""
        self.search.cache_clear()
        for cached in (self._best_layout, self._best, self._macs, self._engine, self._engine_macs):
            cached.cache_clear()

    def plans(self, w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
              max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> list[Plan]:
        """All exact candidate layouts (each layout shape at its best stride and scheme), best first.

        For folding: the conv engine picks among them (e.g. by how the activation
        slots divide a row).  ValueError names a bad argument, or says that no
        layout meets ``min_depth`` / ``kinds``.
        """
        return [self.search.checked(p)
                for p in self._candidates(w_bits, a_bits, k, kinds, max_acts, min_depth, signed_act)]

    def _candidates(self, w_bits: int, a_bits: int, k: int, kinds: Sequence[str], max_acts: int | None,
                    min_depth: int, signed_act: bool = False) -> tuple[Plan, ...]:
        kinds_t, acts = self.search.arguments(w_bits, a_bits, k, kinds, max_acts, min_depth)
        found = self.search.layouts(w_bits, a_bits, k, kinds_t, acts, min_depth, signed_act=_flag(signed_act))
        if not found:
            what = " (signed activations)" if signed_act else ""
            raise ValueError(f"no exact layout for w{w_bits}a{a_bits} k={k}{what} with kinds={kinds_t}, "
                             f"max_acts={max_acts}, min_depth={min_depth}"
                             + (" (filter packing needs k > 1)" if k == 1 and "kernel" not in kinds_t else ""))
        return found

    def _best_layout_uncached(self, w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int | None,
                              min_depth: int, signed_act: bool = False) -> Plan:
        return self.search.checked(self._candidates(w_bits, a_bits, k, kinds, max_acts, min_depth, signed_act)[0])

    def plan(self, w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
             max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> Plan:
        """The exact layout with the most useful MACs per DSP multiply for ``w_bits``/``a_bits``/``k`` (cached).

        ``kinds`` restricts the layout families (:data:`KINDS`); ``max_acts`` caps
        the activation slots (pixel lanes); ``min_depth`` asks for at least that
        many accumulated multiplies before extraction; ``signed_act``: two's-complement
        activation codes (:func:`~mixq_hw.packing.bits.signed_act_range`) instead of unsigned ones.
        """
        kinds_t = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
        if _flag(signed_act):
            return self._best_layout(w_bits, a_bits, k, kinds_t, max_acts, min_depth, True)
        return self._best_layout(w_bits, a_bits, k, kinds_t, max_acts, min_depth)

    def _macs_uncached(self, w_bits: int, a_bits: int, k: int, signed_act: bool = False) -> float:
        return self.plan(w_bits, a_bits, k, signed_act=signed_act).macs_per_dsp

    def macs_per_dsp(self, w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> float:
        """Useful MACs per DSP per cycle of the best single layout (:meth:`plan`); the search's cost model
        prices a layer with :meth:`engine_macs_per_dsp` instead."""
        return self._macs(w_bits, a_bits, k, True) if _flag(signed_act) else self._macs(w_bits, a_bits, k)

    def engine_macs_per_dsp(self, w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> float:
        """Useful MACs per DSP per cycle of :meth:`engine_plan`: what the conv engine builds at best, and
        what ``mixq_nn.cost`` prices a layer with (cached)."""
        return (self._engine_macs(w_bits, a_bits, k, True) if _flag(signed_act)
                else self._engine_macs(w_bits, a_bits, k))

    def splits(self, w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
               max_acts: int | None = None, min_depth: int = 1, mixed: bool = False,
               signed_act: bool = False) -> list[PackingPlan]:
        """Every digit split of (w, a, k) (:func:`~mixq_hw.packing.split.split_plans`), best first; ``mixed``:
        also the mixed-rate weight splits (:func:`~mixq_hw.packing.mixed.mixed_split_plans`), ranked among
        them (after same-layout splits of equal density).  The conv engine builds only the digit splits.
        With ``signed_act`` only weights are split (a signed activation's digits are of two kinds)."""
        kinds_t, _ = self.search.arguments(w_bits, a_bits, k, kinds, max_acts, min_depth)
        signed_act = _flag(signed_act)
        found: dict[PackingPlan, tuple] = {
            s: split_rank(s) for s in split_plans(w_bits, a_bits, k, kinds=kinds_t, max_acts=max_acts,
                                                  min_depth=min_depth, search=self.search, signed_act=signed_act)}
        if mixed:
            found.update({m: mixed_rank(m) for m in mixed_split_plans(w_bits, a_bits, k, kinds=kinds_t,
                                                                      max_acts=max_acts, min_depth=min_depth,
                                                                      search=self.search,
                                                                      signed_act=signed_act)})
        return sorted(found, key=found.__getitem__, reverse=True)

    def _best_uncached(self, w_bits: int, a_bits: int, k: int, kinds: tuple[str, ...], max_acts: int | None,
                       min_depth: int, signed_act: bool = False) -> PackingPlan:
        try:
            single = self.plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth,
                               signed_act=signed_act)
        except ValueError:
            single = None                   # no single layout that deep; a split may still have one
        splits = self.splits(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth, mixed=True,
                             signed_act=signed_act)
        if splits and (single is None or splits[0].macs_per_dsp > single.macs_per_dsp):
            return splits[0]
        if single is None:
            return self.plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth,
                             signed_act=signed_act)   # raises
        return single

    def best_plan(self, w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
                  max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> PackingPlan:
        """The densest exact plan: :meth:`plan`'s layout, or a digit-split plan (2 DSPs, or a mixed-rate split
        on ``copies + 1``) with strictly more MACs per DSP.  Options as for :meth:`plan` (for a split they
        apply to its digit layouts and its depth)."""
        kinds_t = tuple(kinds) if not isinstance(kinds, str) else (kinds,)
        if _flag(signed_act):
            return self._best(w_bits, a_bits, k, kinds_t, max_acts, min_depth, True)
        return self._best(w_bits, a_bits, k, kinds_t, max_acts, min_depth)

    def _engine_uncached(self, w_bits: int, a_bits: int, k: int, signed_act: bool = False) -> PackingPlan:
        single = self.plan(w_bits, a_bits, k, signed_act=signed_act)
        splits = self.splits(w_bits, a_bits, k, signed_act=signed_act)
        return splits[0] if splits and splits[0].macs_per_dsp > single.macs_per_dsp else single

    def _engine_macs_uncached(self, w_bits: int, a_bits: int, k: int, signed_act: bool = False) -> float:
        return self.engine_plan(w_bits, a_bits, k, signed_act=signed_act).macs_per_dsp

    def engine_plan(self, w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> PackingPlan:
        """The densest plan of a kind the conv engine builds (:data:`ENGINE_PLAN_TYPES`): :meth:`plan`'s
        layout, or a digit split (never a mixed-rate split) with strictly more MACs per DSP (cached).  What
        a layer gets when its folding leaves the engine free to choose (its pixels and windows may
        restrict it further: ``mixq_hw.layers.conv_weights.choose_plan`` ranks the same candidates)."""
        return self._engine(w_bits, a_bits, k, True) if _flag(signed_act) else self._engine(w_bits, a_bits, k)

    def density_table(self, ks: Sequence[int] = KERNEL_SIZES, *, split: bool = True,
                      signed_act: bool = False) -> list[dict]:
        """One row per (w, a, k): MACs per DSP per cycle and how the best plan gets there.

        With ``split`` (default) the row is :meth:`best_plan`'s (``split`` names the
        split operand, ``dsps`` its DSP48E2s per core, the layout keys describe the
        digit layout -- a mixed split's (``mixed``) low-digit layout, its high digit on
        ``copies`` DSPs); ``single_macs_per_dsp`` is :meth:`plan`'s density either way;
        ``engine_macs_per_dsp`` is :meth:`engine_plan`'s (what the search's cost model prices) and
        ``engine_builds`` says whether the row's plan is of a kind the conv engine builds (False: a
        table-only mixed-rate split).  ``signed_act``: the table for signed activation codes (every row
        then also says ``"signed_act": True``).
        """
        rows = []
        for k in ks:
            for w in BIT_WIDTHS:
                for a in BIT_WIDTHS:
                    single = self.plan(w, a, k, signed_act=signed_act)
                    p = self.best_plan(w, a, k, signed_act=signed_act) if split else single
                    layout: Any = p     # every plan kind answers the layout figures (a split: its digits')
                    row = {"w": w, "a": a, "k": k, "macs_per_dsp": p.macs_per_dsp, "kind": p.kind,
                           "depth": p.depth, "weight_port": layout.weight_port, "overlap": layout.overlap,
                           "correction": layout.correction, "n_weights": p.n_weights, "n_acts": p.n_acts,
                           "n_fields": len(p.fields), "act_sign_bit": layout.act_sign_bit}
                    figures = p.split_figures()
                    row.update({key: figures[key] for key in ("split", "dsps", "mixed", "copies", "shift",
                                                              "rounding", "digit_bits")})
                    row["single_macs_per_dsp"] = single.macs_per_dsp
                    row["engine_macs_per_dsp"] = self.engine_macs_per_dsp(w, a, k, signed_act=signed_act)
                    row["engine_builds"] = p.plan_type in ENGINE_PLAN_TYPES
                    if signed_act:
                        row["signed_act"] = True
                    rows.append(row)
        return rows

    def cost_table(self, ks: Sequence[int] = KERNEL_SIZES, *, signed_act: bool = False) -> list[dict]:
        """One row per (w, a, k): what each part of mixq uses.  ``single_macs_per_dsp``: :meth:`macs_per_dsp`
        (the best single layout); ``cost_macs_per_dsp``, ``engine_macs_per_dsp`` and ``engine_plan``:
        :meth:`engine_plan`'s (what the conv engine builds at best, and what ``mixq_nn.cost`` prices a layer
        with: the two are one figure); ``best_macs_per_dsp`` and ``best_plan``: :meth:`best_plan`'s (the
        density table's, a table-only mixed-rate split included).  ``signed_act``: for signed activation codes."""
        rows = []
        for k in ks:
            for w in BIT_WIDTHS:
                for a in BIT_WIDTHS:
                    engine = self.engine_plan(w, a, k, signed_act=signed_act)
                    best = self.best_plan(w, a, k, signed_act=signed_act)
                    rows.append({"w": w, "a": a, "k": k,
                                 "single_macs_per_dsp": self.macs_per_dsp(w, a, k, signed_act=signed_act),
                                 "cost_macs_per_dsp": self.engine_macs_per_dsp(w, a, k, signed_act=signed_act),
                                 "engine_macs_per_dsp": engine.macs_per_dsp, "engine_plan": engine.plan_type,
                                 "best_macs_per_dsp": best.macs_per_dsp, "best_plan": best.plan_type})
        return rows


def _flag(signed_act: object) -> bool:
    """``signed_act`` as a bool, or a ValueError naming it (a cache key must not tell 1 from True)."""
    if not isinstance(signed_act, bool):
        raise ValueError(f"signed_act={signed_act!r} must be True or False")
    return signed_act


#: The DSP48E2's planner (the module functions below use it).
PLANNER = Planner(DSP48E2_GEOMETRY)


def plans(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
          max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> list[Plan]:
    """:meth:`Planner.plans` of :data:`PLANNER`."""
    return PLANNER.plans(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth,
                         signed_act=signed_act)


def plan(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
         max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> Plan:
    """:meth:`Planner.plan` of :data:`PLANNER`: the best single DSP48E2 layout (cached)."""
    return PLANNER.plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth,
                        signed_act=signed_act)


def macs_per_dsp(w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> float:
    """:meth:`Planner.macs_per_dsp` of :data:`PLANNER` (the best single layout)."""
    return PLANNER.macs_per_dsp(w_bits, a_bits, k, signed_act=signed_act)


def engine_plan(w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> PackingPlan:
    """:meth:`Planner.engine_plan` of :data:`PLANNER`: the densest plan the conv engine builds."""
    return PLANNER.engine_plan(w_bits, a_bits, k, signed_act=signed_act)


def engine_macs_per_dsp(w_bits: int, a_bits: int, k: int, *, signed_act: bool = False) -> float:
    """:meth:`Planner.engine_macs_per_dsp` of :data:`PLANNER` (the search's cost model uses this)."""
    return PLANNER.engine_macs_per_dsp(w_bits, a_bits, k, signed_act=signed_act)


def best_plan(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
              max_acts: int | None = None, min_depth: int = 1, signed_act: bool = False) -> PackingPlan:
    """:meth:`Planner.best_plan` of :data:`PLANNER`.

    A :class:`~mixq_hw.packing.split.SplitPlan` runs on :class:`~mixq_hw.packing.split_core.SplitMAC`, a
    :class:`~mixq_hw.packing.mixed.MixedSplitPlan` on :class:`~mixq_hw.packing.mixed.MixedSplitMAC`, a
    Plan on PackedMAC (each plan's :meth:`~mixq_hw.packing.protocol.PackingPlan.make_core`).
    """
    return PLANNER.best_plan(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth,
                             signed_act=signed_act)


def all_splits(w_bits: int, a_bits: int, k: int, *, kinds: Sequence[str] = ("kernel", "filter"),
               max_acts: int | None = None, min_depth: int = 1, mixed: bool = False,
               signed_act: bool = False) -> list[PackingPlan]:
    """:meth:`Planner.splits` of :data:`PLANNER`."""
    return PLANNER.splits(w_bits, a_bits, k, kinds=kinds, max_acts=max_acts, min_depth=min_depth, mixed=mixed,
                          signed_act=signed_act)


def density_table(ks: Sequence[int] = KERNEL_SIZES, *, split: bool = True, signed_act: bool = False) -> list[dict]:
    """:meth:`Planner.density_table` of :data:`PLANNER`."""
    return PLANNER.density_table(ks, split=split, signed_act=signed_act)


def cost_table(ks: Sequence[int] = KERNEL_SIZES, *, signed_act: bool = False) -> list[dict]:
    """:meth:`Planner.cost_table` of :data:`PLANNER`."""
    return PLANNER.cost_table(ks, signed_act=signed_act)
