"""Why UltraNet's MixQ preset misses 84,480 cycles/frame under the realistic budget: the gap per layer.

For each conv layer at the target interval ``T`` (analytic, the engine's own figures):

* the packing density: mixq's best exact plan for the layer's widths against DeepBurning-MixQ's published
  table (``MIXQ_PUBLISHED``), and the DSPs a perfectly balanced layer would need at that density;
* the engine floor: the fewest DSPs of any fold (``dsp`` and ``cascade`` multipliers) whose engine meets
  ``T``, split into two factors whose product is floor / ideal: the *time slack* ``T / cycles`` (the fold
  runs faster than needed because simd divides the input channels, the output channels come in whole folds
  of pe lanes and the pixel groups are whole) and the *lane loss* ``best density / achieved density`` (a
  filter group's end fields, padded slots and output channels);
* what-ifs on the same plans: simd and pe any count up to the channels (zero-padded channels,
  ``ceil(channels / lanes)`` beats), pe only (what the engine builds: its floor), simd only, and neither
  (the engine before output-channel padding);
* with ``--search``, the folding search's closest assignment at ``T`` (``mixq_hw.folding.search.fit_at``: the layers'
  cheapest folds under the Lagrangian weights, then the exact DSP knapsack) and by how much it overflows;
  with ``--sweep-dsp``, the same search with only the DSP limit changed (how many DSPs the target needs); with
  ``--sweep-lut``, with only the LUT limit changed (how many LUTs it needs at the realistic DSP limit).

Writes ``benchmarks/results/mixq_gap.json`` and ``mixq_gap.md`` (the table generated from the JSON).

    python benchmarks/mixq_gap.py [--target 84480] [--search] [--sweep-dsp 330,360,390] [--sweep-lut 60000,65000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import FULL_SHAPE, calibrated_graph, machine  # noqa: E402
from benchmarks.ultranet import PRESETS, best_density, owners  # noqa: E402
from boards import get_board  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.estimate import Resources  # noqa: E402
from mixq_hw.folding import NodeCosts, layer_candidates  # noqa: E402
from mixq_hw.folding.budget import accelerator_limit  # noqa: E402
from mixq_hw.folding.costs import engine_figures  # noqa: E402
from mixq_hw.folding.search import fit_at  # noqa: E402
from mixq_hw.folding.spec import lane_counts  # noqa: E402
from mixq_hw.graph import Graph, Node  # noqa: E402
from mixq_hw.layers.conv_weights import (check_conv_config, choose_plan, cores_for, dsps_per_core,  # noqa: E402
                                         frame_cycles, geometry_for_plan)
from mixq_hw.ops import op_def  # noqa: E402
from mixq_hw.packing.planner import MIXQ_PUBLISHED  # noqa: E402
from mixq_hw.pipeline import plan_stages  # noqa: E402
from mixq_hw.utilization import DEFAULT_UTILIZATION  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def engine_floor(graph: Graph, node: Node, target: int, windows: tuple[str, ...]) -> dict | None:
    """The fold with the fewest engine DSPs (DSP48E2 multipliers) whose engine meets ``target``."""
    best = None
    for fold in layer_candidates(graph, node, ("dsp", "cascade"), padded_pe=True):
        try:
            cycles, dsps, _ = engine_figures(graph, node, fold, windows)
        except ValueError:
            continue
        if cycles <= target and (best is None or (dsps, -cycles) < (best["dsp"], -best["cycles"])):
            best = {"dsp": dsps, "cycles": cycles, "simd": fold.simd, "pe": fold.pe, "pixels": fold.pixels,
                    "multiplier": fold.multiplier}
    return best


def padded_floor(graph: Graph, node: Node, target: int, windows: tuple[str, ...],
                 padded: tuple[str, ...] = ("simd", "pe")) -> dict | None:
    """What-if: the fewest DSPs when the lane counts named in ``padded`` (``"simd"``, ``"pe"``) may be any
    count up to the channels (channels padded with zeros to a whole number of lanes) and the others divide
    them, the ``dsp`` multiplier's plans.  The engine builds padded ``pe`` (not ``simd``)."""
    view = op_def(node.op).engine_args(node, graph)
    a = node.attrs
    if view["depthwise"]:
        return None
    in_ch, out_ch, k = view["in_ch"], view["out_ch"], view["k"]
    pixel_options = sorted({f.pixels for f in layer_candidates(graph, node)})
    best = None
    for pixels in pixel_options:
        base = check_conv_config(view["weight"], w_bits=a["w_bits"], a_bits=a["a_bits"], in_ch=in_ch, out_ch=out_ch,
                                 k=k, groups=view["groups"], simd=1, pe=1, pixels=pixels, name=node.name)
        for simd in lane_counts(in_ch, "simd" in padded):
            chunks = -(-in_ch // simd)
            for pe in lane_counts(out_ch, "pe" in padded):
                folds = -(-out_ch // pe)
                geo = dataclasses.replace(base, simd=simd, pe=pe, chunks=chunks, folds=folds,
                                          beats_per_group=k * k * chunks, beats_per_fold=k * k * chunks)
                try:        # the plan depends on the lanes (slot padding), as the engine's choice does
                    plan = choose_plan(geo, a["w_bits"], a["a_bits"], node.name, stride=view["stride"],
                                       windows=windows, signed_act=view["signed_act"])
                except ValueError:
                    continue
                geo = geometry_for_plan(geo, plan)
                cycles = frame_cycles(geo, view["out_hw"])
                if cycles > target:
                    continue
                dsps = cores_for(plan, geo) * dsps_per_core(plan)
                if best is None or (dsps, -cycles) < (best["dsp"], -best["cycles"]):
                    best = {"dsp": dsps, "cycles": cycles, "simd": simd, "pe": pe, "pixels": pixels,
                            "plan": f"{plan.kind} {plan.n_weights}x{plan.n_acts}"}
    return best


def layer_gap(graph: Graph, node: Node, target: int, windows: tuple[str, ...]) -> dict:
    a = node.attrs
    w, act, k = a["w_bits"], a["a_bits"], a.get("k", 1)
    macs = graph.node_macs(node.name)
    density = best_density(w, act, k)
    published = MIXQ_PUBLISHED.get(k, {}).get(w, {}).get(act)
    ideal = macs / target / density
    floor = engine_floor(graph, node, target, windows)
    row = {"layer": node.name, "w_bits": w, "a_bits": act, "k": k, "macs": macs, "best_macs_per_dsp": density,
           "published_macs_per_dsp": published, "ideal_dsp": round(ideal, 2), "floor": floor,
           "padded": padded_floor(graph, node, target, windows),
           "padded_pe": padded_floor(graph, node, target, windows, ("pe",)),
           "padded_simd": padded_floor(graph, node, target, windows, ("simd",)),
           "unpadded": padded_floor(graph, node, target, windows, ())}
    if floor:
        achieved = macs / (floor["cycles"] * floor["dsp"])
        row["achieved_macs_per_dsp"] = round(achieved, 3)
        row["time_slack"] = round(target / floor["cycles"], 4)
        row["lane_loss"] = round(density / achieved, 4)
    return row


def search_at(graph: Graph, target: int, utilization: float, dsp_limit: int | None = None,
              lut_limit: int | None = None) -> dict:
    """The folding search's closest assignment at ``target`` under the realistic budget (its DSP or LUT limit
    replaced by ``dsp_limit`` / ``lut_limit`` when given: a what-if), and its overflow."""
    board = get_board("ultra96")
    limit = accelerator_limit(Resources(**board.budget.to_dict()), utilization, Resources(**board.shell.to_dict()))
    if dsp_limit is not None:
        limit = dataclasses.replace(limit, dsp=dsp_limit)
    if lut_limit is not None:
        limit = dataclasses.replace(limit, lut=lut_limit)
    started = time.perf_counter()
    result = fit_at(graph, limit, target)
    per_layer: dict[str, dict] = {}
    if result.folding:
        owner = owners(graph)
        for stage in plan_stages(graph, result.folding).stages:
            layer = owner.get(stage.node, stage.node)
            used = per_layer.setdefault(layer, {"dsp": 0, "lut": 0, "bram36": 0.0, "cycles": 0})
            used["dsp"] += stage.resources.dsp
            used["lut"] += stage.resources.lut
            used["bram36"] += stage.resources.bram36
            used["cycles"] = max(used["cycles"], stage.cycles)
    return {"per_layer": per_layer, "limit": limit.to_dict(), "failure": result.failure, "resources": result.resources.to_dict(),
            "cycles": result.cycles, "seconds": round(time.perf_counter() - started, 1),
            "folding": {name: fold.to_dict() for name, fold in result.folding.items()}}


def _sweep_table(rows: list[dict] | None, key: str, label: str, intro: str) -> list[str]:
    """The markdown lines of one what-if sweep (none when it was not run)."""
    if not rows:
        return []
    lines = ["", intro, "", f"| {label} | fits | DSP | LUT | BRAM36 | layers on LUT multipliers |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        r = row["resources"]
        luts = [n for n, f in row["folding"].items() if f.get("multiplier") == "lut"]
        lines.append(f"| {row[key]:,} | {'yes' if row['fits'] else 'no: ' + row['failure']} | {r['dsp']} | "
                     f"{r['lut']:,} | {r['bram36']:g} | {', '.join(luts) or '-'} |")
    return lines


def markdown(report: dict) -> str:
    m, t = report["machine"], report["target"]
    lines = ["# UltraNet MixQ at 84,480 cycles/frame: where the DSPs go", "",
             f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}) in {report['seconds']:.0f} s.  "
             f"Preset bitw {report['bitw']} bita {report['bita']}, target T = {t:,} cycles/frame.  Analytic: the "
             "engine's own figures (`engine_figures`, `frame_cycles`, `cores_for`), no simulation.", "",
             "Packing density: mixq's best exact plan (MACs per DSP48E2 per cycle) and DeepBurning-MixQ's published "
             "table.  Floor: the fewest engine DSPs of any fold (dsp or cascade multipliers) that meets T.  "
             "floor / ideal = time slack (T / the fold's cycles: simd divides the input channels, output "
             "channels come in whole folds of pe, pixel groups are whole) x lane loss (best density / the "
             "fold's achieved density: a filter group's end fields, padded slots and channels).  The engine "
             "pads output channels (pe any count; pe padded = its floor); padded: a what-if with simd any "
             "count too (input channels zero-padded, not built); unpadded: pe dividing the output channels "
             "(the engine before output-channel padding).", "",
             "| layer | w/a | MACs | MACs/DSP mixq / published | ideal DSP | floor DSP | fold simd/pe/pixels (mult.) "
             "| fold cycles | time slack | lane loss | padded DSP | padded fold | pe padded DSP | simd padded DSP "
             "| unpadded DSP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["layers"]:
        f, p = r["floor"] or {}, r["padded"] or {}
        pub = "-" if r["published_macs_per_dsp"] is None else f"{r['published_macs_per_dsp']:g}"
        lines.append(
            f"| {r['layer']} | w{r['w_bits']}a{r['a_bits']} | {r['macs']:,} | {r['best_macs_per_dsp']:g} / {pub} | "
            f"{r['ideal_dsp']:.1f} | {f.get('dsp', '-')} | {f.get('simd')}/{f.get('pe')}/{f.get('pixels')} "
            f"({f.get('multiplier')}) | {f.get('cycles', 0):,} | {r.get('time_slack', 0):.3f} | "
            f"{r.get('lane_loss', 0):.3f} | {p.get('dsp', '-')} | "
            f"{p.get('simd')}/{p.get('pe')}/{p.get('pixels')} {p.get('plan', '')} | "
            f"{(r['padded_pe'] or {}).get('dsp', '-')} | {(r['padded_simd'] or {}).get('dsp', '-')} | "
            f"{(r.get('unpadded') or {}).get('dsp', '-')} |")
    tot = report["totals"]
    lines += ["", f"Totals: ideal {tot['ideal_dsp']:.1f} DSPs, engine floor {tot['floor_dsp']}, padded what-if "
                  f"{tot['padded_dsp']} (pe padded only {tot['padded_pe_dsp']}, simd padded only "
                  f"{tot['padded_simd_dsp']}, unpadded {tot.get('unpadded_dsp', '-')}); the realistic budget's DSP "
                  f"limit is {tot['dsp_limit']}.", ""]
    s = report.get("search")
    if s:
        r, lim = s["resources"], s["limit"]
        lines += [f"Folding search at T (`fit_at`, {s['seconds']:g} s): "
                  f"{s['failure'] or 'fits'}; closest assignment {r['dsp']} DSP / {lim['dsp']}, "
                  f"{r['lut']:,} LUT / {lim['lut']:,}, {r['ff']:,} FF, {r['bram36']:g} BRAM36 / {lim['bram36']:g}.", "",
                  "| layer | simd/pe/pixels | multiplier | requant | layer cycles | DSP | LUT | BRAM36 |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, f in s["folding"].items():
            u = s["per_layer"].get(name, {})
            lines.append(f"| {name} | {f['simd']}/{f.get('pe', 1)}/{f.get('pixels', 1)} | "
                         f"{f.get('multiplier', 'dsp')} | {f.get('requant', 'dsp')} | {u.get('cycles', 0):,} | "
                         f"{u.get('dsp', 0)} | {u.get('lut', 0):,} | {u.get('bram36', 0):g} |")
    lines += _sweep_table(report.get("lut_sweep"), "lut_limit", "LUT limit",
                          "What-if: the same search at T with only the LUT limit changed (DSP, FF, BRAM as above): "
                          "how many LUTs the target needs at the realistic DSP limit.")
    lines += _sweep_table(report.get("dsp_sweep"), "dsp_limit", "DSP limit",
                          "What-if: the same search at T with only the DSP limit changed (LUT, FF, BRAM as above).")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, default=PRESETS["mixq"][2])
    parser.add_argument("--search", action="store_true", help="also run the folding search at the target (~1 min)")
    parser.add_argument("--sweep-dsp", default="",
                        help="comma-separated DSP limits: the search at the target with each (a what-if, ~1 min each)")
    parser.add_argument("--sweep-lut", default="",
                        help="comma-separated LUT limits: the search at the target with each (a what-if, ~1 min each)")
    parser.add_argument("--utilization", type=float, default=DEFAULT_UTILIZATION)
    args = parser.parse_args(argv)
    if args.target < 1:
        parser.error(f"--target {args.target} must be a positive cycle count")
    started = time.perf_counter()
    report = {"machine": machine(), "target": args.target}
    bitw, bita, _, _ = PRESETS["mixq"]
    graph = calibrated_graph("UltraNet", bitw=bitw, bita=bita, shape=FULL_SHAPE)
    windows = NodeCosts(graph).engine_windows()
    layers = [layer_gap(graph, n, args.target, windows) for n in graph if op_def(n.op).folded]
    board = get_board("ultra96")
    limit = accelerator_limit(Resources(**board.budget.to_dict()), args.utilization,
                              Resources(**board.shell.to_dict()))
    report |= {"bitw": bitw, "bita": bita, "layers": layers,
               "totals": {"ideal_dsp": round(sum(r["ideal_dsp"] for r in layers), 1),
                          "floor_dsp": sum(r["floor"]["dsp"] for r in layers if r["floor"]),
                          "padded_dsp": sum(r["padded"]["dsp"] for r in layers if r["padded"]),
                          "padded_pe_dsp": sum(r["padded_pe"]["dsp"] for r in layers if r["padded_pe"]),
                          "padded_simd_dsp": sum(r["padded_simd"]["dsp"] for r in layers if r["padded_simd"]),
                          "unpadded_dsp": sum(r["unpadded"]["dsp"] for r in layers if r["unpadded"]),
                          "dsp_limit": limit.dsp}}
    try:
        sweep = [int(v) for v in args.sweep_dsp.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--sweep-dsp {args.sweep_dsp!r} must be comma-separated integers")
    try:
        lut_sweep = [int(v) for v in args.sweep_lut.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--sweep-lut {args.sweep_lut!r} must be comma-separated integers")
    if any(v < 1 for v in sweep + lut_sweep):
        parser.error("--sweep-dsp and --sweep-lut limits must be positive")
    if args.search:
        report["search"] = search_at(graph, args.target, args.utilization)
    if sweep:
        report["dsp_sweep"] = []
        for dsp in sweep:
            found = search_at(graph, args.target, args.utilization, dsp)
            report["dsp_sweep"].append({"dsp_limit": dsp, "fits": not found["failure"], "failure": found["failure"],
                                        "resources": found["resources"], "cycles": found["cycles"],
                                        "folding": found["folding"]})
    if lut_sweep:
        report["lut_sweep"] = []
        for lut in lut_sweep:
            found = search_at(graph, args.target, args.utilization, lut_limit=lut)
            report["lut_sweep"].append({"lut_limit": lut, "fits": not found["failure"], "failure": found["failure"],
                                        "resources": found["resources"], "cycles": found["cycles"],
                                        "folding": found["folding"]})
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "mixq_gap.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    atomic_write_text(RESULTS / "mixq_gap.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
