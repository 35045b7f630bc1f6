"""Behaviour check of a refactoring: the folding search's choice, cycles, per-stage resources and Verilog hashes.

    python benchmarks/refactor_check.py --label base     # in a worktree of the commit before the refactoring
    python benchmarks/refactor_check.py --label branch   # in the refactored worktree

Per network (the main job's VGG-tiny from the shipped checkpoint; UltraNet with BJUT's and DeepBurning-MixQ's
presets, UltraNet-Bypass and SkyNet at the full 3x160x320 size with random weights, see benchmarks/common.py):
the folding ``choose_folding`` picks under the Ultra96-V2 budget (the main job's options: DSP and LUT
multipliers, 300 MHz), the cycles per frame, and every stage's name, kind, cycles and resource estimate.
The sha256 of the emitted Verilog (``mixq_hw.top.emit_verilog`` for the board's platform) is recorded for the
main job and for one reduced-size zoo graph (UltraNet-Bypass at 3x32x64, its own search) -- full-size Verilog
emission takes many minutes per network.

Each run writes its figures under ``--label`` into ``benchmarks/results/refactor_check.json`` (other labels
are kept) and, when both ``base`` and ``branch`` are present, whether they are equal (``"equal"``) and where
they differ.  ``--out`` names another JSON file (e.g. when the base worktree writes into the branch's results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())         # the worktree the run checks, not the one holding this script

from benchmarks.common import calibrated_graph, machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "refactor_check.json"
#: network tag -> (zoo model, bitw, bita); None: the zoo registry's preset
FULL = {
    "ultranet_bjut": ("UltraNet", "444444444", "844444444"),
    "ultranet_mixq": ("UltraNet", "532555558", "733677665"),
    "ultranet_bypass": ("UltraNetBypass", None, None),
    "skynet": ("SkyNet", None, None),
}
#: The reduced-size zoo graph whose Verilog is hashed.
SMALL = ("ultranet_bypass_small", "UltraNetBypass", (3, 32, 64))


def log(message: str) -> None:
    print(f"[refactor_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _fold_dict(fold) -> dict:
    """The fold's parallelism (the fields both sides of a refactoring have)."""
    return {"simd": fold.simd, "pe": fold.pe, "pixels": fold.pixels, "multiplier": fold.multiplier}


def figures(graph, *, verilog: bool) -> dict:
    """The search's folding, cycles, per-stage estimates and (``verilog``) the emitted Verilog's sha256."""
    from boards import get_board
    from mixq_hw.estimate import Resources
    from mixq_hw.folding import choose_folding
    from mixq_hw.pipeline import Accelerator
    from mixq_hw.top import AxiStreamTop, emit_verilog

    brd = get_board("ultra96")
    budget = Resources(**brd.budget.to_dict())
    started = time.perf_counter()
    result = choose_folding(graph, budget, clock_mhz=brd.default_clock_mhz, multipliers=("dsp", "lut"))
    plan = result.plan
    entry: dict = {
        "search_seconds": round(time.perf_counter() - started, 1),
        "folding": {name: _fold_dict(fold) for name, fold in result.folding.items()},
        "cycles_per_frame": plan.cycles_per_frame(),
        "resources": plan.resources().to_dict(),
        "stages": [[s.name, s.kind, s.cycles, s.resources.to_dict()] for s in plan.stages],
        "fifo_depths": dict(plan.fifo_depths),
    }
    plans = {name: fold.plan.to_dict() for name, fold in result.folding.items()
             if getattr(fold, "plan", None) is not None}
    if plans:
        entry["plans"] = plans          # recorded by the refactored folding only: not compared
    if verilog:
        started = time.perf_counter()
        top = AxiStreamTop(Accelerator(graph, result.folding, plan=plan))
        with tempfile.TemporaryDirectory() as tmp:
            path = emit_verilog(top, Path(tmp) / "mixq_accel.v", name="mixq_accel", platform=brd.platform())
            entry["verilog_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        entry["verilog_seconds"] = round(time.perf_counter() - started, 1)
    return entry


def _compared(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ("search_seconds", "verilog_seconds", "plans")}


def compare(base: dict, branch: dict) -> list[str]:
    """Where two runs' networks differ (empty: equal)."""
    diffs = []
    for tag in sorted(set(base) | set(branch)):
        if tag not in base or tag not in branch:
            diffs.append(f"{tag}: only in {'base' if tag in base else 'branch'}")
            continue
        a, b = _compared(base[tag]), _compared(branch[tag])
        diffs += [f"{tag}: {key} differs" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    return diffs


def _save(out: Path, label: str, context: dict, networks: dict) -> dict:
    """Merge this run's networks into ``out`` under ``label`` (atomically) and compare base and branch."""
    results = json.loads(out.read_text()) if out.exists() else {}
    entry = results.setdefault(label, {"networks": {}})
    entry.update(machine=context, commit=os.popen("git rev-parse HEAD").read().strip())
    entry["networks"].update(networks)
    if "base" in results and "branch" in results:
        diffs = compare(results["base"]["networks"], results["branch"]["networks"])
        results["equal"], results["differences"] = not diffs, diffs
        log("base and branch " + ("agree" if not diffs else "differ: " + "; ".join(diffs)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, choices=("base", "branch"))
    parser.add_argument("--networks", default=",".join(["vggtiny", *FULL, SMALL[0]]))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import mixq_hw

    log(f"mixq_hw from {Path(mixq_hw.__file__).parent}")
    context = machine()
    networks: dict = {}
    results: dict = {}
    for tag in args.networks.split(","):
        log(f"{tag}: exporting")
        if tag == "vggtiny":
            from mixq_hw.build import DEFAULT_CHECKPOINT, load_graph

            graph, _ = load_graph(DEFAULT_CHECKPOINT)
            networks[tag] = figures(graph, verilog=True)
        elif tag == SMALL[0]:
            networks[tag] = figures(calibrated_graph(SMALL[1], shape=SMALL[2]), verilog=True)
        elif tag in FULL:
            name, bitw, bita = FULL[tag]
            networks[tag] = figures(calibrated_graph(name, bitw=bitw, bita=bita), verilog=False)
        else:
            parser.error(f"--networks: unknown network {tag!r}")
        log(f"{tag}: {networks[tag]['cycles_per_frame']:,} cycles/frame, {networks[tag]['resources']}")
        results = _save(args.out, args.label, context, networks)      # after every network: a cut-short run keeps its figures
    return 0 if results.get("equal", True) else 1


if __name__ == "__main__":
    sys.exit(main())
