"""DSP48E2 packing: the planner that lays several low-bit products into one DSP, and the cores that implement its plans.

Public API (every plan kind implements :class:`PackingPlan`; its ``make_core`` builds the Amaranth core):

- :class:`Planner` -- the planner for one :class:`DspGeometry` (:data:`PLANNER`: the DSP48E2's), which
  owns the layout search, the split searches and their caches; the functions below use :data:`PLANNER`;
- :func:`plan` -- the exact layout with the most useful MACs per DSP48E2 per
  multiply for (weight bits, activation bits, kernel size), cached;
- :func:`plans` -- every exact candidate layout, best first (for folding);
- :func:`macs_per_dsp` -- the density of :func:`plan`'s single layout;
- :func:`engine_plan` -- the densest plan the conv engine builds (:data:`ENGINE_PLAN_TYPES`: a single
  layout or a digit split); :func:`engine_macs_per_dsp` -- its density, the one the search's cost model uses;
- :func:`best_plan` -- the densest plan of any kind (a digit or a table-only mixed-rate split where denser);
- :func:`density_table` -- the whole (w, a, k) table as rows of dicts; :func:`cost_table` -- per (w, a, k),
  the figure the search's cost model uses next to what the conv engine builds;
- :func:`explain` -- a plan's bit maps and fields as text;
- :func:`plan_from_dict` -- any plan kind from its ``to_dict()`` (a folding can record and pin a plan);
- bit-width rules and code ranges in :mod:`.bits` (dependency-free; ``mixq_nn`` and the graph import it),
  the DSP port widths in :mod:`.geometry`;
- the single-layout plan from :mod:`.layout`: :class:`Plan`, :class:`Field`,
  :func:`check`, :func:`max_depth`, :func:`expected_fields` (the promised
  arithmetic), :func:`emulate` / :func:`emulate_batch` (the DSP48E2's arithmetic,
  including plans whose activation word uses its port's sign bit,
  ``Plan.act_sign_bit``, corrected through the C port).

``python -m mixq_hw.packing --help`` prints the table, explains a plan, or
synthesises a core.
"""

from __future__ import annotations

import importlib
from typing import Any

from .explain import explain
from .geometry import DSP48E2_GEOMETRY, DspGeometry
from .layout import Field, Plan, check, emulate, emulate_batch, expected_fields, max_depth
from .protocol import PackingPlan, plan_from_dict

#: Names the planner provides, loaded on first use: the planner's digit-split searches build on the
#: Amaranth cores, while the plan data above (and :mod:`.bits`, which ``mixq_nn`` and the graph import)
#: need only numpy.
_PLANNER_NAMES = ("plan", "plans", "best_plan", "engine_plan", "macs_per_dsp", "engine_macs_per_dsp",
                  "density_table", "cost_table", "Planner", "PLANNER", "ENGINE_PLAN_TYPES")

__all__ = ["plan", "plans", "best_plan", "engine_plan", "macs_per_dsp", "engine_macs_per_dsp", "ENGINE_PLAN_TYPES",
           "density_table", "cost_table", "explain",
           "Planner", "PLANNER", "PackingPlan", "plan_from_dict", "DspGeometry", "DSP48E2_GEOMETRY",
           "Plan", "Field", "check", "max_depth", "expected_fields", "emulate", "emulate_batch"]


def __getattr__(name: str) -> Any:
    if name in _PLANNER_NAMES:
        value = getattr(importlib.import_module(".planner", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
