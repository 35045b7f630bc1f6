"""Every seed network trains: a few Adam steps on one batch of digits (classifiers) or synthetic boxes
(the detector) lower the loss, and the TinyYOLOv3 checkpoint round-trips."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from mixq_nn import checkpoint, loops, models
from mixq_nn.data import get_dataset

CASES = {"DiracDeltaNet": (1, 32, 32), "DiracDeltaNetSmall": (1, 32, 32), "CNVw2a2": (1, 32, 32),
         "ResNet8": (1, 16, 16), "ResNet8Leaky": (1, 16, 16), "TinyYOLOv3": (3, 32, 32)}


def _losses(name: str, steps: int = 8) -> list[float]:
    info = models.MODELS[name]
    shape = CASES[name]
    torch.manual_seed(0)
    data = get_dataset("digits" if info.task == "classify" else "synthetic", "train", shape, task=info.task,
                       size=16)
    images, target = next(iter(DataLoader(data, batch_size=16)))
    model = models.build(name, input_shape=shape)
    criterion = loops.task_loss(info.task)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = criterion(model(images), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", list(CASES))
def test_a_few_steps_lower_the_loss(name):
    losses = _losses(name)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < losses[0], losses


def test_tiny_yolo_checkpoint_round_trip(tmp_path):
    shape = CASES["TinyYOLOv3"]
    model = models.build("TinyYOLOv3", input_shape=shape, leaky=True)
    x = torch.rand(2, *shape)
    model(x)                                         # LSQ weight steps initialise on first use
    path = checkpoint.save(tmp_path / "t.pt", model, name="TinyYOLOv3", bitw=[3] * 10,
                           bita=[8] + [3] * 8 + [8], input_shape=shape,
                           model_args={"weight_mode": "lsq", "act_mode": "lsq", "leaky": True})
    loaded = checkpoint.load(path)
    assert torch.equal(loaded.model(x), model.eval()(x))
