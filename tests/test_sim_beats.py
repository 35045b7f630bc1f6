"""The numpy beat packing of :mod:`sim.beats` gives exactly the words and beats of the beat-by-beat reference."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned
from amaranth.lib import data

from sim.beats import (beat_word_array, beat_words, pack_beat, payload_width, unpack_beat, words_of, words_to_array,
                       words_to_beats)


def reference_words(shape, beats) -> list[int]:
    """Beat by beat through pack_beat: the packing the compiled testbenches read."""
    nw = words_of(payload_width(shape))
    out: list[int] = []
    for beat in beats:
        raw = pack_beat(shape, beat)
        out.extend((raw >> (32 * w)) & 0xFFFFFFFF for w in range(nw))
    return out


def reference_beats(shape, words, count: int) -> list[Any]:
    """Beat by beat through unpack_beat."""
    nw = words_of(payload_width(shape))
    beats = []
    for b in range(count):
        raw = 0
        for w in range(nw):
            raw |= int(words[b * nw + w]) << (32 * w)
        beats.append(unpack_beat(shape, raw))
    return beats


def _elem(width: int, is_signed: bool):
    return signed(width) if is_signed else unsigned(width)


def _layouts() -> list[Any]:
    """Scalars, flat and nested arrays of every element width 1..32 (signed and not), beats of 1 to >64 words,
    and layouts the numpy path leaves to the generic one (elements over 32 bits, structs)."""
    rng = random.Random(13)
    shapes: list[Any] = []
    for width in range(1, 33):
        for is_signed in (False, True):
            elem = _elem(width, is_signed)
            shapes.append(elem)
            shapes.append(data.ArrayLayout(elem, rng.randint(1, 9)))
            shapes.append(data.ArrayLayout(data.ArrayLayout(elem, rng.randint(1, 8)), rng.randint(1, 6)))
    shapes += [data.ArrayLayout(signed(8), 300), data.ArrayLayout(data.ArrayLayout(unsigned(27), 11), 9),
               data.ArrayLayout(signed(32), 3), data.ArrayLayout(unsigned(0), 4), data.ArrayLayout(signed(8), 0),
               signed(40), unsigned(64), data.ArrayLayout(signed(40), 3), data.ArrayLayout(unsigned(33), 5),
               data.StructLayout({"a": signed(5), "b": unsigned(12)})]
    return shapes


def _random_beat(rng: random.Random, shape, spill: int) -> Any:
    """A beat of ``shape`` whose values range ``spill`` bits past their width (the packing keeps the low bits)."""
    if isinstance(shape, data.ArrayLayout):
        return [_random_beat(rng, shape.elem_shape, spill) for _ in range(shape.length)]
    if isinstance(shape, data.StructLayout):
        return {name: _random_beat(rng, member.shape, 0) for name, member in shape}
    s = Shape.cast(shape)
    if s.width == 0:
        return 0
    if spill:
        bits = min(63, s.width + spill)
        return rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))
    return rng.randrange(-(1 << (s.width - 1)), 1 << (s.width - 1)) if s.signed else rng.getrandbits(s.width)


@pytest.mark.parametrize("spill", [0, 3])
def test_pack_and_unpack_match_the_beat_by_beat_reference(spill: int) -> None:
    rng = random.Random(spill)
    for shape in _layouts():
        count = rng.choice([0, 1, 7, 64])
        beats = [_random_beat(rng, shape, spill) for _ in range(count)]
        words = beat_words(shape, beats)
        assert words == reference_words(shape, beats), shape
        assert all(type(w) is int for w in words)
        back = words_to_beats(shape, words, count)
        assert back == reference_beats(shape, words, count), shape
        # arbitrary words (bits past the payload's width included) decode like the reference too
        nw = words_of(payload_width(shape))
        noise = [rng.getrandbits(32) for _ in range(count * nw)]
        assert words_to_beats(shape, noise, count) == reference_beats(shape, noise, count), shape
        assert words_to_beats(shape, np.array(noise, dtype="<u4"), count) == reference_beats(shape, noise, count)
        if spill == 0:
            assert back == beats, shape


def test_numpy_beats_pack_like_lists() -> None:
    rng = np.random.default_rng(1)
    shape = data.ArrayLayout(data.ArrayLayout(signed(9), 4), 3)
    values = rng.integers(-300, 300, size=(50, 3, 4))
    expected = reference_words(shape, values.tolist())
    for arr in (values, values.astype(np.int16), values.astype(np.int32)):
        assert beat_word_array(shape, arr).tolist() == expected
    flags = rng.integers(0, 2, size=(20, 5)).astype(bool)
    layout = data.ArrayLayout(unsigned(1), 5)
    assert beat_words(layout, flags) == reference_words(layout, flags.tolist())


def test_odd_beats_fall_back_to_the_reference() -> None:
    shape = data.ArrayLayout(unsigned(8), 4)
    for beats in ([[1, 2, 3]], [[1, 2, 3, 4, 5]], [[1, 2], [3, 4, 5, 6]], [[1 << 70, 0, 0, 0]], [[1.5, 2, 3, 4]]):
        assert beat_words(shape, beats) == reference_words(shape, beats)


def test_too_few_words_is_an_error() -> None:
    with pytest.raises(ValueError, match="need 8 words"):
        words_to_beats(data.ArrayLayout(unsigned(8), 8), [0] * 7, 4)


def test_integer_arrays_take_the_numpy_path(monkeypatch) -> None:
    """Integer beats never go through the beat-by-beat functions (which the reference above uses)."""
    import sim.beats

    rng = random.Random(5)
    cases = [(shape, [_random_beat(rng, shape, 0) for _ in range(9)]) for shape in _layouts()
             if not isinstance(shape, data.StructLayout) and max(_elem_width(shape), 1) <= 32]
    expected = [(reference_words(shape, beats), beats) for shape, beats in cases]

    def refuse(*args):
        raise AssertionError("the beat-by-beat path")

    monkeypatch.setattr(sim.beats, "pack_beat", refuse)
    monkeypatch.setattr(sim.beats, "unpack_beat", refuse)
    for (shape, beats), (words, _) in zip(cases, expected):
        if _elem_width(shape) == 0:
            continue
        assert beat_words(shape, beats) == words
        assert words_to_beats(shape, words, len(beats)) == beats
        assert words_to_array(shape, words, len(beats)).tolist() == beats


def _elem_width(shape) -> int:
    while isinstance(shape, data.ArrayLayout):
        shape = shape.elem_shape
    return Shape.cast(shape).width
