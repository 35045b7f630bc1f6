"""The whole-network pipeline: an integer Graph plus a folding becomes one streaming Accelerator.

One engine per layer, all layers running concurrently (as in FINN and
DeepBurning-MixQ): every Graph node becomes one or more stages from
:mod:`mixq_hw.layers`, connected by streams.  :func:`plan_stages` produces the
stages as data (a layer spec per stage: its inputs, cycles and resources, see
:mod:`mixq_hw.layers.spec`) so that folding and the report reason about a design
without creating any hardware; :class:`Accelerator` builds each spec's Component
and elaborates it.

Buffers between stages are computed, not found by simulation: bypass branches
get FIFOs from the row schedules (:mod:`mixq_hw.schedule`), and a pool or reorg
whose rows go on to a converter to fewer lanes gets one row of FIFO in front of
it (:meth:`Lowering.burst_fifo`), so that every stage's cycles_per_frame is
also what it achieves inside the pipeline.

Ports of the Accelerator: ``i`` takes one input pixel per beat, raw 8-bit
channels (``ArrayLayout(unsigned(8), C)``), in raster order; ``o`` gives the
output tensor in raster order, ``out_lanes`` signed 32-bit values per beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping, TypeVar

from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import schedule
from .estimate import Resources
from .graph import Graph, GraphError, Node
from .layers.conv import ConvEngineSpec
from .layers.fifo import StreamFIFOSpec
from .layers.fork import ForkSpec
from .layers.spec import LayerSpec
from .layers.width import LaneConverterSpec
from .ops import op_def
from .packing.bits import OUTPUT_BITS
from .packing.protocol import PackingPlan
from .streams import Stream, StreamFormat, codes_signed

_T = TypeVar("_T")

__all__ = ["LayerFold", "Stage", "PipelinePlan", "SpecMemo", "Lowering", "plan_stages", "Accelerator",
           "unit_folding", "OUTPUT_BITS", "Stream", "StreamFormat"]


@dataclass(frozen=True)
class LayerFold:
    """Parallelism of one conv/linear layer: input lanes, output lanes, output pixels per group, whether its
    multipliers are packed DSP48E2s (``"dsp"``) or shift-and-add LUT cores (``"lut"``), its packing
    ``plan`` (None: the planner chooses; a folding from ``plan_stages`` or the search records the choice,
    and a given plan is used as it is, or refused naming the layer when it does not fit), and the
    ``requant`` that reads its accumulators: DSP48E2 lanes (``"dsp"``) or thresholds (``"threshold"``,
    :mod:`mixq_hw.layers.threshold`, no DSP), and where its weight ROM lives: block RAM (``"bram"``) or
    LUT logic (``"lut"``, :class:`~mixq_hw.layers.weight_rom.WeightRomSpec`)."""

    simd: int = 1
    pe: int = 1
    pixels: int = 1
    multiplier: str = "dsp"
    plan: PackingPlan | None = None
    requant: str = "dsp"
    weights: str = "bram"

    def to_dict(self) -> dict:
        """JSON-ready form; ``multiplier``, ``requant`` and ``weights`` only when they are not the default,
        ``plan`` (its ``to_dict()``) only when there is one."""
        d: dict = {"simd": self.simd, "pe": self.pe, "pixels": self.pixels}
        if self.multiplier != "dsp":
            d["multiplier"] = self.multiplier
        if self.requant != "dsp":
            d["requant"] = self.requant
        if self.weights != "bram":
            d["weights"] = self.weights
        if self.plan is not None:
            d["plan"] = self.plan.to_dict()
        return d

    def unpinned(self) -> "LayerFold":
        """The same parallelism with the plan left to the planner."""
        return replace(self, plan=None)


def unit_folding(graph: Graph) -> dict[str, LayerFold]:
    """The smallest design: one lane, one PE, one pixel for every conv/linear layer."""
    return {n.name: LayerFold() for n in graph if op_def(n.op).folded}


@dataclass
class Stage:
    """One hardware block: its spec (figures, ports, and the Component it builds), where its inputs come
    from, and what it costs."""

    name: str
    node: str
    kind: str
    spec: LayerSpec
    #: (stage name, output port) feeding this stage's input ports, in port order
    sources: list[tuple[str, str]]
    in_ports: list[str]

    @property
    def cycles(self) -> int:
        """Cycles per frame (the spec's)."""
        return int(self.spec.cycles_per_frame())

    @property
    def resources(self) -> Resources:
        """Estimated resources (the spec's)."""
        return self.spec.resources()

    def build(self) -> wiring.Component:
        """A new Component of this stage, to be elaborated."""
        return self.spec.build()


@dataclass
class PipelinePlan:
    """The stages of a network in elaboration order, with its input/output formats."""

    graph: Graph
    folding: dict[str, LayerFold]
    stages: list[Stage]
    out_stage: tuple[str, str]
    in_channels: int
    out_lanes: int
    out_shape: tuple[int, int, int]
    fifo_depths: dict[str, int] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def cycles_per_frame(self) -> int:
        """The pipeline's initiation interval: its slowest stage."""
        return max(s.cycles for s in self.stages)

    def bottleneck(self) -> Stage:
        return max(self.stages, key=lambda s: s.cycles)

    def resources(self) -> Resources:
        total = Resources()
        for s in self.stages:
            total = total + s.resources
        return total

    def per_node(self) -> dict[str, dict]:
        """Cycles (max over the node's stages) and resources (sum) per graph node."""
        out: dict[str, dict] = {}
        for s in self.stages:
            entry = out.setdefault(s.node, {"cycles": 0, "resources": Resources(), "stages": []})
            entry["cycles"] = max(entry["cycles"], s.cycles)
            entry["resources"] = entry["resources"] + s.resources
            entry["stages"].append(s.name)
        return out


class SpecMemo:
    """Values that are a pure function of a key (a layer's weight codes, its window under its fold), made once
    and shared by the lowerings of one graph that are given the same memo (the folding search lowers a layer
    under many input formats: :class:`~mixq_hw.folding.costs.NodeCosts`); a spec's figures computed once.
    It keeps what it made: engines, large for wide folds, are made again instead."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        #: cycles and resources of the memo's specs, by ``id`` (they live as long as the memo)
        self._figures: dict[int, tuple[int, Resources] | None] = {}

    def value(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """What ``make()`` returned for ``key``, made on the first call (an exception is not remembered)."""
        if key not in self._values:
            self._values[key] = make()
        return self._values[key]

    def spec(self, key: Hashable, make: Callable[[], LayerSpec]) -> LayerSpec:
        """:meth:`value` for a spec, whose :meth:`figures` are then computed once."""
        if key not in self._values:
            spec = self._values[key] = make()
            self._figures[id(spec)] = None
        return self._values[key]

    def figures(self, spec: LayerSpec) -> tuple[int, Resources]:
        """``(cycles_per_frame, resources)`` of ``spec``, computed once for the memo's own specs."""
        key = id(spec)
        known = self._figures.get(key)
        if known is not None:
            return known
        figures = (int(spec.cycles_per_frame()), spec.resources())
        if key in self._figures:        # one of the memo's specs (alive as long as the memo: its id is its own)
            self._figures[key] = figures
        return figures


class Lowering:
    """Walks the graph in order, appending each node's stages (its op's :meth:`~mixq_hw.ops.OpDef.lower`)
    and tracking the :class:`~mixq_hw.streams.Stream` of each value.  ``memo``: specs shared with other
    lowerings of the same graph (:class:`SpecMemo`; a new one by default)."""

    def __init__(self, graph: Graph, folding: Mapping[str, LayerFold], out_lanes: int | None, *,
                 memo: SpecMemo | None = None):
        self.graph = graph
        self.memo = SpecMemo() if memo is None else memo
        self.folding = dict(folding)
        self.stages: list[Stage] = []
        self.values: dict[str, Stream] = {}
        self.out_lanes = out_lanes
        self.fifo_depths: dict[str, int] = {}
        self.remaining: dict[str, int] = {}
        for name in self.folding:
            if name not in graph or not op_def(graph.node(name).op).folded:
                raise ValueError(f"folding names {name!r}, which is not a conv/linear layer of graph "
                                 f"{graph.name!r}")

    def lower(self, node: Node) -> None:
        """Append the stages of ``node`` (its op's lowering)."""
        op_def(node.op).lower(node, self)

    # ---- what the ops' lowerings use ---------------------------------------------------------
    def add(self, name: str, node: str, kind: str, spec: LayerSpec, sources: list[tuple[str, str]],
            in_ports: list[str] | None = None) -> str:
        """Append stage ``name`` of graph node ``node`` fed by ``sources`` ((stage, port) per input port)."""
        self.stages.append(Stage(name, node, kind, spec, sources, in_ports or ["i"]))
        return name

    def produce(self, value: str, stage: str, port: str, shape: tuple[int, int, int], lanes: int, bits: int,
                **fmt: Any) -> Stream:
        """Record that graph value ``value`` comes from ``stage``/``port`` in this format (``fmt``: the other
        :class:`~mixq_hw.streams.StreamFormat` fields); the payload layout is the port's."""
        stream = Stream(stage, port, StreamFormat(shape, lanes, bits, **fmt,
                                                  payload=self.stage_port_layout(stage, port)))
        self.values[value] = stream
        return stream

    def fold(self, node: Node) -> LayerFold:
        """The fold of a folded node (the unit fold when the folding leaves it out)."""
        return self.folding.get(node.name, LayerFold())

    def take(self, src: str) -> Stream:
        """The stream of value ``src`` for one more consumer, forking when it has several."""
        value = self.values[src]
        remaining = self.remaining.setdefault(src, len(self.graph.consumers(src)))
        self.remaining[src] = remaining - 1
        if remaining <= 1:
            return value
        # A chain of two-way forks: o0 goes to this consumer, o1 on to the next ones.
        payload = self.stage_port_layout(value.stage, value.port)
        fork = ForkSpec(payload, name=f"{src}.fork{remaining}", beats_per_frame=value.beats_per_frame())
        name = self.add(fork.name, src, "fork", fork, [(value.stage, value.port)])
        self.values[src] = value.moved(name, "o1")
        return value.moved(name, "o0")

    def stage_port_layout(self, stage: str, port: str):
        """The payload layout of output ``port`` of ``stage``."""
        return next(s.spec for s in self.stages if s.name == stage).payload_shape(port)

    def lanes(self, value: Stream, lanes: int, node: str) -> Stream:
        """``value`` re-laned to ``lanes`` codes per beat (one or two LaneConverters)."""
        if value.grouped:
            raise GraphError(f"node {node!r} reads an accumulator stream; insert a requant before it")
        if value.lanes == lanes:
            return value
        c, h, w = value.shape
        steps = [lanes] if (value.lanes % lanes == 0 or lanes % value.lanes == 0) else \
            [math.gcd(value.lanes, lanes), lanes]
        # a bursty stream needs the row of buffer before any narrowing step, also the first of two (6 -> 2 -> 8)
        if value.bursty and min(steps) < value.lanes:
            value = self.burst_fifo(value, node)
        is_signed = codes_signed(value)
        for target in steps:
            conv = LaneConverterSpec(c, h, w, value.lanes, target, value.bits, signed=is_signed,
                                     name=f"{node}.lanes{target}")
            name = self.add(conv.name, node, "lanes", conv, [(value.stage, value.port)])
            value = Stream(name, "o", StreamFormat(value.shape, target, value.bits,
                                                   payload=self.stage_port_layout(name, "o")))
        return value

    def joined(self, node: Node) -> tuple[list[Stream], int, list[tuple[str, str]]]:
        """The inputs of a joining ``node`` (concat, add) at their common lane count, each behind the skew
        FIFO its row schedule needs: (streams, lanes, the (stage, port) that feeds each input)."""
        srcs = [self.take(s) for s in node.inputs]
        lanes = math.gcd(*(s.lanes for s in srcs))
        srcs = [self.lanes(s, lanes, node.name) for s in srcs]
        depths = schedule.bypass_fifo_depth(self.graph, node, [s.beats_per_row() for s in srcs])
        fed: list[tuple[str, str]] = []
        for index, (s, depth) in enumerate(zip(srcs, depths)):
            if not depth:
                fed.append((s.stage, s.port))
                continue
            elem = (signed if codes_signed(s) else unsigned)(s.bits)
            fifo = StreamFIFOSpec(data.ArrayLayout(elem, lanes), depth, name=f"{node.name}.fifo{index}",
                                  beats_per_frame=s.beats_per_frame())
            self.add(fifo.name, node.name, "fifo", fifo, [(s.stage, s.port)])
            self.fifo_depths[fifo.name] = depth
            fed.append((fifo.name, "o"))
        return srcs, lanes, fed

    def burst_fifo(self, value: Stream, node: str) -> Stream:
        """A FIFO of one output row in front of a narrowing lane converter on a bursty stream.

        A pool (or reorg) emits a row's beats while it reads the second input row of the pair, at up
        to one beat per cycle, and nothing during the first; a converter to ``1/r`` the lanes takes
        ``r`` cycles per beat, so without a buffer it throttles the pool -- and everything upstream
        -- during every second row (full-size UltraNet, MixQ preset: +14 % cycles per frame).  One
        row of buffer lets the converter spread the row over both input rows, its average rate.
        """
        c, h, w = value.shape
        depth = w * c // value.lanes
        fifo = StreamFIFOSpec(data.ArrayLayout((signed if codes_signed(value) else unsigned)(value.bits), value.lanes),
                              depth, name=f"{node}.burst",
                          beats_per_frame=value.beats_per_frame())
        self.add(fifo.name, node, "fifo", fifo, [(value.stage, value.port)])
        self.fifo_depths[fifo.name] = depth
        return value.moved(fifo.name, "o", bursty=False, payload=self.stage_port_layout(fifo.name, "o"))


def plan_stages(graph: Graph, folding: Mapping[str, LayerFold] | None = None, *,
                out_lanes: int | None = None) -> PipelinePlan:
    """Turn ``graph`` into pipeline stages under ``folding`` (missing layers get the unit folding)."""
    graph.validate()
    builder = Lowering(graph, folding or {}, out_lanes)
    for node in graph:
        builder.lower(node)
    out_node = graph.output_node
    out_value = builder.values[out_node.name]
    # the folding as built: every layer's fold with the packing plan its engine uses
    folding = {n: replace(builder.fold(graph.node(n)), plan=_stage_plan(builder.stages, n)) for n in unit_folding(graph)}
    return PipelinePlan(graph=graph, folding=folding,
                        stages=builder.stages, out_stage=(out_value.stage, out_value.port),
                        in_channels=graph.input_shape[0], out_lanes=out_value.lanes, out_shape=out_value.shape,
                        fifo_depths=builder.fifo_depths)


def _stage_plan(stages: list[Stage], name: str) -> PackingPlan:
    engine = next(s.spec for s in stages if s.name == name)
    assert isinstance(engine, ConvEngineSpec)     # a folded node's own stage is its engine (ops.conv.lower_engine)
    return engine.plan


class Accelerator(wiring.Component):
    """The network as one streaming design: 8-bit pixels in on ``i``, raw int32 outputs on ``o``."""

    def __init__(self, graph: Graph, folding: Mapping[str, LayerFold] | None = None, *,
                 out_lanes: int | None = None, plan: PipelinePlan | None = None):
        self.plan = plan or plan_stages(graph, folding, out_lanes=out_lanes)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(8), self.plan.in_channels))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(OUTPUT_BITS), self.plan.out_lanes))),
        })

    def cycles_per_frame(self) -> int:
        return self.plan.cycles_per_frame()

    def estimate(self) -> Resources:
        return self.plan.resources()

    def elaborate(self, platform) -> Module:
        m = Module()
        comps = {}
        for s in self.plan.stages:
            comps[s.name] = m.submodules[s.name.replace(".", "_")] = s.build()
        for s in self.plan.stages:
            for port, (src, src_port) in zip(s.in_ports, s.sources):
                sink = getattr(comps[s.name], port)
                source = self.i if src == "<top>" else getattr(comps[src], src_port)
                if src == "<top>":
                    wiring.connect(m, wiring.flipped(source), sink)
                else:
                    wiring.connect(m, source, sink)
        last, port = self.plan.out_stage
        wiring.connect(m, getattr(comps[last], port), wiring.flipped(self.o))
        return m
