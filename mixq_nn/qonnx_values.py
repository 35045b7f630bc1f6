"""The symbolic values :mod:`mixq_nn.qonnx_import` tracks for each ONNX tensor while it walks a model.

A tensor is the model input (:class:`Image`), a constant (:class:`Const`), unsigned codes held by a Graph
node (:class:`Codes`), an accumulator's per-channel affine map (:class:`Affine`) or a Relu / MaxPool /
Flatten pending until the next Quant (:class:`Struct`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Image", "Const", "Codes", "Affine", "Struct", "is_flat", "node_where", "safe_name"]


@dataclass(eq=False)
class Image:
    """The model input: ``pixel * scale``."""

    scale: float


@dataclass(eq=False)
class Const:
    """A constant tensor (an initializer or a Constant node's value)."""

    value: np.ndarray


@dataclass(eq=False)
class Codes:
    """Unsigned codes held by Graph node ``node``: real = code * step; ``flat`` after a Flatten."""

    node: str
    step: float
    flat: bool = False


@dataclass(eq=False)
class Affine:
    """``real = acc * scale + offset`` per channel of accumulator node ``acc``."""

    acc: str
    scale: np.ndarray
    offset: np.ndarray
    flat: bool
    layer: str


@dataclass(eq=False)
class Struct:
    """Relu / MaxPool / Flatten pending over an accumulator until the next Quant."""

    op: str
    src: object
    where: str


def node_where(node: Any) -> str:
    """An ONNX node for messages: its name and op type."""
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def safe_name(raw: str, fallback: str) -> str:
    """A Graph node name from an ONNX name (``fallback`` if nothing of it is usable), at most 100 characters."""
    parts = [re.sub(r"[^A-Za-z0-9_]", "_", p) for p in re.split(r"[/.:]+", raw) if p]
    name = ".".join(p for p in parts if p) or fallback
    if not re.match(r"[A-Za-z_]", name):
        name = "n" + name
    return name[-100:].lstrip(".") if len(name) > 100 else name


def is_flat(x: object) -> bool:
    """Whether ``x`` (under any pending Relu/MaxPool/Flatten) is a flattened tensor."""
    while isinstance(x, Struct):
        if x.op == "flatten":
            return True
        x = x.src
    return isinstance(x, (Affine, Codes)) and x.flat
