"""The ``avgpool`` op (an exact integer sum that a requant or the output reads): shape inference, reference,
errors, graph file round trip, and small networks with global and windowed pools through the whole
pipeline, bit-exact under random stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mixq_hw.graph import Graph, GraphError
from mixq_hw.layers.reference import sum_pool
from mixq_hw.pipeline import LayerFold, plan_stages
from sim.network import simulate


def _requant(g, name, src, channels, rng, out_bits=3, shift=7):
    return g.add_requant(name, src, rng.integers(1, 40, channels), rng.integers(-200, 200, channels),
                         shift=shift, out_bits=out_bits)


def pool_head(rng, shape=(3, 4, 4), window: dict | None = None, classes: int = 5) -> Graph:
    """conv -> requant -> avgpool (global, or ``window``) -> requant -> linear -> output (a ResNet head)."""
    g = Graph("pool-head", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    pool = g.add("avgpool", "gap", [_requant(g, "r1", c1, 4, rng)], window or {})
    r2 = _requant(g, "r2", pool, 4, rng, out_bits=4, shift=6)
    c, h, w = g.value_info(r2).shape
    fc = g.add_linear("fc", r2, rng.integers(-3, 4, (classes, c * h * w)), w_bits=3)
    g.add_output("out", fc, rng.integers(-9, 9, classes), np.ones(classes))
    return g


def pool_output(rng, shape=(3, 4, 6)) -> Graph:
    """conv -> requant -> avgpool 2x3 -> output: the output reads the pool's sums directly."""
    g = Graph("pool-output", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (2, shape[0], 3, 3)), w_bits=3)
    pool = g.add("avgpool", "pool", [_requant(g, "r1", c1, 2, rng, shift=10)], {"kh": 2, "kw": 3})
    g.add_output("out", pool, rng.integers(-9, 9, 2), np.ones(2))
    return g


def test_shape_bits_and_reference() -> None:
    rng = np.random.default_rng(0)
    g = pool_head(rng)
    info = g.value_info("gap")
    assert info.shape == (4, 1, 1) and info.signed and info.bits == 8      # 16 * 7 = 112 < 2**7, + sign
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals: dict[str, np.ndarray] = {}
    for node in g.nodes:
        vals[node.name] = g.run_node(node.name, [vals[s] for s in node.inputs], images)
    np.testing.assert_array_equal(vals["gap"], vals["r1"].sum(axis=(2, 3), keepdims=True))
    assert vals["gap"].max() <= info.hi
    w = pool_output(rng)
    assert w.value_info("pool").shape == (2, 2, 2) and w.value_info("pool").bits == 7   # 6 * 7 = 42: 6 bits + sign
    assert "kh2 kw3" in w.summary() and "global" in g.summary()


def test_bits_hold_every_sum_exhaustively() -> None:
    """The sum of every window of the largest codes fits the declared signed width, and one bit less would not."""
    for bits, (kh, kw) in itertools.product((1, 2, 3, 4, 8), ((1, 1), (2, 2), (1, 3), (4, 4), (8, 8))):
        g = Graph("bits", (1, kh, kw))
        x = g.add_input(8)
        c = g.add_conv("c", x, np.ones((1, 1, 1, 1), dtype=np.int64), w_bits=2)
        r = g.add_requant("r", c, [1], [0], shift=1, out_bits=bits)
        p = g.add("avgpool", "p", [r])
        info = g.value_info(p)
        top = sum_pool(np.full((1, 1, kh, kw), (1 << bits) - 1), (kh, kw)).max()
        assert info.lo <= 0 and top <= info.hi < 2 * top + 1


@pytest.mark.parametrize("attrs,match", [
    ({"kh": 3}, r"'gap'.*4x4, not a multiple of the 3x4 window"),
    ({"kw": 0}, r"'gap'.*kw"),
    ({"kh": 5}, r"'gap'.*kh"),
])
def test_bad_window_is_refused(attrs, match) -> None:
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    c = g.add_conv("c", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2)
    r = g.add_requant("r", c, [1, 1], [0, 0], shift=1, out_bits=2)
    with pytest.raises(GraphError, match=match):
        g.add("avgpool", "gap", [r], attrs)


def test_accumulator_input_and_code_consumer_are_refused() -> None:
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    c = g.add_conv("c", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2)
    with pytest.raises(GraphError, match="'gap'.*signed accumulator"):
        g.add("avgpool", "gap", [c])
    r = g.add_requant("r", c, [1, 1], [0, 0], shift=1, out_bits=2)
    p = g.add("avgpool", "gap", [r])
    with pytest.raises(GraphError, match="'mp'.*signed accumulator"):
        g.add_maxpool("mp", p)


def test_graph_file_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(1)
    for make in (pool_head, pool_output):
        g = make(rng)
        g.save(tmp_path / "g.npz")
        back = Graph.load(tmp_path / "g.npz")
        assert [n.op for n in back.nodes] == [n.op for n in g.nodes]
        images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
        np.testing.assert_array_equal(back.reference(images), g.reference(images))


@pytest.mark.parametrize("make,kwargs,folding", [
    (pool_head, {}, {}),
    (pool_head, {"window": {"kh": 2, "kw": 2}}, {"c1": LayerFold(3, 2, 2)}),
    (pool_head, {"shape": (3, 6, 4)}, {"c1": LayerFold(3, 4, 2), "fc": LayerFold(2, 5, 1)}),
    (pool_output, {}, {"c1": LayerFold(3, 2, 2)}),
], ids=["global-unit", "window-folded", "global-folded", "to-output"])
def test_pipeline_bit_exact_under_stalls(make, kwargs, folding) -> None:
    rng = np.random.default_rng(2)
    g = make(rng, **kwargs)
    images = rng.integers(0, 256, (3, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 4
    plan = plan_stages(g, folding)
    assert any(s.kind == "avgpool" for s in plan.stages)
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 3, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
