"""The compiled (CXXRTL) backend gives the same beats as Amaranth's simulator, under stalls."""

import random

import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sim.cxxrtl import run_streams_compiled
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
