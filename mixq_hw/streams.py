"""The stream between two pipeline stages: its format, and where it comes from.

A :class:`StreamFormat` is everything a consumer's stages depend on (shape, lanes, code width, whether it
carries a conv engine's accumulator groups, its pacing, its payload layout); a :class:`Stream` adds the
stage and port that produce it.  The pipeline's lowering tracks one Stream per graph value, and the folding's
cost model keys its cache on formats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["StreamFormat", "Stream", "codes_signed"]


@dataclass(frozen=True)
class StreamFormat:
    """A value's stream format.

    ``shape`` (C, H, W) of the value; ``lanes`` values per beat; ``bits`` per value; ``grouped``: True for
    a ConvEngine's accumulator groups (``pe`` channels x ``pixels`` pixels per beat, one beat every
    ``cycles_per_beat`` cycles), False for a raster pixel stream; ``bursty``: a raster stream that arrives
    in row bursts (a 2x2 pool or reorg emits only while it reads the second row of each pair, at up to one
    beat per cycle, then nothing for a row); ``requant``: on accumulator groups, the requantizer kind the
    producing layer's fold asks for (``LayerFold.requant``); ``payload``: the beat's Amaranth layout.
    """

    shape: tuple[int, int, int]
    lanes: int
    bits: int
    grouped: bool = False
    pe: int = 1
    pixels: int = 1
    cycles_per_beat: int = 1
    bursty: bool = False
    requant: str = "dsp"
    payload: object = None

    def beats_per_frame(self) -> int:
        """Beats of one frame (grouped streams: whole groups, ``ceil(W / pixels)`` per row)."""
        c, h, w = self.shape
        if self.grouped:
            return h * (-(-w // self.pixels)) * (-(-c // self.pe))
        return h * w * c // self.lanes

    def beats_per_row(self) -> int:
        """Beats of one row of a raster stream."""
        c, h, w = self.shape
        return w * c // self.lanes


@dataclass(frozen=True)
class Stream:
    """A value's stream: produced on ``port`` of pipeline stage ``stage``, in ``format``."""

    stage: str
    port: str
    format: StreamFormat

    def moved(self, stage: str, port: str, **changes: Any) -> "Stream":
        """The same stream coming from another stage's port (``changes``: format fields that differ)."""
        return Stream(stage, port, replace(self.format, **changes))

    def flattened(self) -> "Stream":
        """The stream seen as a 1x1 image with C*H*W channels (the input of a linear layer)."""
        c, h, w = self.shape
        return Stream(self.stage, self.port, StreamFormat((c * h * w, 1, 1), self.lanes, self.bits,
                                                          payload=self.format.payload))

    def beats_per_frame(self) -> int:
        return self.format.beats_per_frame()

    def beats_per_row(self) -> int:
        return self.format.beats_per_row()

    # the format's fields, read through the stream
    shape = property(lambda self: self.format.shape)
    lanes = property(lambda self: self.format.lanes)
    bits = property(lambda self: self.format.bits)
    grouped = property(lambda self: self.format.grouped)
    pe = property(lambda self: self.format.pe)
    pixels = property(lambda self: self.format.pixels)
    cycles_per_beat = property(lambda self: self.format.cycles_per_beat)
    bursty = property(lambda self: self.format.bursty)


def codes_signed(value: Stream) -> bool:
    """True when the raster stream ``value`` carries signed codes (its payload's elements are signed)."""
    payload = value.format.payload
    return isinstance(payload, data.ArrayLayout) and Shape.cast(payload.elem_shape).signed
