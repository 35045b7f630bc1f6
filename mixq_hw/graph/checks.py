"""Per-op validation and shape/bit inference for Graph nodes.

``infer(node, infos, input_shape)`` checks one node against the values it
reads (already inferred, in ``infos``) and returns the ``ValueInfo`` of what it
produces.  Every failure raises ``GraphError`` naming the node and the value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..packing.bits import ACT_BITS, INPUT_BITS, OUTPUT_BITS, WEIGHT_BITS, act_range, signed_act_range
from ..packing.geometry import DSP48E2_GEOMETRY
from ..validate import LIMITS
from . import ops

__all__ = ["GraphError", "ValueInfo", "Node", "OPS", "infer", "requant_fits_dsp48", "inc_port_bits",
           "DSP_A_BITS", "DSP_B_BITS", "DSP_P_BITS"]

# DSP48E2 port widths: 27-bit A/D operand, 18-bit B operand, 48-bit accumulator.
DSP_A_BITS, DSP_B_BITS, DSP_P_BITS = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


class GraphError(ValueError):
    """An invalid Graph or graph file; the message names the node / file and the value."""


@dataclass(frozen=True)
class ValueInfo:
    """What a node produces: per-frame shape (C, H, W), bit width and signedness."""

    shape: tuple[int, int, int]
    bits: int
    signed: bool

    @property
    def lo(self) -> int:
        """Smallest representable value."""
        return (signed_act_range if self.signed else act_range)(self.bits)[0]

    @property
    def hi(self) -> int:
        """Largest representable value."""
        return (signed_act_range if self.signed else act_range)(self.bits)[1]

    def __str__(self) -> str:
        c, h, w = self.shape
        return f"{c}x{h}x{w} {'s' if self.signed else 'u'}{self.bits}"


@dataclass
class Node:
    """One op of the integer network: inputs are names of earlier nodes."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict
    tensors: dict[str, np.ndarray]


def _fail(node: Node, msg: str) -> GraphError:
    return GraphError(f"node {node.name!r} ({node.op}): {msg}")


def _int_attr(node: Node, key: str, lo: int, hi: int | None = None) -> int:
    if key not in node.attrs:
        raise _fail(node, f"missing attribute {key!r}")
    v = node.attrs[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise _fail(node, f"attribute {key}={v!r} must be an integer")
    if v < lo or (hi is not None and v > hi):
        raise _fail(node, f"attribute {key}={v} out of range {lo}..{hi if hi is not None else 'inf'}")
    return int(v)


def _bool_attr(node: Node, key: str) -> bool:
    v = node.attrs.get(key)
    if not isinstance(v, bool):
        raise _fail(node, f"attribute {key}={v!r} must be true or false")
    return v


def _tensor(node: Node, key: str, shape: tuple[int, ...], integer: bool = True) -> np.ndarray:
    if key not in node.tensors:
        raise _fail(node, f"missing tensor {key!r}")
    t = np.asarray(node.tensors[key])
    if integer and t.dtype != np.int64:
        raise _fail(node, f"tensor {key!r} must be int64, got {t.dtype}")
    if not integer and not np.issubdtype(t.dtype, np.floating):
        raise _fail(node, f"tensor {key!r} must be floating point, got {t.dtype}")
    if t.shape != shape:
        raise _fail(node, f"tensor {key!r} has shape {t.shape}, expected {shape}")
    if not integer and not np.all(np.isfinite(t)):
        raise _fail(node, f"tensor {key!r} holds non-finite values")
    return t


def _codes_input(node: Node, info: ValueInfo, index: int = 0) -> None:
    if info.signed:
        raise _fail(node, f"input {node.inputs[index]!r} is a signed accumulator ({info}); "
                          f"{node.op} needs unsigned activation codes (add a requant)")


def _check_weight(node: Node, w: np.ndarray, w_bits: int) -> None:
    lim = ops.weight_limit(w_bits)
    if w.size and ops._max_abs(w) > lim:
        bad = int(w.flat[np.argmax(np.abs(w))])
        raise _fail(node, f"weight value {bad} outside the {w_bits}-bit narrow range -{lim}..{lim}")


def _arity(node: Node, n: int | None) -> None:
    if n is not None and len(node.inputs) != n:
        raise _fail(node, f"expects {n} input(s), got {len(node.inputs)}")


def _infer_input(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 0)
    return ValueInfo(tuple(input_shape), _int_attr(node, "bits", INPUT_BITS.start, INPUT_BITS.stop - 1), False)


def _infer_conv(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 1)
    x = ins[0]
    _codes_input(node, x)
    c, h, w = x.shape
    in_ch = _int_attr(node, "in_ch", 1, LIMITS["channels"])
    out_ch = _int_attr(node, "out_ch", 1, LIMITS["channels"])
    k = _int_attr(node, "k", 1, 15)
    stride = _int_attr(node, "stride", 1, 2)
    pad = _int_attr(node, "pad", 0, k - 1)
    groups = _int_attr(node, "groups", 1, LIMITS["channels"])
    w_bits = _int_attr(node, "w_bits", WEIGHT_BITS.start, WEIGHT_BITS.stop - 1)
    a_bits = _int_attr(node, "a_bits", ACT_BITS.start, ACT_BITS.stop - 1)
    if in_ch != c:
        raise _fail(node, f"in_ch={in_ch} but input {node.inputs[0]!r} has {c} channels")
    if a_bits != x.bits:
        raise _fail(node, f"a_bits={a_bits} but input {node.inputs[0]!r} carries {x.bits}-bit codes")
    if in_ch % groups or out_ch % groups:
        raise _fail(node, f"groups={groups} does not divide in_ch={in_ch} and out_ch={out_ch}")
    if h + 2 * pad < k or w + 2 * pad < k:
        raise _fail(node, f"input {h}x{w} with pad {pad} is smaller than the {k}x{k} kernel")
    weight = _tensor(node, "weight", (out_ch, in_ch // groups, k, k))
    _check_weight(node, weight, w_bits)
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    return ValueInfo((out_ch, ho, wo), ops.acc_width(in_ch // groups * k * k, w_bits, a_bits), True)


def _infer_linear(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 1)
    x = ins[0]
    _codes_input(node, x)
    in_f = _int_attr(node, "in_features", 1)
    out_f = _int_attr(node, "out_features", 1, LIMITS["channels"])
    w_bits = _int_attr(node, "w_bits", WEIGHT_BITS.start, WEIGHT_BITS.stop - 1)
    a_bits = _int_attr(node, "a_bits", ACT_BITS.start, ACT_BITS.stop - 1)
    if in_f != math.prod(x.shape):
        raise _fail(node, f"in_features={in_f} but input {node.inputs[0]!r} is {x.shape} "
                          f"({math.prod(x.shape)} values)")
    if a_bits != x.bits:
        raise _fail(node, f"a_bits={a_bits} but input {node.inputs[0]!r} carries {x.bits}-bit codes")
    weight = _tensor(node, "weight", (out_f, in_f))
    _check_weight(node, weight, w_bits)
    return ValueInfo((out_f, 1, 1), ops.acc_width(in_f, w_bits, a_bits), True)


def _acc_input(node: Node, x: ValueInfo) -> None:
    if not x.signed:
        raise _fail(node, f"input {node.inputs[0]!r} is unsigned codes ({x}); "
                          f"{node.op} reads a conv/linear accumulator")


def inc_port_bits(acc_bits: int) -> int:
    """Width of the DSP48E2 port left for inc: 27 bits when acc fits the 18-bit port, else 18
    (0 when acc exceeds even the 27-bit port: then no single DSP48E2 does the multiply)."""
    if acc_bits <= DSP_B_BITS:
        return DSP_A_BITS
    return DSP_B_BITS if acc_bits <= DSP_A_BITS else 0


def requant_fits_dsp48(acc_bits: int, inc: np.ndarray, bias: np.ndarray, shift: int) -> bool:
    """True when one DSP48E2 can compute ``acc*inc + bias + 2**(T-1)`` for every acc_bits value.

    acc on the 27-bit port and inc on the 18-bit port (or, for acc_bits <= 18, the other way
    round), the sum in the 48-bit accumulator (checked with the worst-case signed acc).
    """
    inc_bits = ops.signed_width(int(inc.min()), int(inc.max())) if inc.size else 1
    if not inc_port_bits(acc_bits) or inc_bits > inc_port_bits(acc_bits):
        return False
    amax = 2 ** (acc_bits - 1)
    worst = amax * ops._max_abs(inc) + ops._max_abs(bias) + 2 ** (shift - 1)
    return worst <= 2 ** (DSP_P_BITS - 1) - 1


def _infer_requant(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 1)
    x = ins[0]
    _acc_input(node, x)
    out_bits = _int_attr(node, "out_bits", 1, 16)
    shift = _int_attr(node, "shift", 1, 61)
    acc_bits = _int_attr(node, "acc_bits", 1)
    inc_bits = _int_attr(node, "inc_bits", 1)
    fits = _bool_attr(node, "fits_dsp48")
    if acc_bits != x.bits:
        raise _fail(node, f"acc_bits={acc_bits} but input {node.inputs[0]!r} needs {x.bits} bits")
    c = x.shape[0]
    inc = _tensor(node, "inc", (c,))
    bias = _tensor(node, "bias", (c,))
    need = ops.signed_width(int(inc.min()), int(inc.max()))
    if inc_bits != need:
        raise _fail(node, f"inc_bits={inc_bits} but tensor 'inc' (range [{int(inc.min())}, "
                          f"{int(inc.max())}]) needs {need} bits")
    bound = 2 ** (acc_bits - 1) * ops._max_abs(inc) + ops._max_abs(bias) + 2 ** (shift - 1)
    if bound >= 2 ** 62:
        raise _fail(node, f"acc*inc + bias can reach {bound}, beyond int64")
    if fits != requant_fits_dsp48(acc_bits, inc, bias, shift):
        raise _fail(node, f"fits_dsp48={fits} is wrong for acc_bits={acc_bits}, "
                          f"inc_bits={inc_bits}, max |bias|={ops._max_abs(bias)}, shift={shift}")
    return ValueInfo(x.shape, out_bits, False)


def _infer_spatial2(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 1)
    x = ins[0]
    _codes_input(node, x)
    c, h, w = x.shape
    if h % 2 or w % 2:
        raise _fail(node, f"input {node.inputs[0]!r} is {h}x{w}; {node.op} needs even height and width")
    return ValueInfo((c * 4 if node.op == "reorg" else c, h // 2, w // 2), x.bits, False)


def _infer_concat(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    if len(ins) < 2:
        raise _fail(node, f"expects at least 2 inputs, got {len(ins)}")
    for i, x in enumerate(ins):
        _codes_input(node, x, i)
        if x.bits != ins[0].bits:
            raise _fail(node, f"input {node.inputs[i]!r} has {x.bits}-bit codes but "
                              f"{node.inputs[0]!r} has {ins[0].bits}; concat inputs need equal bits")
        if x.shape[1:] != ins[0].shape[1:]:
            raise _fail(node, f"input {node.inputs[i]!r} is {x.shape[1]}x{x.shape[2]} but "
                              f"{node.inputs[0]!r} is {ins[0].shape[1]}x{ins[0].shape[2]}")
    c = sum(x.shape[0] for x in ins)
    return ValueInfo((c,) + ins[0].shape[1:], ins[0].bits, False)


def _infer_output(node: Node, ins: list[ValueInfo], input_shape) -> ValueInfo:
    _arity(node, 1)
    x = ins[0]
    _acc_input(node, x)
    c = x.shape[0]
    bias = _tensor(node, "bias", (c,))
    _tensor(node, "scale", (c,), integer=False)
    worst = 2 ** (x.bits - 1) + ops._max_abs(bias)
    if worst > 2 ** (OUTPUT_BITS - 1) - 1:
        raise _fail(node, f"acc ({x.bits} bits) + bias (max |bias| {ops._max_abs(bias)}) "
                          f"can reach {worst}, beyond int32")
    return ValueInfo(x.shape, OUTPUT_BITS, True)


OPS: dict[str, Callable] = {
    "input": _infer_input, "conv": _infer_conv, "linear": _infer_linear,
    "requant": _infer_requant, "maxpool": _infer_spatial2, "reorg": _infer_spatial2,
    "concat": _infer_concat, "output": _infer_output,
}

# Ops whose output is a signed accumulator (read only by requant/output).
ACC_OPS = ("conv", "linear")


def infer(node: Node, infos: dict[str, ValueInfo], input_shape) -> ValueInfo:
    """Check ``node`` (its inputs must already be in ``infos``) and return its ValueInfo."""
    if node.op not in OPS:
        raise _fail(node, f"unknown op; known ops: {', '.join(OPS)}")
    if not isinstance(node.attrs, dict):
        raise _fail(node, f"attrs must be a dict, got {type(node.attrs).__name__}")
    try:
        json.dumps(node.attrs, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise _fail(node, f"attrs are not JSON-able: {e}") from None
    if not isinstance(node.tensors, dict) or not all(isinstance(k, str) for k in node.tensors):
        raise _fail(node, "tensors must be a dict with string keys")
    for src in node.inputs:
        if src not in infos:
            raise _fail(node, f"input {src!r} is not an earlier node (graph must be in topological order)")
    ins = [infos[src] for src in node.inputs]
    return OPS[node.op](node, ins, input_shape)
