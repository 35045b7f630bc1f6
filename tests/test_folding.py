"""Folding: checked foldings and files, the node-cost model against plan_stages, and the search against
brute force, shrinking budgets and zoo-size graphs."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from mixq_hw.estimate import Resources
from mixq_hw.folding import (FoldingError, NodeCosts, OverBudgetError, check_budget, check_folding, choose_folding,
                             layer_candidates, load_folding, save_folding)
from mixq_hw.folding.costs import engine_figures
from mixq_hw.graph import Graph
from mixq_hw.pipeline import LayerFold, plan_stages

ULTRA96 = Resources(dsp=360, lut=70_560, ff=141_120, bram36=216)


# ---- graphs ------------------------------------------------------------------------------------

def _requant(g, name, src, channels, rng, out_bits=3):
    return g.add_requant(name, src, rng.integers(1, 40, channels), rng.integers(-200, 200, channels),
                         shift=7, out_bits=out_bits)


def plain_net(seed=0) -> Graph:
    """conv3x3 -> requant -> maxpool -> conv3x3/2 -> requant -> depthwise 3x3 -> requant -> 1x1 -> output."""
    rng = np.random.default_rng(seed)
    g = Graph("plain", (3, 8, 8))
    x = g.add_input(5)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, 3, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", _requant(g, "r1", c1, 4, rng))
    c2 = g.add_conv("c2", p1, rng.integers(-7, 8, (6, 4, 3, 3)), w_bits=4, stride=2)
    r2 = _requant(g, "r2", c2, 6, rng, out_bits=4)
    d3 = g.add_conv("d3", r2, rng.integers(-1, 2, (6, 1, 3, 3)), w_bits=2, groups=6)
    r3 = _requant(g, "r3", d3, 6, rng, out_bits=2)
    c4 = g.add_conv("c4", r3, rng.integers(-15, 16, (4, 6, 1, 1)), w_bits=5)
    g.add_output("out", c4, rng.integers(-9, 9, 4), np.full(4, 0.5))
    return g


def bypass_net(seed=0) -> Graph:
    """One conv feeds a pool path and a reorg bypass (a fork), joined again by a concat."""
    rng = np.random.default_rng(seed)
    g = Graph("bypass", (2, 8, 8))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-1, 2, (4, 2, 3, 3)), w_bits=2)
    main = g.add_maxpool("p1", _requant(g, "r1a", c1, 4, rng))
    bypass = g.add_reorg("reorg", _requant(g, "r1b", c1, 4, rng))
    c2 = g.add_conv("c2", main, rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    c3 = g.add_conv("c3", _requant(g, "r2", c2, 4, rng), rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    cat = g.add_concat("cat", [bypass, _requant(g, "r3", c3, 4, rng)])
    c4 = g.add_conv("c4", cat, rng.integers(-3, 4, (5, 20, 3, 3)), w_bits=3)
    g.add_output("out", c4, rng.integers(-9, 9, 5), np.ones(5))
    return g


def linear_net(seed=0) -> Graph:
    """conv -> requant -> maxpool -> linear (HWC flattening) -> output."""
    rng = np.random.default_rng(seed)
    g = Graph("linear", (1, 4, 4))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-7, 8, (4, 1, 3, 3)), w_bits=4)
    p1 = g.add_maxpool("p1", _requant(g, "r1", c1, 4, rng, out_bits=8))
    fc = g.add_linear("fc", p1, rng.integers(-127, 128, (3, 16)), w_bits=8)
    g.add_output("out", fc, rng.integers(-99, 99, 3), np.ones(3))
    return g


def tiny_net(seed=0) -> Graph:
    """Two 3x3 convs and a 1x1 head: small enough to try every folding."""
    rng = np.random.default_rng(seed)
    g = Graph("tiny", (2, 4, 8))
    x = g.add_input(6)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, 2, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", _requant(g, "r1", c1, 4, rng, out_bits=4))
    c2 = g.add_conv("c2", p1, rng.integers(-7, 8, (4, 4, 3, 3)), w_bits=4)
    head = g.add_conv("head", _requant(g, "r2", c2, 4, rng), rng.integers(-1, 2, (2, 4, 1, 1)), w_bits=2)
    g.add_output("out", head, rng.integers(-9, 9, 2), np.ones(2))
    return g


def calibrated_export(name: str, shape, seed: int = 0, **opts) -> Graph:
    """A zoo model with random weights, BN statistics from a few train-mode passes, exported."""
    from mixq_nn import models
    from mixq_nn.export import export

    torch.manual_seed(seed)
    model = models.build(name, input_shape=shape, **opts)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.momentum = None
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.uniform_(-0.3, 0.3, generator=gen)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randint(0, 256, (4, *shape), generator=gen).float() / 256)
    return export(model.eval(), shape)


def random_folding(graph: Graph, rng: random.Random, max_par: int = 64) -> dict[str, LayerFold]:
    out = {}
    for node in graph:
        if node.op in ("conv", "linear"):
            options = [f for f in layer_candidates(graph, node) if f.simd * f.pe * f.pixels <= max_par]
            out[node.name] = rng.choice(options)
    return out


# ---- checking, files ---------------------------------------------------------------------------

@pytest.mark.parametrize("folding,match", [
    ({"nope": LayerFold()}, r"unknown layer 'nope'.*c1, c2, d3, c4"),
    ({"r1": LayerFold()}, r"layer 'r1' is a requant node, not a conv/linear"),
    ({"c1": LayerFold(2, 1, 1)}, r"'c1': simd 2 does not divide the in_ch 3"),
    ({"c2": LayerFold(1, 4, 1)}, r"'c2': pe 4 does not divide the out_ch 6"),
    ({"c1": LayerFold(1, 1, 3)}, r"'c1': pixels 3 does not divide the output width 8"),
    ({"c2": LayerFold(1, 1, 8)}, r"'c2': pixels 8 does not divide the output width 2"),
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
    with pytest.raises(FoldingError, match=r"'fc': pixels 2 does not divide the output width of a linear"):
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
    assert len(layer_candidates(graph, "c1")) == 2 * 3 * 4   # simd | 3, pe | 4, pixels | 8


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

    bad = {
        "{not json": r"not a JSON folding file",
        "[1, 2]": r"holds a JSON object",
        '{"c1": 3}': r"layer 'c1': entry must be an object",
        '{"c1": {"simd": 3, "lanes": 2}}': r"layer 'c1': unknown key\(s\) \['lanes'\]",
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
            assert engine_figures(graph, graph.node(name), fold, costs.engine_windows()) == \
                (engine.cycles, engine.resources.dsp)


# ---- the search --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_space():
    """tiny_net and the (cycles, resources) of every one of its foldings (all combinations)."""
    graph = tiny_net()
    costs = NodeCosts(graph)
    layers = [n.name for n in graph if n.op in ("conv", "linear")]
    space = [costs.folding(dict(zip(layers, combo)))
             for combo in itertools.product(*(layer_candidates(graph, name) for name in layers))]
    return graph, [(m.cycles, m.resources) for m in space]


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
    result = choose_folding(graph, budget, progress=messages.append)
    assert result.resources.fits(budget)
    assert result.cycles_per_frame == optimum
    assert any(m.startswith("T=") for m in messages) and messages[-1].startswith("chose")
    # the result is the plan of its folding, and its figures are the plan's
    plan = plan_stages(graph, result.folding)
    assert (result.cycles_per_frame, result.resources) == (plan.cycles_per_frame(), plan.resources())
    assert result.bottleneck == plan.bottleneck().name
    assert result.fps == pytest.approx(300e6 / result.cycles_per_frame)


def test_smaller_budget_lower_fps_and_utilization():
    graph = bypass_net()
    big = choose_folding(graph, Resources(dsp=60, lut=20_000, ff=40_000, bram36=40))
    small = choose_folding(graph, Resources(dsp=10, lut=20_000, ff=40_000, bram36=40))
    unit = plan_stages(graph, {})
    assert small.resources.dsp <= 10 and big.resources.dsp <= 60
    assert unit.cycles_per_frame() > small.cycles_per_frame > big.cycles_per_frame
    half = choose_folding(graph, Resources(dsp=20, lut=20_000, ff=40_000, bram36=40), utilization=0.5)
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
    with pytest.raises(OverBudgetError, match=rf"smallest folding.*: DSP {unit.dsp} > 2 .*no folding found that fits") as info:
        choose_folding(graph, Resources(dsp=2, lut=6_000, ff=20_000, bram36=20))
    assert list(info.value.over) == ["dsp"] and info.value.best is None


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
    ("UltraNet", (3, 32, 64), dict(bitw="532555558", bita="733677665")),
])
def test_zoo_graph_folds_within_the_ultra96_budget(name, shape, opts):
    """Exported zoo models: the folding fits, beats the unit folding, and halving the budget costs fps."""
    graph = calibrated_export(name, shape, **opts)
    full = choose_folding(graph, ULTRA96)
    assert full.resources.fits(ULTRA96)
    assert check_folding(graph, full.folding) == full.folding
    assert full.cycles_per_frame < plan_stages(graph, {}).cycles_per_frame() / 20
    assert full.plan.stage(full.bottleneck).cycles == full.cycles_per_frame
    half = choose_folding(graph, ULTRA96, utilization=0.5)
    assert half.resources.fits(half.budget) and half.budget.dsp == 180
    assert half.fps < full.fps
