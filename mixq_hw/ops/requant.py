"""The ``requant`` op: per-channel requantisation of a conv/linear accumulator to activation codes."""

from __future__ import annotations

import numpy as np

from ..graph import ops as ref
from ..graph.checks import (Node, ValueInfo, acc_input, arity, bool_attr, fail, int_attr, requant_fits_dsp48,
                            tensor_attr)
from ..layers.regroup import GroupToRasterSpec
from ..layers.requant import RequantSpec
from ..layers.threshold import ThresholdRequantSpec
from ..packing.bits import NEG_SHIFTS
from .registry import OpDef, register

__all__ = ["RequantOp", "lower_regroup", "padded", "pad_channels", "raster_lanes", "signed_attrs"]


def padded(width: int, pixels: int) -> int:
    """A grouped stream's row width: ``ceil(width / pixels)`` whole groups (a ragged last group carries
    slots past the real columns, which the GroupToRaster after the requant drops)."""
    return -(-width // pixels) * pixels


def pad_channels(values: np.ndarray, value) -> np.ndarray:
    """Per-channel ``values`` of grouped stream ``value`` extended to its ``ceil(C/pe)*pe`` lanes: a padded last
    fold's lanes (a ConvEngine's zero filters, dropped by the GroupToRaster) repeat the last channel's value,
    so the per-channel stage's widths stay those of the real channels."""
    c = value.shape[0]
    lanes = -(-c // value.pe) * value.pe
    values = np.asarray(values)
    return values if lanes == c else np.concatenate([values, np.repeat(values[-1:], lanes - c)])


def lower_regroup(node: Node, lowering, src_stage: str, value, bits: int, lanes: int, *,
                  is_signed: bool = False) -> None:
    """The GroupToRaster after a per-channel stage on accumulator groups (requant, output): the node's
    value becomes a raster stream of ``lanes`` values of ``bits`` bits."""
    c, h, w = value.shape
    regroup = GroupToRasterSpec(c, value.pe, value.pixels, lanes, bits, signed=is_signed, width=w,
                            height=h, name=f"{node.name}.regroup")
    lowering.add(regroup.name, node.name, "regroup", regroup, [(src_stage, "o")])
    lowering.produce(node.name, regroup.name, "o", value.shape, lanes, bits)


def raster_lanes(value) -> int:
    """Lanes of the raster stream made from grouped stream ``value``: its ``pe``, or the smallest multiple of
    ``pe`` dividing the channels that lets a group leave as fast as the engine makes it (``pixels*C/lanes``
    beats within ``C/pe * cycles_per_beat`` cycles): at ``pe`` lanes a fold with more pixels than cycles per
    beat would be held to one pixel per ``C/pe`` cycles by the raster stream and the stages after it.  A
    ``pe`` not dividing C (a padded last fold) takes the smallest divisor of C that keeps up the same way."""
    c = value.shape[0]
    engine = -(-c // value.pe) * value.cycles_per_beat
    step = value.pe if c % value.pe == 0 else 1
    options = [lanes for lanes in range(step, c + 1, step) if c % lanes == 0]
    return next((lanes for lanes in options if value.pixels * c // lanes <= engine), options[-1])


def signed_attrs(node: Node) -> tuple[bool, int | None]:
    """The node's ``(signed_out, neg_shift)``: absent means unsigned codes (ReLU) and no LeakyReLU."""
    signed_out = bool_attr(node, "signed_out") if "signed_out" in node.attrs else False
    neg_shift = int_attr(node, "neg_shift", NEG_SHIFTS.start, NEG_SHIFTS.stop - 1) \
        if "neg_shift" in node.attrs else None
    if neg_shift is not None and not signed_out:
        raise fail(node, f"neg_shift={neg_shift} (LeakyReLU) needs signed_out=True")
    return signed_out, neg_shift


class RequantOp(OpDef):
    """``requant``: attributes out_bits, shift, acc_bits, inc_bits, fits_dsp48, optional ``signed_out``
    (signed codes, no activation) and ``neg_shift`` (with signed_out: LeakyReLU of slope 2**-neg_shift);
    tensors ``inc``, ``bias`` (one per channel); ``clip((acc*inc + bias + 2**(shift-1)) >> shift, 0,
    2**out_bits - 1)`` (:func:`mixq_hw.graph.ops.requant`)."""

    name = "requant"
    export_note = ("made by the exporter between a conv/linear (BatchNorm folded) and each consumer's "
                   "activation quantiser")
    reads_accumulator = True

    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        arity(node, 1)
        x = ins[0]
        acc_input(node, x)
        out_bits = int_attr(node, "out_bits", 1, 16)
        shift = int_attr(node, "shift", 1, 61)
        acc_bits = int_attr(node, "acc_bits", 1)
        inc_bits = int_attr(node, "inc_bits", 1)
        fits = bool_attr(node, "fits_dsp48")
        if acc_bits != x.bits:
            raise fail(node, f"acc_bits={acc_bits} but input {node.inputs[0]!r} needs {x.bits} bits")
        c = x.shape[0]
        inc = tensor_attr(node, "inc", (c,))
        bias = tensor_attr(node, "bias", (c,))
        need = ref.signed_width(int(inc.min()), int(inc.max()))
        if inc_bits != need:
            raise fail(node, f"inc_bits={inc_bits} but tensor 'inc' (range [{int(inc.min())}, "
                             f"{int(inc.max())}]) needs {need} bits")
        max_inc, max_bias = int(np.abs(inc).max()), int(np.abs(bias).max())
        bound = 2 ** (acc_bits - 1) * max_inc + max_bias + 2 ** (shift - 1)
        if bound >= 2 ** 62:
            raise fail(node, f"acc*inc + bias can reach {bound}, beyond int64")
        if fits != requant_fits_dsp48(acc_bits, inc, bias, shift):
            raise fail(node, f"fits_dsp48={fits} is wrong for acc_bits={acc_bits}, "
                             f"inc_bits={inc_bits}, max |bias|={max_bias}, shift={shift}")
        signed_out, neg_shift = signed_attrs(node)
        if signed_out and out_bits < 2:
            raise fail(node, f"signed_out needs out_bits >= 2, got {out_bits}")
        return ValueInfo(x.shape, out_bits, False, signed_out)

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        a, t = node.attrs, node.tensors
        signed_out, neg_shift = signed_attrs(node)
        return ref.requant(args[0], t["inc"], t["bias"], a["shift"], a["out_bits"], signed_out=signed_out,
                           neg_shift=neg_shift)

    def details(self, node: Node) -> str:
        a = node.attrs
        signed_out, neg_shift = signed_attrs(node)
        act = "" if not signed_out else " signed" if neg_shift is None else f" leaky{neg_shift}"
        return (f"T={a['shift']} acc{a['acc_bits']} inc{a['inc_bits']}{act}"
                f"{'' if a['fits_dsp48'] else ' (exceeds one DSP48E2)'}")

    def row_map(self, node: Node) -> tuple[int, int]:
        return (1, 0)

    def report_fields(self, node: Node) -> dict:
        return {"out_bits": node.attrs["out_bits"], "shift": node.attrs["shift"]}

    def lower(self, node: Node, lowering) -> None:
        src = lowering.take(node.inputs[0])
        a = node.attrs
        c, h, w = src.shape
        # Time-share the requant multipliers: the engine emits a beat of pe*pixels accumulators only
        # every cycles_per_beat cycles, so that many values per multiplier keep up with it.  The
        # requant reads the engine's output register for those cycles; the engine freezes only if
        # its next beat is ready before the requant is done (see ConvEngine), so no FIFO is needed.
        signed_out, neg_shift = signed_attrs(node)
        values = src.pe * src.pixels
        lanes = min(d for d in range(1, values + 1) if values % d == 0 and values // d <= src.cycles_per_beat)
        # the layer's fold picks the requantizer: DSP48E2 lanes or thresholds (no DSP)
        kind = ThresholdRequantSpec if src.format.requant == "threshold" else RequantSpec
        req = kind(pad_channels(node.tensors["inc"], src), pad_channels(node.tensors["bias"], src), shift=a["shift"], out_bits=a["out_bits"],
                   acc_bits=src.bits, pe=src.pe, pixels=src.pixels, lanes=lanes, height=h,
                   width=padded(w, src.pixels), name=node.name, neg_shift=neg_shift, signed_out=signed_out)
        lowering.add(node.name, node.name, "requant", req, [(src.stage, src.port)])
        lower_regroup(node, lowering, node.name, src, a["out_bits"], raster_lanes(src), is_signed=signed_out)


register(RequantOp())
