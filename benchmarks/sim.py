"""Simulation benchmark: how fast whole networks simulate, and what it costs to get there.

For full-size UltraNet and SkyNet (3x160x320, random weights, BN calibrated on
random images, exported, folded by ``mixq_hw.folding.choose_folding`` under a
modest DSP budget): export and folding time, time to elaborate the AXI top and
emit its Verilog, Amaranth's Python simulator speed (cycles/s over a short
run), CXXRTL conversion and g++ compile time, and the compiled backend run on
real frames, bit-exact against ``Graph.reference``, with its cycles/s and the
measured frame interval next to the analytic one.

``--cxxrtl-options "-noflatten -g2"`` additionally measures the conversion and
compile proposed for ``sim/cxxrtl.py`` (hierarchical C++, ``-DCXXRTL_NDEBUG``)
on the same design, and runs the frames on it too.

    python benchmarks/sim.py [--models UltraNet,SkyNet] [--dsp 96,192] [--frames 2,1] [--opt -O1]

Writes ``benchmarks/results/sim.json`` and ``sim.md``.  Takes tens of minutes.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This script is called sim.py like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from amaranth.back import cxxrtl, rtlil  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402
from torch import nn  # noqa: E402

from mixq_hw.estimate import Resources  # noqa: E402
from mixq_hw.folding import choose_folding  # noqa: E402
from mixq_hw.pipeline import Accelerator  # noqa: E402
from mixq_hw.top import AxiStreamTop, emit_verilog  # noqa: E402
from mixq_nn import models  # noqa: E402
from mixq_nn.export import export  # noqa: E402
from sim import cxxrtl as compiled  # noqa: E402
from sim.network import image_beats, simulate  # noqa: E402
from sim.streams import send  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (3, 160, 320)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def calibrated(name: str, seed: int = 0) -> nn.Module:
    """Random weights, random BN affine parameters, BN statistics from a few random 8-bit batches."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = models.build(name, input_shape=SHAPE)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randint(0, 256, (4, *SHAPE), generator=gen).float() / 256)
    return model.eval()


def pysim_speed(acc: Accelerator, images: np.ndarray, cycles: int) -> dict:
    """Amaranth's simulator on ``acc``: build time, then ``cycles`` cycles with pixels streaming in."""
    started = time.perf_counter()
    sim = Simulator(acc)
    sim.add_clock(1e-8)
    built = time.perf_counter() - started

    async def feed(ctx):   # no more beats than cycles: the feeder ends before the run does
        await send(ctx, acc.i, image_beats(images)[:cycles // 2], rng=random.Random(0))

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


def _hierarchical_library(acc: Accelerator, options: str, opt: str) -> tuple[Path, dict]:
    """The proposed sim/cxxrtl.py conversion: ``write_cxxrtl <options>``, g++ ``-DCXXRTL_NDEBUG``.  Built into
    the cache slot ``run_streams_compiled`` would look up for key ``opt + options``."""
    started = time.perf_counter()
    text = rtlil.convert(acc)
    from amaranth._toolchain.yosys import find_yosys

    source = find_yosys(lambda ver: ver >= (0, 10)).run(
        ["-q", "-"], f"read_rtlil <<rtlil\n{text}\nrtlil\nwrite_cxxrtl {options}")
    convert_s = time.perf_counter() - started
    key = hashlib.sha256((source + compiled._DRIVER.read_text() + opt + options).encode()).hexdigest()[:24]
    lib = compiled._cache_dir() / f"design_{key}_h.so"
    gxx_s = 0.0
    if not lib.exists():
        with tempfile.TemporaryDirectory() as tmp:
            cc = Path(tmp) / "design.cc"
            cc.write_text(source)
            started = time.perf_counter()
            subprocess.run([shutil.which("g++"), "-std=c++14", opt, "-DCXXRTL_NDEBUG", "-shared", "-fPIC", "-w",
                            f"-I{compiled.runtime_include_dir()}", "-DCXXRTL_INCLUDE_CAPI_IMPL", str(cc),
                            str(compiled._DRIVER), "-o", str(Path(tmp) / "d.so")], check=True)
            gxx_s = time.perf_counter() - started
            shutil.move(str(Path(tmp) / "d.so"), lib)
    return lib, {"options": options, "cxx_kib": len(source) // 1024, "convert_seconds": convert_s,
                 "gxx_seconds": gxx_s}


def bench_model(name: str, dsp: int, frames: int, args, entry: dict, save) -> dict:
    """Measure one model into ``entry`` (``save()`` after every phase)."""
    entry.update({"model": name, "input_shape": list(SHAPE), "dsp_budget": dsp, "frames": frames})
    started = time.perf_counter()
    graph = export(calibrated(name), SHAPE)
    entry["export_seconds"] = time.perf_counter() - started
    entry["macs_per_frame"] = int(graph.macs())
    log(f"{name}: exported in {entry['export_seconds']:.1f} s, {entry['macs_per_frame']:,} MACs/frame")

    started = time.perf_counter()
    unlimited = 10 ** 9
    fold = choose_folding(graph, Resources(dsp=dsp, lut=unlimited, ff=unlimited, bram36=unlimited))
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
    started = time.perf_counter()
    source = cxxrtl.convert(acc)
    entry["cxxrtl_convert"] = {"seconds": time.perf_counter() - started, "cxx_kib": len(source) // 1024}
    log(f"{name}: CXXRTL conversion {entry['cxxrtl_convert']['seconds']:.1f} s, {len(source) // 1024:,} KiB of C++")
    del source
    save()
    if args.cxxrtl_options:
        lib, info = _hierarchical_library(acc, args.cxxrtl_options, args.opt)
        original = compiled.compile_design
        compiled.compile_design = lambda dut, **_kw: lib
        try:
            run = simulate(graph, images, accelerator=acc, backend="cxxrtl", opt=args.opt, progress=True)
        finally:
            compiled.compile_design = original
        entry["cxxrtl_proposed"] = {**info, "opt": args.opt, **run.to_dict()}
        log(f"{name}: proposed ({args.cxxrtl_options}): convert {info['convert_seconds']:.1f} s, g++ "
            f"{info['gxx_seconds']:.1f} s, {run.bit_exact}/{frames} bit-exact, {run.cycles_per_second:,.0f} cycles/s")
        save()
    if not args.skip_flat:
        run = simulate(graph, images, accelerator=acc, backend="cxxrtl", opt=args.opt, progress=True)
        entry["cxxrtl"] = {"opt": args.opt, **run.to_dict(),
                           "gxx_seconds_approx": run.compile_seconds - entry["cxxrtl_convert"]["seconds"]}
        log(f"{name}: cxxrtl {args.opt}: compile {run.compile_seconds:.1f} s, {run.bit_exact}/{frames} bit-exact, "
            f"{run.cycles_per_second:,.0f} cycles/s, interval {run.cycles_per_frame:,}")
    return entry


def machine() -> dict:
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    import amaranth

    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "platform": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
            "python": platform.python_version(), "amaranth": amaranth.__version__, "torch": torch.__version__,
            "gxx": gxx[0] if gxx else "missing"}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Simulation speed", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cpus']} CPUs, load average {m['load_average_at_start'][0]:.1f} "
             f"at start: a shared machine, so times are upper bounds), {m['gxx']}, Amaranth {m['amaranth']}.", "",
             "| model | flow | DSPs | analytic cycles/frame | export s | fold s | Verilog s | pysim cycles/s | "
             "C++ KiB | convert s | g++ s | compiled cycles/s | frames bit-exact | measured cycles/frame |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in result.get("earlier", []) + result["models"]:
        if "estimated" not in e or "cxxrtl_convert" not in e:
            continue                                    # a model still being measured
        verilog = f"{e['verilog']['seconds']:.1f}" if "verilog" in e else "-"
        pysim = f"{e['pysim']['cycles_per_second']:,.0f}" if "pysim" in e else "-"
        for flow, key in (("current", "cxxrtl"), ("proposed", "cxxrtl_proposed")):
            c = e.get(key)
            if c is None:
                continue
            if key == "cxxrtl":
                kib, conv, gxx = e["cxxrtl_convert"]["cxx_kib"], e["cxxrtl_convert"]["seconds"], c["gxx_seconds_approx"]
            else:
                kib, conv, gxx = c["cxx_kib"], c["convert_seconds"], c["gxx_seconds"]
            lines.append(f"| {e['model']} | {flow} {c['opt']} | {e['estimated']['dsp']} | "
                         f"{e['analytic_cycles_per_frame']:,} | {e['export_seconds']:.1f} | {e['folding_seconds']:.1f} | "
                         f"{verilog} | {pysim} | {kib:,} | {conv:.1f} | {gxx:.1f} | {c['cycles_per_second']:,.0f} | "
                         f"{c['bit_exact']}/{c['images']} | {c['cycles_per_frame']:,} |")
    if result.get("earlier"):
        lines += ["", f"Rows of {', '.join(e['model'] for e in result['earlier'])} come from an earlier run "
                      f"({(result.get('earlier_machine') or {}).get('date', 'date unknown')}, same machine)."]
    lines += ["", "With one frame, 'measured cycles/frame' is that frame's latency.  'g++ s' of the current flow is "
              "its compile time minus one conversion (compile_design converts the design itself).", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="UltraNet,SkyNet")
    p.add_argument("--dsp", default="96,192", help="DSP budget per model (comma-separated, one per model)")
    p.add_argument("--frames", default="2,1", help="frames simulated per model")
    p.add_argument("--opt", default="-O1", help="g++ optimisation flag")
    p.add_argument("--verilog", default="UltraNet", help="models whose AXI top is emitted as Verilog")
    p.add_argument("--pysim-cycles", type=int, default=2000, help="cycles of the pysim speed run (0: skip)")
    p.add_argument("--skip-flat", action="store_true", help="skip the current (flattened) CXXRTL flow")
    p.add_argument("--cxxrtl-options", default="", help='also measure e.g. "-noflatten -g2" (proposed flow)')
    p.add_argument("--out", type=Path, default=RESULTS)
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
