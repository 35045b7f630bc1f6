"""The folding search: the highest frame rate whose design fits a resource budget.

The pipeline's rate is set by its slowest stage, so the search balances it
rather than growing layers greedily (FINN's resource-blind approach): it
searches the target interval ``T`` (cycles per frame) and, for each ``T``,
gives every conv/linear layer the cheapest fold whose stages (its own plus the
requant/regroup/pool/fork stages downstream of it, which depend on its ``pe``
and ``pixels``) all run within ``T``; if the sum fits the budget, ``T`` is
feasible.  "Cheapest" weighs each resource by its share of the budget; when
the sum overflows, the weights take multiplicative (Lagrangian) steps --
overflowing resources dearer, ones with slack cheaper -- and the layers are
chosen again, so a DSP-bound design trades DSPs for LUTs or BRAM and back.
When no weighting fits, a last try per target combines the layers' (DSP, LUT)
fronts exactly by dynamic programming over DSP counts (:meth:`_Search.knapsack`):
DSPs and LUTs binding together leave gaps no single weighting crosses.

Targets: every fold's engine interval (:func:`~mixq_hw.folding.costs.engine_figures`,
the engine's own plain-Python figures), later also every stage cycle count met.
The search starts at the first target whose multipliers alone can fit the
DSP and LUT budgets (:meth:`_Search.floor_failure`), gallops up by the last
overflow until a target fits, then bisects.  Per layer, the folds whose engine
meets ``T`` (and is at most ``SPAN`` times faster) are visited by the score of
their multipliers alone (engine DSPs, or the LUT cores' LUTs of a fold on LUT
multipliers, ``LayerFold.multiplier == "lut"``; of those only the few that
:data:`LUT_FRONT` keeps), and the visit stops once that bound scores more than
the best fold found (a branch and bound); once DSPs have overflowed at a target, a layer read by a
requant tries each fold with the DSP48E2 requantizer and with the threshold one (``LayerFold.requant``, no
DSP: :mod:`mixq_hw.layers.threshold`), which trades the requant's DSPs for LUTs and block RAM; once block RAM
has overflowed, a layer of at most :data:`LUT_WEIGHTS_MAX_BITS` weight bits tries each fold with its weight ROM
in LUT logic too (``LayerFold.weights``); every fold kept is built for real through
:class:`~mixq_hw.folding.costs.NodeCosts` (cached), and the result is planned
with ``plan_stages`` and checked against the model.

A target the weights' path misses over every candidate (``pe`` not dividing the output channels included)
is tried again over the folds whose ``pe`` divides them, on the same node costs: the larger candidate set
changes the path, and a fit the smaller set reaches is not lost.

The result is a heuristic optimum: for each target the per-layer choice under
one weighting is exact, and tests/test_folding.py checks the chosen interval
against brute force on small graphs with DSP-, LUT- and FF-bound budgets; when
two resources bind at once a fit that no weighting reaches can be missed.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Concatenate, NamedTuple, ParamSpec, Sequence, TypeVar

from ..estimate import Resources
from ..graph import Graph, Node
from ..pipeline import LayerFold, PipelinePlan, plan_stages
from .budget import (KEYS, RESOURCE_NAMES, FoldingResult, OverBudgetError, accelerator_limit, as_resources,
                     over_budget, over_budget_message)
from .costs import NodeCost, NodeCosts, StreamFormat, engine_figures
from .refusal import overflow_share, refusal
from ..weight_fit import graph_weight_bits
from .spec import MULTIPLIERS, REQUANTIZERS, WEIGHT_STORES, fold_layers, layer_candidates

__all__ = ["choose_folding", "check_budget", "fit_at", "FitAttempt", "SPAN"]

#: Weight growth of an overflowing resource, and how often the layers are chosen again per target.
_WEIGHT_STEP, _WEIGHT_ROUNDS = 8.0, 8
#: First weights of the resources' budget shares in a fold's score: packed designs run out of DSPs
#: first, and a low weight elsewhere lets the DSP bound prune; an overflowing resource's weight grows.
_START_WEIGHTS = {"dsp": 1.0, "lut": 0.25, "ff": 0.25, "bram36": 0.25}
#: For a target T a layer's folds are those whose engine interval lies in [min(T, slowest) / SPAN, T]:
#: a fold more than SPAN times faster than needed has about SPAN times the parallelism and is not
#: cheaper in practice, and leaving it out bounds the work when the DSP bound prunes little
#: (BRAM- or LUT-bound budgets).
SPAN = 4
#: At most this many target intervals are tried.
_MAX_TARGETS = 40
#: LUT-multiplier folds a layer keeps: those that fewer than this many others beat on both engine cycles
#: and LUT-core LUTs.  A LUT fold's other stages (window, requant ...) are the same as a DSP fold's of
#: its simd/pe/pixels, so its cores decide; without the cut every LUT fold within a target would be
#: built (their multipliers' bound prunes far less than DSP counts do).
LUT_FRONT = 3
#: A layer with at most this many weight bits may keep its weight ROM in LUT logic (``LayerFold.weights``,
#: about a LUT per 51 bits: 256 Kbit is some 5,000 LUTs); the search tries it once block RAM has overflowed.
LUT_WEIGHTS_MAX_BITS = 256 * 1024


def _front(rows: list[tuple[int, int, int, LayerFold]], keep: int) -> list[tuple[int, int, int, LayerFold]]:
    """The rows ``(dsps, luts, -cycles, fold)`` that fewer than ``keep`` kept rows dominate (fewer or
    equal LUTs and cycles), visiting by LUTs then cycles."""
    kept: list[tuple[int, int, int, LayerFold]] = []
    for row in sorted(rows, key=lambda r: (r[1], -r[2])):
        if sum(1 for k in kept if -k[2] <= -row[2]) < keep:
            kept.append(row)
    return kept


@dataclass
class _Choice:
    fold: LayerFold
    nodes: dict[str, NodeCost]          # the layer and its region
    resources: Resources
    cycles: int


@dataclass
class _Assignment:
    folding: dict[str, LayerFold]
    resources: Resources
    cycles: int
    failure: str = ""
    #: how much larger the next target should be: the worst overflow ratio (1.1 when no fold met the target)
    overflow: float = 1.1


class _Search:
    """State of one search: candidates, regions, caches."""

    def __init__(self, graph: Graph, limit: Resources, out_lanes: int | None, progress,
                 multipliers: tuple[str, ...] = ("dsp",), requantizers: tuple[str, ...] = ("dsp",), *,
                 padded_pe: bool = False, costs: NodeCosts | None = None):
        self.graph, self.limit, self.progress = graph, limit, progress
        self.costs = costs or NodeCosts(graph, out_lanes=out_lanes)
        self.layers = fold_layers(graph)
        if not self.layers:
            raise ValueError(f"graph {graph.name!r} has no conv/linear layer to fold")
        names = {n.name for n in self.layers}
        # region of a layer: the non-conv nodes fed only by it (through each other); they depend on its fold
        self.owner: dict[str, str] = {}
        for node in graph:
            if node.name in names:
                continue
            owners = {src if src in names else self.owner.get(src) for src in node.inputs}
            if len(owners) == 1 and None not in owners:
                self.owner[node.name] = owners.pop()
        self.region = {n.name: [m for m in graph if self.owner.get(m.name) == n.name] for n in self.layers}
        #: per layer, the requantizer kinds its folds try: thresholds too where a requant reads it
        self.requantizers = {n.name: requantizers if any(c.op == "requant" for c in graph.consumers(n.name))
                             else ("dsp",) for n in self.layers}
        #: per layer, where its folds may keep the weights: LUT logic too for a layer of few weight bits
        bits = graph_weight_bits(graph)
        self.weight_stores = {n.name: WEIGHT_STORES if bits[n.name] <= LUT_WEIGHTS_MAX_BITS else ("bram",)
                              for n in self.layers}
        #: per layer: (engine DSPs, LUT-core LUTs, -engine cycles, fold), fewest DSPs first; folds the engine
        #: rejects are left out
        self.candidates: dict[str, list[tuple[int, int, int, LayerFold]]] = {}
        #: engine cycles per (layer, fold): the stage cycles of a fold are at least this
        self.ideal: dict[tuple[str, LayerFold], int] = {}
        windows = self.costs.engine_windows()
        for index, node in enumerate(self.layers):
            started = time.perf_counter()
            rows, reason = [], ""
            for fold in layer_candidates(graph, node, multipliers, padded_pe=padded_pe):
                try:
                    cycles, dsps, luts = engine_figures(graph, node, fold, windows)
                except ValueError as err:
                    reason = reason or str(err)
                    continue
                self.ideal[(node.name, fold)] = cycles
                rows.append((dsps, luts, -cycles, fold))
            if not rows:
                raise ValueError(f"layer {node.name!r}: the conv engine accepts none of its foldings "
                                 f"(e.g. {LayerFold()}: {reason})")
            rows = [r for r in rows if r[3].multiplier != "lut"] + \
                _front([r for r in rows if r[3].multiplier == "lut"], LUT_FRONT)
            self.candidates[node.name] = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
            if progress:
                progress(f"layer {index + 1}/{len(self.layers)} {node.name}: {len(rows)} foldings costed "
                         f"({time.perf_counter() - started:.1f} s)")
        #: the largest engine interval of each layer
        self.slowest = {n.name: max(-c for _, _, c, _ in self.candidates[n.name]) for n in self.layers}
        self._regions: dict[tuple[str, StreamFormat], tuple[dict[str, NodeCost], Resources, int] | None] = {}

    def dsp_floor(self, target: int) -> int:
        """A lower bound on the DSPs of any folding within ``target``: the packed multipliers alone
        (more than the budget when some layer has no fold that fast; 0 when LUT folds are allowed)."""
        total = 0
        for name, rows in self.candidates.items():
            total += min((d for d, _, c, _ in rows if -c <= target), default=self.limit.dsp + 1)
        return total

    #: Mixes of the DSP and LUT budget shares that :meth:`floor_failure` tries.
    _MIXES = (1.0, 0.75, 0.5, 0.25, 0.0)

    def floor_failure(self, target: int) -> str:
        """Why no folding within ``target`` can fit from the multipliers alone ("" when it may fit).

        For each mix ``m``, every fold costs at least ``m * DSPs / DSP budget + (1 - m) * LUT-core LUTs /
        LUT budget``; if the cheapest fold of every layer sums to more than 1, DSPs or LUTs overflow
        (a Lagrangian lower bound; with DSP folds only it is the DSP floor).
        """
        dsp_cap, lut_cap = max(self.limit.dsp, 1e-9), max(self.limit.lut, 1e-9)
        for mix in self._MIXES:
            total = 0.0
            for rows in self.candidates.values():
                total += min((mix * d / dsp_cap + (1 - mix) * lut / lut_cap for d, lut, c, _ in rows
                              if -c <= target), default=math.inf)
            if total > 1 + 1e-12:
                if mix == 1.0:
                    return f"needs at least {self.dsp_floor(target)} DSPs for the multipliers alone"
                return (f"the multipliers alone need more than the DSP and LUT budgets allow ({mix:g} x DSP "
                        f"share + {1 - mix:g} x LUT share >= {total:.2f})")
        return ""

    # ---- costs ---------------------------------------------------------------------------------

    def score(self, r: Resources, weights: dict[str, float]) -> float:
        total = 0.0
        for k in KEYS:
            used, cap = getattr(r, k), getattr(self.limit, k)
            if used:
                total += weights[k] * (used / cap if cap else 1e9 * used)
        return total

    def region_cost(self, layer: str, fmt: StreamFormat):
        """The layer's region fed by ``fmt``: (node costs, resources, slowest cycles), or None if it cannot be built."""
        key = (layer, fmt)
        if key not in self._regions:
            formats = {layer: fmt}
            nodes: dict[str, NodeCost] = {}
            try:
                for node in self.region[layer]:
                    cost = self.costs.node(node, None, tuple(formats[s] for s in node.inputs))
                    nodes[node.name] = cost
                    if cost.output is not None:
                        formats[node.name] = cost.output
            except ValueError:
                self._regions[key] = None
            else:
                total = Resources()
                for c in nodes.values():
                    total = total + c.resources
                self._regions[key] = (nodes, total, max((c.cycles for c in nodes.values()), default=0))
        return self._regions[key]

    def cheapest(self, node: Node, inputs: tuple[StreamFormat, ...], target: int,
                 weights: dict[str, float]) -> _Choice | None:
        """The lowest-scoring fold of ``node`` whose stages and region all run within ``target`` cycles."""
        best, best_score = None, math.inf
        dsp_weight = weights["dsp"] / self.limit.dsp if self.limit.dsp else 1e9
        lut_weight = weights["lut"] / self.limit.lut if self.limit.lut else 1e9
        floor = min(target, self.slowest[node.name]) / SPAN
        # a fold's score is at least its multipliers' share: visit folds by that bound, stop past the best
        bounded = sorted(((dsp_weight * dsps + lut_weight * luts, minus_cycles, fold)
                          for dsps, luts, minus_cycles, fold in self.candidates[node.name]
                          if floor <= -minus_cycles <= target), key=lambda r: r[:2])
        for bound, _, fold in bounded:
            if bound >= best_score:
                break
            # thresholds only once DSPs have overflowed at this target, weights in LUTs once block RAM has:
            # where they are left the design stays as it was
            for variant in self.variants(node.name, fold, requant=weights["dsp"] > _START_WEIGHTS["dsp"],
                                         stores=weights["bram36"] > _START_WEIGHTS["bram36"]):
                try:
                    own = self.costs.node(node, variant, inputs)
                except ValueError:
                    continue
                if own.cycles > target or self.score(own.resources, weights) >= best_score:
                    continue
                region = self.region_cost(node.name, own.output)
                if region is None or region[2] > target:
                    continue
                total = own.resources + region[1]
                s = self.score(total, weights)
                if s < best_score:
                    best_score = s
                    best = _Choice(variant, {node.name: own, **region[0]}, total, max(own.cycles, region[2]))
        return best

    def variants(self, layer: str, fold: LayerFold, *, requant: bool = True, stores: bool = True
                 ) -> list[LayerFold]:
        """``fold`` with each requantizer kind the layer may use (``requant``) and each place for its weights
        (``stores``), the defaults first: they win ties."""
        folds = [fold if kind == fold.requant else replace(fold, requant=kind)
                 for kind in (self.requantizers[layer] if requant else (fold.requant,))]
        return [f if store == f.weights else replace(f, weights=store) for store in
                (self.weight_stores[layer] if stores else (fold.weights,)) for f in folds]

    def assign(self, target: int, weights: dict[str, float]) -> _Assignment:
        """The cheapest fold of every layer within ``target``, walking the graph in order."""
        formats: dict[str, StreamFormat] = {}
        folding: dict[str, LayerFold] = {}
        total, cycles = Resources(), 0
        done: dict[str, NodeCost] = {}
        for node in self.graph:
            inputs = tuple(formats[s] for s in node.inputs)
            if node.name in self.region:
                choice = self.cheapest(node, inputs, target, weights)
                if choice is None:
                    return _Assignment(folding, total, cycles, f"no fold of layer {node.name!r} runs within "
                                                               f"{target:,} cycles")
                folding[node.name] = choice.fold
                done.update(choice.nodes)
                total, cycles = total + choice.resources, max(cycles, choice.cycles)
            elif node.name not in done:
                try:
                    cost = self.costs.node(node, None, inputs)
                except ValueError as err:
                    return _Assignment(folding, total, cycles, f"node {node.name!r}: {err}")
                if cost.cycles > target:
                    return _Assignment(folding, total, cycles, f"node {node.name!r} needs {cost.cycles:,} cycles")
                done[node.name] = cost
                total, cycles = total + cost.resources, max(cycles, cost.cycles)
            if done[node.name].output is not None:
                formats[node.name] = done[node.name].output
        return _Assignment(folding, total, cycles)

    def knapsack(self, target: int, reference: _Assignment,
                 weightings: Sequence[dict[str, float]] = ({"lut": 1.0},)) -> _Assignment:
        """A folding within ``target`` whose DSPs fit and whose other resources score least: per layer the
        Pareto front of its folds (with their regions) within ``target`` over (DSPs, score), combined exactly
        by dynamic programming over DSP counts (a multiple-choice knapsack), for each of ``weightings`` (the
        score's weights of the LUT, FF and BRAM budget shares) until one fits.  It reaches fits that no
        weighting of :meth:`assign` does when DSPs and another resource bind together.  Each layer's input
        format is the one ``reference`` (a complete assignment) feeds it, so a sum is exact only where the
        layers' choices leave their successors' input formats as they were; results are costed again."""
        formats: dict[str, StreamFormat] = {}
        done: dict[str, NodeCost] = {}
        rows: dict[str, list[tuple[Resources, LayerFold]]] = {}
        for node in self.graph:
            inputs = tuple(formats[s] for s in node.inputs)
            if node.name in self.region:
                floor = min(target, self.slowest[node.name]) / SPAN
                rows[node.name] = []
                for _, _, minus_cycles, fold in self.candidates[node.name]:
                    if not floor <= -minus_cycles <= target:
                        continue
                    for variant in self.variants(node.name, fold):
                        try:
                            own = self.costs.node(node, variant, inputs)
                        except ValueError:
                            continue
                        region = self.region_cost(node.name, own.output) if own.cycles <= target else None
                        if region is not None and region[2] <= target:
                            rows[node.name].append((own.resources + region[1], variant))
                if not rows[node.name]:
                    return _Assignment({}, Resources(), target, f"no fold of layer {node.name!r} runs within "
                                                                f"{target:,} cycles")
                own = self.costs.node(node, reference.folding[node.name], inputs)
                done.update({node.name: own, **self.region_cost(node.name, own.output)[0]})
            elif node.name not in done:
                done[node.name] = self.costs.node(node, None, inputs)
            if done[node.name].output is not None:
                formats[node.name] = done[node.name].output
        result = _Assignment({}, Resources(), target, "over budget: DSP")
        for weighting in weightings:
            weights = {k: weighting.get(k, 0.0) for k in KEYS} | {"dsp": 0.0}
            # least score for each DSP count, layer by layer, over each layer's (DSP, score) front
            table: dict[int, tuple[float, dict[str, LayerFold]]] = {0: (0.0, {})}
            for name, options in rows.items():
                front: list[tuple[int, float, LayerFold]] = []
                for used, fold in sorted(options, key=lambda r: (r[0].dsp, self.score(r[0], weights))):
                    score = self.score(used, weights)
                    if not front or score < front[-1][1]:
                        front.append((used.dsp, score, fold))
                grown: dict[int, tuple[float, dict[str, LayerFold]]] = {}
                for used_dsp, (total, chosen) in table.items():
                    for dsps, score, fold in front:
                        key = used_dsp + dsps
                        if key <= self.limit.dsp and (key not in grown or grown[key][0] > total + score):
                            grown[key] = (total + score, {**chosen, name: fold})
                table = grown
            if not table:
                break
            folding = min(table.values(), key=lambda entry: entry[0])[1]
            try:
                cost = self.costs.folding(folding)
            except ValueError as err:
                result = _Assignment(folding, Resources(), target, str(err))
                continue
            over = over_budget(cost.resources, self.limit)
            failure = "over budget: " + ", ".join(f"{RESOURCE_NAMES[k]} {u:,g}/{b:,g}" for k, (u, b) in over.items())
            result = _Assignment(folding, cost.resources, cost.cycles,
                                 failure if over else "" if cost.cycles <= target else f"{cost.cycles:,} cycles")
            if not result.failure:
                break
        return result

    def feasible(self, target: int) -> _Assignment:
        """The cheapest assignment within ``target`` that fits, re-weighting overflowing resources."""
        weights = dict(_START_WEIGHTS)
        floor = self.floor_failure(target)
        if floor:
            return _Assignment({}, Resources(), target, floor)
        closest = None             # the round that overflowed least
        damping, last_over = 1.0, None
        for _ in range(_WEIGHT_ROUNDS):
            result = self.assign(target, weights)
            if result.failure:
                break
            over = over_budget(result.resources, self.limit)
            if not over:
                break
            result.failure = "over budget: " + ", ".join(f"{RESOURCE_NAMES[k]} {u:,g}/{b:,g}"
                                                        for k, (u, b) in over.items())
            result.overflow = min(2.0, max(1.01, *(u / b if b else 2.0 for u, b in over.values())))
            if closest is None or result.overflow < closest.overflow:
                closest = result
            # a multiplicative (Lagrangian) step: overflowing resources cost more, ones with slack less.
            # When the overflow moves to other resources (e.g. all layers flip from DSPs to LUT multipliers
            # and back) the steps halve, bisecting the weights' ratio towards a mixed choice.
            if last_over is not None and set(over) != last_over:
                damping /= 2
            last_over = set(over)
            for k in KEYS:
                used, cap = getattr(result.resources, k), getattr(self.limit, k)
                share = used / cap if cap else (2.0 if used else 0.0)
                weights[k] *= min(_WEIGHT_STEP, max(0.5, share ** 8)) ** damping
        if result.failure and closest is not None:
            exact = self.knapsack(target, closest, ({"lut": 1.0}, weights))
            result = closest if exact.failure else exact
        return result


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _on_frozen_graph(search: Callable[Concatenate[Graph, _P], _R]) -> Callable[Concatenate[Graph, _P], _R]:
    """``search`` run inside :meth:`Graph.frozen`: the graph is checked once, not at every value look-up."""
    @functools.wraps(search)
    def frozen(graph: Graph, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with graph.frozen():
            return search(graph, *args, **kwargs)
    return frozen


@_on_frozen_graph
def choose_folding(graph: Graph, budget: Resources, *, clock_mhz: float = 300.0, utilization: float = 1.0,
                   progress: Callable[[str], None] | None = None, out_lanes: int | None = None,
                   multipliers: Sequence[str] = MULTIPLIERS, reserve: Resources | None = None,
                   requantizers: Sequence[str] = REQUANTIZERS, padded_pe: bool = False) -> FoldingResult:
    """The folding with the most frames per second whose estimated DSP/LUT/FF/BRAM fit
    ``budget * utilization - reserve`` (:func:`~mixq_hw.folding.budget.accelerator_limit`).

    ``budget``: a Resources (or anything with dsp/lut/ff/bram36, e.g. ``boards.Budget``); all four
    are checked.  ``reserve``: what the board's shell takes (e.g. ``boards.Board.shell``).  ``multipliers``: the kinds a layer may use (``"dsp"`` packed DSP48E2s, ``"lut"``
    shift-and-add LUT cores); with both, layers move to LUTs where DSPs run out and LUTs are left.
    ``requantizers``: the requant kinds a layer's fold may pick (``"dsp"``, ``"threshold"``: no DSP).
    ``padded_pe``: also offer each layer the ``pe`` values that do not divide its output channels (the last fold
    computes zero filters); off by default: it doubles the search's time and, on the networks measured
    (``benchmarks/results/budget.md``), raises the main job's fps but not UltraNet MixQ's.
    ``progress(message)`` is called once per layer costed, once per target interval tried and at the end.
    OverBudgetError (naming the resources the smallest folding overflows) if no folding found fits.
    """
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization {utilization!r} must be in (0, 1]")
    if not clock_mhz > 0:
        raise ValueError(f"clock_mhz {clock_mhz!r} must be positive")
    start = time.perf_counter()
    limit = accelerator_limit(as_resources(budget), utilization, as_resources(reserve) if reserve else None)
    multipliers = tuple(multipliers)
    if not multipliers or any(m not in MULTIPLIERS for m in multipliers):
        raise ValueError(f"multipliers {multipliers!r} must be a non-empty subset of {MULTIPLIERS}")
    requantizers = tuple(requantizers)
    if not requantizers or any(r not in REQUANTIZERS for r in requantizers):
        raise ValueError(f"requantizers {requantizers!r} must be a non-empty subset of {REQUANTIZERS}")
    search = _Search(graph, limit, out_lanes, progress, multipliers, requantizers, padded_pe=padded_pe)
    tried: dict[int, _Assignment] = {}
    divisors: list[_Search] = []

    def attempt(target: int) -> bool:
        if target not in tried:
            tried[target] = result = search.feasible(target)
            if result.failure and padded_pe:
                # The weights' path over the larger candidate set (padded pe) can miss a fit that the folds
                # with pe dividing the channels reach: try those too, on the same node costs.
                if not divisors:
                    divisors.append(_Search(graph, limit, out_lanes, None, multipliers, requantizers,
                                            padded_pe=False, costs=search.costs))
                plain = divisors[0].feasible(target)
                if not plain.failure:
                    tried[target] = result = plain
            if progress:
                window = f"{failed:,}..{best.cycles:,}" if best else f"above {failed:,}"
                progress(f"T={target:,} (window {window}): " + (result.failure or f"fits, {result.cycles:,} "
                                                                f"cycles, {result.resources.dsp} DSP"))
        return not tried[target].failure

    unit = search.costs.folding({})
    targets = sorted(set(search.ideal.values()) | {unit.cycles})
    best: _Assignment | None = None
    if unit.resources.fits(limit):
        best = _Assignment({}, unit.resources, unit.cycles)
    # Below the first target whose multipliers alone fit the DSP budget nothing fits.  Start there and
    # gallop up (by how much the last try overflowed) until a target fits, then bisect; then bisect again
    # over the stage cycle counts met on the way (a pool or window stage may set the real interval).
    lo, hi = 0, len(targets) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if not search.floor_failure(targets[mid]) else (mid + 1, hi)
    failed = targets[lo - 1] if lo else 0          # largest target known not to fit
    guess, galloping = targets[lo], True
    if progress:
        progress(f"trying target intervals T (cycles per frame each stage must meet): up from T={guess:,} "
                 f"until one fits, then bisecting the window (largest T that failed..fastest fit)")
    values = set(targets)
    for _ in range(_MAX_TARGETS):
        ceiling = best.cycles if best else math.inf
        pool = sorted(v for v in values if failed < v < ceiling and v not in tried)
        if not pool:
            values |= search.costs.cycle_values()
            pool = sorted(v for v in values if failed < v < ceiling and v not in tried)
            if not pool:
                break
        target = next((v for v in pool if v >= guess), pool[-1]) if galloping else pool[len(pool) // 2]
        if attempt(target):
            galloping = False
            if best is None or tried[target].cycles < best.cycles:
                best = tried[target]
        else:
            failed = max(failed, target)
            guess = target * tried[target].overflow
    if best is None:
        # name the folding that overflowed least (the smallest one when the search costed none)
        costed = [({}, unit.resources)] + [(a.folding, a.resources) for a in tried.values() if a.folding]
        closest = min(costed, key=lambda c: overflow_share(c[1], limit))[0]
        message, over, users = refusal(graph, closest, limit, search.costs, len(tried))
        raise OverBudgetError(message, over=over, users=users)
    plan = plan_stages(graph, best.folding, out_lanes=out_lanes)
    cycles, resources = plan.cycles_per_frame(), plan.resources()
    if (cycles, resources) != (best.cycles, best.resources) or not resources.fits(limit):
        raise RuntimeError(f"folding search: the node-cost model ({best.cycles} cycles, {best.resources}) "
                           f"disagrees with plan_stages ({cycles} cycles, {resources})")
    if progress:
        progress(f"chose {cycles:,} cycles/frame ({clock_mhz * 1e6 / cycles:,.1f} fps at {clock_mhz:g} MHz), "
                 f"{resources.dsp} DSP, {resources.lut:,} LUT, {resources.bram36:g} BRAM36")
    return FoldingResult(folding=dict(plan.folding), plan=plan, cycles_per_frame=cycles, resources=resources,
                         fps=clock_mhz * 1e6 / cycles, bottleneck=plan.bottleneck().name, budget=limit,
                         clock_mhz=clock_mhz, search_seconds=time.perf_counter() - start,
                         evaluations=search.costs.evaluations,
                         targets=sorted((t, not a.failure) for t, a in tried.items()))


class FitAttempt(NamedTuple):
    """One target's search: ``failure`` is "" when ``folding`` fits, else why its closest assignment does not."""

    failure: str
    folding: dict[str, LayerFold]
    resources: Resources
    cycles: int


def fit_at(graph: Graph, limit: Resources, target: int, *, multipliers: Sequence[str] = MULTIPLIERS,
           requantizers: Sequence[str] = REQUANTIZERS) -> FitAttempt:
    """The search's try at one ``target`` interval within ``limit`` (the accelerator's share, as
    :func:`~mixq_hw.folding.budget.accelerator_limit` gives it): the fitting folding, or the closest
    assignment and what it overflows (a measurement aid: :func:`choose_folding` searches the targets)."""
    result = _Search(graph, as_resources(limit), None, None, tuple(multipliers), tuple(requantizers)).feasible(target)
    return FitAttempt(result.failure, dict(result.folding), result.resources, result.cycles)


def check_budget(plan: PipelinePlan, budget: Resources, *, clock_mhz: float = 300.0,
                 suggest: bool = True) -> Resources:
    """The plan's estimated resources if they fit ``budget``; else OverBudgetError naming each resource over,
    by how much, the nodes using most of it, and (``suggest``) the best folding that fits and its fps."""
    limit = as_resources(budget)
    used = plan.resources()
    if used.fits(limit):
        return used
    message, over, users = over_budget_message(f"the design of graph {plan.graph.name!r}", used, limit,
                                         {n: e["resources"] for n, e in plan.per_node().items()})
    best = None
    if suggest:
        try:
            best = choose_folding(plan.graph, limit, clock_mhz=clock_mhz)
        except OverBudgetError:
            message += "; no folding found that fits"
        else:
            folds = ", ".join(f"{n} simd {f.simd} pe {f.pe} pixels {f.pixels}" for n, f in best.folding.items())
            message += (f"; the best folding that fits runs at {best.fps:,.1f} fps ({best.cycles_per_frame:,} "
                        f"cycles/frame at {clock_mhz:g} MHz): {folds}")
    raise OverBudgetError(message, over=over, users=users, best=best)
