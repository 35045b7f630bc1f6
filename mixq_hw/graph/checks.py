"""The Graph's node and value types and the checks every op's shape inference shares.

Each op's own checks and inference live in its record in :mod:`mixq_hw.ops`; they use these helpers,
and every failure raises ``GraphError`` naming the node and the value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..packing.bits import act_range, signed_act_range
from ..packing.geometry import DSP48E2_GEOMETRY
from . import ops

__all__ = ["GraphError", "ValueInfo", "Node", "requant_fits_dsp48", "inc_port_bits", "fail", "int_attr",
           "bool_attr", "tensor_attr", "codes_input", "acc_input", "check_weight", "arity",
           "DSP_A_BITS", "DSP_B_BITS", "DSP_P_BITS"]

# DSP48E2 port widths: 27-bit A/D operand, 18-bit B operand, 48-bit accumulator.
DSP_A_BITS, DSP_B_BITS, DSP_P_BITS = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


class GraphError(ValueError):
    """An invalid Graph or graph file; the message names the node / file and the value."""


@dataclass(frozen=True)
class ValueInfo:
    """What a node produces: per-frame shape (C, H, W) and bit width; ``signed``: a signed accumulator
    (conv, linear, avgpool), else activation codes, unsigned unless ``signed_codes`` (two's complement:
    LeakyReLU outputs, residual branches)."""

    shape: tuple[int, int, int]
    bits: int
    signed: bool
    signed_codes: bool = False

    @property
    def lo(self) -> int:
        """Smallest representable value."""
        return (signed_act_range if self.signed or self.signed_codes else act_range)(self.bits)[0]

    @property
    def hi(self) -> int:
        """Largest representable value."""
        return (signed_act_range if self.signed or self.signed_codes else act_range)(self.bits)[1]

    def __str__(self) -> str:
        c, h, w = self.shape
        kind = "s" if self.signed else "i" if self.signed_codes else "u"
        return f"{c}x{h}x{w} {kind}{self.bits}"


@dataclass
class Node:
    """One op of the integer network: inputs are names of earlier nodes."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict
    tensors: dict[str, np.ndarray]


def fail(node: Node, msg: str) -> GraphError:
    """A GraphError naming ``node`` and its op, then ``msg``."""
    return GraphError(f"node {node.name!r} ({node.op}): {msg}")


def int_attr(node: Node, key: str, lo: int, hi: int | None = None) -> int:
    """Integer attribute ``key`` of ``node``, checked to lie in ``lo..hi`` (``hi`` None: no upper bound)."""
    if key not in node.attrs:
        raise fail(node, f"missing attribute {key!r}")
    v = node.attrs[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise fail(node, f"attribute {key}={v!r} must be an integer")
    if v < lo or (hi is not None and v > hi):
        raise fail(node, f"attribute {key}={v} out of range {lo}..{hi if hi is not None else 'inf'}")
    return int(v)


def bool_attr(node: Node, key: str) -> bool:
    """Boolean attribute ``key`` of ``node``."""
    v = node.attrs.get(key)
    if not isinstance(v, bool):
        raise fail(node, f"attribute {key}={v!r} must be true or false")
    return v


def tensor_attr(node: Node, key: str, shape: tuple[int, ...], integer: bool = True) -> np.ndarray:
    """Tensor ``key`` of ``node``, checked for its dtype (int64, or finite floats) and ``shape``."""
    if key not in node.tensors:
        raise fail(node, f"missing tensor {key!r}")
    t = np.asarray(node.tensors[key])
    if integer and t.dtype != np.int64:
        raise fail(node, f"tensor {key!r} must be int64, got {t.dtype}")
    if not integer and not np.issubdtype(t.dtype, np.floating):
        raise fail(node, f"tensor {key!r} must be floating point, got {t.dtype}")
    if t.shape != shape:
        raise fail(node, f"tensor {key!r} has shape {t.shape}, expected {shape}")
    if not integer and not np.all(np.isfinite(t)):
        raise fail(node, f"tensor {key!r} holds non-finite values")
    return t


def codes_input(node: Node, info: ValueInfo, index: int = 0, allow_signed: bool = False) -> None:
    """GraphError unless input ``index`` of ``node`` carries activation codes: unsigned, or also signed
    codes when ``allow_signed``."""
    if info.signed:
        raise fail(node, f"input {node.inputs[index]!r} is a signed accumulator ({info}); "
                          f"{node.op} needs {'' if allow_signed else 'unsigned '}activation codes (add a requant)")
    if info.signed_codes and not allow_signed:
        raise fail(node, f"input {node.inputs[index]!r} carries signed codes ({info}); "
                          f"{node.op} needs unsigned activation codes")


def check_weight(node: Node, w: np.ndarray, w_bits: int) -> None:
    """GraphError unless every weight lies in the ``w_bits`` narrow signed range."""
    lim = ops.weight_limit(w_bits)
    if w.size and ops._max_abs(w) > lim:
        bad = int(w.flat[np.argmax(np.abs(w))])
        raise fail(node, f"weight value {bad} outside the {w_bits}-bit narrow range -{lim}..{lim}")


def arity(node: Node, n: int | None) -> None:
    """GraphError unless ``node`` has ``n`` inputs (None: any number)."""
    if n is not None and len(node.inputs) != n:
        raise fail(node, f"expects {n} input(s), got {len(node.inputs)}")


def acc_input(node: Node, x: ValueInfo) -> None:
    """GraphError unless the first input of ``node`` is a signed conv/linear accumulator."""
    if not x.signed:
        raise fail(node, f"input {node.inputs[0]!r} is unsigned codes ({x}); "
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
