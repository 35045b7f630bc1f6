# amaranth: UnusedElaboratable=no
"""GroupToRaster: grouped [pixels][pe] beats back to the raster pixel stream, under stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.layers.regroup import GroupToRaster
from sim.formats import ANY, grouped
from sim.streams import run_streams
from sim.tensors import tensor_to_beats


def grouped_frames(x: np.ndarray, pe: int, pixels: int, filler: int = 0) -> list:
    """Grouped beats of (N, C, H, W) frames (:func:`sim.formats.grouped`): per row, per group of pixels, per
    fold, [pixel][lane]; the slots of a ragged last group past the width hold ``filler`` (to be dropped)."""
    fmt = grouped(pe, pixels)
    beats = fmt.to_array(x)
    beats[fmt.batch_index(x.shape[1:], x.shape[0]) == ANY] = filler
    return beats.tolist()


# (channels, pe, pixels, lanes_out): pe above, equal to and below lanes_out; 1..4 pixels per group
SHAPES = [(8, 2, 2, 4), (8, 4, 2, 1), (8, 8, 1, 2), (6, 1, 3, 3), (4, 4, 2, 4), (4, 1, 1, 4), (12, 6, 2, 2),
          (8, 2, 4, 8), (2, 1, 1, 1)]


@pytest.mark.parametrize("channels, pe, pixels, lanes_out", SHAPES)
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_regroup_two_frames(channels, pe, pixels, lanes_out, stall):
    h, w = 2, 2 * pixels
    dut = GroupToRaster(channels, pe, pixels, lanes_out, 4, height=h, width=w)
    x = np.random.default_rng(channels * 7 + pe + pixels).integers(0, 16, (2, channels, h, w))
    expected = tensor_to_beats(x, lanes_out)
    run = run_streams(dut, {"i": grouped_frames(x, pe, pixels)}, {"o": len(expected)}, stall=stall,
                      seed=pe * 10 + pixels, max_cycles=40 * len(expected) + 200)
    assert run.outputs["o"] == expected
    if stall == 0.0:
        per_frame = len(expected) // 2
        interval = run.frame_interval("o", per_frame)
        assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()


# (channels, pe, pixels, lanes_out, width): the last group of a row holds fewer than pixels real pixels
RAGGED = [(8, 2, 3, 4, 4), (8, 4, 2, 1, 5), (4, 4, 4, 2, 5), (6, 1, 3, 3, 7), (8, 8, 5, 2, 7), (4, 2, 2, 4, 3)]


@pytest.mark.parametrize("channels, pe, pixels, lanes_out, width", RAGGED)
@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_regroup_drops_the_ragged_slots(channels, pe, pixels, lanes_out, width, stall):
    """``pixels`` not dividing the width: the slots past the last column (filled with a marker) never reach
    the raster output; two frames exact, and the unstalled interval within 5 % of the model."""
    h = 2
    dut = GroupToRaster(channels, pe, pixels, lanes_out, 4, height=h, width=width)
    assert dut.groups == -(-width // pixels) and dut.last_pixels < pixels
    x = np.random.default_rng(channels + 3 * pixels + width).integers(0, 15, (2, channels, h, width))
    expected = tensor_to_beats(x, lanes_out)
    run = run_streams(dut, {"i": grouped_frames(x, pe, pixels, filler=15)}, {"o": len(expected)}, stall=stall,
                      seed=pixels + width, max_cycles=40 * len(expected) + 200)
    assert run.outputs["o"] == expected
    if stall == 0.0:
        per_frame = len(expected) // 2
        interval = run.frame_interval("o", per_frame)
        assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()


def test_regroup_signed_32bit_output_values():
    """The last layer's raw int32 outputs pass through unchanged, signs included."""
    dut = GroupToRaster(4, 2, 2, 2, 32, height=1, width=4, signed=True, name="head_regroup")
    x = np.array([[[[-2 ** 31, 2 ** 31 - 1, -1, 0]] * 4]]).reshape(1, 4, 1, 4)
    x[0, 1] *= -1
    x = np.clip(x, -2 ** 31, 2 ** 31 - 1)
    run = run_streams(dut, {"i": grouped_frames(x, 2, 2)}, {"o": 8}, stall=0.3)
    assert run.outputs["o"] == tensor_to_beats(x, 2)


def test_regroup_full_rate_when_groups_stream_in_continuously():
    """Ping-pong buffers: with pixels*C/lanes_out == C/pe, one beat per cycle on both sides."""
    dut = GroupToRaster(8, 4, 2, 4, 4, height=1, width=16)
    assert dut.cycles_per_frame() == 8 * 4
    x = np.random.default_rng(2).integers(0, 16, (1, 8, 1, 16))
    run = run_streams(dut, {"i": grouped_frames(x, 4, 2)}, {"o": 32})
    cycles = run.beat_cycles["o"]
    assert cycles[-1] - cycles[0] == len(cycles) - 1       # no bubble between groups


def padded_grouped_frames(x: np.ndarray, pe: int, pixels: int, filler: int) -> list:
    """Grouped beats of (N, C, H, W) frames with ``ceil(C/pe)`` folds: the lanes past channel C-1 of the last
    fold (a ConvEngine's padded filters) and the ragged slots hold ``filler``."""
    n, c, h, w = x.shape
    folds = -(-c // pe)
    wide = np.full((n, folds * pe, h, w), filler, dtype=np.int64)
    wide[:, :c] = x
    return grouped_frames(wide, pe, pixels, filler)


# (channels, pe, lanes_out): every pe from 1 to C for C up to 8, and every lanes_out dividing C -- pe not
# dividing C (padded last fold), and pe, lanes_out with neither dividing the other (rotated writes or reads)
EXHAUSTIVE = [(c, pe, lanes) for c in (3, 4, 5, 6, 7, 8) for pe in range(1, c + 1) for lanes in range(1, c + 1)
              if c % lanes == 0 and (c % pe or (pe % lanes and lanes % pe))]


@pytest.mark.parametrize("channels, pe, lanes_out", EXHAUSTIVE)
def test_regroup_any_pe_exhaustive(channels, pe, lanes_out):
    """pe not dividing C or neither of pe, lanes_out dividing the other: two frames exact under random stalls,
    the padded lanes (a marker) dropped, ragged groups too (2 pixels over width 3)."""
    h, w, pixels = 2, 3, 2
    dut = GroupToRaster(channels, pe, pixels, lanes_out, 4, height=h, width=w)
    x = np.random.default_rng(channels * 100 + pe * 10 + lanes_out).integers(0, 15, (2, channels, h, w))
    expected = tensor_to_beats(x, lanes_out)
    run = run_streams(dut, {"i": padded_grouped_frames(x, pe, pixels, 15)}, {"o": len(expected)}, stall=0.4,
                      seed=pe * 10 + lanes_out, max_cycles=40 * len(expected) + 200)
    assert run.outputs["o"] == expected


@pytest.mark.parametrize("channels, pe, pixels, lanes_out", [(64, 3, 4, 8), (64, 6, 3, 16), (36, 5, 2, 12),
                                                             (32, 24, 2, 8), (64, 7, 1, 64)])
def test_regroup_any_pe_larger_and_timed(channels, pe, pixels, lanes_out):
    """Larger padded shapes: exact under stalls, and unstalled within 5 % of ``cycles_per_frame``."""
    h, w = 2, 2 * pixels + 1
    dut = GroupToRaster(channels, pe, pixels, lanes_out, 3, height=h, width=w)
    x = np.random.default_rng(channels + pe).integers(0, 7, (2, channels, h, w))
    expected = tensor_to_beats(x, lanes_out)
    beats = padded_grouped_frames(x, pe, pixels, 7)
    for stall in (0.0, 0.5):
        run = run_streams(dut, {"i": beats}, {"o": len(expected)}, stall=stall, seed=pe,
                          max_cycles=40 * len(expected) + 200)
        assert run.outputs["o"] == expected
        if stall == 0.0:
            per_frame = len(expected) // 2
            interval = run.beat_cycles["o"][2 * per_frame - 1] - run.beat_cycles["o"][per_frame - 1]
            assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()


def test_regroup_estimate():
    est = GroupToRaster(64, 8, 2, 8, 4, height=10, width=20).estimate()
    assert est.dsp == 0 and est.lut > 0 and est.ff > 0 and est.bram36 == 0   # 2 x 2 x 64 x 4 bit in LUTRAM


@pytest.mark.parametrize("kwargs, message", [
    (dict(pe=9), "pe 9 exceeds the channels 8 in layer 'rg'"),
    (dict(lanes_out=3), "channels 8 not divisible by lanes_out 3"),
    (dict(width=1), "pixels 2 exceeds the width 1 .pixels may be 1..1."),
    (dict(bits=0), "bits must be a positive integer"),
])
def test_regroup_errors(kwargs, message):
    args = dict(channels=8, pe=2, pixels=2, lanes_out=4, bits=4, width=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        GroupToRaster(**args, name="rg")


def test_regroup_converts_to_rtlil():
    rtlil.convert(GroupToRaster(8, 2, 2, 4, 4))
    rtlil.convert(GroupToRaster(8, 4, 2, 2, 4))
