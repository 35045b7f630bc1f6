"""The ``linear`` op: a fully connected layer on the HWC flattening of activation codes."""

from __future__ import annotations

import math

import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo, arity, check_weight, codes_input, fail, int_attr, tensor_attr
from ..packing.bits import ACT_BITS, WEIGHT_BITS
from ..validate import LIMITS
from .conv import lower_engine
from .registry import OpDef, register

__all__ = ["LinearOp"]


class LinearOp(OpDef):
    """``linear``: attributes in_features, out_features, w_bits, a_bits; tensor ``weight`` (out, in) whose
    columns follow the HWC order of the input; output: signed accumulators (out, 1, 1)."""

    name = "linear"
    export_note = "made from a quantised QLinear by the exporter, through export_layer"
    folded = True
    accumulates = True
    flattens_input = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        in_f = int_attr(node, "in_features", 1)
        out_f = int_attr(node, "out_features", 1, LIMITS["channels"])
        w_bits = int_attr(node, "w_bits", WEIGHT_BITS.start, WEIGHT_BITS.stop - 1)
        a_bits = int_attr(node, "a_bits", ACT_BITS.start, ACT_BITS.stop - 1)
        if in_f != math.prod(x.shape):
            raise fail(node, f"in_features={in_f} but input {node.inputs[0]!r} is {x.shape} "
                             f"({math.prod(x.shape)} values)")
        if a_bits != x.bits:
            raise fail(node, f"a_bits={a_bits} but input {node.inputs[0]!r} carries {x.bits}-bit codes")
        weight = tensor_attr(node, "weight", (out_f, in_f))
        check_weight(node, weight, w_bits)
        return ValueInfo((out_f, 1, 1), ref.acc_width(in_f, w_bits, a_bits, x.signed_codes), True)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return ref.linear_int(args[0], node.tensors["weight"])

    def details(self, node: Node) -> str:
        return f"w{node.attrs['w_bits']}a{node.attrs['a_bits']}"

    def fan_in(self, node: Node) -> int:
        return node.attrs["in_features"]

    def engine_args(self, node: Node, graph) -> dict:
        """The ConvEngine's view of the node (as :meth:`ConvOp.engine_args`): a 1x1 convolution of the
        input seen as a 1x1 image of in_features channels."""
        a = node.attrs
        return dict(weight=node.tensors["weight"].reshape(a["out_features"], a["in_features"], 1, 1),
                    in_ch=a["in_features"], out_ch=a["out_features"], k=1, groups=1, stride=1, pad=0,
                    out_hw=(1, 1), depthwise=False, signed_act=graph.value_info(node.inputs[0]).signed_codes,
                    widths={"simd": ("in_features", a["in_features"]), "pe": ("out_features", a["out_features"]),
                            "pixels": ("output width of a linear layer", 1)})

    def report_fields(self, node: Node) -> dict:
        a = node.attrs
        return {"w_bits": a["w_bits"], "a_bits": a["a_bits"], "kernel": 1, "stride": 1, "depthwise": False}

    def lower(self, node: Node, lowering) -> None:
        # The HWC flattening of a raster stream is that same stream seen as a 1x1 image with
        # C*H*W channels, so a linear layer is a 1x1 convolution of that image.
        src = lowering.take(node.inputs[0])
        if src.bursty and lowering.fold(node).simd < src.lanes:
            src = lowering.burst_fifo(src, node.name)      # one row of the un-flattened map, as for a conv
        lower_engine(node, lowering, src.flattened(), self.engine_args(node, lowering.graph))

    def export_layer(self, graph, name: str, src: str, module, weight: np.ndarray, *, w_bits: int,
                     where: str, **attrs: object) -> str:
        """Add the linear node of a quantised ``Linear``-like ``module`` reading ``src``: torch flattens
        (C, H, W), the hardware streams (H, W, C), so the weight's columns are permuted; ValueError naming
        ``where`` if ``in_features`` is not the input's size."""
        c, h, w = graph.value_info(src).shape
        if weight.shape[1] != c * h * w:
            raise ValueError(f"{where}: in_features={weight.shape[1]} but its input {src!r} is "
                             f"{c}x{h}x{w} = {c * h * w} values")
        w_hwc = weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        return graph.add_linear(name, src, w_hwc, w_bits=w_bits, **attrs)


register(LinearOp())
