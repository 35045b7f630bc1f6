"""The simulation backends and the one call that runs streams on any of them.

``verilator`` (compiled with Verilator, the fastest), ``cxxrtl`` (Yosys' CXXRTL
+ g++) and ``pysim`` (Amaranth's simulator, no compiler needed).  All three
run the same stream rules with the same stall generators (:mod:`sim.stall_rng`)
and agree output for output and cycle for cycle.  ``"auto"`` picks the first
that is usable here, in that order.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Iterable, Mapping

from .streams import StreamRun

__all__ = ["BACKENDS", "CHOICES", "available_backends", "default_backend", "resolve_backend", "run_streams"]

#: Every backend, fastest first.
BACKENDS = ("verilator", "cxxrtl", "pysim")
#: What a ``--backend`` option accepts.
CHOICES = ("auto", *BACKENDS)


def _cxxrtl_usable() -> bool:
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return False
    from .cxxrtl import CompileError, runtime_include_dir

    try:
        runtime_include_dir()
    except CompileError:
        return False
    return True


def available_backends() -> list[str]:
    """The backends usable on this machine, fastest first (``pysim`` always is)."""
    from .verilator import verilator_available

    found = []
    if verilator_available():
        found.append("verilator")
    if _cxxrtl_usable():
        found.append("cxxrtl")
    found.append("pysim")
    return found


def default_backend() -> str:
    """What ``"auto"`` means here: verilator if usable, else cxxrtl if g++ and its headers are, else pysim."""
    return available_backends()[0]


def resolve_backend(backend: str) -> str:
    """``backend`` itself, or :func:`default_backend` for ``"auto"``; a ValueError naming the choices for
    anything else."""
    if backend == "auto":
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"unknown simulation backend {backend!r}; choose one of {', '.join(CHOICES)}")
    return backend


def run_streams(dut, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int], *, backend: str = "auto",
                stall: float = 0.0, seed: int = 0, max_cycles: int = 10_000_000, **options: Any) -> StreamRun:
    """Simulate ``dut`` with its input streams fed and output streams drained under random stalls, on
    ``backend``: the contract of :func:`sim.streams.run_streams` (same result on every backend).

    ``options`` go to the backend: :func:`sim.streams.run_streams` (``vcd``),
    :func:`sim.cxxrtl.run_streams_compiled` (``opt``, ``flatten``, ``stats``, ...) or
    :func:`sim.verilator.run_streams_verilator` (``threads``, ``opt``, ``cflags``, ``stats``, ...).
    """
    name = resolve_backend(backend)
    if name == "pysim":
        from .streams import run_streams as run_pysim

        return run_pysim(dut, inputs, outputs, stall=stall, seed=seed, max_cycles=max_cycles, **options)
    if name == "cxxrtl":
        from .cxxrtl import run_streams_compiled

        return run_streams_compiled(dut, inputs, outputs, stall=stall, seed=seed, max_cycles=max_cycles, **options)
    from .verilator import run_streams_verilator

    return run_streams_verilator(dut, inputs, outputs, stall=stall, seed=seed, max_cycles=max_cycles, **options)
