# amaranth: UnusedElaboratable=no
"""Concat against the Graph's concat, Fork against plain copying, and fork -> FIFO -> concat together."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth import Module, signed
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.graph.ops import concat
from mixq_hw.layers.concat import Concat
from mixq_hw.layers.fifo import StreamFIFO
from mixq_hw.layers.fork import Fork
from sim.streams import SimulationTimeout, run_streams
from sim.tensors import beats_to_tensor, tensor_to_beats

FRAMES = 3
STALLS = (0.0, 0.3, 0.7)


def codes(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    x = rng.integers(0, 2 ** bits, size=shape, dtype=np.int64)
    x.flat[0], x.flat[-1] = 2 ** bits - 1, 0
    return x


def frame_intervals(beat_cycles: list[int], per_frame: int, frames: int) -> np.ndarray:
    """Cycles between the last beats of consecutive frames (the steady-state initiation interval)."""
    return np.diff([beat_cycles[(f + 1) * per_frame - 1] for f in range(frames)])


def run_concat(channels: tuple[int, int], height: int, width: int, lanes: int, bits: int, stall: float,
               seed: int):
    dut = Concat(*channels, height, width, lanes, bits)
    rng = np.random.default_rng(seed)
    xs = [codes(rng, (FRAMES, c, height, width), bits) for c in channels]
    expected = concat(xs)
    per_frame = expected[0].size // lanes
    run = run_streams(dut, {f"i{k}": tensor_to_beats(x, lanes) for k, x in enumerate(xs)}, {"o": FRAMES * per_frame},
                      stall=stall, seed=seed, max_cycles=200 + 20 * expected.size)
    np.testing.assert_array_equal(beats_to_tensor(run.outputs["o"], expected.shape, lanes), expected)
    if stall == 0.0:
        intervals = frame_intervals(run.beat_cycles["o"], per_frame, FRAMES)
        assert np.all(np.abs(intervals - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()), intervals


@pytest.mark.parametrize("height,width", list(itertools.product((2, 4, 6), (2, 4, 6))))
def test_concat_exhaustive_small_shapes(height: int, width: int) -> None:
    for index, (lanes, bits) in enumerate(itertools.product((1, 2, 4), (1, 3))):
        channels = (lanes * (1 + index % 2), lanes * (2 - index % 2))     # unequal parts both ways
        for stall in STALLS:
            run_concat(channels, height, width, lanes, bits, stall, seed=height * 1000 + width * 100 + index * 10
                       + int(10 * stall))


def test_concat_uneven_parts() -> None:
    for stall in STALLS:
        run_concat((2, 6), 2, 4, 2, 4, stall, seed=11)
        run_concat((1, 3), 4, 2, 1, 8, stall, seed=12)


def run_fork(outputs: int, channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int):
    dut = Fork.pixels(channels, height, width, lanes, bits, outputs=outputs)
    x = codes(np.random.default_rng(seed), (FRAMES, channels, height, width), bits)
    beats = tensor_to_beats(x, lanes)
    run = run_streams(dut, {"i": beats}, {f"o{k}": len(beats) for k in range(outputs)}, stall=stall, seed=seed,
                      max_cycles=200 + 20 * len(beats))
    for k in range(outputs):
        np.testing.assert_array_equal(beats_to_tensor(run.outputs[f"o{k}"], x.shape, lanes), x)
    return dut, run, len(beats)


@pytest.mark.parametrize("lanes,bits", list(itertools.product((1, 2, 4), (1, 3))))
def test_fork_copies_under_independent_stalls(lanes: int, bits: int) -> None:
    for (height, width), stall in itertools.product(((2, 2), (4, 6)), STALLS):
        run_fork(2, 2 * lanes, height, width, lanes, bits, stall, seed=lanes * 100 + bits * 10 + int(10 * stall))


def test_fork_full_throughput_when_all_ready() -> None:
    for outputs in (2, 3):
        dut, run, n = run_fork(outputs, 4, 4, 4, 2, 3, 0.0, seed=outputs)
        for k in range(outputs):
            # One beat per cycle: beat j leaves in cycle j + constant.
            cycles = np.array(run.beat_cycles[f"o{k}"])
            assert np.all(np.diff(cycles) == 1), cycles
        intervals = frame_intervals(run.beat_cycles["o0"], n // FRAMES, FRAMES)
        assert np.all(intervals == dut.cycles_per_frame())


def test_fork_three_outputs_with_stalls() -> None:
    for stall in STALLS:
        run_fork(3, 6, 2, 4, 3, 2, stall, seed=int(10 * stall))


class ForkConcat(wiring.Component):
    """x -> Fork -> (o0 -> concat.i0, o1 -> FIFO -> concat.i1): concat(x, x), the bypass pattern in miniature."""

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, depth: int):
        self.fork = Fork.pixels(channels, height, width, lanes, bits)
        self.fifo = StreamFIFO.pixels(channels, height, width, lanes, bits, depth)
        self.concat = Concat(channels, channels, height, width, lanes, bits)
        super().__init__({"i": In(self.fork.i.signature.flip()), "o": Out(self.concat.o.signature)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fork, m.submodules.fifo, m.submodules.concat = self.fork, self.fifo, self.concat
        wiring.connect(m, wiring.flipped(self.i), self.fork.i)
        wiring.connect(m, self.fork.o0, self.concat.i0)
        wiring.connect(m, self.fork.o1, self.fifo.i)
        wiring.connect(m, self.fifo.o, self.concat.i1)
        wiring.connect(m, self.concat.o, wiring.flipped(self.o))
        return m


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # testbenches left mid-wait
@pytest.mark.parametrize("channels,lanes", [(1, 1), (2, 1), (4, 2), (6, 2), (6, 1)])
def test_fork_fifo_concat_minimal_branch_fifo(channels: int, lanes: int) -> None:
    """concat reads a pixel's C/lanes beats from i0 before any from i1; the fork holds the last of them itself,
    so the branch FIFO needs C/lanes - 1 beats: with that no stall pattern deadlocks, with one less it hangs."""
    chunks = channels // lanes
    x = codes(np.random.default_rng(channels), (2, channels, 2, 4), 3)
    expected = concat([x, x])
    for stall in STALLS:
        dut = ForkConcat(channels, 2, 4, lanes, 3, depth=chunks - 1)
        run = run_streams(dut, {"i": tensor_to_beats(x, lanes)}, {"o": expected.size // lanes}, stall=stall,
                          seed=int(10 * stall), max_cycles=5000)
        np.testing.assert_array_equal(beats_to_tensor(run.outputs["o"], expected.shape, lanes), expected)
    if chunks >= 2:
        with pytest.raises(SimulationTimeout):
            run_streams(ForkConcat(channels, 2, 4, lanes, 3, depth=chunks - 2), {"i": tensor_to_beats(x, lanes)},
                        {"o": expected.size // lanes}, max_cycles=500)


@pytest.mark.parametrize("make", [
    lambda: Concat(4, 8, 4, 6, 2, 3),
    lambda: Concat(1, 1, 2, 2, 1, 1),
    lambda: Fork.pixels(4, 4, 6, 2, 3),
    lambda: Fork.pixels(3, 2, 2, 3, 5, outputs=4),
    lambda: Fork(signed(20), outputs=3),
    lambda: ForkConcat(4, 2, 4, 2, 3, depth=2),
])
def test_converts_to_rtlil(make) -> None:
    rtlil.convert(make())


def test_estimates_are_small_logic() -> None:
    for layer in (Concat(64, 256, 10, 20, 4, 4), Fork.pixels(64, 20, 40, 4, 4)):
        cost = layer.estimate()
        assert cost.dsp == 0 and cost.bram36 == 0 and 0 < cost.lut < 100


@pytest.mark.parametrize("make,message", [
    (lambda: Concat(4, 6, 2, 2, 4, 3, name="cat"), "channels 6 of input i1 not divisible by lanes 4 in layer 'cat'"),
    (lambda: Concat(4, 4, 0, 2, 4, 3, name="cat"), "height must be a positive integer, not 0 in layer 'cat'"),
    (lambda: Fork.pixels(6, 2, 2, 4, 3, name="f"), "channels 6 not divisible by lanes 4 in layer 'f'"),
    (lambda: Fork.pixels(4, 2, 2, 4, 3, outputs=1, name="f"), "at least 2 outputs"),
    (lambda: Fork("nope", name="f"), "not an Amaranth shape in layer 'f'"),
])
def test_rejects_bad_configuration(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
