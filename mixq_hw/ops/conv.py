"""The ``conv`` op: an exact integer 2-D convolution (dense, grouped or depthwise) of activation codes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..graph import ops as ref
from ..graph.checks import Node, ValueInfo, arity, check_weight, codes_input, fail, int_attr, tensor_attr
from ..layers.conv import ConvEngineSpec, weight_codes
from ..packing.bits import ACT_BITS, WEIGHT_BITS
from ..validate import LIMITS
from .registry import OpDef, register

__all__ = ["ConvOp", "lower_engine", "engine_spec", "conv_geometry"]


def engine_spec(node: Node, view: dict, fold) -> ConvEngineSpec:
    """The ConvEngine spec of a folded layer under ``fold`` (a LayerFold), from its op's ``engine_args``
    ``view``; ValueError naming the layer if the engine refuses the fold or its pinned plan."""
    a = node.attrs
    return ConvEngineSpec(view["weight"], w_bits=a["w_bits"], a_bits=a["a_bits"], in_ch=view["in_ch"],
                          out_ch=view["out_ch"], k=view["k"], groups=view["groups"], simd=fold.simd, pe=fold.pe,
                          pixels=fold.pixels, out_size=view["out_hw"], stride=view["stride"],
                          windows=("taps", "rows"), multiplier=fold.multiplier, plan=fold.plan,
                          signed_act=view["signed_act"], weight_store=fold.weights, name=node.name)


def lower_engine(node: Node, lowering, src, view: dict) -> None:
    """The stages of a folded layer (conv, linear) reading stream ``src``, from its op's ``engine_args``
    ``view``: lanes to the fold's simd, the window its packing plan reads, the ConvEngine; its value is
    the engine's accumulator groups."""
    f = lowering.fold(node)
    src = lowering.lanes(src, f.simd, node.name)
    # The engine picks kernel or filter packing; each needs its own window format.  The engines of one
    # layer share one copy of its weight codes, and its window depends on the node and its fold alone (the
    # requantizer is a later stage's), not on the input stream's format.
    weight = lowering.memo.value(("weight", node.name), lambda: weight_codes(view["weight"]))
    engine = engine_spec(node, {**view, "weight": weight}, f)
    in_hw = src.shape[1:]
    window = lowering.memo.spec(("window", node.name, replace(f, requant="dsp"), in_hw, view["pad"]),
                                lambda: engine.window_spec(in_hw[0], in_hw[1], view["pad"],
                                                           name=f"{node.name}.window"))
    lowering.add(window.name, node.name, "window", window, [(src.stage, src.port)])
    lowering.add(node.name, node.name, "conv", engine, [(window.name, "o")])
    lowering.produce(node.name, node.name, "o", (view["out_ch"], *view["out_hw"]), f.pe, engine.acc_bits,
                     grouped=True, pe=f.pe, pixels=f.pixels, requant=f.requant,
                     cycles_per_beat=engine.cycles_per_frame() // engine.out_beats_per_frame)


def conv_geometry(module, where: str) -> tuple[int, int, int]:
    """``(k, stride, pad)`` of a torch ``Conv2d``-like ``module`` (duck-typed); ValueError naming ``where``
    for what the op cannot represent (non-square kernel, stride other than 1 or 2, dilation, non-zero or
    unequal padding)."""
    k, k2 = module.kernel_size
    s, s2 = module.stride
    if k != k2 or s != s2 or s not in (1, 2) or tuple(module.dilation) != (1, 1):
        raise ValueError(f"{where}: needs a square kernel, equal stride 1 or 2 and no dilation; got "
                         f"kernel {module.kernel_size}, stride {module.stride}, dilation {module.dilation}")
    if module.padding_mode != "zeros":
        raise ValueError(f"{where}: padding_mode {module.padding_mode!r}; only zero padding is supported")
    pad = module.padding
    if pad == "same":
        if s != 1 or k % 2 == 0:
            raise ValueError(f"{where}: padding='same' needs stride 1 and an odd kernel")
        pad = (k // 2, k // 2)
    elif pad == "valid":
        pad = (0, 0)
    if pad[0] != pad[1] or not 0 <= pad[0] < k:
        raise ValueError(f"{where}: padding {module.padding} must be equal on both axes and below the kernel")
    return k, s, pad[0]


class ConvOp(OpDef):
    """``conv``: attributes in_ch, out_ch, k, stride (1, 2), pad, groups, w_bits, a_bits; tensor
    ``weight`` (out_ch, in_ch/groups, k, k) of narrow-range codes; input: unsigned or signed codes (the
    engine then runs a signed-activation packing plan); output: signed accumulators."""

    name = "conv"
    export_note = "made from a quantised QConv2d by the exporter, through export_layer"
    folded = True
    accumulates = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        codes_input(node, x, allow_signed=True)
        c, h, w = x.shape
        in_ch = int_attr(node, "in_ch", 1, LIMITS["channels"])
        out_ch = int_attr(node, "out_ch", 1, LIMITS["channels"])
        k = int_attr(node, "k", 1, 15)
        stride = int_attr(node, "stride", 1, 2)
        pad = int_attr(node, "pad", 0, k - 1)
        groups = int_attr(node, "groups", 1, LIMITS["channels"])
        w_bits = int_attr(node, "w_bits", WEIGHT_BITS.start, WEIGHT_BITS.stop - 1)
        a_bits = int_attr(node, "a_bits", ACT_BITS.start, ACT_BITS.stop - 1)
        if in_ch != c:
            raise fail(node, f"in_ch={in_ch} but input {node.inputs[0]!r} has {c} channels")
        if a_bits != x.bits:
            raise fail(node, f"a_bits={a_bits} but input {node.inputs[0]!r} carries {x.bits}-bit codes")
        if in_ch % groups or out_ch % groups:
            raise fail(node, f"groups={groups} does not divide in_ch={in_ch} and out_ch={out_ch}")
        if h + 2 * pad < k or w + 2 * pad < k:
            raise fail(node, f"input {h}x{w} with pad {pad} is smaller than the {k}x{k} kernel")
        weight = tensor_attr(node, "weight", (out_ch, in_ch // groups, k, k))
        check_weight(node, weight, w_bits)
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return ValueInfo((out_ch, ho, wo), ref.acc_width(in_ch // groups * k * k, w_bits, a_bits, x.signed_codes),
                         True)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        a = node.attrs
        return ref.conv2d_int(args[0], node.tensors["weight"], a["stride"], a["pad"], a["groups"])

    def details(self, node: Node) -> str:
        a = node.attrs
        kind = "dw" if a["groups"] == a["in_ch"] and a["groups"] > 1 else (
            f"g{a['groups']}" if a["groups"] > 1 else "")
        return f"k{a['k']} s{a['stride']} p{a['pad']} {kind} w{a['w_bits']}a{a['a_bits']}".replace("  ", " ")

    def fan_in(self, node: Node) -> int:
        a = node.attrs
        return a["in_ch"] // a["groups"] * a["k"] ** 2

    def engine_args(self, node: Node, graph) -> dict:
        """The ConvEngine's view of the node: weight (out, in/groups, k, k), in_ch, out_ch, k, groups,
        stride, pad and the output map's (height, width) ``out_hw``; ``depthwise``; ``signed_act``: the input
        codes are signed; ``widths`` names the sizes the fold's simd, pe and pixels divide (or bound)."""
        a = node.attrs
        out_hw = graph.value_info(node.name).shape[1:]
        return dict(weight=node.tensors["weight"], in_ch=a["in_ch"], out_ch=a["out_ch"], k=a["k"],
                    groups=a["groups"], stride=a["stride"], pad=a["pad"], out_hw=out_hw,
                    depthwise=a["groups"] == a["in_ch"] and a["in_ch"] > 1,
                    signed_act=graph.value_info(node.inputs[0]).signed_codes,
                    widths={"simd": ("in_ch", a["in_ch"]), "pe": ("out_ch", a["out_ch"]),
                            "pixels": ("output width", out_hw[1])})

    def row_map(self, node: Node) -> tuple[int, int]:
        return (node.attrs["stride"], node.attrs["k"] - 1 - node.attrs["pad"])

    def report_fields(self, node: Node) -> dict:
        a = node.attrs
        return {"w_bits": a["w_bits"], "a_bits": a["a_bits"], "kernel": a["k"], "stride": a["stride"],
                "depthwise": a["groups"] > 1}

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        lower_engine(node, lowering, src, self.engine_args(node, lowering.graph))

    def export_layer(self, graph, name: str, src: str, module, weight: np.ndarray, *, w_bits: int,
                     where: str, **attrs: object) -> str:
        """Add the conv node of a quantised ``Conv2d``-like ``module`` (duck-typed) reading ``src``, with
        its integer ``weight`` codes; ValueError naming ``where`` for a geometry the op cannot represent."""
        k, stride, pad = conv_geometry(module, where)
        return graph.add_conv(name, src, weight, w_bits=w_bits, stride=stride, pad=pad, groups=module.groups,
                              **attrs)


register(ConvOp())
