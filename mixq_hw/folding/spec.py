"""Foldings as data: which foldings a layer allows, checking a folding, and its JSON file.

A folding maps every conv/linear layer of a Graph to a :class:`~mixq_hw.pipeline.LayerFold`
(``simd`` input lanes, ``pe`` output lanes, ``pixels`` output pixels per group).  The
constraints are the ConvEngine's (``mixq_hw.layers.conv_weights.check_conv_config``):
``simd`` divides the input channels (``in_features`` for linear), ``pe`` is at most the
output channels (a ``pe`` not dividing them pads the last fold with zero filters, which the
GroupToRaster after the requant drops; a depthwise layer's ``pe`` divides them), ``pixels`` is at most the output width (1 for linear; it need not divide
the width: the last pixel group of a row may be ragged), and a depthwise layer has
``pe == simd``.  A fold's ``multiplier`` is ``"dsp"`` (packed DSP48E2 cores, the
default) or ``"lut"`` (shift-and-add LUT cores); a folding file writes it only when
it is ``"lut"``.  Checking them here, before any hardware is built, gives one clear
error naming the layer, the value and the rule.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

from ..graph import Graph, Node
from ..ops import op_def
from ..layers.weight_rom import WEIGHT_STORES
from ..ops.conv import engine_spec
from ..packing.protocol import plan_from_dict
from ..pipeline import LayerFold

__all__ = ["FoldingError", "check_folding", "load_folding", "save_folding", "layer_candidates",
           "fold_layers", "FOLD_KEYS", "MULTIPLIERS", "REQUANTIZERS", "WEIGHT_STORES"]

#: The integer keys of one layer's entry in a folding file.
FOLD_KEYS = ("simd", "pe", "pixels")
#: A layer's multiplier kinds (the optional ``"multiplier"`` key of an entry, default ``"dsp"``); ``"cascade"``
#: is packed DSP48E2s summing simd lanes over the P cascade (:mod:`mixq_hw.layers.conv_cascade`).
MULTIPLIERS = ("dsp", "lut", "cascade")
#: The requantizer kinds a layer's accumulators may go through (the optional ``"requant"`` key of an entry,
#: default ``"dsp"``): DSP48E2 lanes (:mod:`mixq_hw.layers.requant`) or thresholds in LUTs
#: (:mod:`mixq_hw.layers.threshold`).
REQUANTIZERS = ("dsp", "threshold")


class FoldingError(ValueError):
    """A folding that no hardware can implement: names the layer, the value and the constraint."""


def fold_layers(graph: Graph) -> list[Node]:
    """The conv/linear nodes of ``graph`` in order: the layers a folding assigns."""
    return [n for n in graph if op_def(n.op).folded]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


#: The largest ``pixels`` the candidates offer that does not divide the output width (ragged groups);
#: it keeps the candidate list small: a 320-wide layer gets 31 pixel values, not 320.
MAX_RAGGED_PIXELS = 32


def _pixel_options(width: int) -> list[int]:
    """Candidate ``pixels`` for an output ``width``: its divisors, and up to MAX_RAGGED_PIXELS the smallest
    ``pixels`` of every group count ``ceil(width / pixels)`` (a larger one has the same cycles, more lanes)."""
    ragged = {p for p in range(1, min(width, MAX_RAGGED_PIXELS) + 1)
              if p == 1 or -(-width // p) < -(-width // (p - 1))}
    return sorted(ragged | set(_divisors(width)))


def lane_counts(channels: int, padded: bool = False) -> list[int]:
    """Lane counts for ``channels``: its divisors, or with ``padded`` the fewest lanes of every beat count
    ``ceil(channels / lanes)`` (a padded last beat; a larger count has the same beats, more lanes).  The
    divisors are among the padded counts."""
    if not padded:
        return _divisors(channels)
    return [n for n in range(1, channels + 1) if n == 1 or -(-channels // n) < -(-channels // (n - 1))]


def _limits(graph: Graph, node: Node) -> dict[str, Any]:
    """What each lane count of ``node`` must divide, and whether it is depthwise."""
    view = op_def(node.op).engine_args(node, graph)
    return {**view["widths"], "depthwise": view["depthwise"]}


def layer_candidates(graph: Graph, node: Node | str, multipliers: tuple[str, ...] = ("dsp",), *,
                     padded_pe: bool = False) -> list[LayerFold]:
    """Every folding the ConvEngine accepts for one conv/linear layer (before packing-plan checks), for each
    of the ``multipliers`` kinds (``"dsp"``, ``"lut"``); ``padded_pe=True`` adds the ``pe`` values that do not
    divide the output channels (one per fold count)."""
    node = graph.node(node) if isinstance(node, str) else node
    bad = [m for m in multipliers if m not in MULTIPLIERS]
    if bad:
        raise ValueError(f"multipliers {bad} are not among {MULTIPLIERS}")
    lim = _limits(graph, node)
    simds = _divisors(lim["simd"][1])
    pes = lane_counts(lim["pe"][1], padded_pe and not lim["depthwise"])
    pixels = _pixel_options(lim["pixels"][1])
    if lim["depthwise"]:
        return [LayerFold(s, s, x, m) for m in multipliers if m != "cascade" for s in simds for x in pixels]
    # a cascade sums simd lanes: dense layers with at least two
    return [LayerFold(s, p, x, m) for m in multipliers for s in simds if s > 1 or m != "cascade"
            for p in pes for x in pixels]


def check_folding(graph: Graph, folding: Mapping[str, LayerFold], *, where: str = "") -> dict[str, LayerFold]:
    """``folding`` completed with the unit fold for missing layers; FoldingError for any impossible entry.

    ``where`` (e.g. a file name) prefixes the messages.
    """
    prefix = f"{where}: " if where else ""
    layers = {n.name: n for n in fold_layers(graph)}
    if not isinstance(folding, Mapping):
        raise FoldingError(f"{prefix}a folding maps layer names to LayerFold, got {type(folding).__name__}")
    for name, fold in folding.items():
        if name not in layers:
            if name in graph:
                raise FoldingError(f"{prefix}layer {name!r} is a {graph.node(name).op} node, not a conv/linear "
                                   f"layer of graph {graph.name!r}; folded layers: {', '.join(layers) or 'none'}")
            raise FoldingError(f"{prefix}unknown layer {name!r}: graph {graph.name!r} has the conv/linear "
                               f"layers {', '.join(layers) or 'none'}")
        if not isinstance(fold, LayerFold):
            raise FoldingError(f"{prefix}layer {name!r}: expected a LayerFold, got {fold!r}")
        lim = _limits(graph, layers[name])
        for key in FOLD_KEYS:
            value = getattr(fold, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FoldingError(f"{prefix}layer {name!r}: {key} {value!r} must be a positive integer")
            what, total = lim[key]
            if key == "pixels" or (key == "pe" and not lim["depthwise"]):
                if key == "pe" and value > total:
                    raise FoldingError(f"{prefix}layer {name!r}: pe {value} exceeds the {what} {total} "
                                       f"(pe may be 1..{total}; one not dividing it pads the last fold)")
                if value > total:
                    raise FoldingError(f"{prefix}layer {name!r}: pixels {value} exceeds the {what} {total} "
                                       f"(pixels may be 1..{total}; it need not divide it)")
            elif total % value:
                raise FoldingError(f"{prefix}layer {name!r}: {key} {value} does not divide the {what} {total} "
                                   f"({key} must divide it; options: {_divisors(total)})")
        if fold.multiplier not in MULTIPLIERS:
            raise FoldingError(f"{prefix}layer {name!r}: multiplier {fold.multiplier!r} must be one of "
                               f"{', '.join(MULTIPLIERS)}")
        if fold.requant not in REQUANTIZERS:
            raise FoldingError(f"{prefix}layer {name!r}: requant {fold.requant!r} must be one of "
                               f"{', '.join(REQUANTIZERS)}")
        if fold.weights not in WEIGHT_STORES:
            raise FoldingError(f"{prefix}layer {name!r}: weights {fold.weights!r} must be one of "
                               f"{', '.join(WEIGHT_STORES)}")
        if fold.multiplier == "cascade" and (lim["depthwise"] or fold.simd < 2):
            raise FoldingError(f"{prefix}layer {name!r}: multiplier 'cascade' sums simd lanes over the DSP48E2 "
                               f"cascade: it needs a dense layer and simd >= 2, not simd {fold.simd}"
                               f"{' (depthwise)' if lim['depthwise'] else ''}")
        if lim["depthwise"] and fold.pe != fold.simd:
            raise FoldingError(f"{prefix}layer {name!r} is depthwise: pe {fold.pe} must equal simd {fold.simd} "
                               f"(a lane is one channel)")
        if fold.plan is not None:
            node = layers[name]
            try:
                engine_spec(node, op_def(node.op).engine_args(node, graph), fold)
            except (ValueError, AttributeError) as err:
                raise FoldingError(f"{prefix}layer {name!r}: its packing plan does not fit the layer: {err}") \
                    from None
    return {name: folding.get(name, LayerFold()) for name in layers}


def load_folding(path: str | PathLike, graph: Graph) -> dict[str, LayerFold]:
    """Read a folding file (JSON ``{"layer": {"simd": 8, "pe": 16, "pixels": 2}}``) and check it against ``graph``.

    Missing keys of an entry default to 1 (``"multiplier"`` and ``"requant"`` to ``"dsp"``, ``"weights"`` to
    ``"bram"``; ``"plan"``, a
    packing plan's ``to_dict()`` that pins the layer's plan, to the planner's choice); layers not in the file
    get the unit fold.  A pinned plan that does not fit its layer is refused naming the layer.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FoldingError(f"{path}: folding file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FoldingError(f"{path}: not a JSON folding file ({err})") from None
    if not isinstance(raw, dict):
        raise FoldingError(f"{path}: a folding file holds a JSON object {{layer: {{simd, pe, pixels}}}}, "
                           f"got {type(raw).__name__}")
    folding: dict[str, LayerFold] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise FoldingError(f"{path}: layer {name!r}: entry must be an object like "
                               f'{{"simd": 8, "pe": 16, "pixels": 2}}, got {entry!r}')
        unknown = sorted(set(entry) - set(FOLD_KEYS) - {"multiplier", "plan", "requant", "weights"})
        if unknown:
            raise FoldingError(f"{path}: layer {name!r}: unknown key(s) {unknown}; allowed: {', '.join(FOLD_KEYS)}, "
                               f"multiplier, plan, requant, weights")
        entry = dict(entry)
        if "plan" in entry:
            try:
                entry["plan"] = plan_from_dict(entry["plan"])
            except (ValueError, TypeError, KeyError) as err:
                raise FoldingError(f"{path}: layer {name!r}: plan is not a packing plan record: {err}") from None
        for key, value in entry.items():
            if key == "plan":
                continue
            if key == "multiplier":
                if value not in MULTIPLIERS:
                    raise FoldingError(f"{path}: layer {name!r}: multiplier {value!r} must be one of "
                                       f"{', '.join(repr(m) for m in MULTIPLIERS)}")
            elif key == "requant":
                if value not in REQUANTIZERS:
                    raise FoldingError(f"{path}: layer {name!r}: requant {value!r} must be one of "
                                       f"{', '.join(repr(m) for m in REQUANTIZERS)}")
            elif key == "weights":
                if value not in WEIGHT_STORES:
                    raise FoldingError(f"{path}: layer {name!r}: weights {value!r} must be one of "
                                       f"{', '.join(repr(m) for m in WEIGHT_STORES)}")
            elif not isinstance(value, int) or isinstance(value, bool):
                raise FoldingError(f"{path}: layer {name!r}: {key} {value!r} must be a positive integer")
        folding[name] = LayerFold(**entry)
    return check_folding(graph, folding, where=str(path))


def save_folding(path: str | PathLike, folding: Mapping[str, LayerFold]) -> None:
    """Write ``folding`` as the JSON file :func:`load_folding` reads."""
    Path(path).write_text(json.dumps({name: fold.to_dict() for name, fold in folding.items()}, indent=2) + "\n")
