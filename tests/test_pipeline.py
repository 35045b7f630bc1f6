"""Whole pipelines built from hand-made integer graphs: bit-exact against Graph.reference, under stalls."""

import numpy as np
import pytest
from networks import bypass_net, linear_net, plain_net, pool_narrowing_net, unpadded_net

from mixq_hw.graph import Graph
from mixq_hw.pipeline import Accelerator, LayerFold, plan_stages
from sim.streams import run_streams
from sim.tensors import beats_to_tensor


def _pixels(images: np.ndarray) -> list[list[int]]:
    """Images (N, C, H, W) as the accelerator's input beats: one pixel, all channels, per beat."""
    n, c, h, w = images.shape
    return images.transpose(0, 2, 3, 1).reshape(-1, c).tolist()


def _run(graph: Graph, folding, images, *, stall: float, seed: int = 0):
    acc = Accelerator(graph, folding)
    c, h, w = acc.plan.out_shape
    per_frame = c * h * w // acc.plan.out_lanes
    run = run_streams(acc, {"i": _pixels(images)}, {"o": per_frame * len(images)}, stall=stall, seed=seed,
                      max_cycles=400_000)
    beats = run.outputs["o"]
    out = np.stack([beats_to_tensor(beats[i * per_frame:(i + 1) * per_frame], (c, h, w), acc.plan.out_lanes)
                    for i in range(len(images))])
    return acc, out, run, per_frame


CASES = {
    "plain-unit": (plain_net, {}),
    "plain-folded": (plain_net, {"c1": LayerFold(3, 2, 2), "c2": LayerFold(2, 3, 2), "d3": LayerFold(2, 2, 1),
                                 "c4": LayerFold(6, 2, 2)}),
    "bypass": (bypass_net, {"c1": LayerFold(2, 2, 2), "c4": LayerFold(4, 5, 1)}),
    "linear": (linear_net, {"fc": LayerFold(4, 3, 1)}),
    # c1 makes a row in 18 cycles; the pool's 8 outputs of every second row need 32 at the 8 -> 2 lane
    # converter: without a row of buffer between them c1 stalls every second row (184 cycles, not 144)
    "pool-narrowing": (pool_narrowing_net, {"c1": LayerFold(3, 8, 8), "c2": LayerFold(2, 4, 8)}),
    # 3 pool lanes to 4 goes through 1 lane (3 -> 1 -> 4): the first step narrows, so the pool needs the
    # same row of buffer (full-size SkyNet: +48 % cycles per frame without it)
    "pool-two-step": (lambda rng: pool_narrowing_net(rng, 12), {"c1": LayerFold(3, 3, 8), "c2": LayerFold(4, 4, 8)}),
    # two convs at one interval, the second unpadded: its line buffer must take the next frame's first
    # rows while its last output row reads, or that conv idles while they arrive (RowWindow: 503 cycles, not
    # 432; SlidingWindow: 1,089, not 864; full-size CNV W2A2: +12.6 %)
    "unpadded-row": (unpadded_net, {"c1": LayerFold(4, 4, 1), "c2": LayerFold(2, 1, 1)}),
    "unpadded-sliding": (unpadded_net, {"c1": LayerFold(4, 2, 1), "c2": LayerFold(1, 3, 1)}),
    # pixels not dividing the output width (8 = 3+3+2, 4 = 3+1): ragged groups through requant, pool,
    # reorg, the bypass FIFO and the raw output
    "bypass-ragged": (bypass_net, {"c1": LayerFold(2, 2, 3), "c2": LayerFold(2, 2, 3), "c3": LayerFold(1, 4, 3),
                                   "c4": LayerFold(4, 5, 3)}),
    # more pixels per group than cycles per beat: the raster stream after the requant takes a multiple of pe
    # lanes (4 of 2, 4 of 1) so that it keeps up with the engine
    "pool-wide-raster": (pool_narrowing_net, {"c1": LayerFold(3, 2, 16), "c2": LayerFold(4, 4, 8)}),
    "plain-wide-raster": (plain_net, {"c1": LayerFold(3, 1, 8, requant="threshold"), "c2": LayerFold(2, 3, 2)}),
    # requants on thresholds (no DSP) instead of DSP48E2 lanes, also on ragged groups
    "plain-threshold": (plain_net, {"c1": LayerFold(3, 2, 2, requant="threshold"),
                                    "c2": LayerFold(2, 3, 2, requant="threshold"), "d3": LayerFold(2, 2, 1),
                                    "c4": LayerFold(6, 2, 2)}),
    "bypass-ragged-threshold": (bypass_net, {"c1": LayerFold(2, 2, 3, requant="threshold"),
                                             "c2": LayerFold(2, 2, 3), "c3": LayerFold(1, 4, 3, requant="threshold"),
                                             "c4": LayerFold(4, 5, 3)}),
    # pe not dividing the output channels: the engines pad their last fold with zero filters, the requants
    # (DSP and threshold) and the raw output pad their per-channel constants, the regroups drop the padding
    "plain-padded-pe": (plain_net, {"c1": LayerFold(3, 3, 2), "c2": LayerFold(2, 4, 2, requant="threshold"),
                                    "d3": LayerFold(2, 2, 1), "c4": LayerFold(6, 3, 2)}),
    "bypass-padded-pe-ragged": (bypass_net, {"c1": LayerFold(2, 3, 3), "c2": LayerFold(2, 3, 3),
                                             "c3": LayerFold(1, 3, 3, requant="threshold"),
                                             "c4": LayerFold(4, 2, 3)}),
    "linear-padded-pe": (linear_net, {"c1": LayerFold(1, 3, 4), "fc": LayerFold(4, 2, 1)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pipeline_bit_exact_under_stalls(case):
    """40 % stalls on both ports; the stall-free run of every case is test_frame_interval_matches_analytic_model's."""
    make, folding = CASES[case]
    rng = np.random.default_rng(len(case))
    graph = make(rng)
    images = rng.integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    _, out, _, _ = _run(graph, folding, images, stall=0.4, seed=3)
    np.testing.assert_array_equal(out, graph.reference(images))


@pytest.mark.parametrize("case", sorted(CASES))
def test_frame_interval_matches_analytic_model(case):
    """Stall-free, three frames bit-exact, and in the steady state they leave one analytic interval apart (the
    slowest stage), within 5 %."""
    make, folding = CASES[case]
    rng = np.random.default_rng(1)
    graph = make(rng)
    images = rng.integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    acc, out, run, per_frame = _run(graph, folding, images, stall=0.0)
    np.testing.assert_array_equal(out, graph.reference(images))
    ends = [run.beat_cycles["o"][(i + 1) * per_frame - 1] for i in range(3)]
    measured = ends[2] - ends[1]
    analytic = acc.plan.cycles_per_frame()
    assert abs(measured - analytic) <= 0.05 * analytic, (measured, analytic, acc.plan.bottleneck().name)


@pytest.mark.parametrize("case, window", [("unpadded-row", "RowWindowSpec"),
                                          ("unpadded-sliding", "SlidingWindowSpec")])
def test_unpadded_conv_at_the_bottleneck_meets_the_interval(case, window):
    """Both convs at the analytic interval, the second unpadded: frames leave exactly that interval apart."""
    make, folding = CASES[case]
    rng = np.random.default_rng(1)
    graph = make(rng)
    plan = plan_stages(graph, folding)
    assert type(plan.stage("c2.window").spec).__name__ == window
    assert plan.stage("c1").cycles == plan.stage("c2").cycles == plan.cycles_per_frame()
    images = rng.integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    acc, out, run, per_frame = _run(graph, folding, images, stall=0.0)
    np.testing.assert_array_equal(out, graph.reference(images))
    ends = [run.beat_cycles["o"][(i + 1) * per_frame - 1] for i in range(3)]
    assert ends[2] - ends[1] == ends[1] - ends[0] == plan.cycles_per_frame()


def test_threshold_cases_use_no_requant_dsp():
    """The threshold cases build ThresholdRequant stages (no DSP) where the fold asks for them."""
    for case in ("plain-threshold", "bypass-ragged-threshold"):
        make, folding = CASES[case]
        plan = plan_stages(make(np.random.default_rng(0)), folding)
        kinds = {s.node: type(s.spec).__name__ for s in plan.stages if s.kind == "requant"}
        owners = {s.node: s.sources for s in plan.stages if s.kind == "requant"}
        assert "ThresholdRequantSpec" in kinds.values() and "RequantSpec" in kinds.values(), (kinds, owners)
        assert all(s.resources.dsp == 0 for s in plan.stages if type(s.spec).__name__ == "ThresholdRequantSpec")


def test_wide_raster_cases_take_more_lanes_than_pe():
    """The wide-raster cases' regroups emit a multiple of pe lanes (raster_lanes), the others pe."""
    for case, want in (("pool-wide-raster", (2, 4)), ("plain-wide-raster", (1, 4)), ("plain-folded", (2, 2))):
        make, folding = CASES[case]
        plan = plan_stages(make(np.random.default_rng(0)), folding)
        regroup = next(s.spec for s in plan.stages if s.name == "r1.regroup")
        assert (regroup.pe, regroup.lanes_out) == want, case


def test_ragged_case_covers_both_windows():
    """The ragged case has ragged groups in front of a SlidingWindow engine and of RowWindow engines, and
    its requant/output stages stream whole groups (padded rows) while the raster values keep the real width."""
    graph = bypass_net(np.random.default_rng(0))
    plan = plan_stages(graph, CASES["bypass-ragged"][1])
    ragged = {plan.stage(n).spec.window_kind for n in ("c1", "c2", "c3", "c4")}
    assert ragged == {"taps", "rows"}
    assert plan.stage("c1.window").spec.groups == 3          # 8 columns in groups of 3
    assert plan.stage("r1a").spec.width == 9 and plan.stage("r1a.regroup").spec.width == 8
    assert plan.stage("out.regroup").spec.last_pixels == 1    # 4 columns in groups of 3
    assert plan.out_shape == (5, 4, 4)


def test_bypass_fifo_is_sized_from_the_schedule():
    graph = bypass_net(np.random.default_rng(0))
    plan = plan_stages(graph, {"c1": LayerFold(2, 2, 2)})
    # bypass: concat row y needs c1 row 2y+1; main path: c3 row y needs c2 row y+1, which needs pool
    # row y+2, which needs c1 row 2y+5: a lead of 4 c1 rows = 2 concat rows, plus 2 rows of margin and one
    # row for each windowed layer of the main path (p1, c2, c3: each emits a row over a whole row time),
    # at 4 pixels x 16 channels per concat row, one lane (the main path's c3 has pe 1).
    assert plan.stage("cat").spec.lanes == 1
    assert plan.fifo_depths["cat.fifo0"] == (2 + 2 + 3) * 4 * 16
    # plus one row of buffer behind each bursty stream that is narrowed: the pool (4 pixels x 4 channels,
    # 2 lanes -> 1) and the reorg (4 pixels x 16 channels, 8 lanes -> 1)
    assert plan.fifo_depths["c2.burst"] == 4 * 4 // 2 and plan.fifo_depths["cat.burst"] == 4 * 16 // 8


def test_bursty_pool_gets_a_row_of_buffer_before_a_narrowing_converter():
    """A pool (or reorg) feeding a converter to fewer lanes gets a FIFO of exactly one output row in front of
    it; widening converters and unchanged lanes take the pool's bursts at full rate and get none."""
    graph = pool_narrowing_net(np.random.default_rng(0))
    plan = plan_stages(graph, CASES["pool-narrowing"][1])
    names = [s.name for s in plan.stages]
    assert names.index("p1") < names.index("c2.burst") < names.index("c2.lanes2")
    assert plan.fifo_depths == {"c2.burst": 8}                     # 8 pooled pixels x 8 channels / 8 lanes
    assert plan_stages(graph, {"c1": LayerFold(3, 2, 8), "c2": LayerFold(4, 4, 8)}).fifo_depths == {}
    # the bypass network's reorg narrows to the concat's lanes: its burst FIFO sits before the converter
    bypass = plan_stages(bypass_net(np.random.default_rng(0)), {"c1": LayerFold(2, 2, 2), "c2": LayerFold(2)})
    names = [s.name for s in bypass.stages]
    assert names.index("reorg") < names.index("cat.burst") < names.index("cat.lanes1") < names.index("cat")
    assert set(bypass.fifo_depths) == {"cat.fifo0", "cat.burst"}       # c2 reads the pool at its 2 lanes
    # 3 -> 4 lanes is converted through 1 lane: the first, narrowing, step gets the row of buffer
    two_step = plan_stages(pool_narrowing_net(np.random.default_rng(0), 12), CASES["pool-two-step"][1])
    names = [s.name for s in two_step.stages]
    assert names.index("p1") < names.index("c2.burst") < names.index("c2.lanes1") < names.index("c2.lanes4")
    assert two_step.fifo_depths == {"c2.burst": 8 * 12 // 3}        # 8 pooled pixels x 12 channels / 3 lanes
    # a linear layer after a pool: one row of the map (2 pixels x 4 channels / 4 lanes), before flattening
    linear = plan_stages(linear_net(np.random.default_rng(0)), {"c1": LayerFold(1, 4, 1), "fc": LayerFold(2, 3, 1)})
    assert linear.fifo_depths == {"fc.burst": 2}


def test_folding_errors_name_the_layer():
    graph = plain_net(np.random.default_rng(0))
    with pytest.raises(ValueError, match="c1"):
        plan_stages(graph, {"c1": LayerFold(2, 1, 1)})  # 3 input channels, 2 lanes
    with pytest.raises(ValueError, match="'nope'"):
        plan_stages(graph, {"nope": LayerFold()})
