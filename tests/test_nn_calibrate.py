"""calibrate_random: seeded, BN statistics are those of the calibration batches, weights untouched."""

import torch
from torch import nn

from mixq_nn import models
from mixq_nn.calibrate import calibrate_random


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.build("VGGtiny", input_shape=(3, 16, 16))


def test_calibration_is_seeded_and_changes_only_batchnorm():
    a, b, c = _model(), _model(), _model()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    calibrate_random(a, (3, 16, 16), seed=1)
    calibrate_random(b, (3, 16, 16), seed=1)
    calibrate_random(c, (3, 16, 16), seed=2)
    bns = [m for m in a.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not a.training
    for m in bns:
        assert 0.5 <= m.weight.min() and m.weight.max() <= 1.5 and m.num_batches_tracked == 2
        assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))
    conv_weights = [k for k, v in a.state_dict().items() if v.dim() == 4]
    assert conv_weights
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key          # same seed, same model
    for key in conv_weights:
        assert torch.equal(a.state_dict()[key], before[key]), key     # conv weights untouched
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
