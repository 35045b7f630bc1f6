"""Whole networks in simulation: an integer Graph's Accelerator run on images, checked against Graph.reference.

:func:`simulate` is the one harness every whole-network check goes through (the
``python -m sim`` CLI, ``mixq_hw.build --verify``, the zoo tests, the
benchmarks): it elaborates the :class:`~mixq_hw.pipeline.Accelerator` for a
folding, streams the images in (one pixel per beat, raster order) under random
valid/ready stalls, collects the raw int32 outputs, and reports how many
images are bit-exact and how many cycles a frame takes.  Three backends, same
stimulus rules and stall generators, same results cycle for cycle
(:mod:`sim.backends`): Amaranth's Python simulator (``"pysim"``, a few hundred
to a few thousand cycles/s, can write a VCD), CXXRTL + g++ (``"cxxrtl"``, run in
a child process so that a CXXRTL assertion becomes a :class:`SimulationCrash`)
and Verilator (``"verilator"``, the fastest; a program of its own).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from amaranth.sim import Simulator

from mixq_hw.graph import Graph
from mixq_hw.progress import line
from mixq_hw.pipeline import Accelerator, LayerFold

from . import cxxrtl as cxxrtl_backend
from . import verilator as verilator_backend
from .backends import resolve_backend
from .progress import LiveBar, compile_bar, compile_estimate
from .cxxrtl import SimulationCrash
from .stall_rng import StallRng, input_seed, output_seed
from .streams import SimulationTimeout, receive, send
from .tensors import beats_to_tensor

__all__ = ["BACKENDS", "NetworkRun", "SimulationCrash", "simulate", "image_beats", "check_images",
           "default_max_cycles"]

BACKENDS = ("pysim", "cxxrtl", "verilator")


@dataclass
class NetworkRun:
    """What :func:`simulate` measured.  Cycle counts are clock cycles of the accelerator."""

    #: the accelerator's outputs, (N, C, H, W) int64 raw ``acc + bias`` values
    outputs: np.ndarray
    #: ``graph.reference(images)``, the golden model's outputs
    reference: np.ndarray
    #: number of images whose whole output equals the reference
    bit_exact: int
    #: indices of the images that are not bit-exact
    mismatched: list[int]
    #: steady-state interval: mean gap between consecutive frames' last output beats (frames 2..N);
    #: with one image, the latency
    cycles_per_frame: int
    #: cycle of the first frame's last output beat
    latency: int
    #: cycles the whole batch took
    cycles_total: int
    #: simulated cycles per second of wall time, simulation only (elaboration and compile excluded)
    cycles_per_second: float
    #: wall time of the simulation itself
    sim_seconds: float
    #: elaboration + compile (pysim: building the simulator; cxxrtl: CXXRTL conversion and g++, or cache lookup)
    compile_seconds: float
    #: the plan's initiation interval (its slowest stage)
    analytic_cycles_per_frame: int
    #: name of the slowest stage in the plan
    bottleneck: str
    backend: str
    stall: float
    #: cycle of each frame's last output beat
    frame_end_cycles: list[int] = field(default_factory=list)
    #: CPU seconds of the simulation (cxxrtl: of the child process that ran it), for a loaded machine
    sim_cpu_seconds: float = 0.0
    #: cxxrtl: eval() calls per simulated cycle (1 when flattened, about 3 with hierarchy); 0 for pysim
    evals_per_cycle: float = 0.0
    #: cxxrtl: how the library was built (:func:`sim.cxxrtl.build_info`: C++ size, conversion and g++ times)
    build: dict = field(default_factory=dict)

    @property
    def images(self) -> int:
        return int(self.outputs.shape[0])

    @property
    def all_exact(self) -> bool:
        return self.bit_exact == self.images

    def first_mismatch(self) -> str:
        """A one-line description of the first differing output value ('' if everything matches)."""
        diff = np.argwhere(self.outputs != self.reference)
        if not len(diff):
            return ""
        n, c, y, x = (int(v) for v in diff[0])
        return (f"image {n}, channel {c}, row {y}, column {x}: hardware {int(self.outputs[n, c, y, x])}, "
                f"reference {int(self.reference[n, c, y, x])} ({len(diff)} values differ in "
                f"{len(self.mismatched)} of {self.images} images)")

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-able values (no tensors)."""
        return {
            "images": self.images, "bit_exact": self.bit_exact, "mismatched": list(self.mismatched),
            "cycles_per_frame": self.cycles_per_frame, "analytic_cycles_per_frame": self.analytic_cycles_per_frame,
            "latency": self.latency, "cycles_total": self.cycles_total,
            "cycles_per_second": self.cycles_per_second, "sim_seconds": self.sim_seconds,
            "compile_seconds": self.compile_seconds, "bottleneck": self.bottleneck, "backend": self.backend,
            "stall": self.stall, "frame_end_cycles": list(self.frame_end_cycles),
            "sim_cpu_seconds": self.sim_cpu_seconds, "evals_per_cycle": self.evals_per_cycle,
            "build": dict(self.build),
        }


# ---- inputs -------------------------------------------------------------------------------------

def check_images(graph: Graph, images: Any) -> np.ndarray:
    """``images`` as a uint8 (N, C, H, W) array matching ``graph.input_shape``, or a ValueError saying why not."""
    x = np.asarray(images)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"graph {graph.name!r}: images must be 8-bit pixels (uint8), got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1:] != graph.input_shape:
        c, h, w = graph.input_shape
        raise ValueError(f"graph {graph.name!r}: images must have shape (N, {c}, {h}, {w}), got {x.shape}")
    if x.shape[0] < 1:
        raise ValueError(f"graph {graph.name!r}: no images to simulate")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise ValueError(f"graph {graph.name!r}: pixel values must be 0..255, got {x.min()}..{x.max()}")
    return x.astype(np.uint8)


def image_beats(images: np.ndarray) -> list[list[int]]:
    """The accelerator's input beats for (N, C, H, W) images: one pixel (all C channels) per beat, raster order."""
    n, c, h, w = images.shape
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(-1, c).astype(np.int64).tolist()


def expected_cycles(acc: Accelerator, images: int, stall: float) -> int:
    """About how many cycles a run of ``images`` frames takes: a frame to fill, one interval per frame,
    stretched by the stalls (the progress bar's total)."""
    return max(1, int((images + 1) * acc.plan.cycles_per_frame() / (1.0 - stall)))


def default_max_cycles(acc: Accelerator, images: int, stall: float) -> int:
    """A generous cycle budget: pipeline fill (the sum of all stage intervals) plus one interval per frame,
    slowed down by the stalls on both ends, times two."""
    plan = acc.plan
    fill = sum(s.cycles for s in plan.stages)
    slow = 1.0 / max(1e-3, 1.0 - stall) ** 2
    return int(2 * slow * (fill + (images + 1) * plan.cycles_per_frame())) + 100_000


# ---- progress -----------------------------------------------------------------------------------

class _Progress:
    """The bars of one run on stderr: the compile (seconds against an estimate), then the simulated cycles
    against the expected total (:mod:`sim.progress`)."""

    def __init__(self, enabled: bool, label: str, expected_cycles: int, frames: int, per_frame: int):
        self.enabled, self.label = enabled, label
        self.expected, self.frames, self.per_frame = expected_cycles, frames, per_frame

    def compile(self) -> LiveBar:
        return compile_bar(self.label, quiet=not self.enabled)

    def sized(self, live: LiveBar) -> Callable[[int], None]:
        """The ``on_size`` hook of a compile: sets the bar's total to the estimate."""
        return lambda size: live.set_total(live.elapsed + compile_estimate(self.label, size))

    def cycles(self, poll: Callable[[], tuple[int, int]]) -> LiveBar:
        """A bar of simulated cycles; ``poll()`` returns (cycles so far, output beats so far)."""
        state = {"out": 0}

        def count() -> int:
            cycle, state["out"] = poll()
            return cycle

        return LiveBar(f"[sim {self.label}] cycles", total=self.expected, unit="cycle", unit_scale=True,
                       quiet=not self.enabled, poll=count,
                       postfix=lambda: f"{state['out'] // self.per_frame} of {self.frames} frames out")

    def say(self, message: str) -> None:
        line(f"[sim {self.label}] {message}", quiet=not self.enabled)


# ---- backends -----------------------------------------------------------------------------------

def _run_pysim(acc: Accelerator, beats: list[list[int]], n_out: int, per_frame: int, *, stall: float,
               seed: int, max_cycles: int, vcd: str | Path | None, progress: _Progress) -> tuple[list, list[int], float, float]:
    """Amaranth's simulator with the stream drivers of :mod:`sim.streams` (the same per-stream seeds as
    :func:`~sim.streams.run_streams`), plus progress reports.  Returns (beats, beat cycles, compile s, sim s)."""
    started = time.perf_counter()
    sim = Simulator(acc)
    sim.add_clock(1e-8)
    compile_seconds = time.perf_counter() - started
    state = {"cycle": 0, "done": False}
    received: list[Any] = []
    beat_cycles: list[int] = []

    async def sender(ctx):
        await send(ctx, acc.i, beats, stall=stall, rng=StallRng(input_seed(seed, 0)))

    async def receiver(ctx):
        received.extend(await receive(ctx, acc.o, n_out, stall=stall, rng=StallRng(output_seed(seed, 0)),
                                      on_beat=lambda _beat: beat_cycles.append(state["cycle"])))
        state["done"] = True

    async def watchdog(ctx):
        while not state["done"]:
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] > max_cycles:
                raise SimulationTimeout(
                    f"{acc.plan.graph.name!r}: no completion after {max_cycles:,} cycles (pysim; received "
                    f"{len(beat_cycles):,} of {n_out:,} output beats): a deadlock, a lost beat, or too small "
                    f"a max_cycles")

    sim.add_testbench(sender, background=True)
    sim.add_testbench(receiver)
    sim.add_testbench(watchdog)
    started = time.perf_counter()
    with progress.cycles(lambda: (state["cycle"], len(beat_cycles))):
        if vcd:
            with sim.write_vcd(str(vcd)):
                sim.run()
        else:
            sim.run()
    return received, beat_cycles, compile_seconds, time.perf_counter() - started


def _run_cxxrtl(acc: Accelerator, beats: list[list[int]], n_out: int, frames: int, per_frame: int, *,
                stall: float, seed: int, max_cycles: int, opt: str, flatten: bool | None,
                progress: _Progress) -> tuple[list, list[int], float, float, dict]:
    """CXXRTL + g++ (library cached by RTLIL hash), run in a child process; returns (beats, beat cycles,
    compile s, sim s, stats of the run)."""
    started = time.perf_counter()
    with progress.compile() as live:
        lib = cxxrtl_backend.compile_design(acc, opt=opt, verbose=progress.enabled, flatten=flatten,
                                            on_size=progress.sized(live))
    compile_seconds = time.perf_counter() - started
    shared = cxxrtl_backend.shared_progress()
    stats: dict = {}

    started = time.perf_counter()
    with progress.cycles(lambda: cxxrtl_backend.read_progress(shared)[:2]):
        run = cxxrtl_backend.run_streams_compiled(acc, {"i": beats}, {"o": n_out}, stall=stall, seed=seed,
                                           max_cycles=max_cycles, library=lib, stats=stats, progress=shared,
                                           isolated=True)
    sim_seconds = time.perf_counter() - started
    shared.close()
    stats["build"] = cxxrtl_backend.build_info(lib)
    return run.outputs["o"], run.beat_cycles["o"], compile_seconds, sim_seconds, stats


def _run_verilator(acc: Accelerator, beats: list[list[int]], n_out: int, frames: int, per_frame: int, *,
                   stall: float, seed: int, max_cycles: int, progress: _Progress,
                   threads: int | None, verilog_text: str | None,
                   program: Path | None = None) -> tuple[list, list[int], float, float, dict]:
    """Verilator (program cached by a hash of the Verilog, or ``program``); returns (beats, beat cycles,
    compile s, sim s, stats of the run)."""
    options: dict[str, Any] = {} if threads is None else {"threads": threads}
    if verilog_text is not None:
        options["verilog_text"] = verilog_text
    started = time.perf_counter()
    if program is None:
        with progress.compile() as live:
            program = verilator_backend.compile_verilator(acc, verbose=progress.enabled,
                                                          on_size=progress.sized(live), **options)
    compile_seconds = time.perf_counter() - started
    shared = verilator_backend.progress_file()
    stats: dict = {}

    started = time.perf_counter()
    try:
        with progress.cycles(lambda: shared.read()[:2]):
            run = verilator_backend.run_streams_verilator(acc, {"i": beats}, {"o": n_out}, stall=stall, seed=seed,
                                                   max_cycles=max_cycles, program=program, stats=stats,
                                                   progress=shared)
    finally:
        shared.close()
    sim_seconds = time.perf_counter() - started
    stats["build"] = verilator_backend.verilator_build_info(program)
    return run.outputs["o"], run.beat_cycles["o"], compile_seconds, sim_seconds, stats


# ---- the harness --------------------------------------------------------------------------------

def simulate(graph: Graph, images: Any, *, folding: Mapping[str, LayerFold] | None = None,
             backend: str = "pysim", stall: float = 0.0, seed: int = 0, vcd: str | Path | None = None,
             progress: bool = True, accelerator: Accelerator | None = None, max_cycles: int | None = None,
             opt: str = "-O1", flatten: bool | None = None, threads: int | None = None,
             verilog_text: str | None = None, program: Path | None = None) -> NetworkRun:
    """Run ``images`` (uint8 (N, C, H, W)) through the accelerator of ``graph`` under ``folding``.

    ``backend``: ``"pysim"`` (Amaranth's simulator; ``vcd`` writes a waveform),
    ``"cxxrtl"`` (compiled; ``opt`` is g++'s optimisation flag, ``flatten``
    see :func:`sim.cxxrtl.compile_design`), ``"verilator"`` (compiled; ``threads``
    see :func:`sim.verilator.compile_verilator`) or ``"auto"``
    (:func:`sim.backends.default_backend`; the run's ``backend`` names the one used).  ``stall``:
    probability per cycle that the input withholds valid / the output drops
    ready.  ``accelerator``: an already elaborated-for design of this graph
    (then ``folding`` must be None).  ``verilog_text`` (Verilator): the design's Verilog with the
    accelerator's ports, from the build's own elaboration (:func:`sim.board_text.board_simulation_text`),
    instead of elaborating ``accelerator`` again; ``program`` (Verilator): a program already built from
    such a text whose first ports are the accelerator's (:func:`sim.board_text.board_bank_text`).  Long
    runs report progress on stderr.
    """
    backend = resolve_backend(backend)
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability in [0, 1), got {stall!r}")
    if vcd and backend != "pysim":
        raise ValueError(f"a VCD waveform needs the pysim backend, not {backend!r}")
    if (verilog_text is not None or program is not None) and (backend != "verilator" or accelerator is None):
        raise ValueError(f"a design's Verilog text needs the verilator backend (not {backend!r}) and the "
                         "accelerator it was emitted from")
    pixels = check_images(graph, images)
    if accelerator is not None:
        if folding is not None:
            raise ValueError("pass either a folding or an accelerator, not both")
        if accelerator.plan.graph is not graph:
            raise ValueError(f"the accelerator was built for graph {accelerator.plan.graph.name!r}, "
                             f"not for this graph {graph.name!r}")
        acc = accelerator
    else:
        acc = Accelerator(graph, folding or {})
    n = len(pixels)
    c, h, w = acc.plan.out_shape
    lanes = acc.plan.out_lanes
    per_frame = c * h * w // lanes
    n_out = per_frame * n
    budget = max_cycles or default_max_cycles(acc, n, stall)
    beats = image_beats(pixels)
    reporter = _Progress(progress, backend, expected_cycles(acc, n, stall), n, per_frame)
    stats: dict = {}
    if backend == "pysim":
        cpu = time.process_time()
        out_beats, beat_cycles, compile_s, sim_s = _run_pysim(
            acc, beats, n_out, per_frame, stall=stall, seed=seed, max_cycles=budget, vcd=vcd, progress=reporter)
        stats["cpu_seconds"] = time.process_time() - cpu   # includes building the simulator (small)
    elif backend == "verilator":
        out_beats, beat_cycles, compile_s, sim_s, stats = _run_verilator(
            acc, beats, n_out, n, per_frame, stall=stall, seed=seed, max_cycles=budget, progress=reporter,
            threads=threads, verilog_text=verilog_text, program=program)
    else:
        out_beats, beat_cycles, compile_s, sim_s, stats = _run_cxxrtl(
            acc, beats, n_out, n, per_frame, stall=stall, seed=seed, max_cycles=budget, opt=opt, flatten=flatten,
            progress=reporter)
    outputs = beats_to_tensor(out_beats, (n, c, h, w), lanes)
    reference = graph.reference(pixels)
    if reference.shape != outputs.shape:  # the plan and the graph disagree: a pipeline bug, say so plainly
        raise ValueError(f"graph {graph.name!r}: the accelerator produced {outputs.shape}, the reference "
                         f"{reference.shape}")
    same = np.all((outputs == reference).reshape(n, -1), axis=1)
    ends = [beat_cycles[(k + 1) * per_frame - 1] for k in range(n)]
    # Frame 1 -> 2 still fills the pipeline behind the first frame; the mean gap after it is the steady state.
    if n >= 3:
        interval = round((ends[-1] - ends[1]) / (n - 2))
    elif n == 2:
        interval = ends[1] - ends[0]
    else:
        interval = ends[0]
    cycles_total = ends[-1] + 1
    run = NetworkRun(
        outputs=outputs, reference=reference, bit_exact=int(same.sum()),
        mismatched=[int(k) for k in np.flatnonzero(~same)], cycles_per_frame=int(interval),
        latency=int(ends[0]), cycles_total=int(cycles_total),
        cycles_per_second=cycles_total / sim_s if sim_s > 0 else float("inf"), sim_seconds=sim_s,
        compile_seconds=compile_s, analytic_cycles_per_frame=int(acc.plan.cycles_per_frame()),
        bottleneck=acc.plan.bottleneck().name, backend=backend, stall=float(stall), frame_end_cycles=ends,
        sim_cpu_seconds=float(stats.get("cpu_seconds", 0.0)),
        evals_per_cycle=stats["evals"] / cycles_total if stats.get("evals") else 0.0,
        build=stats.get("build", {}))
    reporter.say(f"done: {run.bit_exact}/{n} bit-exact, {cycles_total:,} cycles, "
                 f"{run.cycles_per_second:,.0f} cycles/s")
    return run
