"""The build report: per layer bit widths, folding, packing, cycles and resources; totals against a budget.

``build_report`` turns a :class:`~mixq_hw.pipeline.PipelinePlan` into a JSON-ready
dict; ``write_report`` writes ``report.json``, a readable ``report.md`` and a
plot of per-layer cycles and resources.  Resource figures here are the layers'
estimates (labelled so); synthesis counts, when asked for, sit next to them.
"""

from __future__ import annotations

import json
from pathlib import Path

from .estimate import Resources
from .pipeline import PipelinePlan

__all__ = ["build_report", "write_report", "markdown"]


def _layer_rows(plan: PipelinePlan) -> list[dict]:
    graph = plan.graph
    per_node = plan.per_node()
    bottleneck = plan.bottleneck().node
    rows = []
    for node in graph:
        entry = per_node.get(node.name)
        if entry is None:
            continue
        res: Resources = entry["resources"]
        row = {
            "name": node.name, "op": node.op, "cycles_per_frame": entry["cycles"],
            "resources": res.to_dict(), "bottleneck": node.name == bottleneck,
            "stages": entry["stages"], "macs": graph.node_macs(node.name) if node.op in ("conv", "linear") else 0,
        }
        a = node.attrs
        if node.op in ("conv", "linear"):
            engine = plan.stage(node.name).component
            fold = plan.folding.get(node.name)
            row.update({
                "w_bits": a["w_bits"], "a_bits": a["a_bits"],
                "kernel": a.get("k", 1), "stride": a.get("stride", 1),
                "depthwise": a.get("groups", 1) > 1,
                "folding": fold.to_dict() if fold else None,
                "packing": {"kind": engine.plan.kind, "multiplier": engine.multiplier,
                            "plan_macs_per_dsp": engine.plan.macs_per_dsp,
                            "macs_per_dsp": round(float(engine.macs_per_dsp), 3), "dsps": engine.n_dsps},
            })
        elif node.op == "requant":
            row.update({"out_bits": a["out_bits"], "shift": a["shift"]})
        rows.append(row)
    return rows


def build_report(plan: PipelinePlan, *, clock_mhz: float, budget: Resources, board: str = "",
                 extra: dict | None = None) -> dict:
    """Everything the user wants to know about a design, as a JSON-ready dict."""
    cycles = plan.cycles_per_frame()
    fps = clock_mhz * 1e6 / cycles
    macs = plan.graph.macs()
    res = plan.resources()
    report = {
        "network": plan.graph.name, "board": board, "clock_mhz": clock_mhz,
        "cycles_per_frame": cycles, "fps": round(fps, 2), "gops": round(2 * macs * fps / 1e9, 2),
        "macs_per_frame": macs, "bottleneck": plan.bottleneck().name,
        "resources": res.to_dict(), "resources_are": "estimates", "budget": budget.to_dict(),
        "utilization": {k: round(v / budget.to_dict()[k], 4) if budget.to_dict()[k] else None
                        for k, v in res.to_dict().items()},
        "fifo_depths": plan.fifo_depths,
        "layers": _layer_rows(plan),
    }
    report.update(extra or {})
    return report


def markdown(report: dict) -> str:
    """A readable summary of a report dict."""
    lines = [
        f"# mixq build report: {report['network'] or 'network'} on {report['board'] or 'board'}",
        "",
        f"- **{report['cycles_per_frame']:,} cycles per frame** (bottleneck `{report['bottleneck']}`), "
        f"**{report['fps']:,.1f} fps** and {report['gops']:,.1f} GOPS at {report['clock_mhz']:g} MHz",
        f"- {report['macs_per_frame']:,} MACs per frame",
        "",
        "| resource | used (estimate) | budget | % |" + (" synthesis |" if "synth" in report else ""),
        "|---|---|---|---|" + ("---|" if "synth" in report else ""),
    ]
    for key in ("dsp", "lut", "ff", "bram36"):
        used, cap = report["resources"][key], report["budget"][key]
        row = f"| {key} | {used:,.1f} | {cap:,} | {100 * used / cap:.1f} |" if cap else f"| {key} | {used} | - | - |"
        if "synth" in report:
            row += f" {report['synth'].get(key, '-')} |"
        lines.append(row)
    if "verify" in report:
        v = report["verify"]
        origin = v.get("images_from", {}).get("text")
        lines += ["", f"Verified in simulation: {v['bit_exact']}/{v['images']} images bit-exact"
                      + (f" ({origin})" if origin else "") + f", {v['cycles_per_frame']:,} cycles per frame "
                      f"measured" + (f" ({v['backend']})" if v.get("backend") else "") + "."]
    per_layer = report.get("synth", {}).get("layers", {})
    lines += ["", "| layer | op | w/a bits | kernel | simd/pe/pixels | multiplier | MACs/DSP | cycles/frame | DSP | LUT "
                  "| BRAM36 |" + (" LUT (yosys) |" if per_layer else ""),
              "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if per_layer else "")]
    for row in report["layers"]:
        bits = f"{row['w_bits']}/{row['a_bits']}" if "w_bits" in row else ""
        kernel = (f"{row['kernel']}x{row['kernel']}/{row['stride']}" + (" dw" if row.get("depthwise") else "")
                  if "kernel" in row else "")
        fold = row.get("folding")
        fold_s = f"{fold['simd']}/{fold['pe']}/{fold['pixels']}" if fold else ""
        packing = row.get("packing", {})
        mult = packing.get("multiplier", "dsp") if packing else ""
        dens = (f"{packing['macs_per_dsp']:g}" if mult == "dsp" else "-") if packing else ""
        name = f"**{row['name']}** (bottleneck)" if row["bottleneck"] else row["name"]
        r = row["resources"]
        synth_lut = ""
        if per_layer:
            synth_lut = f" {per_layer[row['name']]['lut']:,} |" if row["name"] in per_layer else " - |"
        lines.append(f"| {name} | {row['op']} | {bits} | {kernel} | {fold_s} | {mult} | {dens} | "
                     f"{row['cycles_per_frame']:,} | {r['dsp']} | {r['lut']:,} | {r['bram36']:g} |" + synth_lut)
    if per_layer.get(""):
        lines += ["", f"yosys counts {per_layer['']['lut']:,} LUTs outside every layer's stages (the accelerator's "
                      "wiring and the AXI-Stream top)."]
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["layers"] if r["op"] in ("conv", "linear")]
    names = [r["name"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6, 0.6 * len(rows) + 2), 6), sharex=True)
    colors = ["tab:red" if r["bottleneck"] else "tab:blue" for r in rows]
    ax1.bar(names, [r["cycles_per_frame"] for r in rows], color=colors)
    ax1.set_ylabel("cycles / frame")
    ax1.set_title(f"{report['network']}: {report['cycles_per_frame']:,} cycles/frame, "
                  f"{report['fps']:,.0f} fps at {report['clock_mhz']:g} MHz")
    ax2.bar(names, [r["resources"]["dsp"] for r in rows], color="tab:green")
    ax2.set_ylabel("DSP48E2 (estimate)")
    ax2.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """``report.json``, ``report.md`` and ``report_layers.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report_layers.png"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report))
    _plot(report, paths[2])
    return paths
