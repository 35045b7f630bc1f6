"""The ``input`` op: the frame's 8-bit pixels, of which the input quantiser keeps the top ``bits`` bits."""

from __future__ import annotations

import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo, arity, fail, int_attr
from ..layers.io import InputCodesSpec
from ..packing.bits import INPUT_BITS
from .registry import OpDef, register

__all__ = ["InputOp"]


class InputOp(OpDef):
    """Codes ``pixel >> (8 - bits)`` of the (C, H, W) frame; the export makes it from the InputQuantizer."""

    name = "input"
    export_note = "made from the first layer's InputQuantizer (the image's top bits)"

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 0)
        return ValueInfo(input_shape, int_attr(node, "bits", INPUT_BITS.start, INPUT_BITS.stop - 1), False)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        if images is None:
            raise fail(node, "needs the images")
        return ref.input_codes(images, node.attrs["bits"])

    def details(self, node: Node) -> str:
        return f"pixel >> {8 - node.attrs['bits']}"

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        c, h, w = lowering.graph.input_shape
        comp = InputCodesSpec(c, h, w, node.attrs["bits"], name=node.name)
        lowering.add(node.name, node.name, "input", comp, [("<top>", "i")])
        lowering.produce(node.name, node.name, "o", (c, h, w), c, node.attrs["bits"])


register(InputOp())
