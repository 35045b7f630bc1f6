"""Which conv engines sum their simd lanes over the DSP48E2 P cascade, and with which packing plan.

A layer folded with ``multiplier="cascade"`` runs a kernel-packing layout on
:class:`~mixq_hw.packing.cascade.CascadeMAC` groups: ``cascade`` simd lanes whose products a DSP48E2
column sums over PCIN, their fields extracted once per group, the adder tree over lanes gone.  The layout
needs guard bits for that many lanes (its accumulation depth), so it is usually less dense than the
depth-1 layout the plain engine picks: the cascade trades DSPs for LUTs, and the folding search weighs it.
"""

from __future__ import annotations

import functools

import numpy as np

from mixq_hw.packing import plans
from mixq_hw.packing.cascade import cascade_supported
from mixq_hw.packing.layout import Plan
from mixq_hw.packing.protocol import PackingPlan

from .conv_weights import ConvGeometry, cores_for, macs_per_cycle

__all__ = ["check_cascade", "choose_cascade"]


def check_cascade(cascade: int, plan: PackingPlan, geo: ConvGeometry, where: str) -> int:
    """``cascade`` if a conv engine of geometry ``geo`` running ``plan`` can sum ``cascade`` simd lanes over
    the DSP48E2 P cascade: a dense kernel-packing layout whose depth covers the lanes, ``simd`` a multiple of
    them.  ValueError naming the layer (``where``) otherwise."""
    if not isinstance(cascade, (int, np.integer)) or isinstance(cascade, bool) or cascade < 1:
        raise ValueError(f"cascade {cascade!r} must be a positive integer {where}")
    cascade = int(cascade)
    if cascade == 1:
        return 1
    why = cascade_supported(plan, cascade) if isinstance(plan, Plan) else f"{plan.name}: not a single layout"
    if not why and (plan.kind != "kernel" or geo.depthwise):
        why = f"{plan.name}: only dense kernel-packing layers cascade"
    if not why and geo.simd % cascade:
        why = f"simd {geo.simd} is not a multiple of the cascade's {cascade} lanes"
    if why:
        raise ValueError(f"cascade {cascade} {where}: {why}")
    return cascade


def choose_cascade(geo: ConvGeometry, w_bits: int, a_bits: int, name: str,
                   plan: PackingPlan | None = None) -> tuple[Plan, int]:
    """The plan and cascade length of a ``multiplier="cascade"`` layer: over the divisors ``g >= 2`` of
    ``simd``, the kernel layouts (weights on A:D, at most ``pixels`` act slots) at least ``g`` deep, the one
    with the most useful MACs per DSP, then the longest cascade.  With a pinned ``plan``, the longest
    cascade it allows.  ValueError naming the layer when there is none (``simd`` 1, a depthwise layer, or
    no layout deep enough)."""
    where = f"in layer '{name}'"
    if geo.depthwise or geo.simd < 2:
        raise ValueError(f"multiplier 'cascade' {where} needs a dense layer with simd >= 2 (simd {geo.simd}"
                         f"{', depthwise' if geo.depthwise else ''})")
    if plan is not None:
        if not isinstance(plan, Plan):
            raise ValueError(f"multiplier 'cascade' {where}: {plan.name} is not a single layout")
        lanes = [g for g in range(geo.simd, 1, -1) if geo.simd % g == 0 and plan.kind == "kernel"
                 and not cascade_supported(plan, g)]
        if not lanes:
            raise ValueError(f"multiplier 'cascade' {where}: {plan.name} cascades over no divisor of simd "
                             f"{geo.simd}")
        return plan, check_cascade(lanes[0], plan, geo, where)
    found = _best(geo, w_bits, a_bits)
    if found is None:
        raise ValueError(f"multiplier 'cascade' {where}: no w{w_bits}a{a_bits} kernel layout with weights on "
                         f"A:D is deep enough for a cascade over a divisor of simd {geo.simd}")
    return found


@functools.lru_cache(maxsize=1 << 12)
def _best(geo: ConvGeometry, w_bits: int, a_bits: int) -> tuple[Plan, int] | None:
    best: tuple[float, int, Plan] | None = None
    for g in (d for d in range(2, geo.simd + 1) if geo.simd % d == 0):
        try:
            candidates = plans(w_bits, a_bits, geo.k, kinds=("kernel",), max_acts=geo.pixels, min_depth=g)
        except ValueError:
            continue                # no kernel layout that deep
        for p in candidates:
            if cascade_supported(p, g):
                continue
            score = (macs_per_cycle(geo) / cores_for(p, geo), g)
            if best is None or score > best[:2]:
                best = (*score, p)
    return None if best is None else (best[2], best[1])
