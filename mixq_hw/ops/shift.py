"""The ``shift`` op: DiracDeltaNet's shift of activation codes (channel ``c`` reads its pixel at offset
``SHIFT_OFFSETS[c % 5]``, zero outside the image)."""

from __future__ import annotations

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input
from ..layers.reference import shift
from ..layers.shift import ShiftSpec
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["ShiftOp"]


class ShiftOp(OpDef):
    """``shift``: no attributes; one input of unsigned codes, output of the same shape and bits."""

    name = "shift"
    # moving codes and filling with 0 commutes with an activation quantiser (unsigned or signed: 0 is code 0)
    moves_codes = True
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        codes_input(node, ins[0], allow_signed=True)
        return ValueInfo(ins[0].shape, ins[0].bits, False, ins[0].signed_codes)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return shift(args[0])

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 1)       # the "down" channels read the row below

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        spec = ShiftSpec(c, h, w, src.lanes, src.bits, signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "shift", spec, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", spec.out_shape, src.lanes, src.bits)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        return ExportMatch([]) if isinstance(module, ctx.ops_layers.Shift) else None


register(ShiftOp())
