# amaranth: UnusedElaboratable=no
"""Upsample2x against the numpy reference: all small shapes and lane counts, random stalls, exact cadence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import STALLS, codes, frame_intervals, run_tensors

from mixq_hw.layers.reference import upsample2x
from mixq_hw.layers.upsample import Upsample2x

FRAMES = 3


def run_up(channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int,
           signed: bool = False) -> None:
    dut = Upsample2x(channels, height, width, lanes, bits, signed=signed)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), bits, signed)
    expected = upsample2x(x)
    assert expected.shape[1:] == dut.out_shape
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    if stall == 0.0:
        assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())
        assert np.all(np.diff(run.beat_cycles["o"]) == 1)       # never a bubble on the output


@pytest.mark.parametrize("height,width", list(itertools.product((1, 2, 3), (1, 2, 3))))
def test_upsample_exhaustive_small_shapes(height: int, width: int) -> None:
    for lanes in (1, 2, 3):
        chunks = 1 + (lanes + height + width) % 2
        for stall in STALLS:
            run_up(lanes * chunks, height, width, lanes, 2, stall, seed=height * 100 + width * 10 + lanes)


def test_upsample_larger_random_and_signed() -> None:
    run_up(8, 3, 5, 4, 3, 0.3, seed=1)
    run_up(6, 4, 2, 1, 4, 0.5, seed=2, signed=True)


def test_upsample_estimate_and_rtlil() -> None:
    big = Upsample2x(128, 13, 13, 4, 3)         # Tiny-YOLOv3's second scale: 13 * 32 words of 12 bits
    assert big.out_shape == (128, 26, 26) and big.estimate().dsp == 0 and big.estimate().lut > 0
    assert big.cycles_per_frame() == 4 * 13 * 13 * 32
    rtlil.convert(Upsample2x(4, 3, 3, 2, 3, signed=True))


def test_upsample_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="channels 6 not divisible by lanes 4 in layer 'up'"):
        Upsample2x(6, 2, 2, 4, 3, name="up")
    with pytest.raises(ValueError, match="width must be a positive integer, not 0 in layer 'up'"):
        Upsample2x(4, 2, 0, 2, 3, name="up")
