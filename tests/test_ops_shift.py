"""The ``shift`` op: shape inference, reference, errors, graph file round trip, export hook, and
DiracDeltaNet's 1x1 conv / shift / 1x1 conv with a bypass of the unshifted map through the pipeline,
bit-exact under random stalls."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from networks import shift_net
from torch import nn

from mixq_hw.graph import Graph, GraphError
from mixq_hw.layers.reference import SHIFT_OFFSETS
from mixq_hw.ops import op_def
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_nn import ops_layers
from sim.network import simulate


def test_shape_and_reference():
    rng = np.random.default_rng(0)
    g = shift_net(rng)
    assert g.value_info("sh").shape == (10, 6, 8) and g.value_info("sh").bits == 3
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = g.reference(images, keep=True)
    src, out = vals["r1"], vals["sh"]
    h, w = src.shape[2:]
    for c in range(src.shape[1]):
        dy, dx = SHIFT_OFFSETS[c % 5]
        for y in range(h):
            for x in range(w):
                inside = 0 <= y + dy < h and 0 <= x + dx < w
                want = src[:, c, y + dy, x + dx] if inside else 0
                np.testing.assert_array_equal(out[:, c, y, x], want)


def test_accumulator_input_is_refused():
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2)
    with pytest.raises(GraphError, match="'sh'.*signed accumulator"):
        g.add("shift", "sh", [c1])
        g.validate()


def test_graph_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g = shift_net(rng)
    g.save(tmp_path / "g.npz")
    back = Graph.load(tmp_path / "g.npz")
    assert [n.op for n in back.nodes] == [n.op for n in g.nodes]
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    np.testing.assert_array_equal(back.reference(images), g.reference(images))


def test_export_hook_matches_the_torch_module():
    record = op_def("shift")
    ctx = SimpleNamespace(torch=torch, ops_layers=ops_layers)
    assert record.export_module(ctx, ops_layers.Shift(), "layer 'sh'") is not None
    assert record.export_module(ctx, nn.ReLU(), "layer 'r'") is None
    # the torch module and the reference agree on codes
    x = torch.randint(0, 8, (2, 10, 5, 7)).float()
    np.testing.assert_array_equal(ops_layers.Shift()(x).numpy().astype(np.int64),
                                  record.reference(None, [x.numpy().astype(np.int64)], None))


@pytest.mark.parametrize("folding", [{}, {"c1": LayerFold(3, 5, 2), "c2": LayerFold(4, 2, 1)}],
                         ids=["unit", "folded"])
def test_pipeline_bit_exact_under_stalls(folding):
    rng = np.random.default_rng(2)
    g = shift_net(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    plan = plan_stages(g, folding)
    assert any(s.kind == "shift" for s in plan.stages) and any(s.kind == "fifo" for s in plan.stages)
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
