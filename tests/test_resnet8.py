"""ResNet-8 (MLPerf Tiny; the zoo's ReLU and LeakyReLU variants): export matches fake quant layer by layer (residual adds
aligned in integers, the codes re-scaled to each consumer, the global average pool), and the exported
network runs bit-exactly through the whole pipeline under random stalls at a reduced size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_export import calibrate, check_decisions, dequantised, forced_run, run_model

from mixq_hw.pipeline import plan_stages
from mixq_nn import models
from mixq_nn.export import ExportError, export
from mixq_nn.layers import QConv2d, QLinear
from mixq_nn.ops_layers import LeakyReLU
from sim.network import simulate

#: reduced widths: stem, (mid, out) of stage 1, (mid, out, shortcut) of stages 2 and 3
SMALL = {"channels": (4, 4, 4, 4, 8, 8, 4, 8, 8)}


def test_resnet8_export_matches_fake_quant():
    shape = (3, 16, 16)
    torch.manual_seed(1)
    model = calibrate(models.build("ResNet8", input_shape=shape), shape)
    g = export(model, shape)
    ops = [n.op for n in g.nodes]
    assert ops.count("add") == 3 and ops.count("rescale") == 3 and ops.count("avgpool") == 1
    assert sum(g.value_info(n.name).signed_codes for n in g.nodes if n.op == "requant") == 5
    pixels = np.random.default_rng(2).integers(0, 256, (16, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    stats, forced = forced_run(g, pixels, codes)
    assert len(stats) == 10
    for layer, (frac, worst, distinct) in stats.items():
        assert frac < 1e-3 and worst <= 1 and distinct > 1, (layer, frac, worst, distinct)
    out = dequantised(g, g.reference(pixels))
    y = y.reshape(out.shape)
    assert np.abs(out - y).max() < 0.1 * float(y.max() - y.min())
    check_decisions(out, y)


def test_resnet8_leaky_export_matches_fake_quant():
    """Every LeakyReLU becomes the neg_shift of a requant (after a conv + BN) or of an add's rescale; every
    conv, the pool and the FC after one read signed codes; teacher-forced codes agree with the model's."""
    shape = (3, 16, 16)
    torch.manual_seed(1)
    model = calibrate(models.build("ResNet8Leaky", input_shape=shape), shape)
    g = export(model, shape)
    infos = g.value_infos()
    leaky = [n for n in g.nodes if n.attrs.get("neg_shift") == 3]
    assert {n.op for n in leaky} == {"requant", "rescale"} and len(leaky) >= 6
    readers = [n for n in g.nodes if n.op in ("conv", "linear", "avgpool")]
    assert sum(infos[n.inputs[0]].signed_codes for n in readers) == len(readers) - 1      # all but the stem
    pixels = np.random.default_rng(2).integers(0, 256, (16, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    stats, forced = forced_run(g, pixels, codes)
    assert len(stats) == 10
    for layer, (frac, worst, distinct) in stats.items():
        assert frac < 1e-3 and worst <= 1 and distinct > 1, (layer, frac, worst, distinct)
    out = dequantised(g, g.reference(pixels))
    y = y.reshape(out.shape)
    assert np.abs(out - y).max() < 0.1 * float(y.max() - y.min())
    check_decisions(out, y)


def test_leaky_after_a_pool_is_refused_clearly():
    class PoolLeaky(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = QConv2d(3, 4, 3, padding=1, bitw=4, bita=8, first=True)
            self.pool, self.act = torch.nn.MaxPool2d(2), LeakyReLU(3)
            self.fc = QLinear(4 * 2 * 2, 2, bitw=4, bita=4, act_signed=True)

        def forward(self, x):
            return self.fc(torch.flatten(self.act(self.pool(self.conv(x))), 1))

    with pytest.raises(ExportError, match=r"layer 'act' \(LeakyReLU\): must directly follow a quantised "
                                          r"conv/linear .* not a maxpool"):
        export(PoolLeaky().eval(), (3, 4, 4))


@pytest.mark.parametrize("name", ["ResNet8", "ResNet8Leaky"])
def test_resnet8_pipeline_bit_exact_under_stalls(name):
    shape = (3, 4, 4)
    torch.manual_seed(3)
    model = calibrate(models.build(name, input_shape=shape, **SMALL), shape)
    g = export(model, shape)
    images = np.random.default_rng(4).integers(0, 256, (2, *shape), dtype=np.uint8)
    reference = g.reference(images)
    assert len(np.unique(reference)) > 10
    plan = plan_stages(g)
    assert sum(s.kind == "add" for s in plan.stages) == 3 and any(s.kind == "avgpool" for s in plan.stages)
    assert sum(s.kind == "rescale" for s in plan.stages) == 3
    run = simulate(g, images, backend="pysim", stall=0.3, seed=5, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, reference)
