"""What every stream of a pipeline carries: the graph value and the :class:`~sim.formats.StreamFormat`.

Layer-by-layer verification feeds each stage of a :class:`~mixq_hw.pipeline.PipelinePlan`
on its own, so it needs, for every input and output port of every stage, the
tensor of ``Graph.reference(images, keep=True)`` that flows there and the beat
format it flows in.  :func:`stage_streams` derives both from the plan (stage
kinds, port layouts, window parameters) without elaborating anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from amaranth.lib import data

from mixq_hw.layers.row_window import RowWindowSpec
from mixq_hw.layers.window import SlidingWindowSpec
from mixq_hw.ops import op_def
from mixq_hw.pipeline import PipelinePlan, Stage

from .formats import StreamFormat, grouped, raster, rows, taps

__all__ = ["IMAGE", "StreamSpec", "StageStreams", "stage_streams", "stream_tensor"]

#: tensor name of the accelerator's input stream (the raw 8-bit images)
IMAGE = "<image>"


@dataclass(frozen=True)
class StreamSpec:
    """One stream: graph value ``tensor`` (or :data:`IMAGE`), seen ``flat`` ((C*H*W, 1, 1) in HWC order, as
    a linear layer reads it) or not, in format ``fmt``."""

    tensor: str
    fmt: StreamFormat
    flat: bool = False


@dataclass(frozen=True)
class StageStreams:
    """The streams of one stage's ports, by port name."""

    inputs: dict[str, StreamSpec]
    outputs: dict[str, StreamSpec]


def _payload(stage: Stage, port: str):
    return stage.spec.payload_shape(port)


def _raster_lanes(stage: Stage, port: str) -> int:
    layout = _payload(stage, port)
    if not isinstance(layout, data.ArrayLayout) or isinstance(layout.elem_shape, data.ArrayLayout):
        raise ValueError(f"stage {stage.name!r}: port {port!r} is not a raster stream ({layout!r})")
    return int(layout.length)


def _grouped(stage: Stage, port: str) -> StreamFormat:
    layout = _payload(stage, port)
    if not (isinstance(layout, data.ArrayLayout) and isinstance(layout.elem_shape, data.ArrayLayout)):
        raise ValueError(f"stage {stage.name!r}: port {port!r} is not a grouped stream ({layout!r})")
    return grouped(pe=int(layout.elem_shape.length), pixels=int(layout.length))


def _window(stage: Stage) -> StreamFormat:
    comp = stage.spec
    if isinstance(comp, RowWindowSpec):   # RowWindow: kernel rows of pixels + k - 1 input pixels
        return rows(comp.k, comp.pad, comp.pixels, comp.lanes)
    assert isinstance(comp, SlidingWindowSpec)     # the window stage's other kind (ConvEngineSpec.window_spec)
    return taps(comp.k, comp.stride, comp.pad, comp.pixels, comp.lanes)


def stage_streams(plan: PipelinePlan) -> dict[str, StageStreams]:
    """For every stage of ``plan`` (by name): the graph value and format of each of its ports' streams."""
    graph = plan.graph
    known: dict[tuple[str, str], StreamSpec] = {("<top>", "i"): StreamSpec(IMAGE, raster(plan.in_channels))}
    result: dict[str, StageStreams] = {}
    for stage in plan.stages:
        try:
            ins = {port: known[src] for port, src in zip(stage.in_ports, stage.sources)}
        except KeyError as exc:
            raise ValueError(f"stage {stage.name!r} reads {exc.args[0]}, which no earlier stage drives") from None
        first = next(iter(ins.values()))
        kind = stage.kind
        if kind in ("input", "maxpool", "reorg", "concat", "upsample", "shift", "shuffle", "slice", "add", "rescale"):
            outs = {"o": StreamSpec(stage.node, raster(_raster_lanes(stage, "o")))}
        elif kind == "window":
            outs = {"o": StreamSpec(first.tensor, _window(stage), flat=op_def(graph.node(stage.node).op).flattens_input)}
        elif kind in ("conv", "requant", "output", "avgpool"):
            outs = {"o": StreamSpec(stage.node, _grouped(stage, "o"))}
        elif kind in ("regroup", "lanes"):
            outs = {"o": StreamSpec(first.tensor, raster(_raster_lanes(stage, "o")), first.flat)}
        elif kind in ("fork", "fifo"):
            ports = [name for name, member in stage.spec.ports().members.items()
                     if member.is_signature and name not in stage.in_ports]
            outs = {port: first for port in ports}
        else:
            raise ValueError(f"stage {stage.name!r}: no stream model for stage kind {kind!r}")
        for port, spec in outs.items():
            known[(stage.name, port)] = spec
        result[stage.name] = StageStreams(ins, outs)
    return result


def stream_tensor(spec: StreamSpec, values: Mapping[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """The (N, C, H, W) batch that ``spec`` carries, from ``Graph.reference(images, keep=True)``'s ``values``."""
    x = np.asarray(images if spec.tensor == IMAGE else values[spec.tensor])
    if spec.flat:
        n = x.shape[0]
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(n, -1, 1, 1)
    return x
