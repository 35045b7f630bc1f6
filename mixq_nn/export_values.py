"""The symbolic values :mod:`mixq_nn.export` walks a traced model with, and its error type.

An exported tensor is the input image, an exact integer accumulator under a per-channel affine map
(:class:`Affine`), a code-moving op over other values (:class:`Struct`) or the tuple a split returns
(:class:`Parts`); :class:`Quant` is what a consumer's quantiser does to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ExportError", "Image", "Affine", "Struct", "Parts", "Quant"]


class ExportError(ValueError):
    """The model cannot be exported; the message names the layer and the op."""


@dataclass(eq=False)
class Image:
    """The float input image ``pixel / 256``."""


@dataclass(eq=False)
class Affine:
    """``real = acc * scale + offset`` per channel, ``acc`` an accumulator node of the Graph."""

    acc: str
    scale: np.ndarray
    offset: np.ndarray
    flat: bool          # a linear's (N, F) output rather than a conv's (N, C, H, W)
    layer: str


@dataclass(eq=False)
class Struct:
    """A code-moving op (a registered op with ``moves_codes``, or flatten / relu) over symbolic values."""

    op: str
    srcs: tuple
    where: str
    attrs: dict = field(default_factory=dict)


@dataclass(eq=False)
class Parts:
    """The tuple a split returns: element ``k`` is ``op`` of ``src`` with ``attrs | {"index": k}``."""

    op: str
    src: object
    where: str
    attrs: dict
    made: dict = field(default_factory=dict)

    def part(self, index: object, where: str) -> Struct:
        """Element ``index`` (the same symbol each time it is taken)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ExportError(f"{where}: index the parts of {self.op} {self.where!r} with an int >= 0, "
                              f"got {index!r}")
        if index not in self.made:
            self.made[index] = Struct(self.op, (self.src,), f"{self.where}.{index}",
                                       {**self.attrs, "index": index})
        return self.made[index]


@dataclass(frozen=True)
class Quant:
    """What a consumer does to its input: the image's top bits or an activation step and bits."""

    kind: str   # "input" | "act"
    bits: int
    step: float
    signed: bool = False
