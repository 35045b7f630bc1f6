"""The ``maxpool`` op's ``pad=1`` (DiracDeltaNet's stem): shape inference, reference against PyTorch, errors,
graph file round trip, export of ``nn.MaxPool2d(2, 2, padding=1)``, and the pipeline under random stalls."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from networks import add_requant, padded_pool_net
from torch import nn

from mixq_hw.graph import Graph, GraphError
from mixq_hw.ops import op_def
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_nn import ops_layers
from sim.network import simulate


def test_shape_and_reference_match_pytorch():
    rng = np.random.default_rng(0)
    g = padded_pool_net(rng)
    assert g.value_info("p1").shape == (4, 4, 6)
    assert op_def("maxpool").details(g.node("p1")) == "pad 1"
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = g.reference(images, keep=True)
    want = F.max_pool2d(torch.from_numpy(vals["r1"]).double(), 2, 2, padding=1).numpy()
    np.testing.assert_array_equal(vals["p1"], want)


@pytest.mark.parametrize("pad", [2, -1, True, 0.5])
def test_bad_pad_is_refused(pad):
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    r = add_requant(g, "r", g.add_conv("c1", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2), 2,
                 np.random.default_rng(0))
    with pytest.raises(GraphError, match="'p'.*attribute pad"):
        g.add_maxpool("p", r, pad=pad)
        g.validate()


def test_graph_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g = padded_pool_net(rng)
    g.save(tmp_path / "g.npz")
    back = Graph.load(tmp_path / "g.npz")
    assert back.node("p1").attrs == {"pad": 1}
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    np.testing.assert_array_equal(back.reference(images), g.reference(images))


def test_export_hook():
    record = op_def("maxpool")
    ctx = SimpleNamespace(torch=torch, ops_layers=ops_layers)
    assert record.export_module(ctx, nn.MaxPool2d(2, 2, padding=1), "layer 'p'").attrs == {"pad": 1}
    assert record.export_module(ctx, nn.MaxPool2d(2, 2), "layer 'p'").attrs == {}
    with pytest.raises(ValueError, match="layer 'p'.*padding 0 or 1"):
        record.export_module(ctx, nn.MaxPool2d(2, 2, padding=(1, 0)), "layer 'p'")


@pytest.mark.parametrize("folding", [{}, {"c1": LayerFold(3, 4, 2), "c2": LayerFold(4, 5, 1)}],
                         ids=["unit", "folded"])
def test_pipeline_bit_exact_under_stalls(folding):
    rng = np.random.default_rng(2)
    g = padded_pool_net(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    assert plan_stages(g, folding)
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)


def test_floor_mode_odd_map_matches_pytorch_and_the_pipeline():
    """Unpadded on a 7x9 map: PyTorch's floor mode (3x4 out), exported from nn.MaxPool2d(2, 2), bit-exact
    through the pipeline under random stalls."""
    rng = np.random.default_rng(4)
    g = Graph("floor-pool", (3, 7, 9))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, 3, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng))
    c2 = g.add_conv("c2", p1, rng.integers(-3, 4, (5, 4, 3, 3)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 5), np.ones(5))
    assert g.value_info("p1").shape == (4, 3, 4) and op_def("maxpool").details(g.node("p1")) == ""
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = g.reference(images, keep=True)
    np.testing.assert_array_equal(vals["p1"], F.max_pool2d(torch.from_numpy(vals["r1"]).double(), 2, 2).numpy())
    assert len(np.unique(vals["out"])) > 10
    for folding in ({}, {"c1": LayerFold(3, 2, 1), "c2": LayerFold(2, 5, 1)}):
        run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=6, progress=False)
        assert run.bit_exact == 2, run.first_mismatch()
        np.testing.assert_array_equal(run.outputs, vals["out"])
