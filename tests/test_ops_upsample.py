"""The ``upsample`` op: shape inference, reference, errors, graph file round trip, export hook, and a
Tiny-YOLOv3-shaped tail (concat of a 1x1 branch with its skip, upsample, conv) through the whole pipeline,
bit-exact under random stalls."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from networks import fpn, yolo_tail
from torch import nn

from mixq_hw.graph import Graph, GraphError
from mixq_hw.ops import op_def
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_nn import ops_layers
from sim.network import simulate


def test_shape_and_reference():
    rng = np.random.default_rng(0)
    g = yolo_tail(rng)
    assert g.value_info("up").shape == (8, 8, 8) and g.value_info("up").bits == 3
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = {}
    for node in g.nodes:
        vals[node.name] = g.run_node(node.name, [vals[s] for s in node.inputs], images)
    cat, up = vals["cat"], vals["up"]
    for dy in range(2):
        for dx in range(2):
            np.testing.assert_array_equal(up[:, :, dy::2, dx::2], cat)


def test_accumulator_input_is_refused():
    g = Graph("bad", (1, 4, 4))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, np.ones((2, 1, 3, 3), dtype=np.int64), w_bits=2)
    with pytest.raises(GraphError, match="'up'.*signed accumulator"):
        g.add("upsample", "up", [c1])
        g.validate()


def test_graph_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g = yolo_tail(rng)
    g.save(tmp_path / "g.npz")
    back = Graph.load(tmp_path / "g.npz")
    assert [n.op for n in back.nodes] == [n.op for n in g.nodes]
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    np.testing.assert_array_equal(back.reference(images), g.reference(images))


def test_export_hook():
    record = op_def("upsample")
    ctx = SimpleNamespace(torch=torch, ops_layers=ops_layers)
    assert record.export_module(ctx, ops_layers.Upsample(), "layer 'up'") is not None
    assert record.export_module(ctx, nn.Upsample(scale_factor=2), "layer 'up'") is not None
    assert record.export_module(ctx, nn.ReLU(), "layer 'r'") is None
    with pytest.raises(ValueError, match="layer 'up'.*nearest upsampling by 2.*bilinear"):
        record.export_module(ctx, nn.Upsample(scale_factor=2, mode="bilinear"), "layer 'up'")
    with pytest.raises(ValueError, match="layer 'up'.*nearest upsampling by 2"):
        record.export_module(ctx, nn.Upsample(scale_factor=3), "layer 'up'")


@pytest.mark.parametrize("make,folding", [
    (yolo_tail, {}), (yolo_tail, {"c1": LayerFold(3, 2, 2), "c3": LayerFold(4, 4, 1), "c4": LayerFold(4, 5, 2)}),
    (fpn, {}), (fpn, {"c1": LayerFold(3, 4, 2), "c2": LayerFold(2, 2, 1), "c3": LayerFold(4, 5, 2)})],
    ids=["yolo-unit", "yolo-folded", "fpn-unit", "fpn-folded"])
def test_pipeline_bit_exact_under_stalls(make, folding):
    rng = np.random.default_rng(2)
    g = make(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    plan = plan_stages(g, folding)
    assert any(s.kind == "upsample" for s in plan.stages)
    assert any(s.kind == "fifo" for s in plan.stages)       # the concat's branch FIFO
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
