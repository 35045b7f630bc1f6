"""Folding: the parallelism of every conv/linear layer, chosen to maximise frames per second under a budget.

- :func:`choose_folding` -- the balanced folding with the most fps under a ``Resources`` budget;
- :func:`check_folding`, :func:`load_folding`, :func:`save_folding` -- foldings as checked data and JSON files;
- :func:`check_budget` -- an over-budget plan gets an :class:`OverBudgetError` that says what fits instead;
- :class:`~mixq_hw.folding.costs.NodeCosts` -- the node-by-node cost model the search runs on.
"""

from .costs import NodeCosts
from .budget import RESOURCE_NAMES, FoldingResult, OverBudgetError
from .search import check_budget, choose_folding
from .spec import FOLD_KEYS, FoldingError, check_folding, layer_candidates, load_folding, save_folding

__all__ = ["choose_folding", "FoldingResult", "check_budget", "OverBudgetError", "check_folding",
           "load_folding", "save_folding", "FoldingError", "layer_candidates", "NodeCosts", "FOLD_KEYS",
           "RESOURCE_NAMES"]
