"""Simulation benchmark: how fast whole networks simulate, and what it costs to get there.

For full-size UltraNet and SkyNet (3x160x320, random weights, BN calibrated on
random images, exported, folded by ``mixq_hw.folding.choose_folding`` under a
modest DSP budget, packed DSP48E2s only): export and folding time, time to elaborate the AXI top and
emit its Verilog, Amaranth's Python simulator speed (cycles/s over a short
run), and the compiled (CXXRTL) backend: RTLIL emission, ``write_cxxrtl`` and
g++ time, C++ size, then real frames, bit-exact against ``Graph.reference``,
with cycles/s (wall and per CPU-second: the machine is shared), eval() calls
per cycle and the measured frame interval next to the analytic one.

    python benchmarks/sim.py [--models UltraNet,SkyNet] [--dsp 96,192] [--frames 2,1] [--opt -O1]

Writes ``benchmarks/results/sim.json`` and ``sim.md``.  Takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

# This script is called sim.py like the package it measures: keep its own folder off the import path, and
# measure the checkout it lives in (not whichever copy of mixq happens to be installed).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402

from mixq_hw.estimate import Resources  # noqa: E402
from mixq_hw.folding import choose_folding  # noqa: E402
from mixq_hw.pipeline import Accelerator  # noqa: E402
from mixq_hw.top import AxiStreamTop, emit_verilog  # noqa: E402
from sim.network import image_beats, simulate  # noqa: E402

from benchmarks.common import FULL_SHAPE, calibrated_graph, machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = FULL_SHAPE


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pysim_speed(acc: Accelerator, images: np.ndarray, cycles: int) -> dict:
    """Amaranth's simulator on ``acc``: build time, then ``cycles`` cycles with pixels streaming in."""
    started = time.perf_counter()
    sim = Simulator(acc)
    sim.add_clock(1e-8)
    built = time.perf_counter() - started

    async def feed(ctx):   # offers pixels for exactly ``cycles`` cycles (no stalls), then stops
        beats = image_beats(images)
        sent = 0
        for _ in range(cycles):
            ctx.set(acc.i.payload, beats[sent % len(beats)])
            ctx.set(acc.i.valid, 1)
            _, _, ready = await ctx.tick().sample(acc.i.ready)
            sent += bool(ready)

    async def run_for(ctx):
        ctx.set(acc.o.ready, 1)
        for _ in range(cycles):
            await ctx.tick()

    sim.add_testbench(feed, background=True)
    sim.add_testbench(run_for)
    started = time.perf_counter()
    sim.run()
    seconds = time.perf_counter() - started
    return {"build_seconds": built, "cycles": cycles, "seconds": seconds, "cycles_per_second": cycles / seconds}


def bench_model(name: str, dsp: int, frames: int, args, entry: dict, save) -> dict:
    """Measure one model into ``entry`` (``save()`` after every phase)."""
    entry.update({"model": name, "input_shape": list(SHAPE), "dsp_budget": dsp, "frames": frames})
    started = time.perf_counter()
    graph = calibrated_graph(name, shape=SHAPE)
    entry["export_seconds"] = time.perf_counter() - started
    entry["macs_per_frame"] = int(graph.macs())
    log(f"{name}: exported in {entry['export_seconds']:.1f} s, {entry['macs_per_frame']:,} MACs/frame")

    started = time.perf_counter()
    unlimited = 10 ** 9
    fold = choose_folding(graph, Resources(dsp=dsp, lut=unlimited, ff=unlimited, bram36=unlimited),
                          multipliers=("dsp",))   # packed DSPs only: with unlimited LUTs the search would go LUT-wide
    entry["folding_seconds"] = time.perf_counter() - started
    entry["folding"] = {k: v.to_dict() for k, v in fold.folding.items()}
    entry["analytic_cycles_per_frame"] = int(fold.cycles_per_frame)
    entry["estimated"] = fold.resources.to_dict()
    log(f"{name}: folded under {dsp} DSPs in {entry['folding_seconds']:.1f} s: {fold.cycles_per_frame:,} "
        f"cycles/frame, {fold.resources.dsp} DSPs, bottleneck {fold.bottleneck}")

    save()
    images = np.random.default_rng(1).integers(0, 256, (frames, *SHAPE)).astype(np.uint8)
    if name in args.verilog:
        started = time.perf_counter()
        top = AxiStreamTop(Accelerator(graph, fold.folding))
        with tempfile.TemporaryDirectory() as tmp:
            path = emit_verilog(top, Path(tmp) / "mixq_accel.v")
            entry["verilog"] = {"seconds": time.perf_counter() - started, "kib": path.stat().st_size // 1024}
        log(f"{name}: AXI top elaborated and Verilog emitted in {entry['verilog']['seconds']:.1f} s "
            f"({entry['verilog']['kib']:,} KiB)")

    if args.pysim_cycles:
        entry["pysim"] = pysim_speed(Accelerator(graph, fold.folding), images, args.pysim_cycles)
        log(f"{name}: pysim built in {entry['pysim']['build_seconds']:.1f} s, "
            f"{entry['pysim']['cycles_per_second']:,.0f} cycles/s")

    acc = Accelerator(graph, fold.folding)
    flatten = {"auto": None, "yes": True, "no": False}[args.flatten]
    run = simulate(graph, images, accelerator=acc, backend="cxxrtl", opt=args.opt, flatten=flatten, progress=True)
    entry["cxxrtl"] = {"opt": args.opt, **run.to_dict()}
    b = run.build
    log(f"{name}: cxxrtl {args.opt}: {b.get('cxx_bytes', 0) // 1024:,} KiB of C++ "
        f"({'flattened' if b.get('flatten') else 'hierarchical'}), RTLIL {b.get('rtlil_seconds', 0):.1f} s, "
        f"write_cxxrtl {b.get('convert_seconds', 0):.1f} s, g++ {b.get('gxx_seconds', 0):.1f} s "
        f"({b.get('gxx_cpu_seconds', 0):.0f} CPU-s); {run.bit_exact}/{frames} bit-exact, "
        f"{run.cycles_per_second:,.0f} cycles/s ({run.cycles_total / max(run.sim_cpu_seconds, 1e-9):,.0f} per "
        f"CPU-s, {run.evals_per_cycle:.2f} evals/cycle), interval {run.cycles_per_frame:,}")
    return entry


def _row(e: dict) -> str | None:
    """One table row for a model entry (None while it is still being measured, or in an older format)."""
    c = e.get("cxxrtl")
    if c is None or "estimated" not in e or "build" not in c:
        return None
    b = c["build"]
    verilog = f"{e['verilog']['seconds']:.1f}" if "verilog" in e else "-"
    pysim = e.get("pysim", {}).get("cycles_per_second")
    per_cpu = c["cycles_total"] / c["sim_cpu_seconds"] if c.get("sim_cpu_seconds") else 0.0
    speedup = f"{c['cycles_per_second'] / pysim:,.0f}x" if pysim else "-"
    return (f"| {e['model']} | {e['estimated']['dsp']} | {e['analytic_cycles_per_frame']:,} | "
            f"{e['export_seconds']:.1f} | {e['folding_seconds']:.1f} | {verilog} | "
            f"{f'{pysim:,.0f}' if pysim else '-'} | {'flat' if b.get('flatten') else 'hier'} {c['opt']} | "
            f"{b.get('cxx_bytes', 0) // 1024:,} | {b.get('rtlil_seconds', 0):.1f} | {b.get('convert_seconds', 0):.1f} | "
            f"{b.get('gxx_seconds', 0):.1f} ({b.get('gxx_cpu_seconds', 0):.0f}) | {c['evals_per_cycle']:.2f} | "
            f"{c['cycles_per_second']:,.0f} ({per_cpu:,.0f}) | {speedup} | {c['bit_exact']}/{c['images']} | "
            f"{c['cycles_per_frame']:,} |")


def markdown(result: dict) -> str:
    """The report as a markdown page."""
    m = result["machine"]
    lines = ["# Simulation speed", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cpus']} CPUs, load average {m['load_average_at_start'][0]:.1f} "
             f"at start: a shared machine, so wall times are upper bounds; CPU seconds in parentheses), {m['gxx']}, "
             f"Amaranth {m['amaranth']}.", "",
             "| model | DSPs | analytic cycles/frame | export s | fold s | Verilog s | pysim cycles/s | build | "
             "C++ KiB | RTLIL s | write_cxxrtl s | g++ s (CPU s) | evals/cycle | compiled cycles/s (per CPU-s) | "
             "vs pysim | frames bit-exact | measured cycles/frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row for row in map(_row, result.get("earlier", []) + result["models"]) if row]
    if any(_row(e) for e in result.get("earlier", [])):
        lines += ["", f"Rows of {', '.join(e['model'] for e in result['earlier'] if _row(e))} come from an earlier "
                      f"run ({(result.get('earlier_machine') or {}).get('date', 'date unknown')}, same machine)."]
    if result.get("notes"):
        lines += [""] + [f"- {note}" for note in result["notes"]]
    lines += ["", "'Verilog s': elaborating the AXI top and emitting its Verilog.  'RTLIL s': Amaranth's RTLIL "
              "emission for the CXXRTL build (elaboration included).  'measured cycles/frame': the interval between "
              "the last two frames' last output beats (with one frame, its latency).  'vs pysim': wall-clock "
              "cycles/s of the compiled backend over pysim's.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="UltraNet,SkyNet")
    p.add_argument("--dsp", default="96,192", help="DSP budget per model (comma-separated, one per model)")
    p.add_argument("--frames", default="2,1", help="frames simulated per model")
    p.add_argument("--opt", default="-O1", help="g++ optimisation flag")
    p.add_argument("--verilog", default="UltraNet", help="models whose AXI top is emitted as Verilog")
    p.add_argument("--pysim-cycles", type=int, default=2000, help="cycles of the pysim speed run (0: skip)")
    p.add_argument("--flatten", choices=("auto", "yes", "no"), default="auto",
                   help="CXXRTL build: flattened, hierarchical, or by size (sim.cxxrtl.FLATTEN_LIMIT)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--note", action="append", default=[], help="a remark for the report (repeatable)")
    p.add_argument("--merge", action="store_true",
                   help="keep the other models' entries of an existing sim.json (replace those measured now)")
    args = p.parse_args()
    names = args.models.split(",")
    dsps = [int(v) for v in args.dsp.split(",")]
    frames = [int(v) for v in args.frames.split(",")]
    args.verilog = set(args.verilog.split(",")) if args.verilog else set()
    result = {"machine": machine(), "settings": {k: (sorted(v) if isinstance(v, set) else str(v) if isinstance(v, Path)
                                                     else v) for k, v in vars(args).items()}, "models": []}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge and (args.out / "sim.json").exists():
        old = json.loads((args.out / "sim.json").read_text())
        result["earlier"] = [e for e in old.get("models", []) if e.get("model") not in names] + old.get("earlier", [])
        result["earlier_machine"] = old.get("machine")
        args.note = old.get("notes", []) + args.note
    result["notes"] = args.note
    def save() -> None:     # after every phase: a crash or a kill keeps what was measured
        (args.out / "sim.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "sim.md").write_text(markdown(result))

    for name, dsp, n in zip(names, dsps, frames):
        entry: dict = {}
        result["models"].append(entry)
        bench_model(name, dsp, n, args, entry, save)
        save()
    log(f"wrote {args.out / 'sim.json'} and {args.out / 'sim.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
