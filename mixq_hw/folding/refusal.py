"""The search's refusal: what the closest folding it tried needs, and where a block RAM overflow goes."""

from __future__ import annotations

from typing import Mapping

from ..estimate import Resources
from ..graph import Graph
from ..layers.conv import ConvEngineSpec
from ..pipeline import LayerFold, plan_stages
from ..weight_fit import graph_weight_bits
from .budget import over_budget, over_budget_message
from .costs import NodeCosts

__all__ = ["overflow_share", "bram_use", "refusal"]

#: Bits of one BRAM36 with its parity bits (36 Kib; the widths that use them are 9, 18, 36 and 72 bits).
BRAM36_BITS = 36 * 1024


def overflow_share(used: Resources, limit: Resources) -> float:
    """How far ``used`` is over ``limit``: the sum of each overflowing resource's excess share of its limit."""
    return sum((u / b - 1) if b else float("inf") for u, b in over_budget(used, limit).values())


def bram_use(graph: Graph, folding: Mapping[str, LayerFold]) -> str:
    """Where the block RAM of ``graph`` under ``folding`` goes: its weight ROMs (against the weights' bits
    perfectly packed) and everything else (window and group buffers, FIFOs, pool lines, thresholds)."""
    plan = plan_stages(graph, folding)
    roms = {s.node: s.spec.weight_rom.estimate().bram36 for s in plan.stages if isinstance(s.spec, ConvEngineSpec)}
    rom_total, total = sum(roms.values()), plan.resources().bram36
    bits = sum(graph_weight_bits(graph).values())
    top = ", ".join(f"{n} {v:g}" for n, v in sorted(roms.items(), key=lambda item: -item[1])[:3] if v)
    return (f"BRAM36 goes to the weight ROMs {rom_total:g} (most: {top}; the weights are {bits:,} bits = "
            f"{bits / BRAM36_BITS:.1f} BRAM36 perfectly packed) and to buffers, windows and FIFOs "
            f"{total - rom_total:g}")


def refusal(graph: Graph, folding: Mapping[str, LayerFold], limit: Resources, costs: NodeCosts, tried: int
            ) -> tuple[str, dict[str, tuple[float, float]], dict[str, list[tuple[str, float]]]]:
    """``(message, over, users)`` of the OverBudgetError for a search that found no fit: ``folding`` is the
    closest one it costed (``{}``: none was, the smallest folding stands in)."""
    cost = costs.folding(folding)
    what = (f"graph {graph.name!r} with the smallest folding (one lane, one PE, one pixel per layer)" if not folding
            else f"graph {graph.name!r} at the closest folding tried ({cost.cycles:,} cycles/frame)")
    message, over, users = over_budget_message(what, cost.resources, limit,
                                               {n: c.resources for n, c in cost.nodes.items()})
    if "bram36" in over:
        message += "; " + bram_use(graph, folding)
    return message + f"; no folding found that fits ({tried} target intervals tried)", over, users
