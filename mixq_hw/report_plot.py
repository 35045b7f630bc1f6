"""The report's picture: per-layer cycles, DSPs, LUTs and BRAM36, and the totals against the budget.

Every layer of the report is drawn (the requantizers' DSPs and the LUT-multiplier
layers' LUTs included), coloured by what carries its arithmetic, the bottleneck
outlined; the last panel sets the totals (estimate, and Vivado's when folded in)
against the budget at 100 %.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_layers", "plot_png", "layer_kind", "KIND_COLORS"]

#: what carries a layer's work -> bar colour
KIND_COLORS = {"DSP-packed conv/linear": "tab:blue", "LUT-multiplier conv/linear": "tab:orange",
               "requantizer": "tab:green", "other (pool, window, concat, ...)": "tab:gray"}
_RESOURCES = (("dsp", "DSP48E2"), ("lut", "LUT"), ("bram36", "BRAM36"))


def layer_kind(row: dict) -> str:
    """The legend entry of a report layer row."""
    if row["op"] in ("conv", "linear"):
        return ("LUT-multiplier conv/linear" if row.get("packing", {}).get("multiplier") == "lut"
                else "DSP-packed conv/linear")
    return "requantizer" if row["op"] == "requant" else "other (pool, window, concat, ...)"


def plot_layers(report: dict) -> Figure:
    """The plot as a matplotlib Figure with no pyplot state behind it: it shows in a notebook and saves with
    ``savefig`` under any backend."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = report["layers"]
    names = [r["name"] for r in rows]
    colors = [KIND_COLORS[layer_kind(r)] for r in rows]
    edges = ["red" if r["bottleneck"] else "none" for r in rows]
    fig = Figure(figsize=(max(7, 0.45 * len(rows) + 3), 13))
    axes = fig.subplots(5, 1, gridspec_kw={"height_ratios": [1.2, 1, 1, 1, 1.1]})
    ax = axes[0]
    ax.bar(names, [r["cycles_per_frame"] for r in rows], color=colors, edgecolor=edges, linewidth=1.5)
    ax.axhline(report["cycles_per_frame"], color="red", linestyle="--", linewidth=1)
    ax.set_ylabel("cycles / frame")
    ax.set_title(f"{report['network']}: {report['cycles_per_frame']:,} cycles/frame, "
                 f"{report['fps']:,.0f} fps at {report['clock_mhz']:g} MHz (estimates)")
    handles = [Patch(color=c, label=k) for k, c in KIND_COLORS.items() if c in colors]
    handles.append(Patch(facecolor="white", edgecolor="red", label="bottleneck (dashed: its interval)"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    for ax, (key, label) in zip(axes[1:4], _RESOURCES):
        values = [r["resources"][key] for r in rows]
        ax.bar(names, values, color=colors, edgecolor=edges, linewidth=1.5)
        budget = report["budget"].get(key)
        ax.set_ylabel(f"{label} (estimate)")
        ax.set_ylim(bottom=0, top=max(1, max(values, default=0)) * 1.1)
        if budget:
            ax.set_title(f"{label}: {sum(values):,g} of {budget:,g} "
                         f"({100 * sum(values) / budget:.1f} % of the budget)", fontsize=9)
    for ax in axes[:4]:
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    _totals_panel(axes[4], report)
    fig.tight_layout()
    return fig


def plot_png(report: dict) -> bytes:
    """:func:`plot_layers` as PNG bytes."""
    buf = io.BytesIO()
    plot_layers(report).savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _totals_panel(ax, report: dict) -> None:
    keys = ("dsp", "lut", "ff", "bram36")
    budget = report["budget"]
    series = [("estimate (accelerator)", report["resources"], "tab:blue")]
    if "synth" in report:
        series.append(("yosys (accelerator)", report["synth"], "tab:purple"))
    fill = report.get("utilization_with_shell")
    if fill:
        series.append(("estimate + shell", {k: row["total"] for k, row in fill["resources"].items()}, "tab:cyan"))
    used_v = report.get("vivado", {}).get("utilization", {}).get("used")
    if used_v:
        series.append(("Vivado (with the shell)", used_v, "tab:red"))
    width = 0.8 / len(series)
    for i, (label, values, color) in enumerate(series):
        xs = [k + (i - (len(series) - 1) / 2) * width for k in range(len(keys))]
        ys = [100 * values.get(k, 0) / budget[k] if budget.get(k) else 0 for k in keys]
        ax.bar(xs, ys, width=width, color=color, label=label)
    ax.axhline(100, color="black", linewidth=1.2, label="budget (100 %)")
    target = report.get("utilization_target")
    if target:
        ax.axhline(100 * target, color="black", linestyle=":", linewidth=1, label=f"target ({100 * target:g} %)")
    if fill:
        ax.axhline(100 * fill["warn_above"], color="orange", linestyle="--", linewidth=1,
                   label=f"warning line ({100 * fill['warn_above']:g} %)")
    ax.set_xticks(range(len(keys)), [k.upper() for k in keys])
    ax.set_ylabel("% of the board")
    ax.legend(fontsize=8, loc="upper left")
