"""mixq_hw: from an integer Graph to a packed-DSP streaming accelerator (Amaranth), its report and Verilog.

What a notebook needs, importable from here (loaded on first use, so ``import mixq_hw``
stays light and never needs torch):

- :func:`build_accelerator` / :class:`BuildResult` -- the whole build from a model, a
  Graph or a file (:mod:`mixq_hw.api`); :class:`BuildError`, :func:`load_graph`;
- :class:`Graph` -- the integer network; ``Graph.reference(images)`` is the golden model
  and ``Graph.reference(images, keep=True)`` its per-layer trace;
- :func:`choose_folding`, :func:`load_folding`, :class:`LayerFold`, :func:`plan_stages`,
  :class:`Accelerator`, :class:`AxiStreamTop`, :func:`emit_verilog` -- the steps of a build;
- :class:`PackedMAC`, :func:`best_plan`, :func:`plan` -- the DSP48E2 packing cores on their own;
- :func:`default_checkpoint` -- the shipped VGG-tiny (digits) checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .version import __version__

if TYPE_CHECKING:
    from .api import BuildResult, build_accelerator
    from .build import BuildError, load_graph
    from .folding import FoldingResult, choose_folding, load_folding
    from .graph import Graph, GraphError
    from .packing import plan
    from .packing.cores import PackedMAC
    from .packing.planner import best_plan
    from .pipeline import Accelerator, LayerFold, plan_stages
    from .resources import default_checkpoint
    from .top import AxiStreamTop, emit_verilog

#: public name -> the module (relative to this package) that defines it
_EXPORTS = {
    "build_accelerator": ".api", "BuildResult": ".api",
    "BuildError": ".build", "load_graph": ".build",
    "choose_folding": ".folding", "load_folding": ".folding", "FoldingResult": ".folding",
    "Graph": ".graph", "GraphError": ".graph",
    "plan": ".packing", "best_plan": ".packing.planner", "PackedMAC": ".packing.cores",
    "Accelerator": ".pipeline", "LayerFold": ".pipeline", "plan_stages": ".pipeline",
    "default_checkpoint": ".resources",
    "AxiStreamTop": ".top", "emit_verilog": ".top",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
