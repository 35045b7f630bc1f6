"""Folding under the realistic Ultra96-V2 budget: the board's shell reserved and a utilisation target.

For each design (the main job's VGG-tiny, UltraNet with BJUT's W4A4 preset, UltraNet with DeepBurning-MixQ's
searched preset) the folding search runs twice: under the whole device (the old budget) and under
``utilization x device - shell`` (``boards.Board.shell``, estimates from the IPs' product guides).  Records
cycles per frame, fps, each resource's use with and without the shell against the device, whether the
design fits and meets its target, and, where it misses, by how much and which layers set the interval.
Analytic: the folding and its estimates only, no simulation.  Writes ``benchmarks/results/budget.json`` and
``budget.md`` (the table generated from the JSON).

    python benchmarks/budget.py [--utilization 0.85] [--designs mainjob,bjut,mixq] [--clock 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import FULL_SHAPE, calibrated_graph, machine  # noqa: E402
from benchmarks.ultranet import PRESETS, layer_rows  # noqa: E402
from boards import get_board  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.build import DEFAULT_CHECKPOINT, load_graph  # noqa: E402
from mixq_hw.estimate import Resources  # noqa: E402
from mixq_hw.folding import OverBudgetError, choose_folding  # noqa: E402
from mixq_hw.folding.budget import accelerator_limit  # noqa: E402
from mixq_hw.utilization import DEFAULT_UTILIZATION, utilization_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = ("dsp", "lut", "ff", "bram36")


def design(name: str):
    """(graph, target cycles or None, where the target comes from)."""
    if name == "mainjob":
        graph, _ = load_graph(DEFAULT_CHECKPOINT)
        return graph, None, "the main job (python -m mixq_hw.build, default checkpoint): no cycle target; must fit"
    bitw, bita, target, source = PRESETS[name]
    return calibrated_graph("UltraNet", bitw=bitw, bita=bita, shape=FULL_SHAPE), target, source


def fold(graph, board, utilization: float, reserve: Resources | None, clock_mhz: float) -> dict:
    """One folding search and its figures; ``fits`` False with the error when nothing fits."""
    device = Resources(**board.budget.to_dict())
    shell = reserve or Resources()
    limit = accelerator_limit(device, utilization, reserve)
    started = time.perf_counter()
    try:
        result = choose_folding(graph, device, clock_mhz=clock_mhz, utilization=utilization, reserve=reserve)
    except OverBudgetError as exc:
        return {"utilization": utilization, "shell_reserved": reserve is not None, "limit": limit.to_dict(),
                "fits": False, "error": str(exc), "search_seconds": time.perf_counter() - started}
    fill = utilization_table(result.resources, Resources(**board.shell.to_dict()), device, utilization)
    slowest = [row for row in result.layers() if row["cycles"] == result.cycles_per_frame]
    return {"utilization": utilization, "shell_reserved": reserve is not None, "limit": limit.to_dict(),
            "fits": True, "cycles_per_frame": result.cycles_per_frame, "fps": round(result.fps, 1),
            "bottleneck": result.bottleneck, "resources": result.resources.to_dict(),
            "with_shell": {k: fill["resources"][k] for k in KEYS}, "warnings": fill["warnings"],
            "binding": {k: round(getattr(result.resources, k) / getattr(limit, k), 4) for k in KEYS
                        if getattr(limit, k)},
            "interval_set_by": [row["node"] for row in slowest],
            "search_seconds": round(time.perf_counter() - started, 1), "targets_tried": result.targets,
            "folding": {k: v.to_dict() for k, v in result.folding.items()},
            "shell_resources_assumed": shell.to_dict(), "_result": result}


def run(name: str, board, utilization: float, clock_mhz: float, whole: bool = True) -> dict:
    graph, target, source = design(name)
    print(f"== {name}: {graph.name}, {graph.macs():,} MACs", flush=True)
    old = fold(graph, board, 1.0, None, clock_mhz) if whole else None
    print(f"   whole device: {old.get('cycles_per_frame') if old else 'not run'} cycles", flush=True)
    new = fold(graph, board, utilization, Resources(**board.shell.to_dict()), clock_mhz)
    print(f"   {utilization:g} less the shell: {new.get('cycles_per_frame')} cycles", flush=True)
    entry = {"design": name, "network": graph.name, "macs_per_frame": graph.macs(), "target_cycles": target,
             "target_source": source, "whole_device": old, "realistic": new}
    if target is not None and new["fits"]:
        new["meets_target"] = new["cycles_per_frame"] <= target
        new["over_target_cycles"] = max(0, new["cycles_per_frame"] - target)
        new["over_target_percent"] = round(100 * max(0, new["cycles_per_frame"] - target) / target, 2)
    if new["fits"] and target is not None and not new["meets_target"]:
        new["layers"] = layer_rows(graph, new["_result"])
    for run_ in (old, new):
        if run_:
            run_.pop("_result", None)
    return entry


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# Folding under the realistic Ultra96-V2 budget", "",
             f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}); clock {report['clock_mhz']:g} MHz.  "
             f"Realistic budget: {100 * report['utilization']:g} % of every PL resource of the device "
             f"{report['device']}, less the shell's reserve {report['shell']} (AXI DMA, SmartConnect, AXI "
             "Interconnect, resets: estimates from the product guides, `boards/shell.py`).  Every figure is the "
             "folding's analytic estimate (no simulation, no Vivado)."
             + (f"  Designs not re-run in the last session keep their figures from {report['earlier_machine']['date']}."
                if "earlier_machine" in report else ""), "",
             "| design | budget | cycles/frame | fps | target | met | DSP | LUT | FF | BRAM36 | interval set by |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in report["designs"]:
        for label, run_ in (("whole device", entry["whole_device"]),
                            (f"{100 * report['utilization']:g} % - shell", entry["realistic"])):
            if run_ is None:
                lines.append(f"| {entry['design']} | {label} | not run here (see ultranet.md) | | | | | | | | |")
                continue
            if not run_["fits"]:
                lines.append(f"| {entry['design']} | {label} | does not fit | | | | | | | | {run_['error'][:120]} |")
                continue
            shares = run_["with_shell"] if run_["shell_reserved"] else None

            def cell(key: str) -> str:
                used = run_["resources"][key]
                dev = report["device"][key]
                text = f"{used:,g} ({100 * used / dev:.1f} %)"
                if shares:
                    text += f"; +shell {shares[key]['total']:,g} ({100 * shares[key]['share']:.1f} %)"
                return text

            target = entry["target_cycles"]
            met = "-" if target is None else ("yes" if run_["cycles_per_frame"] <= target else
                                              f"no (+{run_['cycles_per_frame'] - target:,}, "
                                              f"+{100 * (run_['cycles_per_frame'] - target) / target:.1f} %)")
            lines.append(f"| {entry['design']} | {label} | {run_['cycles_per_frame']:,} | {run_['fps']:,.0f} | "
                         f"{'-' if target is None else f'{target:,}'} | {met} | {cell('dsp')} | {cell('lut')} | "
                         f"{cell('ff')} | {cell('bram36')} | {', '.join(run_['interval_set_by'][:4])} |")
    lines += ["", "Share of the accelerator's limit used (realistic budget): the resources near 1.0 bind.", "",
              "| design | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    for entry in report["designs"]:
        run_ = entry["realistic"]
        if run_["fits"]:
            lines.append(f"| {entry['design']} | " + " | ".join(f"{run_['binding'].get(k, 0):.3f}" for k in KEYS) + " |")
    for entry in report["designs"]:
        run_ = entry["realistic"]
        if run_.get("layers"):
            lines += ["", f"## {entry['design']}: misses {entry['target_cycles']:,} by "
                          f"{run_['over_target_cycles']:,} cycles ({run_['over_target_percent']:g} %)", "",
                      "| layer | w/a | fold simd/pe/pixels | multiplier / requant | layer cycles | DSP MAC + requant | LUT |",
                      "|---|---|---|---|---|---|---|"]
            for row in run_["layers"]:
                f = row["fold"]
                lines.append(f"| {row['layer']} | w{row['w_bits']}a{row['a_bits']} | {f['simd']}/{f['pe']}/{f['pixels']} | "
                             f"{row['multiplier']} / {f.get('requant', 'dsp')} | {row['layer_cycles']:,} | {row['engine_dsp']} + {row['requant_dsp']} | "
                             f"{row['resources']['lut']:,} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utilization", type=float, default=DEFAULT_UTILIZATION)
    parser.add_argument("--designs", default="mainjob,bjut,mixq")
    parser.add_argument("--clock", type=float, default=300.0)
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-device search (the old budget)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the designs of the existing budget.json that are not run now")
    args = parser.parse_args(argv)
    board = get_board("ultra96")
    report = {"machine": machine(), "clock_mhz": args.clock, "utilization": args.utilization,
              "device": board.budget.to_dict(), "shell": board.shell.to_dict(),
              "shell_parts": [p.to_dict() for p in board.shell_parts], "designs": []}
    names = [n.strip() for n in args.designs.split(",")]
    if args.merge and (RESULTS / "budget.json").exists():
        kept = json.loads((RESULTS / "budget.json").read_text())
        report["designs"] = [e for e in kept["designs"] if e["design"] not in names]
        report["earlier_machine"] = kept["machine"]
    for name in names:
        report["designs"].append(run(name, board, args.utilization, args.clock, whole=not args.no_whole))
        RESULTS.mkdir(exist_ok=True)
        atomic_write_text(RESULTS / "budget.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(RESULTS / "budget.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
