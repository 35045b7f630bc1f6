"""The ``upsample`` op: nearest-neighbour upsampling by 2 of activation codes (Tiny-YOLOv3's second scale)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input
from ..layers.reference import upsample2x
from ..layers.upsample import Upsample2xSpec
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["UpsampleOp"]


class UpsampleOp(OpDef):
    """``upsample``: no attributes; one input of unsigned codes (C, H, W) -> (C, 2H, 2W), each code repeated
    over a 2x2 block."""

    name = "upsample"
    moves_codes = True      # repeating codes commutes with the (elementwise) activation quantiser
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        c, h, w = x.shape
        return ValueInfo((c, 2 * h, 2 * w), x.bits, False, x.signed_codes)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return upsample2x(args[0])

    def row_map(self, node: Node) -> tuple[Fraction, int]:
        # output row y repeats input row y // 2 <= y / 2
        return (Fraction(1, 2), 0)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        up = Upsample2xSpec(c, h, w, src.lanes, src.bits, signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "upsample", up, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", up.out_shape, src.lanes, src.bits, bursty=True)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        nn = ctx.torch.nn
        if isinstance(module, ctx.ops_layers.Upsample):
            return ExportMatch([])
        if not isinstance(module, nn.Upsample):
            return None
        factor = module.scale_factor
        factors = tuple(factor) if isinstance(factor, (tuple, list)) else (factor, factor)
        if module.mode != "nearest" or module.size is not None or any(float(f) != 2.0 for f in factors):
            raise ValueError(f"{where}: only nearest upsampling by 2 is supported; got mode {module.mode!r}, "
                             f"scale_factor {factor}, size {module.size}")
        return ExportMatch([])


register(UpsampleOp())
