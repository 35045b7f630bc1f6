"""Layer-by-layer verification (FINN's node-by-node rtlsim): every pipeline stage simulated on its own.

Each stage of an accelerator's :class:`~mixq_hw.pipeline.PipelinePlan` is fed
the input beats derived from ``Graph.reference(images, keep=True)`` (see
:mod:`sim.stage_streams`), under random valid/ready stalls on all its ports,
and its output beats are compared with the expected ones.  A second, stall-free
run measures the stage's cycles per frame (against its analytic
``cycles_per_frame``) and its latency (first output beat).  On Verilator every
stage goes into one compiled design (:mod:`sim.stage_bank`: the stages side by
side, each with its own ports and stall generators, so each is still simulated
on its own), built once for both runs, which run in parallel.  Otherwise (or if
that build fails or a stage hangs in it) the stages run in parallel worker
processes, biggest first; a compiled backend elaborates each stage once and
builds it once for both runs; stages with the same design share one build (the
compile cache's lock makes the second builder wait for the first).  A mismatch names the stage, its
graph node, the image, the position (channel, row, column, or beat and lane)
and both values.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from mixq_hw.graph import Graph
from mixq_hw.pipeline import PipelinePlan
from mixq_hw.progress import line

from .backends import resolve_backend, run_streams
from .formats import locate
from .progress import LiveBar, compile_bar, compile_estimate
from .stage_bank import StageBank, run_bank
from .stage_streams import IMAGE, StageStreams, stage_streams, stream_tensor
from .streams import StreamRun

__all__ = ["StageCheck", "LayerwiseRun", "StageHarness", "verify_layers"]


@dataclass
class StageCheck:
    """One stage's verdict: bit-exactness of its output beats and its measured timing."""

    stage: str
    node: str
    kind: str
    bit_exact: bool
    #: output beats compared (all ports)
    beats: int
    #: measured (stall-free run): mean gap between frames' last output beats (frames 2..N); one frame: its end
    cycles_per_frame: int
    analytic_cycles_per_frame: int
    #: cycle of the first output beat (stall-free run)
    latency: int
    backend: str
    #: wall seconds of this stage's simulations (including its compile); with one build of all stages, the
    #: seconds of that build and its runs (the same for every stage)
    seconds: float
    #: the first differing value, as a sentence ('' when exact)
    mismatch: str = ""
    #: differing values (all ports, stalled run), and the images they are in
    differing: int = 0
    images: list[int] = field(default_factory=list)
    #: a short hash of the compiled design (its compile-cache key): stages with the same one are the same
    #: hardware ('' for pysim)
    design: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> str:
        """This stage as a row of :meth:`LayerwiseRun.markdown`'s table."""
        ratio = (f"{self.cycles_per_frame / self.analytic_cycles_per_frame:.3f}"
                 if self.analytic_cycles_per_frame else "-")
        verdict = "yes" if self.bit_exact else f"**NO**: {self.mismatch}"
        return (f"| {self.stage} | {self.node} | {self.kind} | {verdict} | {self.cycles_per_frame:,} | "
                f"{self.analytic_cycles_per_frame:,} | {ratio} | {self.latency:,} | {self.backend} | "
                f"{self.seconds:.1f} |")


@dataclass
class LayerwiseRun:
    """Every stage's :class:`StageCheck`, in pipeline order, and how the run went."""

    stages: list[StageCheck]
    images: int
    backend: str
    stall: float
    workers: int
    #: distinct elaborated designs among the stages
    designs: int
    seconds: float

    @property
    def all_exact(self) -> bool:
        return all(s.bit_exact for s in self.stages)

    @property
    def failed(self) -> list[StageCheck]:
        return [s for s in self.stages if not s.bit_exact]

    def exact_images(self) -> int:
        """Images whose every stage output is bit-exact."""
        bad = {i for s in self.stages for i in s.images}
        if any(not s.bit_exact and not s.images for s in self.stages):   # a stage that never finished
            return 0
        return self.images - len(bad)

    def message(self) -> str:
        """'' when every stage is exact, else a sentence naming the first failing stage and value."""
        failed = self.failed
        if not failed:
            return ""
        first = failed[0]
        more = f" ({len(failed) - 1} more stages differ)" if len(failed) > 1 else ""
        return f"layer {first.node!r}, stage {first.stage!r} ({first.kind}): {first.mismatch}{more}"

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "backend": self.backend, "stall": self.stall, "workers": self.workers,
                "designs": self.designs, "seconds": self.seconds, "all_exact": self.all_exact,
                "exact_images": self.exact_images(), "stages": [s.to_dict() for s in self.stages]}

    def markdown(self) -> str:
        """The per-stage table."""
        lines = ["| stage | layer | kind | bit-exact | cycles/frame | analytic | ratio | latency | backend | s |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        return "\n".join(lines + [s.row() for s in self.stages]) + "\n"


class StageHarness(wiring.Component):
    """A stage with the same ports, plus one register so that the design has a clock even when the stage
    is purely combinational (a compiled backend drives the streams from the clock)."""

    def __init__(self, stage_component: wiring.Component):
        self.stage = stage_component
        super().__init__(stage_component.signature)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.stage = self.stage
        for name, member in self.signature.members.items():
            if member.flow == wiring.In:
                wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(self.stage, name))
            else:
                wiring.connect(m, getattr(self.stage, name), wiring.flipped(getattr(self, name)))
        tick = Signal()
        m.d.sync += tick.eq(~tick)
        return m


# ---- one stage ------------------------------------------------------------------------------------

#: What the workers read (set before the pool forks, so nothing big is pickled).
_JOB: dict[str, Any] = {}


def _compare(streams: StageStreams, expected: dict, got: Mapping[str, Any],
             shapes: dict, frames: int) -> tuple[str, int, set[int]]:
    """(first mismatch sentence, differing values, images with a difference) over all output ports."""
    first, count = "", 0
    images: set[int] = set()
    for port, (values, index) in expected.items():
        actual = np.array(got[port], dtype=np.int64).reshape(values.shape)
        diff = (actual != values) & (index != -1)
        if not diff.any():
            continue
        count += int(diff.sum())
        spec = streams.outputs[port]
        per_frame = values.shape[0] // frames
        beats = np.flatnonzero(diff.reshape(values.shape[0], -1).any(axis=1))
        images.update(int(b) // per_frame for b in beats)
        if not first:
            pos = tuple(int(v) for v in np.argwhere(diff)[0])
            beat, lane = pos[0], pos[1:]
            where = f"port {port!r} beat {beat} of {values.shape[0]} lane {list(lane)}"
            at = int(index[pos])
            if at >= 0:
                n, c, y, x = locate(at, shapes[port])
                tensor = spec.tensor if spec.tensor != IMAGE else "the input image"
                where = f"image {n}, channel {c}, row {y}, column {x} of {tensor} ({where})"
            else:
                where = f"image {beat // per_frame}, a padding value ({where})"
            first = f"{where}: expected {int(values[pos])}, got {int(actual[pos])}"
    return first, count, images


def _frame_timing(beat_cycles: list[int], per_frame: int, frames: int) -> tuple[int, int]:
    """(cycles per frame, latency) from the cycles of one port's output beats."""
    if not beat_cycles:
        return 0, 0
    ends = [beat_cycles[(k + 1) * per_frame - 1] for k in range(frames)]
    if frames >= 3:
        interval = round((ends[-1] - ends[1]) / (frames - 2))
    elif frames == 2:
        interval = ends[1] - ends[0]
    else:
        interval = ends[0]
    return int(interval), int(beat_cycles[0])


#: C++ flags of the Verilated stage bank (every stage in one design: its runs evaluate all stages every cycle,
#: so the model is optimised like a whole network's: None, the compiler's default of sim.verilator.COMPILERS).
BANK_CFLAGS: str | None = None

#: C++ flags of a stage's Verilated model.  A stage runs a few hundred thousand cycles, so compile time
#: decides: on VGG-tiny's biggest conv stage (measured with g++) -O0 builds in 29 CPU-s instead of 48 and
#: its two runs take 10 CPU-s instead of 1.4.
STAGE_CFLAGS = "-O0"


def _compiled(dut: wiring.Component, backend: str) -> tuple[dict[str, Any], str]:
    """Build ``dut`` once for ``backend``: (the options that run it from that build, its design hash)."""
    if backend == "verilator":
        from .verilator import compile_verilator

        program = compile_verilator(dut, cflags=STAGE_CFLAGS)
        return {"program": program}, program.stem[:12]
    if backend == "cxxrtl":
        from .cxxrtl import compile_design

        library = compile_design(dut)
        return {"library": library}, library.stem[:12]
    return {}, ""


def _stage_job(index: int) -> tuple[Any, StageStreams, dict, dict, dict, dict, int, dict]:
    """Stage ``index`` of the job's plan: (stage, streams, input beats by port (int64 arrays), expected (values, index) by
    port, tensor shapes by port, output beat counts by port, cycle budget, the result's fixed fields)."""
    job = _JOB
    stage = job["plan"].stages[index]
    streams: StageStreams = job["streams"][stage.name]
    frames = job["frames"]
    inputs = {port: spec.fmt.to_array(stream_tensor(spec, job["values"], job["images"]))
              for port, spec in streams.inputs.items()}
    expected, shapes = {}, {}
    for port, spec in streams.outputs.items():
        tensor = stream_tensor(spec, job["values"], job["images"])
        shapes[port] = tensor.shape[1:]
        expected[port] = (spec.fmt.to_array(tensor), spec.fmt.batch_index(tensor.shape[1:], frames))
    counts = {port: int(values.shape[0]) for port, (values, _) in expected.items()}
    beats = max([*counts.values(), *(len(b) for b in inputs.values())])
    budget = int(4 * (frames + 2) * max(stage.cycles, beats // frames) / (1.0 - job["stall"]) ** 2) + 20_000
    result = {"stage": stage.name, "node": stage.node, "kind": stage.kind, "beats": sum(counts.values()),
              "analytic_cycles_per_frame": int(stage.cycles), "backend": job["backend"], "design": "",
              "cycles_per_frame": 0, "latency": 0}
    return stage, streams, inputs, expected, shapes, counts, budget, result


def _judge(result: dict, streams: StageStreams, expected: dict, shapes: dict, counts: dict,
           runs: list[StreamRun]) -> None:
    """Fill ``result``'s verdict from the stage's runs (the last one stall-free when timing is measured)."""
    frames = _JOB["frames"]
    first, differing, images = "", 0, set[int]()
    for run in runs:
        first2, differing2, images2 = _compare(streams, expected, run.outputs, shapes, frames)
        first, differing, images = first or first2, max(differing, differing2), images | images2
    port = next(iter(counts))
    result["cycles_per_frame"], result["latency"] = _frame_timing(runs[-1].beat_cycles[port],
                                                                  counts[port] // frames, frames)
    result.update(bit_exact=not first, mismatch=first, differing=differing, images=sorted(images))


def _check_stage(index: int) -> dict:
    """Simulate stage ``index`` of the job's plan alone; returns a :class:`StageCheck` as a dict."""
    job = _JOB
    started = time.perf_counter()
    stage, streams, inputs, expected, shapes, counts, budget, result = _stage_job(index)
    stall, backend = job["stall"], job["backend"]
    if backend == "pysim":   # the compiled backends take the beat arrays as they are
        inputs = {port: beats.tolist() for port, beats in inputs.items()}
    try:
        dut = StageHarness(stage.build())
        options, result["design"] = _compiled(dut, backend)
        runs = [run_streams(dut, inputs, counts, backend=backend, stall=stall,
                            seed=job["seed"] + index, max_cycles=budget, **options)]
        if stall > 0 and job["timing"]:
            runs.append(run_streams(dut, inputs, counts, backend=backend, stall=0.0, seed=0,
                                    max_cycles=budget, **options))
        _judge(result, streams, expected, shapes, counts, runs)
    except Exception as exc:   # noqa: BLE001 - a stage that hangs or crashes is a failed stage, not a crash
        result.update(bit_exact=False, mismatch=f"the simulation failed: {type(exc).__name__}: {exc}",
                      differing=0, images=[])
    result["seconds"] = time.perf_counter() - started
    return result


def _check_bank(count: int, progress: bool, prebuilt: tuple[Any, Any] | None = None) -> list[dict]:
    """Every stage of the job's plan in one Verilator build (:class:`~sim.stage_bank.StageBank`), each
    driven alone with its own beats and stall generators; the stalled and the stall-free run go in
    parallel.  ``prebuilt``: (ports, program) of a build that has every stage's ports as ``s<k>_<port>``
    already (:func:`sim.board_text.board_bank_text`), used instead.  Raises if the bank cannot be built or
    any stage hangs or crashes (the caller then checks the stages one by one, which names the failing one)."""
    from .verilator import compile_verilator
    from .verilator_ports import MAX_PORTS

    job = _JOB
    started = time.perf_counter()
    jobs = [_stage_job(i) for i in range(count)]
    if sum(len(j[2]) for j in jobs) > MAX_PORTS or sum(len(j[5]) for j in jobs) > MAX_PORTS:
        raise ValueError(f"more than {MAX_PORTS} streams for one bank")
    if prebuilt is not None:
        bank, program = prebuilt
    else:
        bank = StageBank([StageHarness(j[0].build()) for j in jobs])
        live = compile_bar("verilator", quiet=not progress)
        live.desc = f"[layers] verilator: one build of all {count} stages"
        with live:
            program = compile_verilator(bank, cflags=BANK_CFLAGS, on_size=lambda size: live.set_total(
                live.elapsed + compile_estimate("verilator", size)))
    inputs, counts = [j[2] for j in jobs], [j[5] for j in jobs]
    budget = max(j[6] for j in jobs)
    runs_of = [lambda: run_bank(bank, program, inputs, counts, stall=job["stall"], seed=job["seed"],
                                max_cycles=budget)]
    if job["stall"] > 0 and job["timing"]:
        runs_of.append(lambda: run_bank(bank, program, inputs, counts, stall=0.0, seed=0, max_cycles=budget))
    with concurrent.futures.ThreadPoolExecutor(len(runs_of)) as pool:
        banks = list(pool.map(lambda f: f(), runs_of))
    seconds = time.perf_counter() - started
    results = []
    for k, (_stage, streams, _inputs, expected, shapes, stage_counts, _budget, result) in enumerate(jobs):
        result["design"] = program.stem[:12]
        _judge(result, streams, expected, shapes, stage_counts, [runs[k] for runs in banks])
        result["seconds"] = seconds
        results.append(result)
    return results


# ---- the harness ----------------------------------------------------------------------------------

def verify_layers(graph: Graph, images: Any, plan: PipelinePlan, *, backend: str = "cxxrtl",
                  stall: float = 0.3, seed: int = 0, workers: int = 2, timing: bool = True,
                  progress: bool = False, one_build: bool = True, prebuilt: tuple[Any, Any] | None = None
                  ) -> LayerwiseRun:
    """Simulate every stage of ``plan`` alone on ``images`` (uint8 (N, C, H, W)) against ``graph``'s reference.

    ``graph`` is the golden model: normally ``plan.graph``, but any graph with the same node names and
    shapes (a test builds the hardware from a copy with one weight changed).  ``stall``: probability per
    cycle that an input withholds valid / an output drops ready, on every port; ``timing``: also run
    stall-free to measure cycles per frame and latency (with ``stall`` 0 the one run measures them).
    ``workers``: parallel processes (1: in this process).  ``one_build`` (Verilator): every stage in one
    compiled design (:mod:`sim.stage_bank`), each still driven alone; if that build or run fails, or with
    ``one_build=False`` or another backend, every distinct stage design is built and run on its own.
    ``prebuilt`` (Verilator): (ports, program) of a build holding every stage of ``plan`` in order, each
    with its own ports ``s<k>_<port>`` (:func:`sim.board_text.board_bank_text`: the stages of the build's
    own elaboration), run instead of building a bank.
    """
    from .network import check_images

    backend = resolve_backend(backend)
    if not 0.0 <= stall < 1.0:
        raise ValueError(f"stall must be a probability in [0, 1), got {stall!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers!r}")
    if prebuilt is not None and (backend != "verilator" or not one_build):
        raise ValueError(f"a prebuilt program of every stage runs on verilator with one_build, not {backend!r}")
    pixels = check_images(graph, images)
    missing = sorted({s.node for s in plan.stages} - {n.name for n in graph})
    if missing:
        raise ValueError(f"graph {graph.name!r} has no node {missing[0]!r}, which the hardware was built for")
    started = time.perf_counter()
    values = graph.reference(pixels, keep=True)
    for name, value in values.items():   # same names, same shapes: else the formats would not fit
        ours = plan.graph.value_info(name).shape if name in plan.graph else None
        if ours is not None and tuple(ours) != tuple(value.shape[1:]):
            raise ValueError(f"node {name!r}: the reference gives shape {value.shape[1:]}, the hardware's "
                             f"graph {tuple(ours)}")
    _JOB.clear()
    _JOB.update(plan=plan, streams=stage_streams(plan), values=values, images=pixels, frames=len(pixels),
                stall=float(stall), seed=int(seed), backend=backend, timing=timing)
    count = len(plan.stages)
    results: list[dict] = []
    if backend == "verilator" and one_build:
        try:
            results = _check_bank(count, progress, prebuilt)
        except Exception as exc:   # noqa: BLE001 - a hang or crash in the bank: the stages alone name it
            results = []
            if progress:
                line(f"[layers] the build of all stages failed ({type(exc).__name__}: {str(exc)[:300]}); "
                     "simulating each stage alone")
    if results:
        _JOB.clear()
        return _layerwise_run(plan, results, len(pixels), backend, stall, workers, started)
    pool = None
    if workers > 1:
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        # Biggest first, so that the last worker to finish is not the one that started the biggest stage.
        order = sorted(range(count), key=lambda i: -plan.stages[i].cycles)
        last = {"text": ""}
        with LiveBar(f"[layers] {backend}", total=count, unit="stage", quiet=not progress,
                     postfix=lambda: last["text"]) as live:
            if pool is not None:
                futures = [pool.submit(_check_stage, i) for i in order]
                for future in concurrent.futures.as_completed(futures):
                    r = future.result()
                    results.append(r)
                    live.write(f"[layers] {r['stage']}: {'exact' if r['bit_exact'] else 'MISMATCH'}, "
                               f"{r['cycles_per_frame']:,} cycles/frame ({r['seconds']:.1f} s)")
                    last["text"] = f"last {r['stage']}"
                    live.set(len(results))
            else:
                for i in order:
                    results.append(_check_stage(i))
                    live.set(len(results))
    finally:
        if pool is not None:
            pool.shutdown()
        _JOB.clear()
    return _layerwise_run(plan, results, len(pixels), backend, stall, workers, started)


def _layerwise_run(plan: PipelinePlan, results: list[dict], images: int, backend: str, stall: float,
                   workers: int, started: float) -> LayerwiseRun:
    """The stages' result dicts as a :class:`LayerwiseRun`, in pipeline order."""
    position = {s.name: i for i, s in enumerate(plan.stages)}
    checks = sorted((StageCheck(**r) for r in results), key=lambda c: position[c.stage])
    return LayerwiseRun(stages=checks, images=images, backend=backend, stall=float(stall), workers=workers,
                        designs=len({c.design or c.stage for c in checks}), seconds=time.perf_counter() - started)
