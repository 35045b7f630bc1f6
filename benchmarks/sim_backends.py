"""Verilator build options: compile time and simulation speed of one mid-size design, cold cache each time.

The design: VGG-tiny (the main job's network, random weights, BN calibrated) at a reduced 3x8x8 input with
the zoo test's folding (a few DSPs per layer, 4.4 MB of Verilog).  For each configuration -- Verilator
``--threads``, Verilator ``-O``, g++ flags of the evaluation code -- a fresh cache, then emit + verilate +
g++ (wall and CPU seconds) and a run of a few frames (cycles/s of wall and of CPU time: the machine is
shared).  The CXXRTL backend on the same design as a reference row.  Every run must be bit-exact and give
the same cycles as the first.

    python benchmarks/sim_backends.py [--configs 1:-O3:-O1,2:-O3:-O1] [--frames 3] [--no-cxxrtl]

Writes ``benchmarks/results/verilator.json`` and ``verilator.md``.  With ``--graph G.npz --fold folding.json``
(a full-size build's graph and folding, e.g. from benchmarks/fullsize.py's work folder) the design is instead
that build's whole accelerator as ``--verify`` simulates it (its board Verilog with the DSP48E2 model,
:func:`sim.board_text.board_simulation_text`), Verilator only, 2 frames by default; written to
``verilator_fullsize.json`` and ``verilator_fullsize.md``; ``--sim-passes`` then measures other yosys optimisation
passes of the simulation text than the proven default (:data:`mixq_hw.hdl_text.SIM_PASSES`), and
``--programs whole,bank,bank-no-inline`` compares the whole design alone with ``--verify``'s program (the
whole design and a second instance of every stage) and that program's ``no_inline_module`` variant.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from mixq_hw.folding import load_folding  # noqa: E402
from mixq_hw.graph import Graph  # noqa: E402
from mixq_hw.hdl_text import SIM_PASSES, check_passes, simulation_text  # noqa: E402
from mixq_hw.pipeline import Accelerator, LayerFold  # noqa: E402
from sim.cxxrtl import build_info, compile_design, run_streams_compiled  # noqa: E402
from sim.network import image_beats  # noqa: E402
from sim.tensors import beats_to_tensor  # noqa: E402
from sim.verilator import compile_verilator, run_streams_verilator, verilator_build_info  # noqa: E402

from benchmarks.common import calibrated_graph, machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (3, 8, 8)
#: the zoo test's VGG-tiny folding (tests/test_zoo_pipeline.py)
FOLDING = {"features.0.0": LayerFold(3, 1, 1), "features.1.0": LayerFold(8, 4, 1),
           "features.3.0": LayerFold(8, 2, 1), "features.4.0": LayerFold(8, 4, 1),
           "features.6.0": LayerFold(8, 2, 1), "features.7.0": LayerFold(8, 4, 1)}


def default_configs() -> str:
    """The rows a plain run measures: the backend's defaults (threads, Verilator -O, compiler and flags of
    :func:`sim.verilator.cxx_choice`) against --threads 2, Verilator -O1, the flags without the instruction
    set, -O2 and g++ -O1."""
    from sim.verilator import DEFAULT_OPT, cxx_choice

    cxx, flags = cxx_choice()
    name = Path(cxx or "g++").name
    base, *rest = flags.split()
    configs = [f"1:{DEFAULT_OPT}:{flags}:{name}", f"2:{DEFAULT_OPT}:{flags}:{name}", f"1:-O1:{flags}:{name}"]
    if rest:
        configs.append(f"1:{DEFAULT_OPT}:{base}:{name}")
    configs += [f"1:{DEFAULT_OPT}:{' '.join(['-O2', *rest])}:{name}", f"1:{DEFAULT_OPT}:-O1:g++"]
    return ",".join(dict.fromkeys(configs))


def _measure(graph, images, backend: str, acc: Accelerator | None = None, ports=None, **options) -> dict:
    """Compile (cold cache) and run ``images`` once on ``acc`` (default: the zoo folding's); the figures of
    one row (``options`` go to the compile, ``verilog_text`` among them).  ``ports``: the compiled design's
    ports when ``verilog_text`` holds more than ``acc`` (:class:`sim.board_text.BoardBankPorts`)."""
    acc = acc or Accelerator(graph, FOLDING)
    compiler = options.pop("cxx", None)
    c, h, w = acc.plan.out_shape
    per_frame = c * h * w // acc.plan.out_lanes
    n = len(images)
    stats: dict = {}
    with tempfile.TemporaryDirectory(prefix="mixq-bench-cache-") as cache, _environment(CXX=compiler):
        os.environ["MIXQ_CACHE"] = cache
        started = time.perf_counter()
        if backend == "verilator":
            program = compile_verilator(ports or acc, **options)
            build = verilator_build_info(program)
            compile_seconds = time.perf_counter() - started
            started = time.perf_counter()
            run = run_streams_verilator(acc, {"i": image_beats(images)}, {"o": per_frame * n}, program=program,
                                        stats=stats)
        else:
            library = compile_design(acc, **options)
            build = build_info(library)
            compile_seconds = time.perf_counter() - started
            started = time.perf_counter()
            run = run_streams_compiled(acc, {"i": image_beats(images)}, {"o": per_frame * n}, library=library,
                                       stats=stats)
        sim_seconds = time.perf_counter() - started
    outputs = beats_to_tensor(run.outputs["o"], (n, c, h, w), acc.plan.out_lanes)
    exact = int(np.all((outputs == graph.reference(images)).reshape(n, -1), axis=1).sum())
    ends = [run.beat_cycles["o"][(k + 1) * per_frame - 1] for k in range(n)]
    cpu = build.get("build_cpu_seconds", build.get("gxx_cpu_seconds", 0.0) + build.get("convert_cpu_seconds", 0.0))
    options.pop("verilog_text", None)
    return {"backend": backend, **options, "compile_seconds": round(compile_seconds, 1),
            "compile_cpu_seconds": round(cpu, 1), "cpp_bytes": build.get("cpp_bytes", build.get("cxx_bytes")),
            "cycles": run.cycles, "sim_seconds": round(sim_seconds, 3),
            "cycles_per_second": round(run.cycles / sim_seconds),
            "cycles_per_cpu_second": round(run.cycles / stats["cpu_seconds"]) if stats.get("cpu_seconds") else None,
            "bit_exact": exact, "images": n, "frame_end_cycles": ends, "build": build,
            "load_average": list(os.getloadavg())}


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """The environment variables ``values`` set (None: left as they are) while the body runs."""
    saved = {name: os.environ.get(name) for name, value in values.items() if value is not None}
    os.environ.update({name: value for name, value in values.items() if value is not None})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _defaults() -> str:
    from sim.verilator import DEFAULT_OPT, DEFAULT_THREADS, cxx_choice

    cxx, flags = cxx_choice()
    return f"--threads {DEFAULT_THREADS} {DEFAULT_OPT}, {Path(cxx or 'g++').name} {flags}"


def _compiler(row: dict) -> str:
    """The compiler and flags a row was built with (rows from before the build recorded it: g++)."""
    name = row.get("build", {}).get("cxx", "g++").split(":")[0]
    return f"{Path(name).name} {row.get('cflags', row.get('opt', '-'))}"


def _config(config: str) -> tuple[int, str, str, str | None]:
    """``threads:verilator-opt:flags[:compiler]`` as (threads, opt, flags, compiler or None: the default)."""
    parts = config.split(":")
    if len(parts) not in (3, 4):
        raise SystemExit(f"--configs: {config!r} is not threads:verilator-opt:flags[:compiler]")
    return int(parts[0]), parts[1], parts[2], parts[3] if len(parts) == 4 else None


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Verilator build options ({result['design']})", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cpus']} CPUs), load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])} (the machine is shared: CPU seconds are "
             f"the steadier figure).  Cold cache per row; {result['frames']} frames per run.", "",
             f"Defaults of `sim.verilator`: `{result['defaults']}`.  Fastest compile + run here: "
             f"`{result['chosen']}` (the least compile plus run wall time: what the main job pays).", "",
             *[f"- {note}" for note in result.get("notes", [])], *([""] if result.get("notes") else []),
             "| backend | threads | Verilator -O | compiler and flags | compile s (wall) | compile CPU s | C++ MB | cycles/s "
             "(wall) | cycles per CPU-s | bit-exact | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(
            f"| {row['backend']} | {row.get('threads', '-')} | {row.get('opt', '-') if row['backend'] == 'verilator' else '-'} "
            f"| {_compiler(row)} | {row['compile_seconds']:.1f} | {row['compile_cpu_seconds']:.1f} "
            f"| {(row['cpp_bytes'] or 0) / 1e6:.1f} | {row['cycles_per_second']:,} | "
            f"{row['cycles_per_cpu_second'] or 0:,} | {row['bit_exact']}/{row['images']} | {row['load_average'][0]:.1f} |")
    return "\n".join(lines) + "\n"


def _board_text(acc: Accelerator, passes: str = SIM_PASSES) -> str:
    """The whole design's Verilog as ``mixq_hw.build --verify`` hands it to Verilator; ``passes``: the yosys
    optimisation passes of its simulation text (:func:`mixq_hw.hdl_text.simulation_text`)."""
    from amaranth.back import rtlil

    from boards.ultra96 import Ultra96V2Platform
    from mixq_hw.top import AxiStreamTop, emit_verilog_with_simulation
    from sim.board_text import board_simulation_text

    top = AxiStreamTop(acc)
    if passes != SIM_PASSES:
        text = rtlil.convert(top, name="mixq_accel", platform=Ultra96V2Platform(), emit_src=False)
        return board_simulation_text(top, simulation_text(text, "mixq_accel", passes=passes), "mixq_accel")
    with tempfile.TemporaryDirectory(prefix="mixq-bench-v-") as tmp:
        _, simulation = emit_verilog_with_simulation(top, Path(tmp) / "mixq_accel.v", name="mixq_accel",
                                                     platform=Ultra96V2Platform())
    return board_simulation_text(top, simulation, "mixq_accel")


#: ``--programs``: the whole design alone (what ``--verify`` runs the whole network on); the whole design and a
#: second instance of every stage in one program (:func:`sim.board_text.board_bank_text` with ``whole``,
#: ``--verify``'s one program until 2026-12-07); that program with every stage module marked Verilator
#: ``no_inline_module`` (compiled once, not inlined into both instances; a measurement variant)
PROGRAMS = ("whole", "bank", "bank-no-inline")


def _bank_texts(acc: Accelerator) -> dict[str, tuple]:
    """(ports, Verilog) of the whole design and its stages in one program for ``acc``, and of its
    ``no_inline_module`` variant."""
    from boards.ultra96 import Ultra96V2Platform
    from mixq_hw.top import AxiStreamTop
    from sim.board_text import emit_for_verification

    with tempfile.TemporaryDirectory(prefix="mixq-bench-v-") as tmp:
        _, bank, why = emit_for_verification(AxiStreamTop(acc), Path(tmp) / "mixq_accel.v", "mixq_accel",
                                             Ultra96V2Platform(), whole=True)
    if bank is None:
        raise SystemExit(f"--programs bank: this design has no verification program ({why})")
    ports, text = bank
    marked = text
    for module in sorted(set(re.findall(r"^  (\\\S+ )s\d+ \($", text, re.MULTILINE))):
        head = marked.index(f"\nmodule {module}(")
        end = marked.index(");\n", head) + 3
        marked = marked[:end] + "  /*verilator no_inline_module*/\n" + marked[end:]
    return {"bank": (ports, text), "bank-no-inline": (ports, marked)}


def _with_model(text: str, model: str) -> str:
    """``text`` (from :func:`_board_text`) with its DSP48E2 model replaced by the file ``model``."""
    from mixq_hw.packing.dsp48e2 import VERILOG_MODEL

    own = VERILOG_MODEL.read_text()
    if not text.endswith(own):
        raise SystemExit("the design's Verilog does not end with the DSP48E2 model")
    return text[:len(text) - len(own)] + Path(model).read_text()


#: When the simulation text's passes became ``opt -purge -nodffe`` (before: ``opt_clean -purge``).
_NODFFE_SINCE = "2026-12-06T08:33"


def _fullsize_rows(result: dict) -> list[dict]:
    """The rows of ``verilator_fullsize.json``, each with its design, Verilog size, frames, date and machine
    (a file written before rows carried them gives them once for all its rows)."""
    shared = {"design": result.get("design", "?"), "verilog_bytes": result.get("verilog_bytes", 0),
              "frames": result.get("frames", 0), "machine": result.get("machine", {})}
    rows = [{**shared, **row} for row in result.get("rows", [])]
    for row in rows:   # rows written before they carried their passes: the default of their day
        row.setdefault("sim_passes", "opt_clean -purge" if row["machine"].get("date", "") < _NODFFE_SINCE
                       else "opt -purge -nodffe")
        row.setdefault("program", "whole")
    return rows


def markdown_fullsize(result: dict) -> str:
    rows = _fullsize_rows(result)
    best = max(rows, key=lambda r: r["cycles_per_cpu_second"] or 0)
    m = rows[-1]["machine"]
    lines = ["# Verilator build options on full-size designs", "",
             f"Measured on {m.get('cpu', '?')} ({m.get('cpus', '?')} CPUs), a shared machine: 'load' is the "
             "1-minute load average when the row's run started, and cycles per CPU-second are the steadier "
             "figure.  Each design is the whole accelerator as `mixq_hw.build --verify` simulates it alone "
             "(board Verilog with the DSP48E2 model), cold cache per row, 2 frames per run, no stalls.  "
             "`benchmarks/sim_backends.py --graph ... --fold ... --configs threads:verilator-opt:flags[:compiler],...` "
             "adds rows.", "",
             f"Defaults of `sim.verilator`: `{result['defaults']}`.  Most cycles per CPU-second here: "
             f"`--threads {best['threads']} {best['opt']}, {_compiler(best)}` and yosys `{best['sim_passes']}` "
             f"on {best['design']} with the {best['model']} model ({best['cycles_per_cpu_second']:,}).  Only "
             f"`{SIM_PASSES}` is proven equivalent to the emitted text (tests/test_sim_hdl.py); rows with other "
             "passes are measurements (`--sim-passes`), each bit-exact with the same frame end cycles.", "",
             "| design | program | DSP48E2 model | yosys passes | threads | Verilator -O | compiler and flags "
             "| compile s (wall) | compile CPU s | C++ MB | cycles/s (wall) | cycles per CPU-s | bit-exact | load "
             "| measured |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['design']} ({row['verilog_bytes'] / 1e6:.1f} MB) | {row['program']} | {row['model']} "
            f"| `{row['sim_passes']}` "
            f"| {row['threads']} "
            f"| {row['opt']} | {_compiler(row)} | {row['compile_seconds']:.1f} "
            f"| {row['compile_cpu_seconds']:.1f} | {(row['cpp_bytes'] or 0) / 1e6:.1f} | {row['cycles_per_second']:,} "
            f"| {row['cycles_per_cpu_second'] or 0:,} | {row['bit_exact']}/{row['images']} "
            f"| {row['load_average'][0]:.1f} | {row['machine'].get('date', '?')[:16]} |")
    notes = result.get("notes", [])
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def fullsize(args) -> int:
    """The ``--graph``/``--fold`` mode: every model x configuration on one full-size build's design, added to
    the rows of ``verilator_fullsize.json`` (rows of other designs and earlier dates stay)."""
    graph = Graph.load(args.graph)
    acc = Accelerator(graph, load_folding(args.fold, graph))
    programs = args.programs.split(",")
    texts = {"whole": (None, _board_text(acc, args.sim_passes))} if "whole" in programs else {}
    if set(programs) - {"whole"}:
        texts.update(_bank_texts(acc))
    images = np.random.default_rng(7).integers(0, 256, (args.frames, *graph.input_shape)).astype(np.uint8)
    name = f"{Path(args.graph).stem}, {Path(args.fold).name}"
    rows = []
    for program, model in itertools.product(programs, args.models.split(",")):
        ports, text = texts[program]
        design = text if model == "default" else _with_model(text, model)
        for config in (args.configs or default_configs()).split(","):
            threads, opt, cflags, cxx = _config(config)
            started = machine()
            row = _measure(graph, images, "verilator", acc, ports, threads=threads, opt=opt, cflags=cflags,
                           cxx=cxx, verilog_text=design)
            row.update({"model": "mixq's" if model == "default" else Path(model).name, "design": name,
                        "verilog_bytes": len(design), "frames": args.frames, "machine": started,
                        "sim_passes": args.sim_passes, "program": program})
            print(json.dumps({k: v for k, v in row.items() if k not in ("build", "machine")}), flush=True)
            rows.append(row)
    for row in rows:
        if row["frame_end_cycles"] != rows[0]["frame_end_cycles"] or row["bit_exact"] != row["images"]:
            raise SystemExit(f"disagreement: {row}")
    path = RESULTS / "verilator_fullsize.json"
    earlier = _fullsize_rows(json.loads(path.read_text())) if path.exists() else []
    result = {"rows": earlier + rows, "defaults": _defaults(), "notes": (json.loads(path.read_text()).get("notes", [])
                                                                         if path.exists() else [])}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "verilator_fullsize.md").write_text(markdown_fullsize(result))
    print(markdown_fullsize(result))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=None,
                        help="threads:verilator-opt:flags[:compiler],... (compiler: e.g. g++ or clang++; default: "
                             "sim.verilator's choice); default: default_configs(), the backend's defaults against "
                             "--threads 2, Verilator -O1, the flags without -march, -O2 and g++ -O1")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--no-cxxrtl", action="store_true", help="skip the CXXRTL reference row")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite verilator.md from verilator.json")
    parser.add_argument("--graph", type=Path, help="a full-size build's graph (.npz); with --fold")
    parser.add_argument("--fold", type=Path, help="that build's folding.json")
    parser.add_argument("--models", default="default",
                        help="with --graph: DSP48E2 model files to compare, 'default' for mixq's (default %(default)s)")
    parser.add_argument("--programs", default="whole",
                        help=f"with --graph: the programs to build, of {', '.join(PROGRAMS)} (default %(default)s)")
    parser.add_argument("--sim-passes", default=SIM_PASSES,
                        help="with --graph: yosys passes of the simulation text, ';'-separated (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        check_passes(args.sim_passes)
    except ValueError as err:
        parser.error(f"--sim-passes: {err}")
    if not set(args.programs.split(",")) <= set(PROGRAMS):
        parser.error(f"--programs: {args.programs!r} names a program other than {', '.join(PROGRAMS)}")
    if args.programs != "whole" and args.sim_passes != SIM_PASSES:
        parser.error("--programs bank: only with the default --sim-passes (the build's own simulation text)")
    if (args.graph is None) != (args.fold is None):
        parser.error("--graph and --fold go together")
    for path in [args.graph, args.fold] + [Path(m) for m in args.models.split(",") if m != "default"]:
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    if args.graph is not None:
        if args.frames == parser.get_default("frames"):
            args.frames = 2
        return fullsize(args)
    if args.markdown_only:
        result = json.loads((RESULTS / "verilator.json").read_text())
        result.setdefault("defaults", _defaults())
        (RESULTS / "verilator.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "verilator.md").write_text(markdown(result))
        return 0
    started = machine()
    graph = calibrated_graph("VGGtiny", shape=SHAPE)
    images = np.random.default_rng(7).integers(0, 256, (args.frames, *SHAPE)).astype(np.uint8)
    rows = []
    for config in (args.configs or default_configs()).split(","):
        threads, opt, cflags, cxx = _config(config)
        row = _measure(graph, images, "verilator", threads=threads, opt=opt, cflags=cflags, cxx=cxx)
        print(json.dumps({k: v for k, v in row.items() if k != "build"}), flush=True)
        rows.append(row)
    if not args.no_cxxrtl:
        row = _measure(graph, images, "cxxrtl", opt="-O1")
        print(json.dumps({k: v for k, v in row.items() if k != "build"}), flush=True)
        rows.append(row)
    for row in rows:
        if row["frame_end_cycles"] != rows[0]["frame_end_cycles"] or row["bit_exact"] != row["images"]:
            raise SystemExit(f"disagreement: {row}")
    verilator_rows = [r for r in rows if r["backend"] == "verilator"]
    # what the main job pays: compile + run of this design, wall time on this (2-core) machine
    best = min(verilator_rows, key=lambda r: r["compile_seconds"] + r["sim_seconds"])
    result = {"design": f"VGG-tiny {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, zoo folding", "machine": started,
              "frames": args.frames, "rows": rows,
              "chosen": f"--threads {best['threads']} {best['opt']}, {_compiler(best)}", "defaults": _defaults()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "verilator.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "verilator.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
