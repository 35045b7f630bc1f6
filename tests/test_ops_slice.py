"""The ``slice`` op (a channel split is one slice per part): shape inference, reference, errors, graph file
round trip, export of ``Split`` / ``torch.split`` / ``torch.chunk`` / ``Tensor.chunk``, and DiracDeltaNet's block
(split, 1x1 / shift / 1x1 on one half, concat with the other half, shuffle) through the pipeline, bit-exact under
random stalls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from networks import add_requant, split_net
from test_export import _check_hand_model
from torch import nn

from mixq_hw.graph import Graph, GraphError
from mixq_hw.layers.channels import ChannelSliceSpec
from mixq_hw.ops.slice import split_bounds
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_nn.export import ExportError, export
from mixq_nn.layers import QConv2d
from mixq_nn.ops_layers import ChannelShuffle, Concat, Shift, Split
from sim.network import simulate


def test_shape_reference_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    g = split_net(rng)
    assert g.value_info("a").shape == (4, 4, 6) and g.value_info("b").bits == 3
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    vals = g.reference(images, keep=True)
    np.testing.assert_array_equal(vals["a"], vals["r0"][:, :4])
    np.testing.assert_array_equal(vals["b"], vals["r0"][:, 4:])
    assert "channels [4, 8)" in g.summary()
    g.save(tmp_path / "g.npz")
    back = Graph.load(tmp_path / "g.npz")
    assert back.node("b").attrs == {"start": 4, "stop": 8}
    np.testing.assert_array_equal(back.reference(images), g.reference(images))


@pytest.mark.parametrize("attrs,match", [
    ({"start": 4, "stop": 4}, r"stop=4 out of range 5..8"),
    ({"start": 0, "stop": 9}, r"stop=9 out of range 1..8"),
    ({"start": -1, "stop": 2}, r"start=-1 out of range 0..7"),
    ({"stop": 2}, "missing attribute 'start'"),
])
def test_bad_attributes_name_the_node(attrs, match):
    rng = np.random.default_rng(0)
    g = Graph("bad", (1, 4, 4))
    r = add_requant(g, "r", g.add_conv("c", g.add_input(8), rng.integers(-3, 4, (8, 1, 1, 1)), w_bits=3), 8, rng)
    with pytest.raises(GraphError, match=f"node 'sl' \\(slice\\): .*{match}"):
        g.add("slice", "sl", [r], attrs)
        g.validate()


def test_accumulator_input_is_refused():
    g = Graph("bad", (1, 4, 4))
    c = g.add_conv("c", g.add_input(8), np.ones((2, 1, 1, 1), dtype=np.int64), w_bits=2)
    with pytest.raises(GraphError, match="'sl'.*signed accumulator"):
        g.add("slice", "sl", [c], {"start": 0, "stop": 1})
        g.validate()


def test_split_bounds():
    assert split_bounds(10, {"sections": (3, 7), "index": 1}, "w") == (3, 10)
    assert split_bounds(10, {"chunks": 3, "index": 2}, "w") == (8, 10)      # torch.chunk: 4, 4, 2
    assert split_bounds(10, {"size": 4, "index": 1}, "w") == (4, 8)
    with pytest.raises(ValueError, match="w: split sections \\[3, 3\\] sum to 6, the input has 10"):
        split_bounds(10, {"sections": (3, 3), "index": 0}, "w")
    with pytest.raises(ValueError, match="w: part 2 of a split of 10 channels into \\[5, 5\\]"):
        split_bounds(10, {"chunks": 2, "index": 2}, "w")


@pytest.mark.parametrize("folding", [{}, {"c0": LayerFold(3, 4, 1), "c1": LayerFold(4, 8, 2), "c2": LayerFold(8, 4, 1),
                                          "c3": LayerFold(8, 5, 1)}, {"c0": LayerFold(3, 8, 1)}],
                         ids=["unit", "folded", "one-beat-pixels"])
def test_block_pipeline_bit_exact_under_stalls(folding):
    rng = np.random.default_rng(2)
    g = split_net(rng)
    images = rng.integers(0, 256, (2, *g.input_shape)).astype(np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    plan = plan_stages(g, folding)
    slices = [s.spec for s in plan.stages if s.kind == "slice"]
    assert [(s.start, s.stop) for s in slices] == [(0, 4), (4, 8)] and all(isinstance(s, ChannelSliceSpec)
                                                                           for s in slices)
    assert any(s.kind == "fork" for s in plan.stages) and any(s.kind == "fifo" for s in plan.stages)
    run = simulate(g, images, folding=folding, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)


# ---- export ---------------------------------------------------------------------------------------------

class Block(nn.Module):
    """conv -> split (``how``) -> [first half, conv/shift/conv of the second] -> concat -> shuffle -> conv."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.conv0 = QConv2d(2, 8, 1, bitw=4, bita=8, first=True)
        self.bn0 = nn.BatchNorm2d(8)
        self.split = Split((4, 4))
        self.conv1 = QConv2d(4, 8, 1, bitw=4, bita=4)
        self.bn1 = nn.BatchNorm2d(8)
        self.shift = Shift()
        self.conv2 = QConv2d(8, 4, 1, bitw=4, bita=4)
        self.bn2 = nn.BatchNorm2d(4)
        self.concat = Concat()
        self.shuffle = ChannelShuffle(8)
        self.conv3 = QConv2d(8, 3, 1, bias=True, bitw=4, bita=4)

    def forward(self, x):
        x = torch.relu(self.bn0(self.conv0(x)))
        if self.how == "module":
            x1, x2 = self.split(x)
        elif self.how == "split":
            x1, x2 = torch.split(x, [4, 4], dim=1)
        elif self.how == "chunk":
            x1, x2 = torch.chunk(x, 2, dim=1)
        else:
            x1, x2 = x.chunk(2, 1)
        x2 = torch.relu(self.bn2(self.conv2(self.shift(torch.relu(self.bn1(self.conv1(x2)))))))
        return self.conv3(self.shuffle(self.concat(x1, x2)))


@pytest.mark.parametrize("how", ["module", "split", "chunk", "method"])
def test_export_of_a_split_matches_fake_quant(how):
    _, g = _check_hand_model(Block(how), (2, 5, 6))
    slices = [n for n in g if n.op == "slice"]
    assert sorted((n.attrs["start"], n.attrs["stop"]) for n in slices) == [(0, 4), (4, 8)]
    assert slices[0].inputs == slices[1].inputs


class Whole(nn.Module):
    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim
        self.conv0 = QConv2d(2, 8, 1, bitw=4, bita=8, first=True)
        self.conv1 = QConv2d(8, 3, 1, bitw=4, bita=4)

    def forward(self, x):
        parts = torch.chunk(torch.relu(self.conv0(x)), 2, dim=self.dim)
        return self.conv1(parts) if self.dim == 1 else self.conv1(parts[0])


def test_export_errors_name_the_call():
    with pytest.raises(ExportError, match=r"conv1.*takes the whole tuple of slice 'chunk'; index its parts"):
        export(Whole().eval(), (2, 4, 4))
    with pytest.raises(ExportError, match=r"chunk.*only a split along channels \(dim=1\) is supported, got dim=2"):
        export(Whole(2).eval(), (2, 4, 4))
