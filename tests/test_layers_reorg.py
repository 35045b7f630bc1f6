# amaranth: UnusedElaboratable=no
"""Reorg (space-to-depth x2) against the Graph's reorg, exhaustive over small shapes, with random stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.graph.ops import reorg
from mixq_hw.layers.reorg import Reorg
from sim.streams import run_streams
from sim.tensors import beats_to_tensor, tensor_to_beats

FRAMES = 3
STALLS = (0.0, 0.3, 0.7)


def run_reorg(channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int,
              lanes_out: int | None = None, frames: int = FRAMES, signed: bool = False):
    dut = Reorg(channels, height, width, lanes, bits, lanes_out=lanes_out, signed=signed)
    rng = np.random.default_rng(seed)
    lo, hi = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    x = rng.integers(lo, hi + 1, size=(frames, channels, height, width), dtype=np.int64)
    x.flat[0], x.flat[-1] = hi, lo
    expected = reorg(x)
    out_beats = expected.size // dut.lanes_out
    run = run_streams(dut, {"i": tensor_to_beats(x, lanes)}, {"o": out_beats}, stall=stall, seed=seed,
                      max_cycles=200 + 30 * x.size)
    np.testing.assert_array_equal(beats_to_tensor(run.outputs["o"], expected.shape, dut.lanes_out), expected)
    return dut, run, out_beats // frames


def assert_frame_interval(dut, run, per_frame: int, frames: int) -> None:
    """Steady-state interval between the ends of consecutive frames equals cycles_per_frame within 5 %."""
    ends = [run.beat_cycles["o"][(f + 1) * per_frame - 1] for f in range(frames)]
    intervals = np.diff(ends)
    expected = dut.cycles_per_frame()
    assert np.all(np.abs(intervals - expected) <= 0.05 * expected), (intervals, expected)


@pytest.mark.parametrize("height,width", list(itertools.product((2, 4, 6), (2, 4, 6))))
def test_reorg_exhaustive_small_shapes(height: int, width: int) -> None:
    for index, (lanes, bits) in enumerate(itertools.product((1, 2, 4), (1, 3))):
        channels = lanes * (1 + index % 2)
        for stall in STALLS:
            dut, run, per_frame = run_reorg(channels, height, width, lanes, bits, stall,
                                            seed=(height * 7 + width) * 100 + index * 10 + int(stall * 10))
            if stall == 0.0:
                assert dut.cycles_per_frame() == height * width * channels // lanes
                assert_frame_interval(dut, run, per_frame, FRAMES)


@pytest.mark.parametrize("channels,lanes,lanes_out", [
    (2, 1, 1), (2, 1, 2), (4, 2, 2), (4, 2, 1), (4, 2, 16), (6, 3, 4), (8, 2, 4), (8, 4, 8), (4, 1, 8),
    (1, 1, 1), (12, 2, 2),
])
def test_reorg_lane_conversion_and_schedule(channels: int, lanes: int, lanes_out: int) -> None:
    for stall in STALLS:
        dut, run, per_frame = run_reorg(channels, 4, 6, lanes, 3, stall, seed=channels * 31 + lanes_out,
                                        lanes_out=lanes_out, frames=3)
        if stall == 0.0:
            assert_frame_interval(dut, run, per_frame, 3)


@pytest.mark.parametrize("lanes_out", [None, 2, 16])
def test_reorg_moves_signed_codes(lanes_out) -> None:
    """Two's-complement codes (after a LeakyReLU) come out as they went in, lane conversion included."""
    for stall in (0.0, 0.5):
        run_reorg(4, 4, 6, 2, 3, stall, seed=int(10 * stall) + (lanes_out or 0), lanes_out=lanes_out, signed=True)


def test_reorg_bypass_shape_small() -> None:
    """The UltraNet-Bypass reorg (64 channels, 4-bit codes) on a reduced map, at 4 lanes in and out."""
    run_reorg(64, 4, 4, 4, 4, 0.3, seed=5, lanes_out=4, frames=2)


@pytest.mark.parametrize("lanes_out", [None, 4, 32])
def test_reorg_converts_to_rtlil(lanes_out) -> None:
    rtlil.convert(Reorg(8, 6, 8, 2, 3, lanes_out=lanes_out))


def test_reorg_estimate_counts_the_row_buffer() -> None:
    small = Reorg(4, 4, 4, 2, 3).estimate()
    assert small.bram36 == 0 and small.lut > 0
    big = Reorg(64, 40, 80, 4, 4).estimate()       # 80 * 64 codes of 4 bits = 20 Kb of row
    assert big.bram36 >= 1.0 and big.dsp == 0


@pytest.mark.parametrize("args,kwargs,message", [
    ((6, 4, 4, 4, 3), {}, "channels 6 not divisible by lanes 4 in layer 'r1'"),
    ((4, 4, 5, 2, 3), {}, "even height and width, got 4x5 in layer 'r1'"),
    ((4, 4, 4, 2, 3), {"lanes_out": 3}, "output channels 16 not divisible by lanes_out 3"),
    ((6, 4, 4, 2, 3), {"lanes_out": 12}, "lanes_out 12 must divide or be a multiple of 4 \\* lanes = 8"),
    ((4, 4, 4, 2, 0), {}, "bits must be a positive integer"),
])
def test_reorg_rejects_bad_configuration(args, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reorg(*args, name="r1", **kwargs)
