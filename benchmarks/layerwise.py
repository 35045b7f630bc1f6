"""Layer-by-layer verification benchmark: wall time per stage and in total for a built design.

Runs ``python -m sim SOURCE --fold FOLDING --layers`` (every pipeline stage alone, compiled backend, stalls
on all ports, parallel workers) with a cold compile cache and records its JSON, the wall time and the
machine's load, then writes ``benchmarks/results/layerwise.json`` and ``layerwise.md``.

    python -m mixq_hw.build --board ultra96 --out /tmp/lw-main
    python benchmarks/layerwise.py --fold /tmp/lw-main/folding.json [--images 4] [--workers 2]
    python benchmarks/layerwise.py --table      # only re-render the table from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_SOURCE = ROOT / "examples" / "vggtiny_digits.pt"


def measure(source: Path, fold: Path, images: int, workers: int, stall: float) -> dict:
    """One cold-cache ``python -m sim --layers`` run: its JSON plus the command, wall time and load."""
    command = [sys.executable, "-m", "sim", str(source), "--fold", str(fold), "--images", str(images),
               "--layers", "--backend", "cxxrtl", "--stall", str(stall), "--workers", str(workers), "--json"]
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "MIXQ_CACHE": cache}, check=False)
        wall = time.perf_counter() - started
    if not proc.stdout.strip():
        raise SystemExit(f"python -m sim failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout)
    result["measured"] = {"command": " ".join(["python", *command[1:]]), "wall_seconds": wall,
                          "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
                          "cpus": os.cpu_count(), "cold_cache": True}
    return result


def table(result: dict) -> str:
    """The per-stage wall times and verdicts as markdown."""
    m = result["measured"]
    lines = [f"# Layer-by-layer verification: {result['graph']}", "",
             f"`{m['command']}` with a cold compile cache: **{m['wall_seconds']:.0f} s wall** in total "
             f"({result['seconds']:.0f} s in the verification itself), {len(result['stages'])} stages, "
             f"{result['designs']} distinct designs, {result['images']} images ({result['images_from']}), "
             f"{result['workers']} workers, stalls {result['stall']:g} on every port. Machine: {m['cpus']} CPUs, "
             f"load average {m['load_average_before'][0]:.1f} before and {m['load_average_after'][0]:.1f} "
             f"after (shared with other jobs: wall times are upper bounds).", "",
             "Seconds per stage include its compile (or cache hit) and both runs (stalled, then stall-free).", "",
             "| stage | layer | kind | bit-exact | cycles/frame | analytic | latency | s |",
             "|---|---|---|---|---|---|---|---|"]
    for s in result["stages"]:
        lines.append(f"| {s['stage']} | {s['node']} | {s['kind']} | {'yes' if s['bit_exact'] else 'NO'} | "
                     f"{s['cycles_per_frame']:,} | {s['analytic_cycles_per_frame']:,} | {s['latency']:,} | "
                     f"{s['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--fold", type=Path, help="the build's folding.json")
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--stall", type=float, default=0.3)
    p.add_argument("--table", action="store_true", help="only re-render layerwise.md from layerwise.json")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "layerwise.json"
    if args.table:
        result = json.loads(path.read_text())
    else:
        if args.fold is None:
            p.error("--fold is required (the build's folding.json), unless --table")
        result = measure(args.source, args.fold, args.images, args.workers, args.stall)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
    md = RESULTS / "layerwise.md"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(table(result))
    tmp.replace(md)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
