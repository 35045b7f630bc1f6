"""Folding: checked foldings and files, the node-cost model against plan_stages, and the search against
brute force, shrinking budgets and zoo-size graphs."""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from networks import add_requant, bypass_net, linear_net, micro_net, plain_net, tiny_net

from mixq_hw.estimate import Resources
from mixq_hw.folding import (
    FoldingError,
    NodeCosts,
    OverBudgetError,
    check_budget,
    check_folding,
    choose_folding,
    layer_candidates,
    load_folding,
    save_folding,
)
from mixq_hw.folding.costs import engine_figures
from mixq_hw.folding.search import _START_WEIGHTS, _Search
from mixq_hw.folding.spec import MULTIPLIERS, REQUANTIZERS, fold_layers
from mixq_hw.graph import Graph
from mixq_hw.pipeline import LayerFold, plan_stages, unit_folding

ULTRA96 = Resources(dsp=360, lut=70_560, ff=141_120, bram36=216)


# ---- graphs ------------------------------------------------------------------------------------

def calibrated_export(name: str, shape, seed: int = 0, **opts) -> Graph:
    """A zoo model with random weights, BN statistics from a few train-mode passes, exported."""
    from mixq_nn import models
    from mixq_nn.calibrate import calibrate_random
    from mixq_nn.export import export

    torch.manual_seed(seed)
    model = models.build(name, input_shape=shape, **opts)
    return export(calibrate_random(model, shape, seed=seed), shape)


def random_folding(graph: Graph, rng: random.Random, max_par: int = 64) -> dict[str, LayerFold]:
    out = {}
    for node in graph:
        if node.op in ("conv", "linear"):
            options = [f for f in layer_candidates(graph, node, MULTIPLIERS) if f.simd * f.pe * f.pixels <= max_par]
            out[node.name] = rng.choice(options)
    return out


# ---- checking, files ---------------------------------------------------------------------------

@pytest.mark.parametrize("folding,match", [
    ({"nope": LayerFold()}, r"unknown layer 'nope'.*c1, c2, d3, c4"),
    ({"r1": LayerFold()}, r"layer 'r1' is a requant node, not a conv/linear"),
    ({"c1": LayerFold(2, 1, 1)}, r"'c1': simd 2 does not divide the in_ch 3"),
    ({"c2": LayerFold(1, 7, 1)}, r"'c2': pe 7 exceeds the out_ch 6 .pe may be 1..6; one not dividing it pads"),
    ({"c1": LayerFold(1, 1, 9)}, r"'c1': pixels 9 exceeds the output width 8 \(pixels may be 1..8; it need not"),
    ({"c2": LayerFold(1, 1, 8)}, r"'c2': pixels 8 exceeds the output width 2"),
    ({"d3": LayerFold(2, 1, 1)}, r"'d3' is depthwise: pe 1 must equal simd 2"),
    ({"c4": LayerFold(0, 1, 1)}, r"'c4': simd 0 must be a positive integer"),
    ({"c4": LayerFold(True, 1, 1)}, r"'c4': simd True must be a positive integer"),
    ({"c4": (1, 1, 1)}, r"'c4': expected a LayerFold"),
])
def test_check_folding_names_layer_value_and_rule(folding, match):
    graph = plain_net()
    with pytest.raises(FoldingError, match=match):
        check_folding(graph, folding)
    assert issubclass(FoldingError, ValueError)


def test_check_folding_linear_and_completion():
    graph = linear_net()
    with pytest.raises(FoldingError, match=r"'fc': pixels 2 exceeds the output width of a linear layer 1"):
        check_folding(graph, {"fc": LayerFold(1, 1, 2)})
    with pytest.raises(FoldingError, match=r"'fc': simd 3 does not divide the in_features 16"):
        check_folding(graph, {"fc": LayerFold(3, 1, 1)})
    assert check_folding(graph, {"fc": LayerFold(4, 3, 1)}) == {"c1": LayerFold(), "fc": LayerFold(4, 3, 1)}


def test_every_candidate_passes_the_check():
    for graph in (plain_net(), linear_net()):
        for node in graph:
            if node.op in ("conv", "linear"):
                cands = layer_candidates(graph, node)
                assert len(set(cands)) == len(cands)
                for fold in cands:
                    check_folding(graph, {node.name: fold})
    graph = plain_net()
    assert {f.pe for f in layer_candidates(graph, "d3")} == {1, 2, 3, 6}
    assert all(f.pe == f.simd for f in layer_candidates(graph, "d3"))
    # a dense layer's pe: the divisors of its output channels and the smallest pe of every fold count
    # (5 channels: pe 2 and 3 make 3 and 2 folds, the last one padded; 4 makes 2 folds as 3 does: left out)
    bypass = bypass_net()
    assert {f.pe for f in layer_candidates(bypass, "c4", padded_pe=True)} == {1, 2, 3, 5}
    assert {f.pe for f in layer_candidates(bypass, "c4")} == {1, 5}
    assert check_folding(bypass, {"c4": LayerFold(1, 4, 1)})["c4"] == LayerFold(1, 4, 1)
    # simd | 3, pe | 4, pixels 1, 2, 3, 4, 8 (3: ragged groups 3+3+2; 5..7 give 2 groups, as 4 does)
    assert len(layer_candidates(graph, "c1")) == 2 * 3 * 5
    assert check_folding(graph, {"c1": LayerFold(1, 1, 3)})["c1"] == LayerFold(1, 1, 3)
    both = layer_candidates(graph, "c1", MULTIPLIERS)
    dense = len(layer_candidates(graph, "c1"))
    assert len(both) == 2 * dense + len([f for f in layer_candidates(graph, "c1") if f.simd > 1])
    assert {f.multiplier for f in both} == {"dsp", "lut", "cascade"}
    with pytest.raises(ValueError, match="multipliers \\['fpga'\\]"):
        layer_candidates(graph, "c1", ("fpga",))


def test_ragged_pixel_candidates_and_costs():
    """Pixels that do not divide the output width: the smallest pixels of each group count up to the cap, plus
    the divisors; the node-cost model and the engine figures equal plan_stages for a ragged folding."""
    from mixq_hw.folding.spec import MAX_RAGGED_PIXELS, _pixel_options
    for width in (1, 5, 8, 20, 320):
        options = _pixel_options(width)
        groups = [-(-width // p) for p in options]
        assert options[0] == 1 and all(width % p == 0 or p <= MAX_RAGGED_PIXELS for p in options)
        assert groups == sorted(set(groups), reverse=True)           # every option a new group count
        # no pixels up to the cap is missing: each has an option with as few groups and no more pixels
        for p in range(1, min(width, MAX_RAGGED_PIXELS) + 1):
            assert any(q <= p and -(-width // q) == -(-width // p) for q in options)
    assert 6 in _pixel_options(320) and 21 not in _pixel_options(320)   # 54 groups; 21 has 16 groups, as 20
    graph = bypass_net()
    folding = {"c1": LayerFold(2, 2, 3), "c2": LayerFold(2, 2, 3), "c4": LayerFold(4, 5, 3)}
    # c1 (8 wide) offers pixels 3; c2 and c4 (4 wide) do not (2 groups, as pixels 2) but accept it
    assert folding["c1"] in layer_candidates(graph, "c1") and folding["c2"] not in layer_candidates(graph, "c2")
    assert check_folding(graph, folding)["c4"] == folding["c4"]
    plan = plan_stages(graph, folding)
    costs = NodeCosts(graph)
    model = costs.folding(folding)
    assert (model.cycles, model.resources) == (plan.cycles_per_frame(), plan.resources())
    for name, fold in folding.items():
        cycles, dsps, _ = engine_figures(graph, graph.node(name), fold, costs.engine_windows())
        assert (cycles, dsps) == (plan.stage(name).cycles, plan.stage(name).resources.dsp)
    # 8 columns in groups of 3: 3 groups per row, 8 rows
    assert plan.stage("c1").spec.groups_per_frame == 8 * 3


def test_folding_file_round_trip_and_errors(tmp_path):
    graph = plain_net()
    folding = {"c1": LayerFold(3, 2, 4), "d3": LayerFold(2, 2, 1)}
    path = tmp_path / "fold.json"
    save_folding(path, folding)
    assert json.loads(path.read_text())["c1"] == {"simd": 3, "pe": 2, "pixels": 4}
    loaded = load_folding(path, graph)
    assert loaded == {"c1": LayerFold(3, 2, 4), "c2": LayerFold(), "d3": LayerFold(2, 2, 1), "c4": LayerFold()}
    path.write_text(json.dumps({"c4": {"pe": 2}}))
    assert load_folding(path, graph)["c4"] == LayerFold(1, 2, 1)
    # the multiplier kind: written only when not the default "dsp", read back either way
    save_folding(path, {"c1": LayerFold(3, 2, 4, "lut"), "c2": LayerFold(1, 2, 1, "dsp")})
    assert json.loads(path.read_text()) == {"c1": {"simd": 3, "pe": 2, "pixels": 4, "multiplier": "lut"},
                                            "c2": {"simd": 1, "pe": 2, "pixels": 1}}
    loaded = load_folding(path, graph)
    assert loaded["c1"] == LayerFold(3, 2, 4, "lut") and loaded["c2"].multiplier == "dsp"
    with pytest.raises(FoldingError, match="layer 'c1': multiplier 'fpga' must be one of dsp, lut"):
        check_folding(graph, {"c1": LayerFold(1, 1, 1, "fpga")})
    # the requantizer kind: the same rule
    save_folding(path, {"c1": LayerFold(3, 2, 4, requant="threshold"), "c2": LayerFold(1, 2, 1)})
    assert json.loads(path.read_text())["c1"] == {"simd": 3, "pe": 2, "pixels": 4, "requant": "threshold"}
    assert load_folding(path, graph)["c1"] == LayerFold(3, 2, 4, requant="threshold")
    with pytest.raises(FoldingError, match="layer 'c1': requant 'lut' must be one of dsp, threshold"):
        check_folding(graph, {"c1": LayerFold(1, 1, 1, requant="lut")})
    # where the weights live: the same rule
    save_folding(path, {"c1": LayerFold(3, 2, 4, weights="lut"), "c2": LayerFold(1, 2, 1)})
    assert json.loads(path.read_text())["c1"] == {"simd": 3, "pe": 2, "pixels": 4, "weights": "lut"}
    assert load_folding(path, graph)["c1"] == LayerFold(3, 2, 4, weights="lut")
    with pytest.raises(FoldingError, match="layer 'c1': weights 'uram' must be one of bram, lut"):
        check_folding(graph, {"c1": LayerFold(1, 1, 1, weights="uram")})

    bad = {
        "{not json": r"not a JSON folding file",
        "[1, 2]": r"holds a JSON object",
        '{"c1": 3}': r"layer 'c1': entry must be an object",
        '{"c1": {"simd": 3, "lanes": 2}}': r"layer 'c1': unknown key\(s\) \['lanes'\]",
        '{"c1": {"multiplier": "fpga"}}': r"layer 'c1': multiplier 'fpga' must be one of 'dsp', 'lut'",
        '{"c1": {"requant": 4}}': r"layer 'c1': requant 4 must be one of 'dsp', 'threshold'",
        '{"c1": {"weights": "uram"}}': r"layer 'c1': weights 'uram' must be one of 'bram', 'lut'",
        '{"c1": {"simd": "3"}}': r"layer 'c1': simd '3' must be a positive integer",
        '{"c1": {"simd": 2}}': r"layer 'c1': simd 2 does not divide the in_ch 3",
        '{"zz": {"simd": 1}}': r"unknown layer 'zz'",
    }
    for text, match in bad.items():
        path.write_text(text)
        with pytest.raises(FoldingError, match=match) as info:
            load_folding(path, graph)
        assert str(path) in str(info.value)
    with pytest.raises(FoldingError, match="not found"):
        load_folding(tmp_path / "missing.json", graph)


# ---- the node-cost model is plan_stages --------------------------------------------------------

@pytest.mark.parametrize("make", [plain_net, bypass_net, linear_net, tiny_net])
def test_node_costs_equal_plan_stages(make):
    graph = make()
    costs = NodeCosts(graph)
    rng = random.Random(7)
    for trial in range(4):
        folding = {} if trial == 0 else random_folding(graph, rng)
        plan = plan_stages(graph, folding)
        model = costs.folding(folding)
        stages = [s for node in model.nodes.values() for s in node.stages]
        assert sorted((s.name, s.kind, s.cycles, s.resources) for s in stages) == \
            sorted((s.name, s.kind, s.cycles, s.resources) for s in plan.stages)
        assert (model.cycles, model.resources, model.bottleneck) == \
            (plan.cycles_per_frame(), plan.resources(), plan.bottleneck().name)
        for name, fold in folding.items():   # the engine figures the search orders candidates by
            engine = plan.stage(name)
            cycles, dsps, luts = engine_figures(graph, graph.node(name), fold, costs.engine_windows())
            assert (cycles, dsps) == (engine.cycles, engine.resources.dsp)
            assert (luts > 0) == (fold.multiplier == "lut") == (dsps == 0) and luts <= engine.resources.lut


# ---- the search --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_space():
    """tiny_net and the (cycles, resources) of every one of its foldings (all combinations, with either
    requantizer)."""
    graph = tiny_net()
    costs = NodeCosts(graph)
    layers = [n.name for n in graph if n.op in ("conv", "linear")]
    options = [[replace(f, requant=r) for f in layer_candidates(graph, name) for r in REQUANTIZERS]
               for name in layers]
    with graph.frozen():     # its value infos once, not once per folding
        space = [costs.folding(dict(zip(layers, combo))) for combo in itertools.product(*options)]
    return graph, [(m.cycles, m.resources) for m in space]


@pytest.fixture(scope="module")
def micro_space():
    """micro_net and the (cycles, resources, uses LUT multipliers) of every folding, layers on DSPs or LUTs,
    weights in block RAM or in LUT logic (the search chooses both)."""
    graph = micro_net()
    costs = NodeCosts(graph)
    layers = [n.name for n in graph if n.op in ("conv", "linear")]
    options = [[replace(f, weights=w) for f in layer_candidates(graph, name, MULTIPLIERS) for w in ("bram", "lut")]
               for name in layers]
    with graph.frozen():
        space = [(costs.folding(dict(zip(layers, combo))), any(f.multiplier == "lut" for f in combo))
                 for combo in itertools.product(*options)]
    return graph, [(m.cycles, m.resources, lut) for m, lut in space]


@pytest.mark.parametrize("budget", [
    Resources(dsp=6, lut=5_000, ff=10_000, bram36=20),
    Resources(dsp=14, lut=5_000, ff=10_000, bram36=20),
    Resources(dsp=14, lut=1_200, ff=10_000, bram36=20),
    Resources(dsp=20, lut=1_600, ff=10_000, bram36=20),
    Resources(dsp=40, lut=5_000, ff=3_000, bram36=20),
], ids=["dsp6", "dsp14", "lut1200", "lut1600", "ff3000"])
def test_search_finds_the_brute_force_optimum(tiny_space, budget):
    """The chosen interval is the smallest any folding within budget reaches (all combinations tried).

    The LUT-bound budgets need the re-weighting: the cheapest-DSP choice per layer overflows the LUTs."""
    graph, space = tiny_space
    optimum = min(cycles for cycles, used in space if used.fits(budget))
    assert optimum < max(cycles for cycles, _ in space)       # the budget binds
    messages = []
    result = choose_folding(graph, budget, progress=messages.append, multipliers=("dsp",))
    assert result.resources.fits(budget)
    assert result.cycles_per_frame == optimum
    assert any(m.startswith("T=") for m in messages) and messages[-1].startswith("chose")
    assert sum(m.startswith("layer ") and "foldings costed" in m for m in messages) == len(fold_layers(graph))
    # the result is the plan of its folding, and its figures are the plan's
    plan = plan_stages(graph, result.folding)
    assert (result.cycles_per_frame, result.resources) == (plan.cycles_per_frame(), plan.resources())
    assert result.bottleneck == plan.bottleneck().name
    assert result.fps == pytest.approx(300e6 / result.cycles_per_frame)


@pytest.mark.parametrize("budget", [
    Resources(dsp=1, lut=1_500, ff=10_000, bram36=20),
    Resources(dsp=2, lut=3_000, ff=10_000, bram36=20),
    Resources(dsp=4, lut=1_000, ff=10_000, bram36=20),
    Resources(dsp=8, lut=1_000, ff=10_000, bram36=20),
], ids=["dsp1", "dsp2", "dsp4_lut1000", "dsp8_lut1000"])
def test_search_with_lut_layers_finds_the_brute_force_optimum(micro_space, budget):
    """Layers on DSP or LUT multipliers (every combination tried): the search reaches the brute-force optimum,
    which needs LUT-multiplier layers when DSPs run out; restricted to DSPs it finds the DSP-only optimum
    (requants on DSPs, as the brute force builds them)."""
    graph, space = micro_space
    fits = [(c, lut) for c, used, lut in space if used.fits(budget)]
    optimum = min(c for c, _ in fits)
    dsp_only = min((c for c, lut in fits if not lut), default=None)
    assert optimum < max(c for c, _, _ in space)
    result = choose_folding(graph, budget, requantizers=("dsp",))
    assert result.resources.fits(budget) and result.cycles_per_frame == optimum
    plan = plan_stages(graph, result.folding)
    assert (result.cycles_per_frame, result.resources) == (plan.cycles_per_frame(), plan.resources())
    if dsp_only is None or dsp_only > optimum:
        assert any(f.multiplier == "lut" for f in result.folding.values())
    if budget.dsp == 1:      # the requant's multiplier: every conv on LUTs
        assert {f.multiplier for f in result.folding.values()} == {"lut"}
    if dsp_only is None:
        with pytest.raises(OverBudgetError):
            choose_folding(graph, budget, multipliers=("dsp",), requantizers=("dsp",))
    else:
        assert choose_folding(graph, budget, multipliers=("dsp",), requantizers=("dsp",)).cycles_per_frame == dsp_only


def test_threshold_requants_free_dsps_for_the_engines():
    """Under a DSP-bound budget (engines on DSPs) the search moves requants to thresholds and reaches a shorter
    interval than with DSP48E2 requants only; the plan built from its folding has those ThresholdRequant stages."""
    graph = tiny_net()
    budget = Resources(dsp=6, lut=5_000, ff=10_000, bram36=20)
    both = choose_folding(graph, budget, multipliers=("dsp",))
    dsp_only = choose_folding(graph, budget, multipliers=("dsp",), requantizers=("dsp",))
    assert both.cycles_per_frame < dsp_only.cycles_per_frame
    chosen = {name for name, f in both.folding.items() if f.requant == "threshold"}
    assert chosen and not any(f.requant == "threshold" for f in dsp_only.folding.values())
    plan = plan_stages(graph, both.folding)
    kinds = {s.spec.kind for s in plan.stages if s.kind == "requant"}
    assert "ThresholdRequant" in kinds
    with pytest.raises(ValueError, match="requantizers"):
        choose_folding(graph, budget, requantizers=("lut",))


def rom_heavy_net() -> Graph:
    """Two 3x3 convs whose weight ROMs (9 and 36 Kbit) sit in block RAM at every folding."""
    rng = np.random.default_rng(0)
    g = Graph("romheavy", (8, 4, 4))
    x = g.add_input(4)
    c1 = g.add_conv("c1", x, rng.integers(-7, 8, (32, 8, 3, 3)), w_bits=4)
    c2 = g.add_conv("c2", add_requant(g, "r1", c1, 32, rng, out_bits=4), rng.integers(-7, 8, (32, 32, 3, 3)),
                    w_bits=4)
    g.add_output("out", c2, rng.integers(-9, 9, 32), np.ones(32))
    return g


def test_weights_move_to_luts_when_block_ram_runs_out():
    """With block RAM to spare every weight ROM stays there; with one BRAM36 (less than the smallest
    folding's 3, of which the weight ROMs take 2) the search keeps the weights in LUT logic and fits, and the
    plan agrees with it."""
    graph = rom_heavy_net()
    assert plan_stages(graph, unit_folding(graph)).resources().bram36 == 3
    roomy = choose_folding(graph, Resources(dsp=100, lut=20_000, ff=40_000, bram36=40))
    assert {f.weights for f in roomy.folding.values()} == {"bram"}
    tight = choose_folding(graph, Resources(dsp=100, lut=20_000, ff=40_000, bram36=1))
    assert tight.resources.bram36 <= 1
    assert {f.weights for f in tight.folding.values()} == {"lut"}
    plan = plan_stages(graph, tight.folding)
    assert plan.resources() == tight.resources
    assert all(s.spec.weight_rom.store == "lut" for s in plan.stages if s.kind == "conv")


def test_refusal_names_the_closest_folding_and_where_block_ram_goes():
    """No fit: the error quotes the folding that overflowed least (not the smallest folding, once one was
    costed) and, for block RAM, how much the weight ROMs take against the weights' packed size."""
    graph = rom_heavy_net()
    with pytest.raises(OverBudgetError) as info:
        choose_folding(graph, Resources(dsp=100, lut=1_500, ff=40_000, bram36=1))
    text = str(info.value)
    assert re.search(r"at the closest folding tried \([\d,]+ cycles/frame\) is over budget: LUT [\d,]+ > 1,500", text)
    assert "smallest" not in text and list(info.value.over) == ["lut"]
    with pytest.raises(OverBudgetError) as info:
        choose_folding(graph, Resources(dsp=100, lut=20_000, ff=40_000, bram36=0))
    text = str(info.value)
    assert "BRAM36 3 > 0" in text and list(info.value.over) == ["bram36"]
    assert ("BRAM36 goes to the weight ROMs 2 (most: c2 1.5, c1 0.5; the weights are 46,080 bits = 1.2 BRAM36 "
            "perfectly packed) and to buffers, windows and FIFOs 1") in text


def test_lut_layers_reach_below_the_dsp_only_optimum(micro_space):
    """The budgets above include one where LUT layers beat every DSP-only folding (the feature is used)."""
    graph, space = micro_space
    budget = Resources(dsp=4, lut=1_000, ff=10_000, bram36=20)
    fits = [(c, lut) for c, used, lut in space if used.fits(budget)]
    assert min(c for c, _ in fits) < min(c for c, lut in fits if not lut)
    with pytest.raises(ValueError, match="multipliers"):
        choose_folding(graph, budget, multipliers=("fpga",))


def test_smaller_budget_lower_fps_and_utilization():
    """Smaller DSP and LUT budgets (LUT multipliers stand in for DSPs where LUTs are left) cost fps."""
    graph = bypass_net()
    big = choose_folding(graph, Resources(dsp=60, lut=20_000, ff=40_000, bram36=40))
    small = choose_folding(graph, Resources(dsp=10, lut=2_500, ff=40_000, bram36=40))
    unit = plan_stages(graph, {})
    assert small.resources.dsp <= 10 and big.resources.dsp <= 60
    assert unit.cycles_per_frame() > small.cycles_per_frame > big.cycles_per_frame
    half = choose_folding(graph, Resources(dsp=20, lut=5_000, ff=40_000, bram36=40), utilization=0.5)
    assert half.budget.dsp == 10 and half.cycles_per_frame == small.cycles_per_frame
    assert choose_folding(graph, Resources(dsp=60, lut=20_000, ff=40_000, bram36=40), clock_mhz=150).fps == \
        pytest.approx(big.fps / 2)


def test_over_budget_errors_name_resource_layers_and_what_fits():
    graph = plain_net()
    budget = Resources(dsp=8, lut=6_000, ff=20_000, bram36=20)
    greedy = {"c1": LayerFold(3, 4, 8), "c2": LayerFold(4, 6, 2), "d3": LayerFold(6, 6, 2), "c4": LayerFold(6, 4, 2)}
    plan = plan_stages(graph, greedy)
    used = plan.resources()
    assert used.dsp > 8
    with pytest.raises(OverBudgetError) as info:
        check_budget(plan, budget)
    err = info.value
    text = str(err)
    assert f"DSP {used.dsp} > 8 (+{used.dsp - 8}" in text
    top = max(plan.per_node().items(), key=lambda item: item[1]["resources"].dsp)[0]
    assert err.users["dsp"][0][0] == top and top in text
    best = choose_folding(graph, budget)
    assert err.best is not None and err.best.cycles_per_frame == best.cycles_per_frame
    assert f"runs at {best.fps:,.1f} fps" in text
    assert check_budget(plan_stages(graph, best.folding), budget) == best.resources
    assert isinstance(err, ValueError)

    unit = plan_stages(graph, {}).resources()
    # the closest folding tried (DSP 3: the three requants) is named, not the smallest one
    with pytest.raises(OverBudgetError, match=r"closest folding tried .*: DSP 3 > 2 .*no folding found that fits") as info:
        choose_folding(graph, Resources(dsp=2, lut=6_000, ff=20_000, bram36=20), requantizers=("dsp",))
    assert list(info.value.over) == ["dsp"] and info.value.best is None and unit.dsp > 3


def test_bad_search_arguments():
    graph = tiny_net()
    with pytest.raises(ValueError, match="utilization 0"):
        choose_folding(graph, ULTRA96, utilization=0)
    with pytest.raises(ValueError, match="budget must have dsp, lut, ff and bram36"):
        choose_folding(graph, {"dsp": 3})
    with pytest.raises(ValueError, match="clock_mhz"):
        choose_folding(graph, ULTRA96, clock_mhz=0)


@pytest.mark.parametrize("name,shape,opts", [
    ("UltraNetBypass", (3, 16, 32), {}),
    ("UltraNet", (3, 16, 32), dict(bitw="532555558", bita="733677665")),
])
def test_zoo_graph_folds_within_the_ultra96_budget(name, shape, opts):
    """Exported zoo models: the folding fits, beats the unit folding, and halving the budget costs fps.  At
    16x32 the budget binds (mixed-precision UltraNet: 356 of 360 DSPs, 69,920 of 70,560 LUTs)."""
    graph = calibrated_export(name, shape, **opts)
    full = choose_folding(graph, ULTRA96)
    assert full.resources.fits(ULTRA96)
    assert check_folding(graph, full.folding) == full.folding
    assert full.cycles_per_frame < plan_stages(graph, {}).cycles_per_frame() / 20
    assert full.plan.stage(full.bottleneck).cycles == full.cycles_per_frame
    half = choose_folding(graph, ULTRA96, utilization=0.5)
    assert half.resources.fits(half.budget) and half.budget.dsp == 180
    assert half.fps < full.fps


def test_lut_layers_run_bit_exact_and_report():
    """A folding with LUT-multiplier layers (dense, depthwise, 1x1) next to DSP ones: the accelerator is
    bit-exact under stalls, its DSPs drop by those layers' cores, and the report names each layer's kind."""
    from test_pipeline import _run

    from mixq_hw.report import build_report, markdown

    rng = np.random.default_rng(11)
    graph = plain_net(rng)
    dsp = {"c1": LayerFold(3, 2, 2), "c2": LayerFold(2, 3, 2), "d3": LayerFold(2, 2, 1), "c4": LayerFold(6, 2, 2)}
    lut = {**dsp, "c1": LayerFold(3, 2, 2, "lut"), "d3": LayerFold(2, 2, 1, "lut"), "c4": LayerFold(6, 2, 2, "lut")}
    images = rng.integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    acc, out, _, _ = _run(graph, lut, images, stall=0.3, seed=5)
    np.testing.assert_array_equal(out, graph.reference(images))
    on_dsp = plan_stages(graph, dsp)
    saved = sum(on_dsp.stage(n).spec.n_dsps for n in ("c1", "d3", "c4"))
    assert acc.plan.resources().dsp == on_dsp.resources().dsp - saved and saved > 0
    assert acc.plan.cycles_per_frame() == on_dsp.cycles_per_frame()
    report = build_report(acc.plan, clock_mhz=300, budget=ULTRA96)
    kinds = {row["name"]: row["packing"]["multiplier"] for row in report["layers"] if "packing" in row}
    assert kinds == {"c1": "lut", "c2": "dsp", "d3": "lut", "c4": "lut"}
    assert "| multiplier |" in markdown(report) and "| lut |" in markdown(report)


@pytest.mark.parametrize("dsps", [1, 2, 4, 8])
def test_knapsack_is_near_the_fewest_lut_folding_within_the_dsps(micro_space, dsps):
    """The fallback (DSP counts by dynamic programming over each layer's (DSP, LUT) front): for every target,
    a folding within it and the DSP budget, its LUTs within 5 % of the fewest any folding reaches (all
    combinations tried; not always equal, since a layer's input format is taken from a reference)."""
    graph, space = micro_space
    limit = Resources(dsp=dsps, lut=10 ** 6, ff=10 ** 6, bram36=100)
    search = _Search(graph, limit, None, None, MULTIPLIERS)
    checked = exact = 0
    for target in sorted({c for c, _, _ in space}):
        fewest = min((used.lut for c, used, _ in space if c <= target and used.dsp <= dsps), default=None)
        reference = search.assign(target, dict(_START_WEIGHTS))
        if fewest is None or reference.failure:
            continue
        found = search.knapsack(target, reference)
        assert not found.failure and found.cycles <= target and found.resources.dsp <= dsps
        assert fewest <= found.resources.lut <= 1.05 * fewest, target
        plan = plan_stages(graph, found.folding)
        assert (plan.cycles_per_frame(), plan.resources()) == (found.cycles, found.resources)
        checked += 1
        exact += found.resources.lut == fewest
    assert checked > 3 and exact >= checked // 2


def test_the_chosen_plan_is_recorded_and_can_be_pinned(tmp_path):
    """plan_stages records each layer's packing plan in its folding; the folding file keeps it; a pinned plan
    builds the same design, and one that does not fit its layer is refused naming the layer."""
    graph = plain_net()
    plan = plan_stages(graph, {"c1": LayerFold(3, 2, 4)})
    folding = plan.folding
    assert all(folding[n].plan == plan.stage(n).spec.plan for n in folding)
    path = tmp_path / "fold.json"
    save_folding(path, folding)
    assert json.loads(path.read_text())["c1"]["plan"] == json.loads(json.dumps(folding["c1"].plan.to_dict()))
    loaded = load_folding(path, graph)
    assert loaded == folding
    again = plan_stages(graph, loaded)
    assert [(s.name, s.cycles, s.resources) for s in again.stages] == \
        [(s.name, s.cycles, s.resources) for s in plan.stages]
    assert {n: f.unpinned() for n, f in folding.items()} == {**unit_folding(graph), "c1": LayerFold(3, 2, 4)}
    # c2's plan (w4) in c1 (w3): refused, naming the layer, from a folding and from a file
    wrong = {"c1": LayerFold(1, 1, 1, plan=folding["c2"].plan)}
    with pytest.raises(FoldingError, match="layer 'c1': its packing plan does not fit the layer"):
        check_folding(graph, wrong)
    save_folding(path, wrong)
    with pytest.raises(FoldingError, match="fold.json: layer 'c1': its packing plan does not fit"):
        load_folding(path, graph)
    path.write_text(json.dumps({"c1": {"plan": {"plan_type": "nope"}}}))
    with pytest.raises(FoldingError, match="layer 'c1': plan is not a packing plan record"):
        load_folding(path, graph)


def test_padded_pe_is_opt_in(monkeypatch):
    """By default the search asks only for pe values dividing the output channels; with ``padded_pe`` it asks
    for every pe and never finds a slower folding (its candidates include the default's)."""
    from mixq_hw.folding import search as search_module
    asked: list[bool] = []

    def recording(*args, padded_pe=False, **kwargs):
        asked.append(padded_pe)
        return layer_candidates(*args, padded_pe=padded_pe, **kwargs)

    monkeypatch.setattr(search_module, "layer_candidates", recording)
    graph = bypass_net()
    budget = Resources(dsp=6, lut=6000, ff=200_000, bram36=100)
    plain = choose_folding(graph, budget)
    assert asked and not any(asked)
    for name, fold in plain.folding.items():
        assert graph.value_info(name).shape[0] % fold.pe == 0, (name, fold)
    asked.clear()
    padded = choose_folding(graph, budget, padded_pe=True)
    assert asked and all(asked[:len(fold_layers(graph))])
    assert padded.cycles_per_frame <= plain.cycles_per_frame
