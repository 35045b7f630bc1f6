"""The ``concat`` op with three inputs (DiracDeltaNet's concat of N), lowered to ConcatN with FIFOs from the
schedules, bit-exact under random stalls; two inputs keep the two-input Concat; and the ``shuffle`` op."""

from __future__ import annotations

import numpy as np
import pytest
from networks import add_requant, bypass_net, concat3_net, shuffle_net

from mixq_hw.graph import Graph
from mixq_hw.layers.channels import ConcatNSpec
from mixq_hw.layers.concat import ConcatSpec
from mixq_hw.pipeline import LayerFold, plan_stages
from sim.network import simulate


def test_two_inputs_keep_concat_and_three_make_concat_n():
    rng = np.random.default_rng(0)
    two = [s.spec for s in plan_stages(bypass_net(rng)).stages if s.kind == "concat"]
    three = [s.spec for s in plan_stages(concat3_net(rng)).stages if s.kind == "concat"]
    assert type(two[0]) is ConcatSpec and type(three[0]) is ConcatNSpec
    assert three[0].channels == (4, 8, 4) and three[0].out_shape == (16, 6, 8)


@pytest.mark.parametrize("folding", [{}, {"c1": LayerFold(3, 4, 2), "c2": LayerFold(4, 4, 1),
                                          "c3": LayerFold(4, 5, 1)}], ids=["unit", "folded"])
def test_pipeline_bit_exact_under_stalls(folding):
    rng = np.random.default_rng(2)
    g = concat3_net(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    assert sum(s.kind == "fifo" for s in plan_stages(g, folding).stages) >= 2
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)


def test_shuffle_shape_reference_and_errors():
    from mixq_hw.graph import GraphError
    rng = np.random.default_rng(0)
    g = shuffle_net(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = g.reference(images, keep=True)
    np.testing.assert_array_equal(vals["sh"], np.concatenate([vals["r1"][:, 6:], vals["r1"][:, :6]], axis=1))
    bad = Graph("bad", (3, 4, 4))
    c = bad.add_conv("c1", bad.add_input(8), rng.integers(-3, 4, (6, 3, 1, 1)), w_bits=3)
    with pytest.raises(GraphError, match="'sh'.*6 channels.*divisible by 4"):
        bad.add("shuffle", "sh", [add_requant(bad, "r1", c, 6, rng)])
        bad.validate()


@pytest.mark.parametrize("folding,lanes", [({}, 1), ({"c1": LayerFold(3, 4, 1)}, 2), ({"c1": LayerFold(3, 8, 1)}, 8)],
                         ids=["lanes1", "lanes4-relaned", "lanes8-permutation"])
def test_shuffle_pipeline_bit_exact_under_stalls(folding, lanes):
    rng = np.random.default_rng(3)
    g = shuffle_net(rng)
    assert [s.spec.lanes for s in plan_stages(g, folding).stages if s.kind == "shuffle"] == [lanes]
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
