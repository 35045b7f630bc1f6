"""The ``slice`` op: channels ``[start, stop)`` of activation codes.

A channel split (DiracDeltaNet's block: ``torch.split`` / ``torch.chunk`` / ``Split`` along channels) is one
``slice`` node per part, all reading the same value: the pipeline forks the stream (its fan-out) and each
slice drops the beats outside its range (:class:`~mixq_hw.layers.channels.ChannelSlice`); where the parts meet
again at a concat, the FIFO depths come from the row schedules as for any bypass.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input, int_attr
from ..layers.channels import ChannelSliceSpec
from ..layers.reference import channel_slice
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["SliceOp", "split_bounds"]


def split_bounds(channels: int, attrs: dict, where: str) -> tuple[int, int]:
    """``(start, stop)`` of part ``attrs["index"]`` of a split of ``channels`` channels, the split given as
    ``sections`` (channel counts), ``size`` (torch.split's chunk size) or ``chunks`` (torch.chunk's count).

    ValueError naming ``where`` when the sections do not sum to ``channels`` or the part does not exist."""
    index = attrs["index"]
    if "sections" in attrs:
        sections = list(attrs["sections"])
        if sum(sections) != channels:
            raise ValueError(f"{where}: split sections {sections} sum to {sum(sections)}, the input has "
                             f"{channels} channels")
    else:
        size = attrs["size"] if "size" in attrs else -(-channels // attrs["chunks"])
        sections = [min(size, channels - lo) for lo in range(0, channels, size)]
    if not 0 <= index < len(sections):
        raise ValueError(f"{where}: part {index} of a split of {channels} channels into {sections}")
    start = sum(sections[:index])
    return start, start + sections[index]


class SliceOp(OpDef):
    """``slice``: attributes ``start`` and ``stop`` (``0 <= start < stop <= C``); one input of unsigned codes;
    output channels ``[start, stop)`` at the input's height, width and bits."""

    name = "slice"
    moves_codes = True
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        c = x.shape[0]
        start = int_attr(node, "start", 0, c - 1)
        stop = int_attr(node, "stop", start + 1, c)
        return ValueInfo((stop - start,) + x.shape[1:], x.bits, False, x.signed_codes)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return channel_slice(args[0], node.attrs["start"], node.attrs["stop"])

    def details(self, node: Node) -> str:
        return f"channels [{node.attrs['start']}, {node.attrs['stop']})"

    def report_fields(self, node: Node) -> dict:
        return {"start": node.attrs["start"], "stop": node.attrs["stop"]}

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        start, stop = node.attrs["start"], node.attrs["stop"]
        # whole beats on both sides of each bound
        src = lowering.lanes(src, math.gcd(src.lanes, c, start, stop), node.name)
        spec = ChannelSliceSpec(c, start, stop, h, w, src.lanes, src.bits, signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "slice", spec, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", spec.out_shape, src.lanes, src.bits)

    # ---- export: a split along channels, one slice per part that the model indexes --------------------
    def export_attrs(self, attrs: dict, ins: Sequence[ValueInfo], where: str) -> dict:
        if "start" in attrs:
            return attrs
        start, stop = split_bounds(ins[0].shape[0], attrs, where)
        return {"start": start, "stop": stop}

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        if isinstance(module, ctx.ops_layers.Split):
            return ExportMatch([], {"sections": tuple(module.sections)}, indexed=True)
        return None

    def export_function(self, ctx, fn, args: tuple, kwargs: dict, where: str) -> ExportMatch | None:
        torch = ctx.torch
        if fn in (torch.split, "split"):
            what, key = "split_size_or_sections", "size"
        elif fn in (torch.chunk, "chunk"):
            what, key = "chunks", "chunks"
        else:
            return None
        amount = args[1] if len(args) > 1 else kwargs.get(what, kwargs.get("split_size"))
        dim = args[2] if len(args) > 2 else kwargs.get("dim", 0)
        if dim not in (1, -3):
            raise ValueError(f"{where}: only a split along channels (dim=1) is supported, got dim={dim!r}")
        if isinstance(amount, (list, tuple)) and key == "size":
            if not amount or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in amount):
                raise ValueError(f"{where}: split sections must be positive ints, got {amount!r}")
            return ExportMatch([args[0]], {"sections": tuple(amount)}, indexed=True)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise ValueError(f"{where}: {what} must be a positive int (or a list of section sizes), got {amount!r}")
        return ExportMatch([args[0]], {key: amount}, indexed=True)


register(SliceOp())
