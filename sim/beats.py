"""Stream beats as raw bits: what the compiled backends put on a payload port and read back from one."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from .streams import to_python

__all__ = ["payload_shape", "payload_width", "words_of", "pack_beat", "unpack_beat", "beat_words",
           "beat_word_array", "words_to_beats", "words_to_array", "array_beats"]

#: values per numpy chunk of the vectorised packing (its scratch arrays stay in cache)
_CHUNK_VALUES = 1 << 15


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


def _lanes(shape) -> tuple[tuple[int, ...], int, bool] | None:
    """(array dimensions, element width, signed) when ``shape`` is a plain integer shape of at most 32 bits
    or nested arrays of one, the payloads the vectorised paths handle; else None."""
    dims: list[int] = []
    while isinstance(shape, data.ArrayLayout):
        dims.append(int(shape.length))
        shape = shape.elem_shape
    if isinstance(shape, data.Layout):
        return None
    elem = Shape.cast(shape)
    if not 1 <= elem.width <= 32:
        return None
    return tuple(dims), int(elem.width), bool(elem.signed)


def array_beats(shape) -> bool:
    """Whether :func:`words_to_array` takes ``shape`` (an integer of at most 32 bits or nested arrays of one)."""
    return _lanes(shape) is not None


class _Fields:
    """Where ``n`` elements ``width`` bits wide sit in a beat's words: element ``k`` at bit ``k * width``,
    in word ``word[k]`` from bit ``shift[k]`` (spilling into the next word); ``starts``: the first element of
    each word that one starts in (every word up to the last such one, as width <= 32)."""

    def __init__(self, n: int, width: int) -> None:
        offsets = np.arange(n, dtype=np.int64) * width
        self.word = offsets // 32
        self.shift = (offsets % 32).astype(np.uint64)
        self.starts = np.flatnonzero(np.r_[True, self.word[1:] != self.word[:-1]]) if n else self.word
        self.mask = np.uint64((1 << width) - 1)
        #: beats per numpy chunk: its scratch arrays stay in cache
        self.step = max(1, _CHUNK_VALUES // max(1, n))


def beat_word_array(shape, beats: Any) -> np.ndarray:
    """:func:`beat_words` as a flat uint32 array (numpy for integer arrays, the same words)."""
    lanes = _lanes(shape)
    arr = None
    if lanes is not None and not isinstance(beats, (str, bytes)):
        try:
            arr = np.asarray(beats)
        except (ValueError, OverflowError):   # ragged or beyond int64: the generic path decides
            arr = None
    if lanes is None or arr is None or (arr.dtype.kind not in "iub" and arr.size) or arr.ndim != 1 + len(lanes[0]) \
            or tuple(arr.shape[1:]) != lanes[0] or (arr.dtype.kind == "u" and arr.dtype.itemsize > 4):
        return np.array(_beat_words_generic(shape, beats), dtype=np.uint32)
    dims, width, _signed = lanes
    nw = words_of(payload_width(shape))
    count = int(arr.shape[0])
    n = int(np.prod(dims, dtype=np.int64))
    values = arr.reshape(count, n)
    out = np.zeros((count, nw), dtype=np.uint32)
    if not n:
        return out.ravel()
    f = _Fields(n, width)
    first = f.word[f.starts]
    for lo in range(0, count, f.step):
        chunk = values[lo:lo + f.step].astype(np.int64).view(np.uint64)
        placed = (chunk & f.mask) << f.shift   # at most 63 bits: shift < 32, width <= 32
        words = np.zeros((chunk.shape[0], nw + 1), dtype=np.uint64)
        # disjoint bit fields: their sum is their OR
        words[:, first] += np.add.reduceat(placed & np.uint64(0xFFFFFFFF), f.starts, axis=1)
        words[:, first + 1] += np.add.reduceat(placed >> np.uint64(32), f.starts, axis=1)
        out[lo:lo + f.step] = words[:, :nw]
    return out.ravel()


def beat_words(shape, beats: Any) -> list[int]:
    """``beats`` packed little-endian into :func:`words_of` 32-bit words each, one flat list."""
    return beat_word_array(shape, beats).tolist()


def _beat_words_generic(shape, beats: Any) -> list[int]:
    """:func:`beat_words` beat by beat through :func:`pack_beat` (any layout, any Python values)."""
    nw = words_of(payload_width(shape))
    out: list[int] = []
    for beat in beats:
        raw = pack_beat(shape, beat)
        out.extend((raw >> (32 * w)) & 0xFFFFFFFF for w in range(nw))
    return out


def words_to_array(shape, words: Sequence[int] | np.ndarray, count: int) -> np.ndarray:
    """:func:`words_to_beats` as an int64 array (beats first, then the payload's array dimensions); only for
    a plain integer shape of at most 32 bits or nested arrays of one (ValueError otherwise)."""
    lanes = _lanes(shape)
    if lanes is None:
        raise ValueError(f"words_to_array: {shape!r} is not an integer or an array of integers of <= 32 bits")
    dims, width, signed = lanes
    nw = words_of(payload_width(shape))
    n = int(np.prod(dims, dtype=np.int64))
    flat = np.asarray(words[:count * nw] if count else [], dtype=np.uint64)
    if flat.size != count * nw:
        raise ValueError(f"{count} beats of {nw} words need {count * nw} words, got {flat.size}")
    words_2d = flat.reshape(count, nw)
    values = np.empty((count, n), dtype=np.int64)
    if n:
        f = _Fields(n, width)
        for lo in range(0, count, f.step):
            chunk = np.zeros((min(f.step, count - lo), nw + 1), dtype=np.uint64)
            chunk[:, :nw] = words_2d[lo:lo + f.step]
            field = ((chunk[:, f.word] | (chunk[:, f.word + 1] << np.uint64(32))) >> f.shift) & f.mask
            if signed:   # two's complement: subtract 2**width where the sign bit is set
                field -= (field >> np.uint64(width - 1)) << np.uint64(width)
            values[lo:lo + f.step] = field.view(np.int64)
    return values.reshape((count, *dims))


def words_to_beats(shape, words: Sequence[int] | np.ndarray, count: int) -> list[Any]:
    """The inverse of :func:`beat_words`: ``count`` beats from a flat sequence of 32-bit words."""
    if _lanes(shape) is None:
        return _words_to_beats_generic(shape, words, count)
    return words_to_array(shape, words, count).tolist()


def _words_to_beats_generic(shape, words: Sequence[int] | np.ndarray, count: int) -> list[Any]:
    """:func:`words_to_beats` beat by beat through :func:`unpack_beat` (any layout)."""
    nw = words_of(payload_width(shape))
    beats = []
    for b in range(count):
        raw = 0
        for w in range(nw):
            raw |= int(words[b * nw + w]) << (32 * w)
        beats.append(unpack_beat(shape, raw))
    return beats
