# amaranth: UnusedElaboratable=no
"""Shift against the numpy reference: every position, channel phase and lane count over small shapes, stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import STALLS, codes, frame_intervals, run_tensors

from mixq_hw.layers.reference import SHIFT_OFFSETS, shift
from mixq_hw.layers.shift import Shift

FRAMES = 3


def run_shift(channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int,
              signed: bool = False):
    dut = Shift(channels, height, width, lanes, bits, signed=signed)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), bits, signed)
    expected = shift(x)
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    if stall == 0.0:
        assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())
    return run


def test_reference_sign_convention() -> None:
    """Channel 0 reads the pixel above (its picture moves down), 1 the left, 3 the right, 4 the pixel below."""
    x = np.zeros((1, 5, 3, 3), dtype=np.int64)
    x[:, :, 1, 1] = 7
    out = shift(x)
    for c, (dy, dx) in enumerate(SHIFT_OFFSETS):
        assert out[0, c, 1 - dy, 1 - dx] == 7 and out[0, c].sum() == 7
    assert SHIFT_OFFSETS == ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))


@pytest.mark.parametrize("height,width", list(itertools.product((1, 2, 3), (1, 2, 3))))
def test_shift_exhaustive_small_shapes(height: int, width: int) -> None:
    """Lane counts 1..5 (every phase of the five kinds across beats), one to three beats per pixel."""
    for lanes in (1, 2, 3, 4, 5):
        chunks = 1 + (lanes + height + width) % 3
        for stall in STALLS:
            run_shift(lanes * chunks, height, width, lanes, 2, stall, seed=height * 100 + width * 10 + lanes)


def test_shift_larger_random_and_signed() -> None:
    run_shift(10, 5, 4, 5, 4, 0.3, seed=1)
    run_shift(7, 4, 6, 1, 3, 0.5, seed=2, signed=True)
    run_shift(12, 3, 5, 6, 8, 0.2, seed=3)


def test_shift_estimate_and_rtlil() -> None:
    small, big = Shift(5, 4, 4, 5, 4), Shift(116, 28, 28, 4, 4)
    assert small.estimate().bram36 == 0 and small.estimate().dsp == 0 and small.estimate().lut > 0
    assert big.estimate().bram36 >= 2 and big.estimate().dsp == 0      # 4 lanes x 1626 x 4 bits: a BRAM18 each
    rtlil.convert(Shift(6, 3, 4, 2, 3, signed=True))


@pytest.mark.parametrize("args,message", [
    ((6, 4, 4, 4, 3), "channels 6 not divisible by lanes 4 in layer 's1'"),
    ((4, 0, 4, 2, 3), "height must be a positive integer, not 0 in layer 's1'"),
    ((4, 4, 4, 2, True), "bits must be a positive integer"),
])
def test_shift_rejects_bad_configuration(args, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Shift(*args, name="s1")
