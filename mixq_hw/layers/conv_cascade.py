"""Which conv engines sum their simd lanes over the DSP48E2 P cascade, and with which packing plan.

A layer folded with ``multiplier="cascade"`` runs a kernel- or filter-packing layout on
:class:`~mixq_hw.packing.cascade.CascadeMAC` groups: ``cascade`` simd lanes whose products a DSP48E2
column sums over PCIN, their fields extracted once per group, the adder tree over lanes gone.  The layout
needs guard bits for that many lanes (its accumulation depth), so it is usually less dense than the
depth-1 layout the plain engine picks: the cascade trades DSPs for LUTs, and the folding search weighs it.
"""

from __future__ import annotations

import functools
from typing import Sequence, cast

import numpy as np

from mixq_hw.packing import plans
from mixq_hw.packing.cascade import cascade_supported
from mixq_hw.packing.layout import Plan
from mixq_hw.packing.protocol import PackingPlan

from .conv_weights import ConvGeometry, CoreWiring, cores_for, geometry_for_plan, macs_per_cycle, plan_fits

__all__ = ["check_cascade", "choose_cascade", "cascade_groups"]


def check_cascade(cascade: int, plan: PackingPlan, geo: ConvGeometry, where: str) -> int:
    """``cascade`` if a conv engine of geometry ``geo`` (already :func:`geometry_for_plan`) running ``plan`` can
    sum ``cascade`` simd lanes over the DSP48E2 P cascade: a dense layer, a kernel-packing layout or a
    filter-packing one covering the kernel row in one multiply, whose depth covers the lanes, ``simd`` a
    multiple of them.  ValueError naming the layer (``where``) otherwise."""
    if not isinstance(cascade, (int, np.integer)) or isinstance(cascade, bool) or cascade < 1:
        raise ValueError(f"cascade {cascade!r} must be a positive integer {where}")
    cascade = int(cascade)
    if cascade == 1:
        return 1
    why = cascade_supported(plan, cascade)
    if not why and geo.depthwise:
        why = "depthwise layers do not cascade (a lane is one channel)"
    if not why and plan.kind not in ("kernel", "filter"):
        why = f"{plan.name}: only kernel- and filter-packing layouts cascade"
    if not why and geo.sub_rows != 1:
        why = f"{plan.name}: a kernel row takes {geo.sub_rows} multiplies; a cascade needs one"
    if not why and geo.simd % cascade:
        why = f"simd {geo.simd} is not a multiple of the cascade's {cascade} lanes"
    if why:
        raise ValueError(f"cascade {cascade} {where}: {why}")
    return cascade


def _fits(plan: Plan, geo: ConvGeometry) -> bool:
    """Whether the engine can run ``plan`` in one multiply per kernel row at ``geo``'s pixels (a filter
    layout must cover the whole row)."""
    return plan_fits(plan, geo) and (plan.kind == "kernel" or plan.n_weights == geo.k)


def _longest(plan: Plan, geo: ConvGeometry) -> int:
    """The longest cascade over a divisor of simd that ``plan`` allows at ``geo`` (1: none)."""
    g = geometry_for_plan(geo, plan)
    for lanes in range(geo.simd, 1, -1):
        if geo.simd % lanes == 0 and not cascade_supported(plan, lanes) and g.sub_rows == 1 and _fits(plan, geo):
            return lanes
    return 1


def choose_cascade(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, plan: PackingPlan | None = None, *,
                   stride: int = 1, windows: Sequence[str] = ("taps",), signed_act: bool = False) -> tuple[Plan, int]:
    """The plan and cascade length of a ``multiplier="cascade"`` layer: among the layouts with weights on A:D
    at least 2 deep (kernel packing with ``"taps"`` in ``windows``; filter packing over the whole kernel row
    with ``"rows"``, stride 1 and k > 1), the one with the most useful MACs per DSP, then the longest
    cascade over a divisor of ``simd`` its depth allows.  With a pinned ``plan``, its longest cascade.
    ValueError naming the layer when there is none (``simd`` 1, a depthwise layer, or no layout deep
    enough, or signed input codes: the cascade layouts are unsigned-activation ones)."""
    where = f"in layer '{name}'"
    if signed_act:
        raise ValueError(f"multiplier 'cascade' {where} takes unsigned activation codes; this layer reads signed "
                         f"ones (after a LeakyReLU or a residual add): use 'dsp' or 'lut'")
    if geo.depthwise or geo.simd < 2:
        raise ValueError(f"multiplier 'cascade' {where} needs a dense layer with simd >= 2 (simd {geo.simd}"
                         f"{', depthwise' if geo.depthwise else ''})")
    if plan is not None:
        if plan.plan_type != "layout" or plan.multiplier != "dsp":
            raise ValueError(f"multiplier 'cascade' {where}: {plan.name} is not a single DSP layout")
        plan = cast(Plan, plan)             # the "layout" plan type is Plan
        lanes = _longest(plan, geo)
        if lanes < 2:
            raise ValueError(f"multiplier 'cascade' {where}: {plan.name} cascades over no divisor of simd "
                             f"{geo.simd} in one multiply per kernel row")
        return plan, check_cascade(lanes, plan, geometry_for_plan(geo, plan), where)
    kinds = (("kernel",) if "taps" in windows else ()) + \
        (("filter",) if "rows" in windows and stride == 1 and geo.k > 1 else ())
    found = _best(geo, w_bits, a_bits, kinds)
    if found is None:
        raise ValueError(f"multiplier 'cascade' {where}: no w{w_bits}a{a_bits} {' or '.join(kinds)}-packing "
                         f"layout with weights on A:D is deep enough for a cascade over a divisor of simd "
                         f"{geo.simd}")
    return found


@functools.lru_cache(maxsize=1 << 12)
def _best(geo: ConvGeometry, w_bits: int, a_bits: int, kinds: tuple[str, ...]) -> tuple[Plan, int] | None:
    best: tuple[float, int, Plan] | None = None
    for kind in kinds:
        max_acts = geo.pixels if kind == "kernel" else geo.pixels + geo.k - 1
        try:
            candidates = plans(w_bits, a_bits, geo.k, kinds=(kind,), max_acts=max_acts, min_depth=2)
        except ValueError:
            continue                # no layout of this kind that deep
        for p in candidates:
            lanes = _longest(p, geo)
            if lanes < 2:
                continue
            g = geometry_for_plan(geo, p)
            score = (macs_per_cycle(g) / cores_for(p, g), lanes)
            if best is None or score > best[:2]:
                best = (*score, p)
    return None if best is None else (best[2], best[1])


def cascade_groups(wirings: Sequence[CoreWiring], cascade: int) -> tuple[tuple[CoreWiring, ...], ...]:
    """``wirings`` in cascade groups: ``cascade`` wirings with the same outputs (fields, pixels, pe lanes), in
    wiring order (so in simd-lane order); ValueError if some outputs' wirings do not split evenly."""
    if cascade == 1:
        return tuple((w,) for w in wirings)
    by_outputs: dict[tuple, list[CoreWiring]] = {}
    for w in wirings:
        by_outputs.setdefault(tuple(o[:3] for o in w.outputs), []).append(w)
    groups: list[tuple[CoreWiring, ...]] = []
    for members in by_outputs.values():
        if len(members) % cascade:
            raise ValueError(f"{len(members)} cores feed the same fields, not a multiple of the cascade of "
                             f"{cascade} lanes")
        groups += [tuple(members[n:n + cascade]) for n in range(0, len(members), cascade)]
    return tuple(groups)
