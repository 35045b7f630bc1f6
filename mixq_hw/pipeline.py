"""The whole-network pipeline: an integer Graph plus a folding becomes one streaming Accelerator.

One engine per layer, all layers running concurrently (as in FINN and
DeepBurning-MixQ): every Graph node becomes one or more stages from
:mod:`mixq_hw.layers`, connected by streams.  :func:`plan_stages` produces the
stages as data (component, inputs, analytic cycles and resources) so that
folding and the report can reason about a design without elaborating it;
:class:`Accelerator` elaborates them.

Buffers between stages are computed, not found by simulation: bypass branches
get FIFOs from the row schedules (:mod:`mixq_hw.schedule`), and a pool or reorg
whose rows go on to a converter to fewer lanes gets one row of FIFO in front of
it (:meth:`_Builder.burst_fifo`), so that every stage's cycles_per_frame is
also what it achieves inside the pipeline.

Ports of the Accelerator: ``i`` takes one input pixel per beat, raw 8-bit
channels (``ArrayLayout(unsigned(8), C)``), in raster order; ``o`` gives the
output tensor in raster order, ``out_lanes`` signed 32-bit values per beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .estimate import Resources
from .graph import Graph, GraphError, Node
from .layers.concat import Concat
from .layers.conv import ConvEngine
from .layers.fifo import StreamFIFO
from .layers.fork import Fork
from .layers.io import InputCodes
from .layers.pool import MaxPool2x2
from .layers.regroup import GroupToRaster
from .layers.reorg import Reorg
from .layers.requant import AccBias, Requant
from .packing.bits import OUTPUT_BITS
from .layers.width import LaneConverter
from .schedule import bypass_fifo_depth

__all__ = ["LayerFold", "Stage", "PipelinePlan", "plan_stages", "Accelerator", "unit_folding", "OUTPUT_BITS"]


@dataclass(frozen=True)
class LayerFold:
    """Parallelism of one conv/linear layer: input lanes, output lanes, output pixels per group, and
    whether its multipliers are packed DSP48E2s (``"dsp"``) or shift-and-add LUT cores (``"lut"``)."""

    simd: int = 1
    pe: int = 1
    pixels: int = 1
    multiplier: str = "dsp"

    def to_dict(self) -> dict[str, int | str]:
        """JSON-ready form; ``multiplier`` only when it is not the default ``"dsp"`` (old files stay the same)."""
        d: dict[str, int | str] = {"simd": self.simd, "pe": self.pe, "pixels": self.pixels}
        if self.multiplier != "dsp":
            d["multiplier"] = self.multiplier
        return d


def unit_folding(graph: Graph) -> dict[str, LayerFold]:
    """The smallest design: one lane, one PE, one pixel for every conv/linear layer."""
    return {n.name: LayerFold() for n in graph if n.op in ("conv", "linear")}


@dataclass
class Stage:
    """One hardware block: its component, where its inputs come from, and what it costs."""

    name: str
    node: str
    kind: str
    component: wiring.Component
    #: (stage name, output port) feeding this stage's input ports, in port order
    sources: list[tuple[str, str]]
    in_ports: list[str]

    @property
    def cycles(self) -> int:
        return int(self.component.cycles_per_frame())

    @property
    def resources(self) -> Resources:
        return self.component.estimate()


def _padded(width: int, pixels: int) -> int:
    """A grouped stream's row width: ``ceil(width / pixels)`` whole groups (a ragged last group carries
    slots past the real columns, which the GroupToRaster after the requant drops)."""
    return -(-width // pixels) * pixels


@dataclass
class _Value:
    """Where a graph value's stream comes from, and its format."""

    stage: str
    port: str
    shape: tuple[int, int, int]
    lanes: int
    bits: int
    grouped: bool = False      # True: ConvEngine accumulator groups, not a raster pixel stream
    pe: int = 1
    pixels: int = 1
    cycles_per_beat: int = 1   # grouped streams: the engine's cycles between two beats
    #: raster streams that arrive in row bursts (a 2x2 pool or reorg emits only while it reads the second
    #: row of each pair, at up to one beat per cycle, then nothing for a row)
    bursty: bool = False


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


class _Builder:
    """Walks the graph in order, appending stages and tracking each value's stream."""

    def __init__(self, graph: Graph, folding: Mapping[str, LayerFold], out_lanes: int | None):
        self.graph = graph
        self.folding = dict(folding)
        self.stages: list[Stage] = []
        self.values: dict[str, _Value] = {}
        self.out_lanes = out_lanes
        self.fifo_depths: dict[str, int] = {}
        self.remaining: dict[str, int] = {}
        for name in self.folding:
            if name not in graph or graph.node(name).op not in ("conv", "linear"):
                raise ValueError(f"folding names {name!r}, which is not a conv/linear layer of graph "
                                 f"{graph.name!r}")

    # ---- helpers ------------------------------------------------------------------------
    def add(self, name: str, node: str, kind: str, component, sources: list[tuple[str, str]],
            in_ports: list[str] | None = None) -> str:
        # A plan is also used without elaborating it (folding, reports): no "never used" warnings.
        component._MustUse__silence = True
        self.stages.append(Stage(name, node, kind, component, sources, in_ports or ["i"]))
        return name

    def fold(self, node: Node) -> LayerFold:
        return self.folding.get(node.name, LayerFold())

    def take(self, src: str) -> _Value:
        """The stream of value ``src`` for one more consumer, forking when it has several."""
        value = self.values[src]
        remaining = self.remaining.setdefault(src, len(self.graph.consumers(src)))
        self.remaining[src] = remaining - 1
        if remaining <= 1:
            return value
        # A chain of two-way forks: o0 goes to this consumer, o1 on to the next ones.
        payload = self.stage_port_layout(value.stage, value.port)
        fork = Fork(payload, name=f"{src}.fork{remaining}", beats_per_frame=self.beats_per_frame(value))
        name = self.add(fork.name, src, "fork", fork, [(value.stage, value.port)])
        mine = _Value(**{**value.__dict__, "stage": name, "port": "o0"})
        value.stage, value.port = name, "o1"
        return mine

    def beats_per_frame(self, value: _Value) -> int:
        c, h, w = value.shape
        if value.grouped:
            return h * _padded(w, value.pixels) // value.pixels * (c // value.pe)
        return h * w * c // value.lanes

    def stage_port_layout(self, stage: str, port: str):
        comp = next(s.component for s in self.stages if s.name == stage)
        return comp.signature.members[port].signature.members["payload"].shape

    def lanes(self, value: _Value, lanes: int, node: str) -> _Value:
        """``value`` re-laned to ``lanes`` codes per beat (one or two LaneConverters)."""
        if value.grouped:
            raise GraphError(f"node {node!r} reads an accumulator stream; insert a requant before it")
        if value.lanes == lanes:
            return value
        c, h, w = value.shape
        if value.bursty and lanes < value.lanes:
            value = self.burst_fifo(value, node)
        steps = [lanes] if (value.lanes % lanes == 0 or lanes % value.lanes == 0) else \
            [math.gcd(value.lanes, lanes), lanes]
        for target in steps:
            conv = LaneConverter(c, h, w, value.lanes, target, value.bits, name=f"{node}.lanes{target}")
            name = self.add(conv.name, node, "lanes", conv, [(value.stage, value.port)])
            value = _Value(name, "o", value.shape, target, value.bits)
        return value

    def burst_fifo(self, value: _Value, node: str) -> _Value:
        """A FIFO of one output row in front of a narrowing lane converter on a bursty stream.

        A pool (or reorg) emits a row's beats while it reads the second input row of the pair, at up
        to one beat per cycle, and nothing during the first; a converter to ``1/r`` the lanes takes
        ``r`` cycles per beat, so without a buffer it throttles the pool -- and everything upstream
        -- during every second row (full-size UltraNet, MixQ preset: +14 % cycles per frame).  One
        row of buffer lets the converter spread the row over both input rows, its average rate.
        """
        c, h, w = value.shape
        depth = w * c // value.lanes
        fifo = StreamFIFO(data.ArrayLayout(unsigned(value.bits), value.lanes), depth, name=f"{node}.burst",
                          beats_per_frame=self.beats_per_frame(value))
        self.add(fifo.name, node, "fifo", fifo, [(value.stage, value.port)])
        self.fifo_depths[fifo.name] = depth
        return _Value(**{**value.__dict__, "stage": fifo.name, "port": "o", "bursty": False})

    # ---- one method per op ------------------------------------------------------------------
    def op_input(self, node: Node) -> None:
        c, h, w = self.graph.input_shape
        comp = InputCodes(c, h, w, node.attrs["bits"], name=node.name)
        self.add(node.name, node.name, "input", comp, [("<top>", "i")])
        self.values[node.name] = _Value(node.name, "o", (c, h, w), c, node.attrs["bits"])

    def _engine(self, node: Node, src: _Value, weight, *, in_ch: int, out_ch: int, k: int, stride: int,
                pad: int, groups: int, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        f = self.fold(node)
        a = node.attrs
        src = self.lanes(src, f.simd, node.name)
        # The engine picks kernel or filter packing; each needs its own window format.
        engine = ConvEngine(weight, w_bits=a["w_bits"], a_bits=a["a_bits"], in_ch=in_ch, out_ch=out_ch, k=k,
                            groups=groups, simd=f.simd, pe=f.pe, pixels=f.pixels, out_size=out_hw,
                            stride=stride, windows=("taps", "rows"), multiplier=f.multiplier, name=node.name)
        engine._MustUse__silence = True     # a window that rejects the fold leaves it unused: no warning then
        window = engine.make_window(in_hw[0], in_hw[1], pad, name=f"{node.name}.window")
        self.add(window.name, node.name, "window", window, [(src.stage, src.port)])
        self.add(node.name, node.name, "conv", engine, [(window.name, "o")])
        self.values[node.name] = _Value(node.name, "o", (out_ch, *out_hw), f.pe, engine.acc_bits,
                                        grouped=True, pe=f.pe, pixels=f.pixels,
                                        cycles_per_beat=engine.cycles_per_frame() // engine.out_beats_per_frame)

    def op_conv(self, node: Node) -> None:
        a = node.attrs
        src = self.take(node.inputs[0])
        c, h, w = src.shape
        out = self.graph.value_info(node.name).shape
        self._engine(node, src, node.tensors["weight"], in_ch=a["in_ch"], out_ch=a["out_ch"], k=a["k"],
                     stride=a["stride"], pad=a["pad"], groups=a["groups"], in_hw=(h, w), out_hw=out[1:])

    def op_linear(self, node: Node) -> None:
        # The HWC flattening of a raster stream is that same stream seen as a 1x1 image with
        # C*H*W channels, so a linear layer is a 1x1 convolution of that image.
        a = node.attrs
        src = self.take(node.inputs[0])
        if src.bursty and self.fold(node).simd < src.lanes:
            src = self.burst_fifo(src, node.name)      # one row of the un-flattened map, as for a conv
        c, h, w = src.shape
        flat = _Value(src.stage, src.port, (c * h * w, 1, 1), src.lanes, src.bits)
        weight = node.tensors["weight"].reshape(a["out_features"], a["in_features"], 1, 1)
        self._engine(node, flat, weight, in_ch=a["in_features"], out_ch=a["out_features"], k=1, stride=1,
                     pad=0, groups=1, in_hw=(1, 1), out_hw=(1, 1))

    def _regroup(self, node: Node, src_stage: str, value: _Value, bits: int, lanes: int, *,
                 is_signed: bool = False) -> None:
        c, h, w = value.shape
        regroup = GroupToRaster(c, value.pe, value.pixels, lanes, bits, signed=is_signed, width=w,
                                height=h, name=f"{node.name}.regroup")
        self.add(regroup.name, node.name, "regroup", regroup, [(src_stage, "o")])
        self.values[node.name] = _Value(regroup.name, "o", value.shape, lanes, bits)

    def op_requant(self, node: Node) -> None:
        src = self.take(node.inputs[0])
        a = node.attrs
        c, h, w = src.shape
        # Time-share the requant multipliers: the engine emits a beat of pe*pixels accumulators only
        # every cycles_per_beat cycles, so that many values per multiplier keep up with it.  The
        # requant reads the engine's output register for those cycles; the engine freezes only if
        # its next beat is ready before the requant is done (see ConvEngine), so no FIFO is needed.
        values = src.pe * src.pixels
        lanes = min(d for d in range(1, values + 1) if values % d == 0 and values // d <= src.cycles_per_beat)
        req = Requant(node.tensors["inc"], node.tensors["bias"], shift=a["shift"], out_bits=a["out_bits"],
                      acc_bits=src.bits, pe=src.pe, pixels=src.pixels, lanes=lanes, height=h,
                      width=_padded(w, src.pixels), name=node.name)
        self.add(node.name, node.name, "requant", req, [(src.stage, src.port)])
        self._regroup(node, node.name, src, a["out_bits"], src.pe)

    def op_output(self, node: Node) -> None:
        src = self.take(node.inputs[0])
        c, h, w = src.shape
        raw = AccBias(node.tensors["bias"], acc_bits=src.bits, pe=src.pe, pixels=src.pixels, height=h,
                      width=_padded(w, src.pixels), name=node.name)
        self.add(node.name, node.name, "output", raw, [(src.stage, src.port)])
        lanes = self.out_lanes or src.pe
        if c % lanes:
            raise ValueError(f"output lanes {lanes} do not divide the {c} output channels of {node.name!r}")
        self._regroup(node, node.name, src, OUTPUT_BITS, lanes, is_signed=True)

    def op_maxpool(self, node: Node) -> None:
        src = self.take(node.inputs[0])
        c, h, w = src.shape
        pool = MaxPool2x2(c, h, w, src.lanes, src.bits, name=node.name)
        self.add(node.name, node.name, "maxpool", pool, [(src.stage, src.port)])
        self.values[node.name] = _Value(node.name, "o", (c, h // 2, w // 2), src.lanes, src.bits, bursty=True)

    def op_reorg(self, node: Node) -> None:
        src = self.take(node.inputs[0])
        c, h, w = src.shape
        reorg = Reorg(c, h, w, src.lanes, src.bits, name=node.name)
        self.add(node.name, node.name, "reorg", reorg, [(src.stage, src.port)])
        self.values[node.name] = _Value(node.name, "o", (4 * c, h // 2, w // 2), reorg.lanes_out, src.bits,
                                        bursty=True)

    def op_concat(self, node: Node) -> None:
        if len(node.inputs) != 2:
            raise GraphError(f"concat {node.name!r}: the hardware joins exactly two streams, "
                             f"got {len(node.inputs)}")
        srcs = [self.take(s) for s in node.inputs]
        lanes = math.gcd(*(s.lanes for s in srcs))
        srcs = [self.lanes(s, lanes, node.name) for s in srcs]
        depths = bypass_fifo_depth(self.graph, node, [self.beats_per_row(s) for s in srcs])
        fed: list[tuple[str, str]] = []
        for index, (s, depth) in enumerate(zip(srcs, depths)):
            if depth:
                fifo = StreamFIFO(data.ArrayLayout(unsigned(s.bits), lanes), depth,
                                  name=f"{node.name}.fifo{index}", beats_per_frame=self.beats_per_frame(s))
                self.add(fifo.name, node.name, "fifo", fifo, [(s.stage, s.port)])
                self.fifo_depths[fifo.name] = depth
                fed.append((fifo.name, "o"))
            else:
                fed.append((s.stage, s.port))
        (c0, h, w), (c1, _, _) = srcs[0].shape, srcs[1].shape
        cat = Concat(c0, c1, h, w, lanes, srcs[0].bits, name=node.name)
        self.add(node.name, node.name, "concat", cat, fed, ["i0", "i1"])
        self.values[node.name] = _Value(node.name, "o", (c0 + c1, h, w), lanes, srcs[0].bits)

    def beats_per_row(self, value: _Value) -> int:
        c, h, w = value.shape
        return w * c // value.lanes


def plan_stages(graph: Graph, folding: Mapping[str, LayerFold] | None = None, *,
                out_lanes: int | None = None) -> PipelinePlan:
    """Turn ``graph`` into pipeline stages under ``folding`` (missing layers get the unit folding)."""
    graph.validate()
    builder = _Builder(graph, folding or {}, out_lanes)
    for node in graph:
        handler = getattr(builder, f"op_{node.op}", None)
        if handler is None:
            raise GraphError(f"node {node.name!r}: op {node.op!r} has no hardware implementation")
        handler(node)
    out_node = graph.output_node
    out_value = builder.values[out_node.name]
    return PipelinePlan(graph=graph, folding={n: builder.fold(graph.node(n)) for n in unit_folding(graph)},
                        stages=builder.stages, out_stage=(out_value.stage, out_value.port),
                        in_channels=graph.input_shape[0], out_lanes=out_value.lanes, out_shape=out_value.shape,
                        fifo_depths=builder.fifo_depths)


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
            m.submodules[s.name.replace(".", "_")] = s.component
            comps[s.name] = s.component
        for s in self.plan.stages:
            for port, (src, src_port) in zip(s.in_ports, s.sources):
                sink = getattr(s.component, port)
                source = self.i if src == "<top>" else getattr(comps[src], src_port)
                if src == "<top>":
                    wiring.connect(m, wiring.flipped(source), sink)
                else:
                    wiring.connect(m, source, sink)
        last, port = self.plan.out_stage
        wiring.connect(m, getattr(comps[last], port), wiring.flipped(self.o))
        return m
