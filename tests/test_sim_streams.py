# amaranth: UnusedElaboratable=no
"""Tests of the simulation helpers themselves: stream drivers (order, protocol, stall rates, watchdog) and tensors."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from sim.streams import SimulationTimeout, receive, run_streams, send, to_python
from sim.tensors import beats_to_tensor, tensor_to_beats

STALLS = (0.0, 0.3, 0.7)


class Register(wiring.Component):
    """A one-deep pipeline register: the smallest correct stream stage (ready follows o.ready when full)."""

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class Deaf(wiring.Component):
    """Never ready, never valid: every run against it must end in the watchdog."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(unsigned(8))), "o": Out(stream.Signature(unsigned(8)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        ticks = Signal(4)
        m.d.sync += ticks.eq(ticks + 1)      # gives the design a clock domain to drive
        return m


@pytest.mark.parametrize("stall", STALLS)
def test_stalled_register_passes_everything_in_order(stall: float) -> None:
    beats = [random.Random(5).randrange(256) for _ in range(150)]
    run = run_streams(Register(unsigned(8)), {"i": beats}, {"o": len(beats)}, stall=stall, seed=3)
    assert run.outputs["o"] == beats
    assert len(run.beat_cycles["o"]) == len(beats)
    assert run.beat_cycles["o"] == sorted(run.beat_cycles["o"])
    if stall == 0.0:
        # No stall: one beat per cycle after a one-cycle register latency.
        assert run.beat_cycles["o"] == list(range(run.beat_cycles["o"][0], run.beat_cycles["o"][0] + len(beats)))
        assert run.beat_cycles["o"][0] <= 2
    else:
        assert run.cycles > len(beats) * (1 + stall / 2)      # stalls really slow it down


def test_stall_rate_matches_the_probability() -> None:
    """With stall p on both ends of a register, throughput is about (1-p)^2 per cycle; seeded, so repeatable."""
    n = 400
    run = run_streams(Register(unsigned(8)), {"i": list(range(n))}, {"o": n}, stall=0.5, seed=1)
    assert run.outputs["o"] == [v % 256 for v in range(n)]
    rate = n / run.cycles
    assert 0.15 < rate < 0.40, rate          # 0.25 expected for independent p = 0.5 stalls
    again = run_streams(Register(unsigned(8)), {"i": list(range(n))}, {"o": n}, stall=0.5, seed=1)
    assert again.beat_cycles == run.beat_cycles
    other = run_streams(Register(unsigned(8)), {"i": list(range(n))}, {"o": n}, stall=0.5, seed=2)
    assert other.beat_cycles != run.beat_cycles


def test_send_holds_valid_and_payload_until_ready() -> None:
    """A monitor checks the AXI-Stream rule on the sender's side while the sink stalls at random."""
    dut = Register(unsigned(8))
    beats = list(range(1, 80))
    violations: list[str] = []
    seen: list[int] = []

    async def producer(ctx):
        await send(ctx, dut.i, beats, stall=0.4, rng=random.Random(7))

    async def consumer(ctx):
        await receive(ctx, dut.o, len(beats), stall=0.6, rng=random.Random(8))

    async def monitor(ctx):
        pending = None
        async for _, _, valid, ready, payload in ctx.tick().sample(dut.i.valid, dut.i.ready, dut.i.payload):
            if pending is not None and (not valid or payload != pending):
                violations.append(f"beat {pending} withdrawn before it was taken")
            pending = payload if valid and not ready else None
            if valid and ready:
                seen.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(monitor, background=True)
    sim.run_until(1e-8 * 2000)
    assert not violations, violations[:3]
    assert seen == beats


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # testbenches left mid-wait
def test_watchdog_raises_on_a_dut_that_never_answers() -> None:
    with pytest.raises(SimulationTimeout, match=r"Deaf: no completion after 50 cycles \(received \{'o': 0\}"):
        run_streams(Deaf(), {"i": [1, 2, 3]}, {"o": 3}, max_cycles=50)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # closing abandoned testbenches
def test_watchdog_reports_partial_progress() -> None:
    """A register fed fewer beats than expected stops short; the message says how many arrived."""
    with pytest.raises(SimulationTimeout, match=r"received \{'o': 2\} of \{'o': 5\}"):
        run_streams(Register(unsigned(8)), {"i": [1, 2]}, {"o": 5}, max_cycles=40)


def test_unknown_port_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="has no stream port 'x'"):
        run_streams(Register(unsigned(8)), {"x": [1]}, {"o": 1})


def test_payload_layouts_come_back_as_python_values() -> None:
    layout = data.StructLayout({"code": data.ArrayLayout(unsigned(3), 2), "acc": signed(10)})
    beats = [{"code": [1, 7], "acc": -512}, {"code": [0, 5], "acc": 511}, {"code": [3, 3], "acc": -1}]
    run = run_streams(Register(layout), {"i": beats}, {"o": len(beats)}, stall=0.3)
    assert run.outputs["o"] == beats
    assert to_python(5) == 5


# ---- sim/tensors.py: the tensor <-> beats helpers every layer test relies on ----------------------

def test_tensor_to_beats_is_raster_order_with_channels_together() -> None:
    x = np.arange(2 * 2 * 3).reshape(2, 2, 3)           # (C=2, H=2, W=3): x[c, y, w] = c*6 + y*3 + w
    # pixel (y, w) carries channels (x[0, y, w], x[1, y, w]); rows first, then columns
    assert tensor_to_beats(x, 2) == [[0, 6], [1, 7], [2, 8], [3, 9], [4, 10], [5, 11]]
    assert tensor_to_beats(x, 1) == [[0], [6], [1], [7], [2], [8], [3], [9], [4], [10], [5], [11]]


def test_beats_round_trip_for_frames_and_batches() -> None:
    rng = np.random.default_rng(0)
    for shape, lanes in (((4, 3, 5), 2), ((3, 4, 2, 2), 4), ((2, 6, 1, 3), 3), ((1, 1, 1), 1)):
        x = rng.integers(-100, 100, size=shape)
        beats = tensor_to_beats(x, lanes)
        assert len(beats) == x.size // lanes and all(len(b) == lanes for b in beats)
        back = beats_to_tensor(beats, shape, lanes)
        assert back.dtype == np.int64
        np.testing.assert_array_equal(back, x)
    batch = rng.integers(0, 8, size=(3, 4, 2, 2))
    # A batch is its frames back to back.
    assert tensor_to_beats(batch, 2) == sum((tensor_to_beats(frame, 2) for frame in batch), [])


@pytest.mark.parametrize("call,message", [
    (lambda: tensor_to_beats(np.zeros((3, 2, 2), dtype=np.int64), 2), "channels 3 not divisible by lanes 2"),
    (lambda: tensor_to_beats(np.zeros((2, 2)), 1), "expected a \\(C, H, W\\) tensor"),
    (lambda: tensor_to_beats(np.zeros((2, 2, 2)), 1), "expected an integer tensor"),
    (lambda: tensor_to_beats(np.zeros((2, 2, 2), dtype=np.int64), 0), "lanes must be a positive integer"),
    (lambda: beats_to_tensor([[1, 2]] * 3, (2, 2, 2), 2), "3 beats do not make a tensor of shape \\(2, 2, 2\\)"),
    (lambda: beats_to_tensor([[1, 2, 3]] * 4, (2, 2, 2), 2), "beats have shape \\(4, 3\\), expected \\(4, 2\\)"),
    (lambda: beats_to_tensor([[1, 2]] * 4, (2, 2), 2), "shape must be"),
])
def test_tensor_helpers_reject_mismatches(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
