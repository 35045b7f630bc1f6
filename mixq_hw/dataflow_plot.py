"""A picture of the pipeline: every stage as a box at its depth, with its rate and the FIFO depths, as PNG.

A stage's rate is its cycles per frame against the pipeline's interval (the bottleneck runs at 100 %);
the box's fill shows it, the bottleneck is outlined in red, bypass FIFOs carry their depth in beats.
Drawn with matplotlib only (no Graphviz): columns are the stages' depths from the input, rows their order.
"""

from __future__ import annotations

import io

__all__ = ["dataflow_figure", "dataflow_png"]


def _depths(stages: list[dict]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for st in stages:
        depth[st["name"]] = 1 + max((depth.get(src, 0) for src in st["sources"]), default=0)
    return depth


def dataflow_figure(report: dict):
    """The picture as a matplotlib Figure (no pyplot state)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    stages = report["stages"]
    interval = max(st["cycles_per_frame"] for st in stages)
    depth = _depths(stages)
    columns: dict[int, list[str]] = {}
    for st in stages:
        columns.setdefault(depth[st["name"]], []).append(st["name"])
    width, height = max(columns) + 2, max(len(v) for v in columns.values())
    inches = min(40.0, max(8.0, 1.9 * width))
    font = max(3.5, 6.5 * min(1.0, inches / (1.9 * width)))
    fig = Figure(figsize=(inches, max(3, 1.1 * height + 1.2)))
    ax = fig.subplots()
    where = {"s_axis": (0, (height - 1) / 2)}
    for col, names in columns.items():
        for row, name in enumerate(names):
            where[name] = (col, row + (height - len(names)) / 2)
    out_name = next((st["name"] for st in stages if st.get("output")), stages[-1]["name"])
    where["m_axis"] = (max(columns) + 1, where[out_name][1])
    for st in stages:
        for src in st["sources"] or ["s_axis"]:
            x0, y0 = where.get(src, where["s_axis"])
            x1, y1 = where[st["name"]]
            ax.annotate("", (x1 - 0.42, y1), (x0 + 0.42, y0), arrowprops={"arrowstyle": "->", "color": "0.4"})
    ax.annotate("", (where["m_axis"][0] - 0.3, where["m_axis"][1]), (where[out_name][0] + 0.42, where[out_name][1]),
                arrowprops={"arrowstyle": "->", "color": "0.4"})
    for st in stages:
        x, y = where[st["name"]]
        rate = st["cycles_per_frame"] / interval
        ax.add_patch(FancyBboxPatch((x - 0.42, y - 0.35), 0.84, 0.7, boxstyle="round,pad=0.02",
                                    facecolor=(1.0, 1 - 0.6 * rate, 1 - 0.8 * rate),
                                    edgecolor="red" if st["cycles_per_frame"] == interval else "0.3",
                                    linewidth=2.5 if st["cycles_per_frame"] == interval else 0.8))
        label = f"{st['name']}\n{st['kind']}\n{st['cycles_per_frame']:,} cyc ({100 * rate:.0f} %)"
        if "fifo_depth" in st:
            label += f"\nFIFO {st['fifo_depth']:,} beats"
        ax.text(x, y, label, ha="center", va="center", fontsize=font)
    for port in ("s_axis", "m_axis"):
        ax.text(*where[port], port, ha="center", va="center", fontsize=8, weight="bold")
    ax.set_xlim(-0.6, max(columns) + 1.6)
    ax.set_ylim(-0.6, height - 0.4)
    ax.invert_yaxis()
    ax.axis("off")
    ax.set_title(f"{report.get('network') or 'network'}: stages at their depth, rate = cycles per frame / "
                 f"interval {interval:,} (red: the bottleneck)", fontsize=9)
    fig.tight_layout()
    return fig


def dataflow_png(report: dict) -> bytes:
    """:func:`dataflow_figure` as PNG bytes."""
    buf = io.BytesIO()
    dataflow_figure(report).savefig(buf, format="png", dpi=90)
    return buf.getvalue()
