"""Cost of one graph node's stages under a folding, without planning the whole network.

A node's stages (lane converters, window, engine, requant, regroup, pool, forks of
its output ...) depend only on the node's own fold (conv/linear) and on the stream
formats of its inputs.  :class:`NodeCosts` runs the pipeline's own stage builder
(:mod:`mixq_hw.pipeline`) on one node at a time, with stub input streams of the
given formats, and caches the cycles and resources per (node, fold, input formats).
So the folding search never duplicates a layer's cycle or resource formula, and
summing the nodes of a folding gives exactly what ``plan_stages`` gives
(tests/test_folding.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from ..estimate import Resources
from ..graph import Graph, Node
from ..layers.conv_cascade import choose_cascade
from ..layers.conv_weights import (check_conv_config, choose_plan, cores_for, dsps_per_core, frame_cycles,
                                   geometry_for_plan, lut_layer_figures)
from ..ops import op_def
from ..pipeline import LayerFold, Lowering, SpecMemo, Stage
from ..streams import Stream, StreamFormat
from .spec import check_folding, layer_candidates

__all__ = ["StreamFormat", "StageCost", "NodeCost", "NodeCosts", "FoldingCost", "engine_figures", "WINDOW_OPTIONS"]

#: The input-format sets a pipeline may let its ConvEngines choose from (see NodeCosts.engine_windows).
WINDOW_OPTIONS = (("taps", "rows"), ("taps",))


class _StubSource:
    """Stands for the stage that produces a node's input: only its output port's payload is known."""

    def __init__(self, payload) -> None:
        self.payload = payload

    def payload_shape(self, port: str):
        return self.payload


@dataclass(frozen=True)
class StageCost:
    """One stage's name, kind, cycles per frame and estimated resources."""

    name: str
    node: str
    kind: str
    cycles: int
    resources: Resources


@dataclass(frozen=True)
class NodeCost:
    """The stages of one node (including the forks of its output) and the format of its output stream."""

    stages: tuple[StageCost, ...]
    output: StreamFormat | None
    cycles: int
    resources: Resources


@dataclass(frozen=True)
class FoldingCost:
    """A whole folding's cost from the node costs: the slowest stage and the summed resources."""

    cycles: int
    bottleneck: str
    resources: Resources
    nodes: dict[str, NodeCost]


def _sum(items) -> Resources:
    total = Resources()
    for r in items:
        total = total + r
    return total


class NodeCosts:
    """Cached node-by-node cost model of ``graph`` for foldings (``out_lanes`` as in ``plan_stages``)."""

    def __init__(self, graph: Graph, *, out_lanes: int | None = None) -> None:
        graph.validate()
        self.graph = graph
        self.out_lanes = out_lanes
        self._cache: dict[tuple, NodeCost | ValueError] = {}
        #: nodes evaluated (cache misses): the search's unit of work
        self.evaluations = 0
        self._windows: tuple[str, ...] | None = None
        #: what depends on a node and its fold alone (weight codes, windows), shared by every build
        self._memo = SpecMemo()

    def node(self, node: Node | str, fold: LayerFold | None, inputs: tuple[StreamFormat, ...]) -> NodeCost:
        """Stages of ``node`` with ``fold`` (conv/linear only) fed by streams of the ``inputs`` formats.

        A ValueError from a layer (e.g. no packing plan for this fold) propagates, naming the layer.
        """
        node = self.graph.node(node) if isinstance(node, str) else node
        key = (node.name, fold, inputs)
        cached = self._cache.get(key)
        if cached is None:
            try:
                if fold is not None and fold.requant != "dsp":
                    # the requantizer is built downstream: the node's own stages are the DSP fold's, its
                    # output stream asks for the other requantizer
                    base = self.node(node, replace(fold, requant="dsp"), inputs)
                    output = base.output if base.output is None or not base.output.grouped else \
                        replace(base.output, requant=fold.requant)
                    cached = replace(base, output=output)
                else:
                    cached = self._build(node, fold, inputs)
            except ValueError as err:       # e.g. no packing plan for this fold: remembered, not retried
                cached = err
            self._cache[key] = cached
        if isinstance(cached, ValueError):
            raise cached
        return cached

    def _build(self, node: Node, fold: LayerFold | None, inputs: tuple[StreamFormat, ...]) -> NodeCost:
        self.evaluations += 1
        folding = {node.name: fold} if fold is not None else {}
        builder = Lowering(self.graph, folding, self.out_lanes, memo=self._memo)
        if len(inputs) != len(node.inputs):
            raise ValueError(f"node {node.name!r} has {len(node.inputs)} inputs, {len(inputs)} formats given")
        stubs = set()
        for src, fmt in zip(node.inputs, inputs):
            stub = f"<{src}>"
            builder.stages.append(Stage(stub, src, "stub", _StubSource(fmt.payload), [], []))
            builder.values[src] = Stream(stub, "o", fmt)
            builder.remaining[src] = 1
            stubs.add(stub)
        builder.lower(node)
        value = builder.values.get(node.name)
        output = value.format if value is not None else None
        for _ in self.graph.consumers(node.name):
            builder.take(node.name)      # the forks that share this output among its consumers
        stages = tuple(StageCost(s.name, s.node, s.kind, *self._memo.figures(s.spec)) for s in builder.stages
                       if s.name not in stubs)
        return NodeCost(stages, output, max((s.cycles for s in stages), default=0),
                        _sum(s.resources for s in stages))

    def engine_windows(self) -> tuple[str, ...]:
        """The input formats the pipeline lets its engines choose from, found by building one engine.

        Among :data:`WINDOW_OPTIONS`, the one whose :func:`engine_figures` match the pipeline's engine
        for the cheapest fold where the options disagree (the first option if they never do).
        """
        if self._windows is None:
            self._windows = WINDOW_OPTIONS[0]
            for node in self.graph:
                if not op_def(node.op).folded:
                    continue
                for fold in sorted(layer_candidates(self.graph, node), key=lambda f: f.simd * f.pe * f.pixels):
                    figures = {}
                    for option in WINDOW_OPTIONS:
                        try:
                            figures[option] = engine_figures(self.graph, node, fold, option)
                        except ValueError:
                            figures[option] = None
                    if len(set(figures.values())) > 1:
                        return self._calibrate(node, fold, figures)
        return self._windows

    def _calibrate(self, node: Node, fold: LayerFold, figures: dict) -> tuple[str, ...]:
        formats: dict[str, StreamFormat] = {}
        for other in self.graph:          # the unit folding's formats up to this node
            if other.name == node.name:
                break
            cost = self.node(other, LayerFold() if op_def(other.op).folded else None,
                             tuple(formats[s] for s in other.inputs))
            if cost.output is not None:
                formats[other.name] = cost.output
        try:
            own = self.node(node, fold, tuple(formats[s] for s in node.inputs))
        except ValueError:
            real = None
        else:
            engine = next(s for s in own.stages if s.name == node.name)
            real = (engine.cycles, engine.resources.dsp)
        self._windows = next((option for option, f in figures.items() if f is not None and f[:2] == real),
                             WINDOW_OPTIONS[0])
        return self._windows

    def folding(self, folding: Mapping[str, LayerFold]) -> FoldingCost:
        """The whole graph under ``folding`` (missing layers: unit fold), node by node; FoldingError for an
        impossible folding."""
        folding = check_folding(self.graph, folding)
        formats: dict[str, StreamFormat] = {}
        nodes: dict[str, NodeCost] = {}
        for node in self.graph:
            fold = folding.get(node.name, LayerFold()) if op_def(node.op).folded else None
            cost = self.node(node, fold, tuple(formats[s] for s in node.inputs))
            nodes[node.name] = cost
            if cost.output is not None:
                formats[node.name] = cost.output
        slowest = max((s for c in nodes.values() for s in c.stages), key=lambda s: s.cycles)
        return FoldingCost(slowest.cycles, slowest.name, _sum(c.resources for c in nodes.values()), nodes)

    def cycle_values(self) -> set[int]:
        """Every node-level cycle count evaluated so far (candidate targets for the search)."""
        return {c.cycles for c in self._cache.values() if isinstance(c, NodeCost)}


def engine_figures(graph: Graph, node: Node, fold: LayerFold, windows: tuple[str, ...]) -> tuple[int, int, int]:
    """``(cycles, DSPs, core LUTs)`` of the ConvEngine of conv/linear ``node`` under ``fold``, without building it.

    From the engine's own plain-Python helpers (configuration check, packing-plan choice among the
    ``windows`` input formats, ``frame_cycles``, ``cores_for``): cycles = MACs / MACs per cycle when
    ``pixels`` divides the output width, more with ragged groups.
    With LUT multipliers (``fold.multiplier == "lut"``) DSPs are 0 and core LUTs the LUT cores'
    estimate (a lower bound on the engine's LUTs); with DSPs core LUTs are 0.  The search orders and
    bounds candidates with these; the stages it keeps are always built for real.  ValueError
    (naming the layer) if the engine rejects the fold.
    """
    a = node.attrs
    view = op_def(node.op).engine_args(node, graph)
    dims = {key: view[key] for key in ("in_ch", "out_ch", "k", "groups")}
    geo = check_conv_config(view["weight"], w_bits=a["w_bits"], a_bits=a["a_bits"], simd=fold.simd, pe=fold.pe,
                            pixels=fold.pixels, name=node.name, **dims)
    out_size, stride = view["out_hw"], view["stride"]
    if fold.multiplier == "lut":
        geo, cores, core_luts = lut_layer_figures(geo, a["w_bits"], a["a_bits"], node.name, windows=windows,
                                                  multiplier=fold.multiplier, signed_act=view["signed_act"])
        return frame_cycles(geo, out_size), 0, cores * core_luts
    if fold.multiplier == "cascade":
        plan, _ = choose_cascade(geo, a["w_bits"], a["a_bits"], node.name, stride=stride, windows=windows,
                                 signed_act=view["signed_act"])
    else:
        plan = choose_plan(geo, a["w_bits"], a["a_bits"], node.name, stride=stride, windows=windows,
                           multiplier=fold.multiplier, signed_act=view["signed_act"])
    geo = geometry_for_plan(geo, plan)
    cycles, cores = frame_cycles(geo, out_size), cores_for(plan, geo)
    return cycles, cores * dsps_per_core(plan), 0      # a digit-split core (SplitMAC) is 2 DSP48E2s
