"""The compiled (CXXRTL) backend gives the same beats as Amaranth's simulator, under stalls."""

import os
import random

import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sim import cxxrtl
from sim.cxxrtl import (
    SimulationCrash,
    build_info,
    compile_design,
    read_progress,
    run_isolated,
    run_streams_compiled,
    shared_progress,
)
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


class Scale(wiring.Component):
    """Combinational stream stage: valid and ready pass straight through, the payload is scaled."""

    i: In(stream.Signature(data.ArrayLayout(signed(40), 3)))
    o: Out(stream.Signature(data.ArrayLayout(signed(42), 3)))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for lane in range(3):
            m.d.comb += self.o.payload[lane].eq(self.i.payload[lane] * 3 + lane)
        return m


class Chain(wiring.Component):
    """SkewAdd -> Scale -> SkewAdd-like register: valid/ready cross module boundaries combinationally, which
    a hierarchical CXXRTL build must settle with delta cycles."""

    i: In(stream.Signature(data.ArrayLayout(signed(5), 3)))
    o: Out(stream.Signature(data.ArrayLayout(signed(42), 3)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.first = first = SkewAdd()
        m.submodules.scale = scale = Scale()
        wiring.connect(m, wiring.flipped(self.i), first.i)
        wiring.connect(m, first.o, scale.i)
        wiring.connect(m, scale.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_both_clockings_match_the_python_simulator_cycle_for_cycle(flatten, stall):
    """Flattened (one eval() per cycle) and hierarchical (settle + edge) builds: same beats, same cycles."""
    rng = random.Random(3)
    beats = [[rng.randint(-16, 15) for _ in range(3)] for _ in range(200)]
    expected = [[v * 3 + lane for lane, v in enumerate(beat)] for beat in _expected(beats)]
    stats: dict = {}
    compiled = run_streams_compiled(Chain(), {"i": beats}, {"o": len(beats)}, stall=stall, seed=2,
                                    flatten=flatten, stats=stats)
    python = run_streams(Chain(), {"i": beats}, {"o": len(beats)}, stall=stall, seed=2)
    assert compiled.outputs["o"] == python.outputs["o"] == expected
    assert stats["one_eval"] is flatten and stats["cpu_seconds"] > 0
    # one eval() per cycle when flattened (plus 3 for the reset), at least a settle + an edge otherwise
    if flatten:
        assert stats["evals"] == compiled.cycles + 3
    else:
        assert stats["evals"] >= 2 * compiled.cycles
    if stall == 0.0:
        assert compiled.cycles == python.cycles == len(beats) + 1
        assert compiled.beat_cycles["o"] == python.beat_cycles["o"]


def test_a_split_build_runs_and_reports_itself(monkeypatch):
    """A hierarchical source split into several g++ units (forced with a tiny unit size) links into a
    working library; build_info records the build; the progress buffer sees the run's last cycle."""
    monkeypatch.setattr(cxxrtl, "UNIT_CHARS", 2_000)
    monkeypatch.setattr(cxxrtl, "_BUILD_VERSION", f"{cxxrtl._BUILD_VERSION}-split-test")
    dut = Chain()
    lib = compile_design(dut, flatten=False)
    info = build_info(lib)
    assert info["flatten"] is False and info["one_eval"] is False and info["units"] >= 3
    assert info["cxx_bytes"] > 2_000 and info["gxx_seconds"] > 0
    beats = [[1, -2, 3]] * 20
    progress = shared_progress()
    run = run_streams_compiled(dut, {"i": beats}, {"o": 20}, library=lib, progress=progress)
    assert run.outputs["o"] == [[v * 3 + lane for lane, v in enumerate(b)] for b in _expected(beats)]
    cycle, out, evals = read_progress(progress)
    assert (cycle, out) == (run.cycles, 20) and evals >= 2 * run.cycles


def test_the_source_splits_at_function_boundaries(monkeypatch):
    """Every reset()/eval() definition lands in exactly one eval unit, every debug_info() in the debug unit,
    and the header keeps the struct definitions only."""
    monkeypatch.setattr(cxxrtl, "UNIT_CHARS", 2_000)
    source = (
        "#include <cxxrtl/cxxrtl.h>\nnamespace cxxrtl_design {\n\nstruct p_a : public module {\n\tint x;\n};"
        " // struct p_a\n\nvoid p_a::reset() {\n\tx = 0;\n}\n\nbool p_a::eval(performer *performer) {\n"
        + "\tx++;\n" * 600 + "}\n\nCXXRTL_EXTREMELY_COLD\nvoid p_a::debug_info(debug_items *items) {\n}\n\n"
        "bool p_b::eval(performer *performer) {\n\treturn true;\n}\n\n} // namespace cxxrtl_design\n\n"
        'extern "C"\ncxxrtl_toplevel cxxrtl_design_create() {\n\treturn nullptr;\n}\n')
    units = cxxrtl._split(source)
    assert set(units) == {"design.h", "eval0.cc", "eval1.cc", "debug.cc"}
    assert "struct p_a" in units["design.h"] and "::" not in units["design.h"].split("struct p_a")[1]
    assert "p_a::reset" in units["eval0.cc"] and "p_a::eval" in units["eval0.cc"]
    assert "p_b::eval" in units["eval1.cc"] and "debug_info" not in units["eval0.cc"] + units["eval1.cc"]
    assert "CXXRTL_EXTREMELY_COLD\nvoid p_a::debug_info" in units["debug.cc"]
    assert "cxxrtl_design_create" in units["debug.cc"] and "cxxrtl_design_create" not in units["design.h"]
    assert cxxrtl._split(source[:1000]) == {"design.h": "", "eval0.cc": source[:1000]}


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
