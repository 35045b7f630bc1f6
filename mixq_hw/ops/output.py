"""The ``output`` op: the network's result ``acc + bias`` as signed 32-bit integers, with a float scale."""

from __future__ import annotations

import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo, acc_input, arity, fail, tensor_attr
from ..layers.requant import AccBiasSpec
from ..packing.bits import OUTPUT_BITS
from .registry import OpDef, register
from .requant import lower_regroup, pad_channels, padded, raster_lanes

__all__ = ["OutputOp"]


class OutputOp(OpDef):
    """``output``: tensors ``bias`` (int64) and ``scale`` (float, the host's dequantisation) per channel;
    reads the last conv/linear accumulator."""

    name = "output"
    export_note = "made by the exporter from the model's returned conv/linear output"
    reads_accumulator = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        acc_input(node, x)
        c = x.shape[0]
        bias = tensor_attr(node, "bias", (c,))
        tensor_attr(node, "scale", (c,), integer=False)
        max_bias = int(np.abs(bias).max()) if bias.size else 0
        worst = 2 ** (x.bits - 1) + max_bias
        if worst > 2 ** (OUTPUT_BITS - 1) - 1:
            raise fail(node, f"acc ({x.bits} bits) + bias (max |bias| {max_bias}) "
                             f"can reach {worst}, beyond int32")
        return ValueInfo(x.shape, OUTPUT_BITS, True)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return ref.output_int(args[0], node.tensors["bias"])

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        raw = AccBiasSpec(pad_channels(node.tensors["bias"], src), acc_bits=src.bits, pe=src.pe, pixels=src.pixels, height=h,
                      width=padded(w, src.pixels), name=node.name)
        lowering.add(node.name, node.name, "output", raw, [(src.stage, src.port)])
        lanes = lowering.out_lanes or (src.pe if c % src.pe == 0 else raster_lanes(src))
        if c % lanes:
            raise ValueError(f"output lanes {lanes} do not divide the {c} output channels of {node.name!r}")
        lower_regroup(node, lowering, node.name, src, OUTPUT_BITS, lanes, is_signed=True)


register(OutputOp())
