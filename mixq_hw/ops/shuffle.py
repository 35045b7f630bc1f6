"""The ``shuffle`` op: DiracDeltaNet's channel shuffle of activation codes (the last quarter of the channels
moves to the front)."""

from __future__ import annotations

import math

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input, fail
from ..layers.channels import ChannelShuffleSpec
from ..layers.reference import channel_shuffle
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["ShuffleOp"]


class ShuffleOp(OpDef):
    """``shuffle``: no attributes; one input of unsigned codes whose channel count is divisible by 4."""

    name = "shuffle"
    moves_codes = True
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        if x.shape[0] % 4:
            raise fail(node, f"input {node.inputs[0]!r} has {x.shape[0]} channels; the shuffle moves a quarter "
                             "of them, so they must be divisible by 4")
        return ValueInfo(x.shape, x.bits, False, x.signed_codes)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return channel_shuffle(args[0])

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        if src.lanes != c and (c // 4) % src.lanes:
            # the FIFO form needs whole beats per quarter
            src = lowering.lanes(src, math.gcd(src.lanes, c // 4), node.name)
        spec = ChannelShuffleSpec(c, h, w, src.lanes, src.bits, signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "shuffle", spec, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", spec.out_shape, src.lanes, src.bits)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        return ExportMatch([]) if isinstance(module, ctx.ops_layers.ChannelShuffle) else None


register(ShuffleOp())
