"""Verilator, CXXRTL and Amaranth's simulator agree output for output and cycle for cycle; the compile cache
survives damaged entries and concurrent builders."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from test_sim_cxxrtl import Chain, SkewAdd, _expected

from sim import cache
from sim.backends import BACKENDS, CHOICES, available_backends, default_backend, resolve_backend, run_streams
from sim.cxxrtl import compile_design
from sim.stall_rng import StallRng
from sim.streams import SimulationTimeout
from sim.toolrun import X86_64_V3, host_march
from sim.verilator import (COMPILERS, compile_verilator, cxx_choice, run_streams_verilator, verilator_available,
                           verilator_build_info)

needs_verilator = pytest.mark.skipif(not verilator_available(), reason="the verilator package is not installed")


def _beats(n: int, seed: int = 7) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randint(-16, 15) for _ in range(3)] for _ in range(n)]


def test_the_stall_generator_is_xorshift64():
    # the first outputs of the C++ generator in stream_loop.h for seed 0 (state 0x2545F4914F6CDD1D)
    s = 0x2545F4914F6CDD1D
    s ^= (s << 13) & (2**64 - 1)
    s ^= s >> 7
    s ^= (s << 17) & (2**64 - 1)
    rng = StallRng(0)
    assert rng.next() == s
    values = [StallRng(5).random() for _ in range(3)]
    assert values[0] == values[1] == values[2] and 0 <= values[0] < 1
    assert len({StallRng(k).random() for k in range(100)}) == 100


@needs_verilator
@pytest.mark.parametrize("design", [SkewAdd, Chain])
@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_three_backends_agree_cycle_for_cycle(design, stall):
    """Payloads of 120 bits (wider than 64) out, 15 in; the same beats at the same cycles on every backend."""
    beats = _beats(200)
    runs = {name: run_streams(design(), {"i": beats}, {"o": len(beats)}, backend=name, stall=stall, seed=3)
            for name in BACKENDS}
    expected = _expected(beats) if design is SkewAdd else None
    first = runs["pysim"]
    if expected is not None:
        assert first.outputs["o"] == expected
    for name, run in runs.items():
        assert run.outputs == first.outputs, name
        assert run.beat_cycles == first.beat_cycles, name
        assert run.cycles == first.cycles, name
    if stall:
        assert first.cycles > len(beats) + 10   # the stalls did slow it down


@needs_verilator
def test_verilator_errors_are_clear():
    dut = SkewAdd()
    with pytest.raises(SimulationTimeout, match="Verilator"):
        run_streams_verilator(dut, {"i": []}, {"o": 5}, max_cycles=1000)      # elaborates and runs it
    with pytest.raises(ValueError, match="no stream port 'x'"):
        run_streams_verilator(dut, {"x": [[0, 0, 0]]}, {"o": 1})
    with pytest.raises(ValueError, match="output stream, not an input"):
        run_streams_verilator(dut, {"o": [[0, 0, 0]]}, {"o": 1})
    made = []

    def design() -> SkewAdd:
        made.append(SkewAdd())
        return made[-1]

    with pytest.raises(ValueError, match="threads"):
        compile_verilator(design, threads=0)
    with pytest.raises(ValueError, match="C\\+\\+ flags"):
        compile_verilator(design, cflags="-O1; rm -rf /")
    assert not made                     # the options are refused before the design is created


def test_backend_choice():
    found = available_backends()
    assert found[-1] == "pysim" and default_backend() == found[0] and set(found) <= set(BACKENDS)
    assert resolve_backend("auto") == found[0] and resolve_backend("pysim") == "pysim"
    assert CHOICES[0] == "auto"
    with pytest.raises(ValueError, match="unknown simulation backend 'nope'.*auto, verilator, cxxrtl, pysim"):
        resolve_backend("nope")


@needs_verilator
def test_the_compiler_is_cxx_else_clang_else_gcc_and_both_build_the_same_behaviour(fresh_compile_cache, monkeypatch):
    """A clang++ and g++ (installed by the README's set-up) each build the Verilated design into their own
    program (the compiler is part of the cache key) with the same outputs at the same cycles; without
    ``$CXX`` the backend picks the first of clang++-19, clang++ (both -Os) and g++ that is installed, with
    ``$CXX`` that compiler."""
    import shutil

    monkeypatch.delenv("CXX", raising=False)
    assert [name for name, _ in COMPILERS] == ["clang++-19", "clang++", "g++"]
    installed = [(name, flags) for name, flags in COMPILERS if shutil.which(name)]
    assert "g++" in dict(installed) and any("clang" in name for name, _ in installed), installed
    march = host_march(shutil.which(installed[0][0]))
    assert cxx_choice() == (shutil.which(installed[0][0]), f"{installed[0][1]} {march}".strip())
    assert installed[0][1] == "-Os"
    beats = _beats(120)
    reference = run_streams(Chain(), {"i": beats}, {"o": len(beats)}, backend="pysim", stall=0.3, seed=5)
    programs = {}
    for name, flags in installed:
        monkeypatch.setenv("CXX", name)
        flags = f"{flags} {host_march(shutil.which(name))}".strip()
        assert cxx_choice() == (shutil.which(name), flags)
        programs[name] = compile_verilator(Chain())
        assert verilator_build_info(programs[name])["cxx"].startswith(shutil.which(name) + ":")
        assert verilator_build_info(programs[name])["cflags"] == flags
        run = run_streams_verilator(Chain(), {"i": beats}, {"o": len(beats)}, stall=0.3, seed=5,
                                    program=programs[name])
        assert run.outputs == reference.outputs and run.beat_cycles == reference.beat_cycles, name
    assert programs[installed[0][0]] != programs["g++"]


# ---- the cache ----------------------------------------------------------------------------------

def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


@needs_verilator
def test_the_instruction_set_is_x86_64_v3_only_where_the_cpu_and_the_compiler_have_it():
    """``host_march`` names x86-64-v3 for a Linux x86-64 CPU with every one of its features and a compiler
    that takes the option; one missing feature, or a compiler that refuses, gives no flag."""
    import platform
    import shutil

    cxx = cxx_choice()[0]
    assert cxx is not None
    every = "processor : 0\nflags : fpu " + " ".join(sorted(X86_64_V3)) + " avx512f\n"
    x86_linux = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")
    assert host_march(cxx, every) == ("-march=x86-64-v3" if x86_linux else "")
    for missing in ("avx2", "bmi2", "movbe"):
        assert host_march(cxx, every.replace(f" {missing} ", " ")) == "", missing
    assert host_march(shutil.which("false") or "false", every) == ""
    assert host_march("/nonexistent/c++", every) == ""
    assert host_march(cxx, "processor : 0\n") == ""


def test_a_truncated_or_garbled_verilator_entry_is_rebuilt(fresh_compile_cache):
    beats = _beats(50)
    program = compile_verilator(SkewAdd())
    assert verilator_build_info(program)["cpp_bytes"] > 0
    _truncate(program)
    run = run_streams_verilator(SkewAdd(), {"i": beats}, {"o": 50}, stall=0.3)
    assert run.outputs["o"] == _expected(beats)
    assert program.stat().st_size > 0 and cache.lookup("verilator", program.stem, ".bin") is not None
    program.with_name(program.stem + ".manifest.json").write_text("{not json")
    run = run_streams_verilator(SkewAdd(), {"i": beats}, {"o": 50}, stall=0.3)
    assert run.outputs["o"] == _expected(beats)
    assert json.loads(program.with_name(program.stem + ".manifest.json").read_text())["size"] == program.stat().st_size


def test_a_truncated_cxxrtl_library_is_rebuilt_not_a_crash(tmp_path, monkeypatch):
    """A truncated shared library used to kill every later run with SIGBUS (signal 7)."""
    monkeypatch.setenv("MIXQ_CACHE", str(tmp_path))
    beats = _beats(50)
    lib = compile_design(SkewAdd())
    _truncate(lib)
    run = run_streams(SkewAdd(), {"i": beats}, {"o": 50}, backend="cxxrtl", stall=0.3)
    assert run.outputs["o"] == _expected(beats)
    assert cache.lookup("cxxrtl", lib.stem, ".so") is not None


def test_cache_entries_are_checked_and_builders_of_one_key_wait(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXQ_CACHE", str(tmp_path))
    key = cache.cache_key("design", "flags")
    assert key != cache.cache_key("designf", "lags")   # parts are length-prefixed
    calls = []

    def build(tmp):
        calls.append(1)
        time.sleep(0.3)
        (tmp / "out").write_bytes(b"artifact" * 100)
        return tmp / "out", {"cost": 1}

    entries = []
    threads = [threading.Thread(target=lambda: entries.append(cache.fetch("test", key, ".bin", build)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({e.path for e in entries}) == 1
    assert sum(e.built for e in entries) == 1 and entries[0].info == {"cost": 1}
    path = entries[0].path
    path.write_bytes(b"artifacT" * 100)   # same size, other content
    assert cache.lookup("test", key, ".bin") is None and not path.exists()
    assert cache.fetch("test", key, ".bin", build).built and len(calls) == 2
    path.with_name(key + ".manifest.json").write_text(json.dumps({"version": 1, "sha256": 5, "size": "x"}))
    assert cache.lookup("test", key, ".bin") is None
    with pytest.raises(RuntimeError, match="no compiler"):
        cache.fetch("test", cache.cache_key("other"), ".bin", lambda tmp: (_ for _ in ()).throw(RuntimeError("no compiler")))
    assert [p.name for p in (tmp_path / "test").iterdir() if p.name.startswith(".build")] == []
    with pytest.raises(ValueError, match="bad cache entry"):
        cache.entry_paths("test", "../../etc", ".bin")
