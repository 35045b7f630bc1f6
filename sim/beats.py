"""Stream beats as raw bits: what the compiled backends put on a payload port and read back from one."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data

from .streams import to_python

__all__ = ["payload_shape", "payload_width", "words_of", "pack_beat", "unpack_beat", "beat_words",
           "words_to_beats"]


def payload_shape(dut, port: str):
    """The payload shape (a Shape or a data.Layout) of the stream interface ``dut.<port>``."""
    return dut.signature.members[port].signature.members["payload"].shape


def payload_width(shape) -> int:
    """Bits of a payload of ``shape``."""
    if isinstance(shape, data.Layout):
        return shape.size
    return Shape.cast(shape).width


def words_of(width: int) -> int:
    """32-bit words that hold ``width`` bits (at least one)."""
    return max(1, (width + 31) // 32)


def pack_beat(shape, beat: Any) -> int:
    """A beat as the raw integer the payload's bits hold (arrays fast, other layouts through Amaranth)."""
    if isinstance(shape, data.ArrayLayout):
        step = payload_width(shape.elem_shape)
        raw = 0
        for i, v in enumerate(beat):
            raw |= pack_beat(shape.elem_shape, v) << (i * step)
        return raw
    if isinstance(shape, data.Layout):
        return shape.const(beat).as_value().value & ((1 << shape.size) - 1)
    return int(beat) & ((1 << payload_width(shape)) - 1)


def unpack_beat(shape, raw: int) -> Any:
    """The inverse of :func:`pack_beat` (bits above the payload's width are ignored): plain ints, lists
    for arrays, dicts for structs."""
    width = payload_width(shape)
    raw &= (1 << width) - 1
    if isinstance(shape, data.ArrayLayout):
        step = payload_width(shape.elem_shape)
        mask = (1 << step) - 1
        return [unpack_beat(shape.elem_shape, (raw >> (i * step)) & mask) for i in range(shape.length)]
    if isinstance(shape, data.Layout):
        return to_python(shape.from_bits(raw))
    if Shape.cast(shape).signed and raw >> (width - 1):
        return raw - (1 << width)
    return raw


def beat_words(shape, beats: list[Any]) -> list[int]:
    """``beats`` packed little-endian into :func:`words_of` 32-bit words each, one flat list."""
    nw = words_of(payload_width(shape))
    out: list[int] = []
    for beat in beats:
        raw = pack_beat(shape, beat)
        out.extend((raw >> (32 * w)) & 0xFFFFFFFF for w in range(nw))
    return out


def words_to_beats(shape, words, count: int) -> list[Any]:
    """The inverse of :func:`beat_words`: ``count`` beats from a flat sequence of 32-bit words."""
    nw = words_of(payload_width(shape))
    beats = []
    for b in range(count):
        raw = 0
        for w in range(nw):
            raw |= int(words[b * nw + w]) << (32 * w)
        beats.append(unpack_beat(shape, raw))
    return beats
