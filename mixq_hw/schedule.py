"""Row schedules of a streaming network, and the bypass FIFO depths they imply.

Every streaming layer emits output row ``y`` once it has read input row
``f(y) = a*y + b`` (a 3x3 convolution with padding 1 needs row ``y+1``; a 2x2
pool needs ``2y+1``).  Composing these maps along the two branches into a
concat tells, for every row of their common ancestor, how far the faster
branch can run ahead of the slower one; its FIFO must hold that lead, or the
fork that feeds both branches stalls and the pipeline deadlocks.  The depth is
computed from the graph, not found by simulating a huge FIFO.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .graph.checks import GraphError, Node
from .ops.registry import RowMap, op_def

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["row_map", "ancestor_maps", "bypass_fifo_depth", "ROW_MARGIN"]

#: Rows of slack on top of the computed lead: one for the skew inside a row
#: (a row leaves a layer beat by beat) and one for the layers' own pipelining.
ROW_MARGIN = 2


def row_map(node: Node) -> RowMap:
    """``(a, b)``: output row ``y`` of ``node`` needs its input rows up to ``a*y + b``."""
    found = op_def(node.op).row_map(node)
    if found is None:
        raise GraphError(f"node {node.name!r}: op {node.op!r} cannot sit on a branch that meets a concat "
                         "(it reads its whole input before producing a row)")
    return found


def ancestor_maps(graph: "Graph", name: str) -> dict[str, RowMap]:
    """For every ancestor of ``name``: the map from ``name``'s rows to the last ancestor row they need."""
    maps: dict[str, RowMap] = {name: (1, 0)}
    order = [n.name for n in graph]
    for node_name in reversed(order[: order.index(name) + 1]):
        if node_name not in maps:
            continue
        a, b = maps[node_name]
        node = graph.node(node_name)
        if not node.inputs:
            continue
        na, nb = row_map(node)
        for src in node.inputs:
            # row y of `name` needs row a*y+b of node_name, which needs row na*(a*y+b)+nb of src
            cand = (na * a, na * b + nb)
            if src in maps and maps[src] != cand:
                old = maps[src]
                if old[0] != cand[0]:
                    raise GraphError(f"node {src!r} reaches {name!r} along paths of different scale")
                cand = (old[0], max(old[1], cand[1]))
            maps[src] = cand
    return maps


def bypass_fifo_depth(graph: "Graph", concat: Node, beats_per_row: list[int]) -> list[int]:
    """FIFO depth (beats) for each input of ``concat``; 0 for the branch that arrives last (unless several
    branches tie for last).

    ``beats_per_row[i]``: how many stream beats one row of input ``i`` is at the concat.
    """
    maps = [ancestor_maps(graph, src) for src in concat.inputs]
    common = set(maps[0]).intersection(*maps[1:])
    if not common:
        raise GraphError(f"concat {concat.name!r}: its inputs share no ancestor")
    order = {n.name: i for i, n in enumerate(graph)}
    ancestor = max(common, key=order.__getitem__)
    scales = {m[ancestor][0] for m in maps}
    if len(scales) != 1:
        raise GraphError(f"concat {concat.name!r}: its inputs are at different scales of {ancestor!r}")
    scale = scales.pop()
    slowest = max(m[ancestor][1] for m in maps)
    # Branches that need the same ancestor rows (a 1x1 conv beside its own input, as in Tiny-YOLOv3's
    # concat) differ by pipeline latency only, which rows do not show: each gets ROW_MARGIN rows.
    tied = sum(m[ancestor][1] == slowest for m in maps) > 1
    # A windowed layer (conv k > 1, pool) at the bottleneck rate emits each row over a whole row time after
    # the rows it needs arrive: one more row of lag per such layer on the slowest branch.
    lagging = max(_windowed_layers(graph, set(m) - common) for m in maps if m[ancestor][1] == slowest)
    depths = []
    for m, row_beats in zip(maps, beats_per_row):
        lead = slowest - m[ancestor][1]
        depths.append(0 if lead == 0 and not tied else
                      (math.ceil(lead / scale) + ROW_MARGIN + lagging) * row_beats)
    return depths


def _windowed_layers(graph: "Graph", names: set[str]) -> int:
    """How many of ``names`` emit a row only after reading later input rows (a row map other than (1, 0))."""
    return sum(row_map(graph.node(name)) != (1, 0) for name in names)
