"""The ``concat`` op: channel concatenation of activation codes of equal bit width."""

from __future__ import annotations


import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo, codes_input, fail
from ..layers.channels import ConcatNSpec
from ..layers.concat import ConcatSpec
from ..streams import codes_signed
from .registry import ExportMatch, OpDef, register

__all__ = ["ConcatOp"]


class ConcatOp(OpDef):
    """``concat``: no attributes; two or more inputs of unsigned codes, equal bits, equal height and width
    (the hardware: :class:`~mixq_hw.layers.concat.Concat` for two, :class:`~mixq_hw.layers.channels.ConcatN`
    for more)."""

    name = "concat"
    moves_codes = True
    exports = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        if len(ins) < 2:
            raise fail(node, f"expects at least 2 inputs, got {len(ins)}")
        for i, x in enumerate(ins):
            codes_input(node, x, i, allow_signed=True)
            if x.signed_codes != ins[0].signed_codes:
                kinds = ("signed", "unsigned") if x.signed_codes else ("unsigned", "signed")
                raise fail(node, f"input {node.inputs[i]!r} carries {kinds[0]} codes but {node.inputs[0]!r} "
                                 f"{kinds[1]} ones; concat inputs need the same kind")
            if x.bits != ins[0].bits:
                raise fail(node, f"input {node.inputs[i]!r} has {x.bits}-bit codes but "
                                 f"{node.inputs[0]!r} has {ins[0].bits}; concat inputs need equal bits")
            if x.shape[1:] != ins[0].shape[1:]:
                raise fail(node, f"input {node.inputs[i]!r} is {x.shape[1]}x{x.shape[2]} but "
                                 f"{node.inputs[0]!r} is {ins[0].shape[1]}x{ins[0].shape[2]}")
        c = sum(x.shape[0] for x in ins)
        return ValueInfo((c,) + ins[0].shape[1:], ins[0].bits, False, ins[0].signed_codes)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        return ref.concat(args)

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def lower(self, node: Node, lowering) -> None:
        srcs, lanes, fed = lowering.joined(node)
        channels = [s.shape[0] for s in srcs]
        _, h, w = srcs[0].shape
        is_signed = codes_signed(srcs[0])
        cat = (ConcatSpec(channels[0], channels[1], h, w, lanes, srcs[0].bits, name=node.name)
               if len(srcs) == 2 and not is_signed
               else ConcatNSpec(channels, h, w, lanes, srcs[0].bits, signed=is_signed, name=node.name))
        lowering.add(node.name, node.name, "concat", cat, fed, [f"i{k}" for k in range(len(srcs))])
        lowering.produce(node.name, node.name, "o", cat.out_shape, lanes, srcs[0].bits)

    def export_module(self, ctx, module, where: str) -> ExportMatch | None:
        return ExportMatch([]) if isinstance(module, ctx.ops_layers.Concat) else None

    def export_function(self, ctx, fn, args: tuple, kwargs: dict, where: str) -> ExportMatch | None:
        torch = ctx.torch
        if fn not in (torch.cat, torch.concat, getattr(torch, "concatenate", None)):
            return None
        xs = args[0] if args else kwargs.get("tensors")
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        if dim not in (1, -3) or not isinstance(xs, (list, tuple)):
            raise ValueError(f"{where}: only channel concatenation torch.cat([...], dim=1) is supported")
        return ExportMatch(xs)


register(ConcatOp())
