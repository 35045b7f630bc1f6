"""What a folding search returns, and the error for a design over budget (with what fits instead)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from ..estimate import Resources
from ..pipeline import LayerFold, PipelinePlan

__all__ = ["FoldingResult", "OverBudgetError", "RESOURCE_NAMES", "as_resources", "over_budget",
           "over_budget_message", "accelerator_limit"]

#: How each Resources field is named in messages.
RESOURCE_NAMES = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram36": "BRAM36"}
KEYS = tuple(RESOURCE_NAMES)


@dataclass
class FoldingResult:
    """The chosen folding, its pipeline plan and figures (resources are estimates)."""

    folding: dict[str, LayerFold]
    plan: PipelinePlan
    cycles_per_frame: int
    resources: Resources
    fps: float
    bottleneck: str
    budget: Resources
    clock_mhz: float
    search_seconds: float = 0.0
    #: nodes whose stages were built (cache misses)
    evaluations: int = 0
    #: the target intervals tried, as (cycles, fits)
    targets: list[tuple[int, bool]] = field(default_factory=list)

    def layers(self) -> list[dict]:
        """Per graph node: fold (conv/linear), cycles (slowest stage) and resources, in graph order."""
        rows = []
        for name, entry in self.plan.per_node().items():
            fold = self.folding.get(name)
            rows.append({"node": name, "op": self.plan.graph.node(name).op,
                         "fold": fold.to_dict() if fold else None, "cycles": entry["cycles"],
                         "resources": entry["resources"].to_dict()})
        return rows

    def to_dict(self) -> dict:
        """The figures as JSON-ready data (the plan itself is left out)."""
        return {"folding": {k: v.to_dict() for k, v in self.folding.items()},
                "cycles_per_frame": self.cycles_per_frame, "fps": self.fps, "clock_mhz": self.clock_mhz,
                "bottleneck": self.bottleneck, "resources": self.resources.to_dict(),
                "budget": self.budget.to_dict(), "search_seconds": self.search_seconds,
                "evaluations": self.evaluations, "layers": self.layers()}


class OverBudgetError(ValueError):
    """A design that needs more than the budget: which resources, by how much, who uses them, what fits."""

    def __init__(self, message: str, *, over: dict[str, tuple[float, float]],
                 users: dict[str, list[tuple[str, float]]], best: FoldingResult | None = None):
        super().__init__(message)
        #: resource -> (used, budget)
        self.over = over
        #: resource -> [(node, amount)], largest first
        self.users = users
        #: the best folding that fits (None when nothing fits or it was not searched)
        self.best = best


def as_resources(budget: object) -> Resources:
    """A Resources from a Resources or any object with dsp/lut/ff/bram36 (e.g. ``boards.Budget``)."""
    try:
        return Resources(**{k: getattr(budget, k) for k in KEYS})
    except AttributeError:
        raise ValueError(f"budget must have dsp, lut, ff and bram36 (a Resources), got {budget!r}") from None


def accelerator_limit(budget: Resources, utilization: float = 1.0, reserve: Resources | None = None) -> Resources:
    """What the accelerator may use: ``utilization`` of the device ``budget`` (rounded down; BRAM36 to halves),
    less the shell's ``reserve``.  The target applies to the whole PL, shell included.  A ValueError when
    ``utilization`` is outside (0, 1] or the reserve leaves nothing of some resource the budget has."""
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization {utilization!r} must be in (0, 1]")
    reserve = reserve or Resources()
    limit = Resources(dsp=math.floor(budget.dsp * utilization) - reserve.dsp,
                      lut=math.floor(budget.lut * utilization) - reserve.lut,
                      ff=math.floor(budget.ff * utilization) - reserve.ff,
                      bram36=math.floor(2 * budget.bram36 * utilization) / 2 - reserve.bram36)
    short = [RESOURCE_NAMES[k] for k in KEYS if getattr(limit, k) < 0 or (getattr(budget, k) and getattr(limit, k) == 0)]
    if short:
        raise ValueError(f"utilization {utilization:g} of the budget leaves no {', '.join(short)} for the "
                         f"accelerator once the shell's reserve ({reserve}) is taken")
    return limit


def over_budget(used: Resources, limit: Resources) -> dict[str, tuple[float, float]]:
    """Resource -> (used, limit) for every resource over its limit."""
    return {k: (getattr(used, k), getattr(limit, k)) for k in KEYS if getattr(used, k) > getattr(limit, k)}


def over_budget_message(what: str, used: Resources, limit: Resources, per_node: Mapping[str, Resources]
                        ) -> tuple[str, dict[str, tuple[float, float]], dict[str, list[tuple[str, float]]]]:
    """``(message, over, users)``: each resource over, by how much, and the three nodes using most of it."""
    over = over_budget(used, limit)
    users = {k: sorted(((n, getattr(r, k)) for n, r in per_node.items() if getattr(r, k)),
                       key=lambda item: -item[1])[:3] for k in over}
    parts = []
    for k, (u, b) in over.items():
        top = ", ".join(f"{n} {v:,g}" for n, v in users[k])
        parts.append(f"{RESOURCE_NAMES[k]} {u:,g} > {b:,g} (+{u - b:,g}, {100 * u / b if b else math.inf:.0f}% "
                     f"of the budget; most: {top})")
    return f"{what} is over budget: " + "; ".join(parts), over, users
