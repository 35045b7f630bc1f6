# amaranth: UnusedElaboratable=no
"""SumPool (average and global average pool as an exact sum) against the numpy reference, under stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import STALLS, codes, frame_intervals, run_tensors

from mixq_hw.layers.avgpool import SumPool, sum_bits
from mixq_hw.layers.reference import global_sum_pool, sum_pool

FRAMES = 3


def run_sum(channels: int, height: int, width: int, lanes: int, bits: int, kernel, stall: float, seed: int,
            signed: bool = False) -> None:
    dut = SumPool(channels, height, width, lanes, bits, kernel=kernel, signed=signed)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), bits, signed)
    expected = global_sum_pool(x) if kernel is None else sum_pool(x, kernel)
    assert expected.shape[1:] == dut.out_shape
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    if stall == 0.0:
        assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())


def test_sum_bits_is_exact() -> None:
    for bits, count, is_signed in itertools.product((1, 2, 3, 8), (1, 2, 3, 4, 9, 49), (False, True)):
        w = sum_bits(bits, count, is_signed)
        lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if is_signed else (0, (1 << bits) - 1))
        wlo, whi = ((-(1 << (w - 1)), (1 << (w - 1)) - 1) if is_signed else (0, (1 << w) - 1))
        assert wlo <= count * lo and count * hi <= whi                      # holds the sum
        assert count * hi > whi >> 1 or (is_signed and count * lo < wlo >> 1) or w == 1     # and is the least


@pytest.mark.parametrize("kernel", [(2, 2), (1, 2), (3, 1), (3, 3), None])
def test_sum_pool_exhaustive_small_shapes(kernel) -> None:
    """Every window size up to 3x3 and the global pool, on 1..2 windows per axis, 1..3 lanes, under stalls."""
    kh, kw = kernel or (2, 3)
    for index, ((ny, nx), lanes) in enumerate(itertools.product(((1, 1), (2, 1), (1, 2)), (1, 3))):
        height, width = (kh, kw) if kernel is None else (kh * ny, kw * nx)
        channels = lanes * (1 + index % 2)
        for stall in STALLS:
            run_sum(channels, height, width, lanes, 2, kernel, stall, seed=index * 10 + int(10 * stall))


def test_sum_pool_larger_random_and_signed() -> None:
    run_sum(8, 4, 6, 4, 4, (2, 2), 0.3, seed=1)
    run_sum(6, 3, 3, 2, 3, None, 0.5, seed=2, signed=True)      # global pool of signed codes (after an add)
    run_sum(4, 4, 4, 1, 8, (4, 2), 0.2, seed=3, signed=True)
    run_sum(16, 7, 7, 16, 4, None, 0.0, seed=4)                 # DiracDeltaNet's 7x7 global pool, one beat/pixel


def test_sum_pool_shapes_estimate_rtlil() -> None:
    pool = SumPool(464, 7, 7, 8, 4)
    assert pool.out_shape == (464, 1, 1) and pool.out_bits == 10 and pool.estimate().dsp == 0
    assert SumPool(4, 4, 4, 2, 4, kernel=(2, 2), signed=True).out_bits == 6
    rtlil.convert(SumPool(6, 4, 6, 3, 3, kernel=(2, 3), signed=True))


@pytest.mark.parametrize("kwargs,message", [
    (dict(kernel=(3, 2)), "4x4 is not a multiple of the 3x2 window in layer 'gap'"),
    (dict(kernel=(2, 0)), "kw must be a positive integer, not 0 in layer 'gap'"),
    (dict(kernel=[2, 2]), "kernel must be a \\(kh, kw\\) tuple"),
    (dict(lanes=3), "channels 4 not divisible by lanes 3 in layer 'gap'"),
])
def test_sum_pool_rejects_bad_configuration(kwargs, message: str) -> None:
    args = dict(channels=4, height=4, width=4, lanes=2, bits=3) | kwargs
    with pytest.raises(ValueError, match=message):
        SumPool(**args, name="gap")
