"""Export of the zoo's quantised average pools (QAvgPool2d, QGlobalAvgPool) to ``avgpool`` nodes: the
integer graph reproduces the fake-quantised model, and the pipeline runs it bit-exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_export import calibrate, dequantised, forced_run, run_model
from torch import nn

from mixq_nn.export import ExportError, export
from mixq_nn.layers import QConv2d, QLinear
from mixq_nn.ops_layers import QAvgPool2d, QGlobalAvgPool
from sim.network import simulate


class PoolNet(nn.Module):
    """conv -> BN -> ReLU -> 2x2 average pool -> 1x1 conv -> BN -> ReLU -> global average pool -> linear."""

    def __init__(self, pool_bits: int = 6, signed: bool = False):
        super().__init__()
        self.conv0 = QConv2d(3, 8, 3, padding=1, bitw=4, bita=8, first=True)
        self.bn0 = nn.BatchNorm2d(8)
        self.pool = QAvgPool2d(2, pool_bits)
        self.conv1 = QConv2d(8, 6, 1, bitw=4, bita=4)
        self.bn1 = nn.BatchNorm2d(6)
        self.gap = QGlobalAvgPool(8, signed=signed)
        self.fc = QLinear(6, 5, bias=True, bitw=5, bita=5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn0(self.conv0(x))))
        return self.fc(self.gap(F.relu(self.bn1(self.conv1(x)))))


@pytest.mark.parametrize("signed", [False, True])
def test_pools_export_and_match_fake_quant(signed):
    shape = (3, 8, 8)
    torch.manual_seed(3)
    model = calibrate(PoolNet(signed=signed), shape, seed=3)
    g = export(model, shape, name="pools")
    # a signed quantiser after a ReLU: unsigned codes of one bit less, the same values
    assert g.value_info(g.node("gap").inputs[0]).bits == (7 if signed else 8)
    assert [n.op for n in g.nodes] == ["input", "conv", "requant", "avgpool", "requant", "conv", "requant",
                                       "avgpool", "requant", "linear", "output"]
    assert g.node("pool").attrs == {"kh": 2, "kw": 2} and g.node("gap").attrs == {}
    assert g.value_info("gap").shape == (6, 1, 1)
    pixels = np.random.default_rng(3).integers(0, 256, (24, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    # teacher forced: each conv/linear's input codes (the requant of a pool's sum) are the model's
    stats, forced = forced_run(g, pixels, codes)
    assert all(frac < 0.02 and worst <= 1 and distinct > 1 for frac, worst, distinct in stats.values()), stats
    out = dequantised(g, g.reference(pixels))
    y = y.reshape(out.shape)
    span = float(y.max() - y.min())
    assert np.abs(out - y).max() < 0.1 * span
    run = simulate(g, pixels[:2], backend="pysim", stall=0.3, seed=1, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()


@pytest.mark.parametrize("make,match", [
    (lambda: PoolNet(pool_bits=None), r"layer 'pool' \(QAvgPool2d\).*float average pool"),
])
def test_pool_export_errors_name_the_layer(make, match):
    model = calibrate(make(), (3, 8, 8))
    with pytest.raises(ExportError, match=match):
        export(model, (3, 8, 8))
