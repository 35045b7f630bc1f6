"""The compiled (CXXRTL) backend gives the same beats as Amaranth's simulator, under stalls."""

import os
import random

import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sim.cxxrtl import SimulationCrash, run_isolated, run_streams_compiled
from sim.streams import SimulationTimeout, run_streams


class SkewAdd(wiring.Component):
    """Registered stream stage: adds a running counter to every lane (state makes order matter)."""

    i: In(stream.Signature(data.ArrayLayout(signed(5), 3)))
    o: Out(stream.Signature(data.ArrayLayout(signed(40), 3)))

    def elaborate(self, platform):
        m = Module()
        count = Signal(unsigned(36))
        take = self.i.valid & (self.o.ready | ~self.o.valid)
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += self.o.valid.eq(self.i.valid)
        with m.If(take):
            m.d.sync += count.eq(count + 1)
            for lane in range(3):
                m.d.sync += self.o.payload[lane].eq(self.i.payload[lane] * (count << 3) - lane)
        return m


def _expected(beats):
    return [[v * (n << 3) - lane for lane, v in enumerate(beat)] for n, beat in enumerate(beats)]


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_compiled_matches_python_simulator(stall):
    rng = random.Random(7)
    beats = [[rng.randint(-16, 15) for _ in range(3)] for _ in range(300)]
    compiled = run_streams_compiled(SkewAdd(), {"i": beats}, {"o": len(beats)}, stall=stall, seed=1)
    python = run_streams(SkewAdd(), {"i": beats}, {"o": len(beats)}, stall=stall, seed=1)
    assert compiled.outputs["o"] == python.outputs["o"] == _expected(beats)
    assert len(compiled.beat_cycles["o"]) == len(beats)
    if stall == 0.0:
        # one beat per cycle plus the register's latency, in both backends
        assert compiled.cycles == python.cycles == len(beats) + 1


def test_compiled_timeout_is_reported():
    with pytest.raises(SimulationTimeout):
        run_streams_compiled(SkewAdd(), {"i": []}, {"o": 5}, max_cycles=1000)


def test_unknown_port_is_reported():
    with pytest.raises(ValueError, match="no stream port 'x'"):
        run_streams_compiled(SkewAdd(), {"x": [[0, 0, 0]]}, {"o": 1})


class OutOfRange(wiring.Component):
    """Reads a 3-word memory at a counter that reaches 3: out of bounds on the fourth beat."""

    i: In(stream.Signature(unsigned(2)))
    o: Out(stream.Signature(unsigned(4)))

    def elaborate(self, platform):
        from amaranth.lib import memory
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(4), depth=3, init=[5, 6, 7])
        rp = mem.read_port()
        advance = self.o.ready | ~self.o.valid
        m.d.comb += [rp.addr.eq(self.i.payload), rp.en.eq(advance), self.o.payload.eq(rp.data),
                     self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m


def test_an_out_of_bounds_read_is_an_error_not_the_end_of_python():
    """CXXRTL aborts on an out-of-bounds memory read: the run (in a child) raises SimulationCrash naming it."""
    assert run_streams_compiled(OutOfRange(), {"i": [0, 2, 1]}, {"o": 3}).outputs["o"] == [5, 7, 6]
    with pytest.raises(SimulationCrash, match=r"OutOfRange.*signal 6.*out of bounds read"):
        run_streams_compiled(OutOfRange(), {"i": [0, 3]}, {"o": 2})


def test_run_isolated_returns_results_and_errors():
    """Results and Python errors cross the process boundary as they are; a hard crash names its cause."""
    def abort():
        os.write(2, b"design.cc:42: Assertion `tmp.valid && \"out of bounds read\"' failed.\n")
        os.abort()

    with pytest.raises(SimulationCrash, match=r"graph 'g'.*signal 6.*out of bounds read"):
        run_isolated(abort, "graph 'g'")

    def timeout():
        raise SimulationTimeout("no completion after 9 cycles")

    with pytest.raises(SimulationTimeout, match="after 9 cycles"):
        run_isolated(timeout, "graph 'g'")
    assert run_isolated(lambda: {"beats": [[1, -2]], "cycles": [7]}, "g") == {"beats": [[1, -2]], "cycles": [7]}
