# amaranth: UnusedElaboratable=no
"""StreamFIFO (order, capacity, throughput, registered ready) and the lane / flat-word converters."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import rtlil
from amaranth.lib import data
from amaranth.sim import Simulator

from mixq_hw.layers.fifo import StreamFIFO
from mixq_hw.layers.width import FlatToLanes, LaneConverter, LanesToFlat
from sim.streams import run_streams
from sim.tensors import beats_to_tensor, tensor_to_beats

STALLS = (0.0, 0.3, 0.7)
DEPTHS = (0, 1, 2, 3, 4, 7, 16)


# ---- StreamFIFO -------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", DEPTHS)
def test_fifo_passes_everything_in_order(depth: int) -> None:
    layout = data.ArrayLayout(unsigned(3), 2)
    rng = random.Random(depth)
    beats = [[rng.randrange(8), rng.randrange(8)] for _ in range(60)]
    for stall in STALLS:
        run = run_streams(StreamFIFO(layout, depth), {"i": beats}, {"o": len(beats)}, stall=stall,
                          seed=depth * 10 + int(10 * stall), max_cycles=2000)
        assert run.outputs["o"] == beats


@pytest.mark.parametrize("depth", DEPTHS)
def test_fifo_full_throughput_when_not_stalled(depth: int) -> None:
    beats = list(range(40))
    fifo = StreamFIFO(unsigned(8), depth, beats_per_frame=10)
    run = run_streams(fifo, {"i": beats}, {"o": len(beats)}, max_cycles=500)
    assert run.outputs["o"] == beats
    cycles = np.array(run.beat_cycles["o"])
    assert np.all(np.diff(cycles) == 1), cycles          # one beat per cycle once the first is out
    assert cycles[0] <= 3                                # latency: at most a few cycles
    frame_ends = cycles[9::10]
    assert np.all(np.diff(frame_ends) == fifo.cycles_per_frame())


@pytest.mark.parametrize("shape", [signed(5), unsigned(1), data.ArrayLayout(signed(4), 3),
                                   data.StructLayout({"a": unsigned(3), "b": signed(6)})])
def test_fifo_any_payload_shape(shape) -> None:
    rng = random.Random(3)
    if isinstance(shape, data.StructLayout):
        beats = [{"a": rng.randrange(8), "b": rng.randrange(-32, 32)} for _ in range(30)]
    elif isinstance(shape, data.ArrayLayout):
        beats = [[rng.randrange(-8, 8) for _ in range(3)] for _ in range(30)]
    else:
        lo, hi = (-16, 16) if shape.signed else (0, 2 ** shape.width)
        beats = [rng.randrange(lo, hi) for _ in range(30)]
    for depth in (1, 2, 5):
        run = run_streams(StreamFIFO(shape, depth), {"i": beats}, {"o": len(beats)}, stall=0.5, seed=depth)
        assert run.outputs["o"] == beats


def fifo_probe(depth: int) -> tuple[int, list[tuple[int, int]]]:
    """With o.ready low, count the beats the FIFO accepts; then toggle o.ready without a clock edge and
    record i.ready before and after (a registered ready does not change)."""
    fifo = StreamFIFO(unsigned(8), depth)
    result = {"accepted": 0, "ready_pairs": []}

    async def bench(ctx):
        ctx.set(fifo.o.ready, 0)
        ctx.set(fifo.i.valid, 1)
        for n in range(3 * depth + 6):
            ctx.set(fifo.i.payload, n)
            _, _, ready = await ctx.tick().sample(fifo.i.ready)
            result["accepted"] += ready
        for o_ready in (1, 0, 1):
            before = ctx.get(fifo.i.ready)
            ctx.set(fifo.o.ready, o_ready)
            result["ready_pairs"].append((before, ctx.get(fifo.i.ready)))
            ctx.set(fifo.o.ready, 1 - o_ready)

    sim = Simulator(fifo)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return result["accepted"], result["ready_pairs"]


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 7, 16])
def test_fifo_holds_exactly_depth_beats(depth: int) -> None:
    accepted, pairs = fifo_probe(depth)
    assert accepted == depth
    if depth >= 2:
        # Registered i.ready: flipping o.ready cannot change it combinationally.
        assert all(before == after for before, after in pairs), pairs
    else:
        # The pipeline register's ready follows o.ready when full.
        assert any(before != after for before, after in pairs), pairs


def test_fifo_estimates() -> None:
    layout = data.ArrayLayout(unsigned(4), 4)
    assert StreamFIFO(layout, 0).estimate().lut == 0
    assert StreamFIFO(layout, 2).estimate().ff >= 32
    deep = StreamFIFO(layout, 1025).estimate()        # 1024 x 16 bits = 16 Kb: one BRAM18
    assert deep.bram36 == 0.5 and deep.dsp == 0
    assert StreamFIFO.pixels(64, 10, 20, 4, 4, 32).cycles_per_frame() == 10 * 20 * 16


@pytest.mark.parametrize("depth", DEPTHS)
def test_fifo_converts_to_rtlil(depth: int) -> None:
    rtlil.convert(StreamFIFO(data.ArrayLayout(unsigned(3), 2), depth))


@pytest.mark.parametrize("args,kwargs,message", [
    ((unsigned(4), -1), {}, "depth must be a non-negative integer, not -1 in layer 'q'"),
    (("x", 4), {}, "not an Amaranth shape in layer 'q'"),
    ((unsigned(0), 4), {}, "has no bits"),
    ((unsigned(4), 4), {"beats_per_frame": -2}, "beats_per_frame must be a non-negative integer"),
])
def test_fifo_rejects_bad_configuration(args, kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamFIFO(*args, name="q", **kwargs)


def test_fifo_pixels_rejects_bad_lanes() -> None:
    with pytest.raises(ValueError, match="channels 6 not divisible by lanes 4 in layer 'q'"):
        StreamFIFO.pixels(6, 2, 2, 4, 3, 8, name="q")


# ---- LaneConverter ----------------------------------------------------------------------------

LANE_PAIRS = [(1, 1), (1, 2), (2, 1), (1, 4), (4, 1), (2, 4), (4, 2), (2, 8), (8, 2), (3, 6), (6, 3)]


@pytest.mark.parametrize("lanes_in,lanes_out", LANE_PAIRS)
def test_lane_converter_regroups_exactly(lanes_in: int, lanes_out: int) -> None:
    channels = max(lanes_in, lanes_out) * 2
    height, width, frames = 2, 3, 3
    for bits, stall in itertools.product((1, 3), STALLS):
        rng = np.random.default_rng(lanes_in * 100 + lanes_out * 10 + bits)
        x = rng.integers(0, 2 ** bits, size=(frames, channels, height, width), dtype=np.int64)
        dut = LaneConverter(channels, height, width, lanes_in, lanes_out, bits)
        per_frame = channels * height * width // lanes_out
        run = run_streams(dut, {"i": tensor_to_beats(x, lanes_in)}, {"o": frames * per_frame}, stall=stall,
                          seed=bits + int(10 * stall), max_cycles=5000)
        np.testing.assert_array_equal(beats_to_tensor(run.outputs["o"], x.shape, lanes_out), x)
        if stall == 0.0:
            ends = np.array(run.beat_cycles["o"][per_frame - 1::per_frame])
            assert np.all(np.diff(ends) == dut.cycles_per_frame()), (np.diff(ends), dut.cycles_per_frame())


def test_lane_converter_signed_elements() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-2 ** 11, 2 ** 11, size=(2, 8, 2, 2), dtype=np.int64)
    for lanes_in, lanes_out in ((2, 8), (8, 1)):
        dut = LaneConverter(8, 2, 2, lanes_in, lanes_out, 12, signed=True)
        run = run_streams(dut, {"i": tensor_to_beats(x, lanes_in)}, {"o": x.size // lanes_out}, stall=0.4)
        np.testing.assert_array_equal(beats_to_tensor(run.outputs["o"], x.shape, lanes_out), x)


@pytest.mark.parametrize("lanes_in,lanes_out", [(1, 4), (4, 1), (4, 4)])
def test_lane_converter_converts_to_rtlil(lanes_in: int, lanes_out: int) -> None:
    rtlil.convert(LaneConverter(8, 4, 4, lanes_in, lanes_out, 3))


def test_lane_converter_estimate() -> None:
    assert LaneConverter(8, 2, 2, 4, 4, 3).estimate().lut == 0
    wide = LaneConverter(64, 2, 2, 4, 16, 4).estimate()
    assert wide.ff >= 64 and wide.bram36 == 0 and wide.dsp == 0


@pytest.mark.parametrize("args,message", [
    ((6, 2, 2, 4, 2, 3), "channels 6 not divisible by lanes_in 4 in layer 'w'"),
    ((12, 2, 2, 4, 6, 3), "lanes_in 4 and lanes_out 6: one must divide the other in layer 'w'"),
    ((8, 2, 2, 4, 16, 3), "channels 8 not divisible by lanes_out 16"),
    ((8, 0, 2, 4, 2, 3), "height must be a positive integer"),
])
def test_lane_converter_rejects_bad_configuration(args, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LaneConverter(*args, name="w")


# ---- flat AXI-Stream words --------------------------------------------------------------------

@pytest.mark.parametrize("lanes,bits,is_signed", [(3, 8, False), (4, 3, False), (2, 12, True), (1, 32, True),
                                                   (2, 9, False)])
def test_flat_words_round_trip(lanes: int, bits: int, is_signed: bool) -> None:
    rng = random.Random(lanes * bits)
    lo, hi = (-2 ** (bits - 1), 2 ** (bits - 1)) if is_signed else (0, 2 ** bits)
    beats = [[rng.randrange(lo, hi) for _ in range(lanes)] for _ in range(25)]
    beats[0] = [lo] * lanes
    beats[1] = [hi - 1] * lanes
    lane_bytes = (bits + 7) // 8
    # tdata as an AXI-Stream master lays it out: lane j in bytes j*B .. j*B+B-1, two's complement.
    words = [sum((v % 2 ** (8 * lane_bytes)) << (8 * lane_bytes * j) for j, v in enumerate(beat)) for beat in beats]
    to_flat = LanesToFlat(lanes, bits, signed=is_signed)
    assert to_flat.o.payload.shape().width == 8 * lane_bytes * lanes
    run = run_streams(to_flat, {"i": beats}, {"o": len(beats)}, stall=0.3, seed=1)
    assert run.outputs["o"] == words
    run = run_streams(FlatToLanes(lanes, bits, signed=is_signed), {"i": words}, {"o": len(words)}, stall=0.3, seed=2)
    assert run.outputs["o"] == beats


def test_flat_words_convert_to_rtlil() -> None:
    rtlil.convert(LanesToFlat(3, 8))
    rtlil.convert(FlatToLanes(2, 12, signed=True))
    assert LanesToFlat(3, 8).estimate().lut == 0
