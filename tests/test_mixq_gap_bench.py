"""benchmarks/mixq_gap.py: its lane-padding what-if agrees with the conv engine, which pads output channels
(pe any count) but not input channels; the search's one-target try (``fit_at``) it reports."""

from __future__ import annotations

import pytest

from benchmarks import mixq_gap
from benchmarks.common import calibrated_graph
from mixq_hw.estimate import Resources
from mixq_hw.folding import NodeCosts, layer_candidates
from mixq_hw.folding.costs import engine_figures
from mixq_hw.folding.search import fit_at
from mixq_hw.folding.spec import lane_counts
from mixq_hw.ops import op_def
from mixq_hw.pipeline import plan_stages


def test_lane_options() -> None:
    assert lane_counts(12, False) == [1, 2, 3, 4, 6, 12]
    # padded: the fewest lanes of every beat count ceil(64 / lanes)
    options = lane_counts(64, True)
    assert options[:8] == [1, 2, 3, 4, 5, 6, 7, 8] and 22 in options and 64 in options
    assert len({-(-64 // n) for n in options}) == len(options)


@pytest.mark.parametrize("target", [3_000, 12_000])
def test_pe_padded_floor_is_the_engines(target: int) -> None:
    graph = calibrated_graph("UltraNet", bitw="532555558", bita="733677665", shape=(3, 32, 64))
    windows = NodeCosts(graph).engine_windows()
    saved = 0
    for node in (n for n in graph if op_def(n.op).folded):
        engine = min((d for f in layer_candidates(graph, node, padded_pe=True) for c, d, _ in [_figures(graph, node, f, windows)]
                      if c <= target), default=None)
        pe_padded = mixq_gap.padded_floor(graph, node, target, windows, padded=("pe",))
        assert (pe_padded and pe_padded["dsp"]) == engine, node.name
        unpadded = mixq_gap.padded_floor(graph, node, target, windows, padded=())
        padded = mixq_gap.padded_floor(graph, node, target, windows)
        assert padded is not None and unpadded is not None and engine is not None, node.name
        assert padded["dsp"] <= engine <= unpadded["dsp"], node.name
        saved += unpadded["dsp"] - engine
    assert saved > 0          # padding output channels lets some layer meet the target with fewer DSPs


def _figures(graph, node, fold, windows) -> tuple[int, int, int]:
    try:
        return engine_figures(graph, node, fold, windows)
    except ValueError:
        return (10**12, 0, 0)


def test_fit_at_reports_fit_and_overflow() -> None:
    graph = calibrated_graph("UltraNet", bitw="532555558", bita="733677665", shape=(3, 16, 32))
    target = plan_stages(graph, {}).cycles_per_frame() // 8
    limit = Resources(dsp=360, lut=70_560, ff=141_120, bram36=216)
    fit = fit_at(graph, limit, target)
    assert fit.failure == "" and fit.cycles <= target and fit.resources.fits(limit)
    plan = plan_stages(graph, fit.folding)            # the folding it returns is the one it costed
    assert (plan.cycles_per_frame(), plan.resources()) == (fit.cycles, fit.resources)
    tight = fit_at(graph, Resources(dsp=8, lut=3_000, ff=141_120, bram36=216), target)
    assert tight.failure.startswith(("over budget", "needs", "the multipliers")), tight.failure
