"""The ``add`` op (residual add aligned in integers) and signed codes in the graph (requant's signed_out
and neg_shift): shape and sign inference, reference, errors, graph file round trip, and residual blocks
through the whole pipeline, bit-exact under random stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from networks import res_block

from mixq_hw.graph import Graph, GraphError
from mixq_hw.layers.reference import residual_add
from mixq_hw.pipeline import LayerFold, plan_stages
from sim.network import simulate


def test_signed_codes_in_value_info() -> None:
    g = res_block(np.random.default_rng(0), shortcut=True, leaky=True)
    r2, rs, add = g.value_info("r2"), g.value_info("rs"), g.value_info("add")
    assert r2.signed_codes and not r2.signed and (r2.lo, r2.hi) == (-16, 15) and str(r2) == "4x6x6 i5"
    assert rs.signed_codes and not add.signed_codes and (add.lo, add.hi) == (0, 7)
    assert not g.value_info("r1").signed_codes and not g.value_info("c1").signed_codes
    assert "leaky2" in g.summary() and "(3*a + 5*b) >> 2" in g.summary()


def test_reference_is_the_contract() -> None:
    rng = np.random.default_rng(1)
    g = res_block(rng, shortcut=True)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals: dict[str, np.ndarray] = {}
    for node in g.nodes:
        vals[node.name] = g.run_node(node.name, [vals[s] for s in node.inputs], images)
    assert vals["r2"].min() < 0 and vals["rs"].min() < 0
    total = (3 * vals["r2"] + 5 * vals["rs"] + 2) >> 2
    np.testing.assert_array_equal(vals["add"], np.clip(total, 0, 7))
    assert 0 < np.mean(vals["add"] == 0) < 1 and np.any(total > 7)     # the ReLU and the clip both act


def test_add_exhaustive_small_codes() -> None:
    """Every pair of 3-bit codes (signed x unsigned) for several alignments, against the contract's formula."""
    a = np.arange(-4, 4).reshape(1, 1, 8, 1).repeat(8, axis=3)
    b = np.arange(8).reshape(1, 1, 1, 8).repeat(8, axis=2)
    for m0, m1, shift, out_signed in itertools.product((1, 3, -2), (1, 7), (0, 1, 3), (False, True)):
        g = Graph("pairs", (1, 8, 8))
        x = g.add_input(8)
        c = g.add_conv("c", x, np.ones((1, 1, 1, 1), dtype=np.int64), w_bits=2)
        ra = g.add_requant("ra", c, [1], [0], shift=1, out_bits=3, signed_out=True)
        rb = g.add_requant("rb", c, [1], [0], shift=1, out_bits=3)
        node = g.add("add", "add", [ra, rb], {"m0": m0, "m1": m1, "shift": shift, "out_bits": 4,
                                              "out_signed": out_signed})
        got = g.run_node(node, [a, b], None)
        rnd = (1 << (shift - 1)) if shift else 0
        lo, hi = (-8, 7) if out_signed else (0, 15)
        want = np.clip(np.floor((m0 * a + m1 * b + rnd) / 2 ** shift), lo, hi)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, residual_add(a, b, m0, m1, shift, (lo, hi)))


def _two_codes(signed_out=(True, False), shapes=((2, 4, 4), (2, 4, 4))):
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    c = g.add_conv("c", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2)
    r = [g.add_requant(f"r{i}", c, [1, 1], [0, 0], shift=1, out_bits=3, signed_out=s) for i, s in enumerate(signed_out)]
    return g, c, r


@pytest.mark.parametrize("attrs,match", [
    ({"m0": 1, "m1": 1, "shift": -1, "out_bits": 3}, r"'add'.*shift"),
    ({"m0": 1, "m1": 1, "shift": 0}, r"'add'.*out_bits"),
    ({"m0": 1 << 20, "m1": 1, "shift": 0, "out_bits": 3}, r"'add'.*m0"),
    ({"m0": 1, "m1": 1, "shift": 0, "out_bits": 1, "out_signed": True}, r"'add'.*out_signed needs out_bits >= 2"),
    ({"m0": 1, "m1": 1, "shift": 0, "out_bits": 3, "neg_shift": 2}, r"'add'.*neg_shift=2 .LeakyReLU. needs out_signed"),
])
def test_bad_attributes_are_refused(attrs, match) -> None:
    g, _, r = _two_codes()
    with pytest.raises(GraphError, match=match):
        g.add("add", "add", r, attrs)


def test_bad_inputs_are_refused() -> None:
    g, c, r = _two_codes()
    attrs = {"m0": 1, "m1": 1, "shift": 0, "out_bits": 3}
    with pytest.raises(GraphError, match="'add'.*signed accumulator"):
        g.add("add", "add", [r[0], c], attrs)
    with pytest.raises(GraphError, match="'add'.*expects 2 input"):
        g.add("add", "add", [r[0]], attrs)
    with pytest.raises(GraphError, match="'rq'.*neg_shift=2.*needs signed_out"):
        g.add_requant("rq", c, [1, 1], [0, 0], shift=1, out_bits=3, neg_shift=2)


def test_graph_file_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(3)
    g = res_block(rng, shortcut=True, leaky=True)
    g.save(tmp_path / "g.npz")
    back = Graph.load(tmp_path / "g.npz")
    assert back.value_infos() == g.value_infos()
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    np.testing.assert_array_equal(back.reference(images), g.reference(images))


@pytest.mark.parametrize("kwargs,folding", [
    ({}, {}),
    ({"shortcut": True}, {"c1": LayerFold(3, 2, 2), "c2": LayerFold(4, 4, 1), "cs": LayerFold(2, 2, 1)}),
    ({"shortcut": True, "leaky": True}, {"c2": LayerFold(2, 2, 2)}),
], ids=["identity-unit", "projection-folded", "leaky-projection"])
def test_pipeline_bit_exact_under_stalls(kwargs, folding) -> None:
    rng = np.random.default_rng(2)
    g = res_block(rng, **kwargs)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    plan = plan_stages(g, folding)
    assert any(s.kind == "add" for s in plan.stages)
    assert any(s.kind == "fifo" for s in plan.stages)       # the skip branch's FIFO
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
