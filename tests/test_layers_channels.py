# amaranth: UnusedElaboratable=no
"""ConcatN, ChannelSplit, ChannelSlice and ChannelShuffle against the references: small shapes, lane counts, random stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import STALLS, codes, frame_intervals, run_tensors

from mixq_hw.graph.ops import concat
from mixq_hw.layers.channels import ChannelShuffle, ChannelSlice, ChannelSplit, ConcatN
from mixq_hw.layers.reference import channel_shuffle, channel_slice, channel_split

FRAMES = 3


def check_cadence(run, port: str, cycles: int, stall: float) -> None:
    if stall == 0.0:
        assert np.all(frame_intervals(run, port, FRAMES) == cycles), (frame_intervals(run, port, FRAMES), cycles)


def run_concat(channels: tuple[int, ...], height: int, width: int, lanes: int, stall: float, seed: int,
               signed: bool = False) -> None:
    dut = ConcatN(channels, height, width, lanes, 3, signed=signed)
    rng = np.random.default_rng(seed)
    xs = [codes(rng, (FRAMES, c, height, width), 3, signed) for c in channels]
    expected = concat(xs)
    got, run = run_tensors(dut, {f"i{k}": (x, lanes) for k, x in enumerate(xs)}, {"o": (expected.shape, lanes)},
                           stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    check_cadence(run, "o", dut.cycles_per_frame(), stall)


def run_split(channels: tuple[int, ...], height: int, width: int, lanes: int, stall: float, seed: int) -> None:
    dut = ChannelSplit(channels, height, width, lanes, 3)
    x = codes(np.random.default_rng(seed), (FRAMES, sum(channels), height, width), 3)
    bounds = np.cumsum((0, *channels))
    parts = [x[:, lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
    if len(channels) == 2:
        for part, want in zip(parts, channel_split(x, channels[0])):
            np.testing.assert_array_equal(part, want)
    got, run = run_tensors(dut, {"i": (x, lanes)}, {f"o{k}": (p.shape, lanes) for k, p in enumerate(parts)},
                           stall, seed)
    for k, part in enumerate(parts):
        np.testing.assert_array_equal(got[f"o{k}"], part)
    if stall == 0.0:      # every input beat leaves in the cycle it arrives
        ends = sorted(c for cycles in run.beat_cycles.values() for c in cycles)
        assert np.all(np.diff(ends) == 1)


def run_slice(channels: int, start: int, stop: int, height: int, width: int, lanes: int, stall: float, seed: int,
              signed: bool = False) -> None:
    dut = ChannelSlice(channels, start, stop, height, width, lanes, 3, signed=signed)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), 3, signed)
    expected = channel_slice(x, start, stop)
    np.testing.assert_array_equal(expected, x[:, start:stop])
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    check_cadence(run, "o", dut.cycles_per_frame(), stall)


def run_shuffle(channels: int, height: int, width: int, lanes: int, stall: float, seed: int,
                signed: bool = False) -> None:
    dut = ChannelShuffle(channels, height, width, lanes, 4, signed=signed)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), 4, signed)
    expected = channel_shuffle(x)
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    check_cadence(run, "o", dut.cycles_per_frame(), stall)


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_concat_n_small_shapes(parts: int) -> None:
    for (height, width), lanes in itertools.product(((1, 1), (2, 3)), (1, 2, 3)):
        channels = tuple(lanes * (1 + (k + height) % 3) for k in range(parts))     # unequal parts
        for stall in STALLS:
            run_concat(channels, height, width, lanes, stall, seed=parts * 100 + lanes * 10 + height)


def test_concat_n_signed() -> None:
    run_concat((2, 4, 2), 2, 2, 2, 0.3, seed=5, signed=True)


@pytest.mark.parametrize("parts", [2, 3])
def test_split_small_shapes(parts: int) -> None:
    for (height, width), lanes in itertools.product(((1, 1), (2, 3)), (1, 2, 3)):
        channels = tuple(lanes * (1 + (k + width) % 3) for k in range(parts))
        for stall in STALLS:
            run_split(channels, height, width, lanes, stall, seed=parts * 100 + lanes * 10 + width)


def slice_cases(max_channels: int):
    """Every (C, lanes, start, stop) with C <= max_channels, lanes dividing C, start and stop."""
    for channels in range(1, max_channels + 1):
        for lanes in (n for n in range(1, channels + 1) if channels % n == 0):
            for start, stop in itertools.combinations(range(0, channels + 1, lanes), 2):
                yield channels, lanes, start, stop


@pytest.mark.parametrize("stall", STALLS)
def test_slice_exhaustive_small(stall: float) -> None:
    """Every channel range of up to 4 channels at every lane count, 1x1 and 2x3 maps."""
    cases = list(slice_cases(4))
    assert len(cases) == 26
    for k, (channels, lanes, start, stop) in enumerate(cases):
        for height, width in ((1, 1), (2, 3)):
            run_slice(channels, start, stop, height, width, lanes, stall, seed=k * 10 + height + int(10 * stall))


def test_slice_random_larger() -> None:
    """Random ranges of larger pixels (DiracDeltaNet's halves among them), signed codes, random stalls."""
    rng = np.random.default_rng(7)
    run_slice(16, 0, 8, 3, 3, 4, 0.3, seed=1)
    run_slice(16, 8, 16, 3, 3, 4, 0.5, seed=2, signed=True)
    for seed in range(4):
        lanes = int(rng.choice((1, 2, 4)))
        channels = lanes * int(rng.integers(3, 9))
        start, stop = sorted(rng.choice(channels // lanes + 1, 2, replace=False) * lanes)
        run_slice(channels, int(start), int(stop), int(rng.integers(1, 4)), int(rng.integers(1, 5)), lanes,
                  float(rng.choice(STALLS)), seed=10 + seed)


@pytest.mark.parametrize("channels,lanes", [(4, 1), (8, 1), (8, 2), (12, 3), (16, 4), (4, 4), (8, 8), (24, 2)])
def test_shuffle_lane_layouts(channels: int, lanes: int) -> None:
    """Buffered (lanes divides C/4: 4 to 12 beats a pixel) and wired (one beat a pixel), under stalls."""
    for (height, width), stall in itertools.product(((1, 1), (2, 3)), STALLS):
        run_shuffle(channels, height, width, lanes, stall, seed=channels * 10 + lanes + int(10 * stall))


def test_shuffle_signed_and_larger() -> None:
    run_shuffle(16, 3, 3, 4, 0.3, seed=1, signed=True)
    run_shuffle(20, 4, 3, 5, 0.5, seed=2)


def test_estimates_and_rtlil() -> None:
    assert ConcatN((64,) * 5, 10, 20, 4, 4).estimate().lut > ConcatN((64, 64), 10, 20, 4, 4).estimate().lut   # 5:1 mux
    assert ChannelSplit((58, 58), 28, 28, 2, 4).estimate().dsp == 0
    assert ChannelShuffle(8, 2, 2, 8, 4).estimate().lut == 0
    assert ChannelShuffle(232, 14, 14, 2, 4).estimate().lut > 0
    assert ChannelSlice(116, 0, 58, 28, 28, 2, 4).estimate().lut > 0
    for dut in (ConcatN((2, 2, 4), 2, 2, 2, 3), ChannelSplit((2, 4), 2, 2, 2, 3, signed=True),
                ChannelSlice(8, 2, 6, 2, 2, 2, 3), ChannelSlice(8, 0, 8, 2, 2, 2, 3),
                ChannelShuffle(8, 2, 2, 2, 3), ChannelShuffle(8, 2, 2, 8, 3)):
        rtlil.convert(dut)


@pytest.mark.parametrize("make,message", [
    (lambda: ConcatN((4,), 2, 2, 2, 3, name="cat"), "at least two channel counts"),
    (lambda: ConcatN((4, 3), 2, 2, 2, 3, name="cat"), "channels 3 of input i1 not divisible by lanes 2 in layer 'cat'"),
    (lambda: ChannelSplit((58, 58), 2, 2, 4, 3, name="sp"),
     "channels 58 of output o0 not divisible by lanes 4 in layer 'sp'"),
    (lambda: ChannelSplit((2, 0), 2, 2, 2, 3, name="sp"), "channels1 must be a positive integer, not 0"),
    (lambda: ChannelSlice(8, 4, 4, 2, 2, 2, 3, name="sl"), r"channels \[4, 4\) must be a non-empty range inside 0..8 in layer 'sl'"),
    (lambda: ChannelSlice(8, 4, 9, 2, 2, 1, 3, name="sl"), r"channels \[4, 9\) must be a non-empty range"),
    (lambda: ChannelSlice(8, 3, 8, 2, 2, 2, 3, name="sl"), "start 3 not divisible by lanes 2 in layer 'sl'"),
    (lambda: ChannelShuffle(6, 2, 2, 1, 3, name="sh"), "6 is not divisible by 4 in layer 'sh'"),
    (lambda: ChannelShuffle(116, 2, 2, 4, 3, name="sh"), "lanes 4 must equal the channels 116 or divide a quarter"),
])
def test_rejects_bad_configuration(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_two_input_concat_netlist_unchanged() -> None:
    """Concat, now ConcatN's two-input case, keeps its netlist (RTLIL without source locations, amaranth 0.5.10)."""
    import hashlib

    from mixq_hw.layers.concat import Concat
    text = rtlil.convert(Concat(4, 8, 4, 6, 2, 3), emit_src=False)
    assert hashlib.sha256(text.encode()).hexdigest() == "dfd78c9fda5b8fe1041b4334f9b624df1d4f62da9b2a4cdc9b12e81139a15096"
