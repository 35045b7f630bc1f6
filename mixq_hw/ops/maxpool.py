"""The ``maxpool`` op: 2x2 max pooling with stride 2 on activation codes, optionally padded by 1 (floor mode:
an odd map without padding loses its last row / column, as in PyTorch)."""

from __future__ import annotations

import numpy as np

from ..graph.checks import Node, ValueInfo, arity, codes_input, fail, int_attr
from ..layers import reference
from ..layers.pool import MaxPool2x2Spec, maxpool_out_size
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["MaxPoolOp", "spatial_halved"]


def spatial_halved(node: Node, ins: list[ValueInfo], channels: int) -> ValueInfo:
    """The shared check of the 2x2 ops: one code input (unsigned or signed) of even height and width; the
    output has ``channels`` times the input's channels at half its height and width, the same codes."""
    arity(node, 1)
    x = ins[0]
    codes_input(node, x, allow_signed=True)
    c, h, w = x.shape
    if h % 2 or w % 2:
        raise fail(node, f"input {node.inputs[0]!r} is {h}x{w}; {node.op} needs even height and width")
    return ValueInfo((c * channels, h // 2, w // 2), x.bits, False, x.signed_codes)


def _pair(v: object) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _check_pool(where: str, kernel: object, stride: object, padding: object, dilation: object,
                ceil_mode: object) -> dict:
    """The node attributes of a PyTorch 2x2/2 max pool (``pad`` only when it is 1); ValueError otherwise."""
    if (_pair(kernel) != (2, 2) or _pair(stride) != (2, 2) or _pair(padding) not in ((0, 0), (1, 1))
            or _pair(dilation) != (1, 1) or ceil_mode):
        raise ValueError(f"{where}: only 2x2 max pooling with stride 2 and padding 0 or 1 on both axes (no "
                         f"dilation, ceil_mode) is supported; got kernel {kernel}, stride {stride}, "
                         f"padding {padding}")
    return {"pad": 1} if _pair(padding) == (1, 1) else {}


def _pad(node: Node) -> int:
    """The node's ``pad`` attribute (0 when absent), checked to be 0 or 1."""
    return int_attr(node, "pad", 0, 1) if "pad" in node.attrs else 0


class MaxPoolOp(OpDef):
    """``maxpool``: optional ``pad`` (0 or 1, default 0); one input of unsigned or signed codes.  Without
    padding the output is H//2 x W//2 (PyTorch's floor mode: an odd last row / column is dropped); with
    ``pad=1`` (-inf padding: a border window's maximum of its real codes) it is H//2+1 x W//2+1."""

    name = "maxpool"
    moves_codes = True      # requant is monotonic: pooling codes equals pooling before requantising
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        c, h, w = x.shape
        pad = _pad(node)
        if not pad and (h < 2 or w < 2):
            raise fail(node, f"input {node.inputs[0]!r} is {h}x{w}; an unpadded 2x2 pool needs at least 2x2")
        return ValueInfo((c, maxpool_out_size(h, pad), maxpool_out_size(w, pad)), x.bits, False, x.signed_codes)

    def details(self, node: Node) -> str:
        return "pad 1" if _pad(node) else ""

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return reference.maxpool(args[0], pad=_pad(node))

    def row_map(self, node: Node) -> tuple[int, int]:
        return (2, 0) if _pad(node) else (2, 1)     # padded: output row y covers input rows 2y-1 and 2y

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        c, h, w = src.shape
        pool = MaxPool2x2Spec(c, h, w, src.lanes, src.bits, pad=_pad(node), signed=codes_signed(src), name=node.name)
        lowering.add(node.name, node.name, "maxpool", pool, [(src.stage, src.port)])
        lowering.produce(node.name, node.name, "o", pool.out_shape, src.lanes, src.bits, bursty=True)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        if not isinstance(module, ctx.torch.nn.MaxPool2d):
            return None
        return ExportMatch([], _check_pool(where, module.kernel_size, module.stride, module.padding,
                                           module.dilation, module.ceil_mode))

    def export_function(self, ctx, fn, args: tuple, kwargs: dict, where: str) -> ExportMatch | None:
        if fn is not ctx.torch.nn.functional.max_pool2d:
            return None
        rest = list(args[1:])
        ks = rest[0] if rest else kwargs.get("kernel_size")
        stride = rest[1] if len(rest) > 1 else kwargs.get("stride")
        pad = rest[2] if len(rest) > 2 else kwargs.get("padding", 0)
        dil = rest[3] if len(rest) > 3 else kwargs.get("dilation", 1)
        ceil = rest[4] if len(rest) > 4 else kwargs.get("ceil_mode", False)
        return ExportMatch(args[:1], _check_pool(where, ks, stride if stride is not None else ks, pad, dil, ceil))


register(MaxPoolOp())
