"""The ``reorg`` op: space-to-depth by 2 (``pixel_unshuffle``), output channel ``c*4 + dy*2 + dx``."""

from __future__ import annotations

import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo
from ..layers.reorg import ReorgSpec
from ..streams import codes_signed
from .maxpool import spatial_halved
from .registry import ExportMatch, OpDef, register

__all__ = ["ReorgOp"]


class ReorgOp(OpDef):
    """``reorg``: no attributes; one input of codes (unsigned or signed) with even height and width."""

    name = "reorg"
    moves_codes = True
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        return spatial_halved(node, ins, 4)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return ref.reorg(args[0])

    def row_map(self, node: Node) -> tuple[int, int]:
        return (2, 1)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        reorg = ReorgSpec(c, h, w, src.lanes, src.bits, signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "reorg", reorg, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", (4 * c, h // 2, w // 2), reorg.lanes_out, src.bits,
                         bursty=True)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        nn = ctx.torch.nn
        if isinstance(module, ctx.layers.Reorg) or (isinstance(module, nn.PixelUnshuffle)
                                                     and module.downscale_factor == 2):
            return ExportMatch([])
        return None

    def export_function(self, ctx, fn, args: tuple, kwargs: dict, where: str) -> ExportMatch | None:
        torch = ctx.torch
        if fn not in (torch.nn.functional.pixel_unshuffle, torch.pixel_unshuffle):
            return None
        if (args[1] if len(args) > 1 else kwargs.get("downscale_factor")) != 2:
            raise ValueError(f"{where}: only pixel_unshuffle by 2 is supported")
        return ExportMatch(args[:1])


register(ReorgOp())
