"""An accelerator verified against its integer graph: layer by layer on N images, then whole on fewer.

:func:`verify_accelerator` is what ``python -m mixq_hw.build --verify N`` calls:
every stage alone on all N images (:func:`sim.layerwise.verify_layers`: bit-exact,
cycles per frame and latency per stage, the first failing layer named), then the
whole stitched accelerator on ``min(N, 2)`` frames (:func:`sim.network.simulate`:
end-to-end bit-exactness, measured interval and latency).  The result is a plain
dict for ``report.json``.  On Verilator a build passes ``whole_verilog`` and ``board_bank``
(:func:`sim.board_text.emit_for_verification`): its own elaboration, and a second
instance of every stage module in a design of its own (for a small design, one design holding both), so
both checks run what the build emitted, with no second elaboration.  The two programs compile side by side;
then the whole design runs first, alone on the machine (its simulation speed is that of the run alone), then
the stages in parallel.
"""

from __future__ import annotations

import concurrent.futures
import sys
from typing import Any, Callable

import numpy as np

from mixq_hw.graph import Graph
from mixq_hw.pipeline import Accelerator, PipelinePlan

from . import forked
from .backends import resolve_backend
from .layerwise import LayerwiseRun, verify_layers

__all__ = ["VERIFY_MODES", "verify_accelerator", "whole_network", "start_layer_checks", "stop_layer_checks"]

VERIFY_MODES = ("layers", "whole", "both")


def whole_network(graph: Graph, images: np.ndarray, accelerator: Accelerator, *, backend: str = "auto",
                  stall: float = 0.0, progress: bool = False, verilog_text: str | None = None,
                  program: Any = None) -> dict[str, Any]:
    """The whole accelerator on ``images``, compared with ``graph``'s reference (which may be another graph
    than the one the hardware was built from, e.g. a test's unbroken original).  ``verilog_text``,
    ``program``: see :func:`sim.network.simulate`."""
    from .network import simulate

    hw_graph = accelerator.plan.graph
    run = simulate(hw_graph, images, accelerator=accelerator, backend=backend, stall=stall, progress=progress,
                   verilog_text=verilog_text, program=program)
    if hw_graph is not graph:
        run.reference = graph.reference(np.asarray(images))
        same = np.all((run.outputs == run.reference).reshape(run.images, -1), axis=1)
        run.bit_exact, run.mismatched = int(same.sum()), [int(k) for k in np.flatnonzero(~same)]
    result = run.to_dict()
    result["mismatch"] = run.first_mismatch()
    return result


def start_layers(args: tuple, options: dict) -> forked.Forked:
    """Start :func:`verify_layers` in a forked process; :func:`layers_result` waits for it."""
    return forked.start(verify_layers, *args, what="layer-by-layer verification", name="mixq-layers", **options)


def layers_result(beside: forked.Forked) -> LayerwiseRun:
    """What the process of :func:`start_layers` sent (its exception re-raised); an interrupted wait ends it."""
    return forked.result(beside)


def start_layer_checks(graph: Graph, images: np.ndarray, plan: PipelinePlan, *, mode: str = "both",
                       backend: str = "auto", layer_stall: float = 0.3, workers: int = 2,
                       progress: bool = True) -> Any:
    """Start the layer-by-layer checks that :func:`verify_accelerator` with the same arguments runs in a
    process of its own (``mode="both"`` on Verilator), before the accelerator is elaborated: they need only
    its plan.  Returns the handle for its ``layers`` argument, or None when it would check them in-process."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"unknown verification mode {mode!r}; choose one of {', '.join(VERIFY_MODES)}")
    if mode != "both" or resolve_backend(backend) != "verilator":
        return None
    return start_layers((graph, np.asarray(images), plan),
                        {"backend": backend, "stall": layer_stall, "workers": workers, "progress": progress})


def stop_layer_checks(handle: Any) -> None:
    """End the process of :func:`start_layer_checks` (a build that fails before verifying)."""
    if handle is not None:
        forked.stop(handle)


def _verify_one_build(result: dict[str, Any], graph: Graph, images: np.ndarray, accelerator: Accelerator,
                      frames: int, whole_verilog: str | Callable[[], str], board_bank: tuple[Any, str],
                      layer_options: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`verify_accelerator` from the build's own elaboration: the whole design (``whole_verilog``: its
    text, or the function that makes it, run in the whole design's build thread) and its stages
    (``board_bank``) compiled side by side, each on half the CPUs, or one program when the bank
    holds the whole design too (its ports ``i`` and ``o``); then the whole design, with the machine to itself
    (its cycles per second are a wall-clock figure of that run alone), then the layer-by-layer runs in
    parallel; None if a build fails."""
    from .cxxrtl import CompileError
    from .progress import compile_bar, compile_estimate
    from .toolrun import compiler_jobs
    from .verilator import compile_verilator

    ports, text = board_bank
    progress = layer_options["progress"]
    together = {"i", "o"} <= set(ports.signature.members)
    live = compile_bar("verilator", quiet=not progress)
    live.desc = ("[verify] verilator: one build of the whole design and its stages" if together else
                 "[verify] verilator: the whole design and its stages, side by side")
    sizes: dict[str, int] = {}

    def sized(what: str):
        def on_size(size: int) -> None:
            with live.lock:
                sizes[what] = size
            # side by side, each on half the CPUs, the two take about as long as the bigger one alone on all
            live.set_total(live.elapsed + compile_estimate("verilator", max(sizes.values())))
        return on_size

    try:
        with live:
            if together:
                whole_program = bank_program = compile_verilator(ports, verilog_text=text, on_size=sized("both"))
            else:
                jobs = max(1, compiler_jobs() // 2)

                def build_whole():
                    return compile_verilator(accelerator, verilog_text=_text(whole_verilog), jobs=jobs,
                                             on_size=sized("whole"))
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    whole_build = pool.submit(build_whole)
                    bank_build = pool.submit(compile_verilator, ports, verilog_text=text, jobs=jobs,
                                             on_size=sized("stages"))
                    whole_program, bank_program = whole_build.result(), bank_build.result()
    except CompileError as err:   # the checks then build the whole design and the stages on their own
        if progress:
            print(f"[verify] a build from the build's elaboration failed ({str(err)[:300]}); building the whole "
                  "design and the stages from elaborations of their own", file=sys.stderr, flush=True)
        return None
    whole = whole_network(graph, images[:frames], accelerator, backend=layer_options["backend"], progress=False,
                          program=whole_program)
    if progress:
        print(f"[verify] whole network (alone): {whole['bit_exact']}/{whole['images']} bit-exact, "
              f"{whole['cycles_total']:,} cycles at {whole['cycles_per_second']:,.0f} cycles/s",
              file=sys.stderr, flush=True)
    layers = verify_layers(graph, images, accelerator.plan, prebuilt=(ports, bank_program), **layer_options)
    result["one_build"] = True
    result["programs"] = 1 if together else 2
    return _verdict(result, len(images), layers, whole, progress, whole_said=True)


def _text(verilog: str | Callable[[], str] | None) -> str | None:
    """A whole design's Verilog, made now when it came as the function that makes it
    (:func:`sim.board_text.emit_for_verification`'s second elaboration); None, said on stderr, when that
    fails: the whole design is then elaborated from the accelerator (a faster text is not worth a failed
    build)."""
    if not callable(verilog):
        return verilog
    try:
        return verilog()
    except Exception as err:   # noqa: BLE001 - any failure of the optional second elaboration
        print(f"[verify] the second elaboration failed ({type(err).__name__}: {str(err)[:300]}); the whole design "
              "is elaborated again", file=sys.stderr, flush=True)
        return None


def _verdict(result: dict[str, Any], n: int, layers: LayerwiseRun | None, whole: dict[str, Any] | None,
             progress: bool, whole_said: bool = False) -> dict[str, Any]:
    """Fill ``result`` from the layer-by-layer run and the whole-network run (either may be None);
    ``whole_said``: the whole network's line was printed already."""
    bad: set[int] = set()
    messages: list[str] = []
    if layers is not None:
        result["layers"] = {**layers.to_dict(), "table": layers.markdown()}
        result["cycles_per_frame"] = max(s.cycles_per_frame for s in layers.stages)
        for stage in layers.stages:
            bad.update(stage.images if stage.images or stage.bit_exact else range(n))
        if not layers.all_exact:
            messages.append(f"layer by layer: {layers.message()}")
        if progress:
            print(f"[verify] layer by layer: {len(layers.stages) - len(layers.failed)}/{len(layers.stages)} "
                  f"stages bit-exact on {n} images ({layers.designs} distinct designs, {layers.seconds:.1f} s)",
                  file=sys.stderr, flush=True)
    if whole is not None:
        if progress and not whole_said:
            print(f"[verify] whole network: {whole['bit_exact']}/{whole['images']} bit-exact, "
                  f"{whole['cycles_total']:,} cycles", file=sys.stderr, flush=True)
        result["whole"] = whole
        result["cycles_per_frame"] = whole["cycles_per_frame"]
        result["latency"] = whole["latency"]
        result["cycles_per_second"] = whole["cycles_per_second"]
        bad.update(whole["mismatched"])
        if whole["mismatch"]:
            messages.append(f"whole network: {whole['mismatch']}")
    result["bit_exact"] = n - len(bad)
    result["message"] = "; ".join(messages)
    return result


def verify_accelerator(graph: Graph, images: np.ndarray, accelerator: Accelerator, *, mode: str = "both",
                       backend: str = "auto", layer_stall: float = 0.3, whole_frames: int = 2,
                       workers: int = 2, progress: bool = True, layers: Any = None,
                       whole_verilog: str | Callable[[], str] | None = None,
                       board_bank: tuple[Any, str] | None = None) -> dict[str, Any]:
    """Verify ``accelerator`` on ``images`` (uint8 (N, C, H, W)) against ``graph``; returns the report's
    ``verify`` entry: ``images``, ``bit_exact`` (images that passed every check run on them),
    ``cycles_per_frame`` (the whole network's measured interval, or with ``mode="layers"`` the slowest
    stage's), ``message`` ('' or the first failure), and ``layers`` / ``whole`` with the details.

    ``layers``: the handle of :func:`start_layer_checks` called with the same arguments (it is consumed);
    ``whole_verilog`` (Verilator): the whole design's Verilog from the build's own elaboration
    (:func:`sim.board_text.board_simulation_text`), or the function that makes it
    (:func:`sim.board_text.emit_for_verification`); ``board_bank`` (Verilator, ``mode="both"``, with
    ``whole_verilog``): (ports, Verilog) of :func:`sim.board_text.board_bank_text`, every stage of the same
    elaboration in one text (for a small design the whole design too): both checks run from the build's own
    elaboration, from two programs compiled side by side or from one (``layers`` is then None)."""
    if mode not in VERIFY_MODES:
        raise ValueError(f"unknown verification mode {mode!r}; choose one of {', '.join(VERIFY_MODES)}")
    images = np.asarray(images)
    n = int(len(images))
    result: dict[str, Any] = {"mode": mode, "images": n, "backend": backend}
    frames = n if mode == "whole" else min(n, whole_frames)
    layer_args = (graph, images, accelerator.plan)
    layer_options: dict[str, Any] = {"backend": backend, "stall": layer_stall, "workers": workers, "progress": progress}
    if (board_bank is not None and whole_verilog is not None and mode == "both" and layers is None
            and resolve_backend(backend) == "verilator"):
        done = _verify_one_build(result, graph, images, accelerator, frames, whole_verilog, board_bank,
                                 layer_options)
        if done is not None:
            return done
    whole_verilog = _text(whole_verilog)
    # On Verilator the layers are checked in a process of their own while this one builds and runs the whole
    # design: both are mostly single-threaded (elaboration, yosys, verilate), so together they fill two cores.
    beside = layers if layers is not None else start_layer_checks(
        graph, images, accelerator.plan, mode=mode, backend=backend, layer_stall=layer_stall, workers=workers,
        progress=progress)
    whole: dict[str, Any] | None = None
    if beside is not None:
        try:
            whole = whole_network(graph, images[:frames], accelerator, backend=backend, progress=False,
                                  verilog_text=whole_verilog)
        except BaseException:
            forked.stop(beside)
            raise
        if progress:
            print(f"[verify] whole network (beside the layers): {whole['bit_exact']}/{whole['images']} bit-exact, "
                  f"{whole['cycles_total']:,} cycles", file=sys.stderr, flush=True)
    checked = None
    if mode in ("layers", "both"):
        checked = layers_result(beside) if beside is not None else verify_layers(*layer_args, **layer_options)
    if mode in ("whole", "both") and whole is None:
        whole = whole_network(graph, images[:frames], accelerator, backend=backend, progress=progress,
                              verilog_text=whole_verilog)
    return _verdict(result, n, checked, whole, progress, whole_said=beside is not None)
