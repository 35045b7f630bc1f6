"""First-frame latency estimated from the row schedules: the pipeline's fill plus one frame at its interval.

Every tensor streams at the pipeline's interval ``II`` (cycles per frame), so a row of a tensor with
``H`` rows takes ``II / H`` cycles.  A node emits its first output row once it has read input row ``b``
of its row map ``f(y) = a*y + b`` (:func:`mixq_hw.schedule.row_map`: a 3x3 convolution with padding 1
needs row 1, a 2x2 pool row 1); a node that reads its whole input first (a linear layer) waits for the
input's last row.  The first frame's last output beat leaves ``H_out - 1`` output rows after the first.
The layers' own pipeline registers and the input's burst rate are left out, so this is an estimate;
``--verify`` measures the latency in simulation and the report shows both.
"""

from __future__ import annotations

from .graph import GraphError
from .schedule import row_map

__all__ = ["fill_latency"]


def fill_latency(graph, cycles_per_frame: int) -> dict:
    """``{"cycles", "fill_cycles", "source"}``: the estimated cycle of the first frame's last output beat, and how
    much of it is the pipeline's fill (the part before the first output row)."""
    interval = float(cycles_per_frame)

    def rows(name: str) -> int:
        shape = graph.value_info(name).shape
        return int(shape[1]) if len(shape) == 3 else 1

    first: dict[str, float] = {}       # cycle at which a node's first output row is complete
    for node in graph:
        if node.op == "input":
            first[node.name] = interval / rows(node.name)
            continue
        ready = 0.0
        for src in node.inputs:
            try:
                _, lead = row_map(node)
                lead = min(lead, rows(src) - 1)
            except GraphError:        # reads its whole input before its first output
                lead = rows(src) - 1
            ready = max(ready, first[src] + max(lead, 0) * interval / rows(src))
        first[node.name] = ready
    out = graph.output_node.name
    fill = first[out]
    last = fill + (rows(out) - 1) * interval / rows(out)
    return {"cycles": round(last), "fill_cycles": round(fill),
            "source": "estimated from the row schedules (every tensor at the pipeline's interval; the layers' "
                      "own pipeline registers left out)"}
