"""Single-object YOLO head: decode and IoU on hand cases, encode/decode round trip, the loss trains."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixq_nn import models
from mixq_nn.detection import ANCHORS, NUM_CHANNELS, DetectionLoss, decode, encode, iou

torch.manual_seed(0)



def test_iou_hand_cases():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3],
                      [0.0, 0.0, 0.2, 0.2], [0.2, 0.2, 0.2, 0.6]])
    b = torch.tensor([[0.5, 0.5, 1.5, 1.5], [0.0, 0.0, 0.5, 0.5], [0.2, 0.1, 0.4, 0.3],
                      [0.5, 0.5, 0.9, 0.9], [0.2, 0.2, 0.2, 0.6]])
    # 0.25 / 1.75; identical; 0.02 / 0.06; disjoint; both empty (zero area) -> 0
    assert torch.allclose(iou(a, b), torch.tensor([1 / 7, 1.0, 1 / 3, 0.0, 0.0]))
    assert torch.allclose(iou(np.asarray(a), b), iou(a, b))
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        iou(a[:, :3], b[:, :3])
    with pytest.raises(ValueError, match="differ in shape"):
        iou(a, b[:2])


def test_decode_hand_case():
    grid = (2, 4)
    out = torch.full((1, NUM_CHANNELS, *grid), -5.0)
    anchor, row, col = 2, 1, 3
    base = anchor * 6
    out[0, base + 4, row, col] = 3.0             # the most confident objectness
    out[0, base + 0, row, col] = 0.0             # sigmoid 0.5: cell centre
    out[0, base + 1, row, col] = math.log(3)     # sigmoid 0.75
    out[0, base + 2, row, col] = math.log(0.5)   # half the anchor width
    out[0, base + 3, row, col] = 0.0
    out[0, 4, 0, 0] = 2.9                        # a weaker candidate elsewhere
    aw, ah = ANCHORS[anchor]
    cx, cy, w, h = (3 + 0.5) / 4, (1 + 0.75) / 2, aw * 0.5, ah
    expected = torch.tensor([[cx - w / 2, cy - h / 2, min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)]])
    assert torch.allclose(decode(out), expected, atol=1e-6)
    # boxes are clamped to the image
    assert float(decode(out)[0, 3]) == 1.0 and cy + h / 2 > 1.0


def test_encode_decode_round_trip_and_decode_of_numpy():
    boxes = torch.tensor([[0.10, 0.20, 0.30, 0.50], [0.55, 0.05, 0.95, 0.45], [0.0, 0.0, 1.0, 1.0],
                          [0.40, 0.40, 0.42, 0.43]])
    out = encode(boxes, (5, 10))
    assert out.shape == (4, NUM_CHANNELS, 5, 10)
    assert torch.allclose(decode(out), boxes, atol=1e-5)
    assert torch.allclose(decode(out.numpy()), boxes, atol=1e-5)
    assert torch.allclose(iou(decode(out), boxes), torch.ones(4), atol=1e-4)


def test_loss_is_low_at_the_encoding_and_training_the_output_finds_the_box():
    boxes = torch.tensor([[0.2, 0.3, 0.4, 0.6], [0.6, 0.1, 0.9, 0.3]])
    loss = DetectionLoss()
    good, bad = encode(boxes, (4, 8)), encode(boxes.flip(0), (4, 8))
    assert float(loss(good, boxes)) < 0.01 < float(loss(bad, boxes))
    out = torch.zeros(2, NUM_CHANNELS, 4, 8, requires_grad=True)
    opt = torch.optim.Adam([out], lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        loss(out, boxes).backward()
        opt.step()
    assert float(iou(decode(out.detach()), boxes).min()) > 0.9


def test_loss_backpropagates_through_a_detection_net():
    shape = (3, 32, 64)
    model = models.build("UltraNet", "fixed", input_shape=shape)
    out = model(torch.rand(2, *shape))
    boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.3, 0.2, 0.7, 0.9]])
    value = DetectionLoss()(out, boxes)
    value.backward()
    assert math.isfinite(float(value.detach())) and model.head.weight.grad.abs().sum() > 0
    assert decode(out.detach()).shape == (2, 4)


def test_detection_errors():
    loss = DetectionLoss()
    with pytest.raises(ValueError, match="no default anchors for a 30-channel detection head"):
        decode(torch.zeros(1, 30, 2, 2))
    with pytest.raises(ValueError, match=r"6 anchors x F fields"):
        decode(torch.zeros(1, 51, 2, 2), anchors=[(0.1, 0.2)] * 6)
    with pytest.raises(ValueError, match="0 <= x1 < x2 <= 1"):
        loss(torch.zeros(1, 36, 2, 2), torch.tensor([[0.5, 0.5, 0.4, 0.9]]))
    with pytest.raises(ValueError, match="1 outputs but 2 target boxes"):
        loss(torch.zeros(1, 36, 2, 2), torch.tensor([[0.1, 0.1, 0.2, 0.2]] * 2))
    with pytest.raises(ValueError, match="anchors"):
        decode(torch.zeros(1, 36, 2, 2), anchors=[(0.1, -0.2)] * 6)


def test_tiny_yolo_head_layout_decodes_and_trains():
    """51 channels = 3 anchors x (5 + 12 classes): the default anchors follow the channel count, and a
    head encoding a box at one anchor and cell decodes to that box."""
    from mixq_nn.detection import TINY_YOLO_ANCHORS, head_anchors

    assert head_anchors(51) == TINY_YOLO_ANCHORS and len(TINY_YOLO_ANCHORS) == 3
    out = torch.full((1, 51, 4, 4), -5.0)
    a = 1                                           # anchor 1, fields at channels 17..33
    out[0, a * 17 + 4, 2, 3] = 5.0                  # objectness at row 2, col 3
    out[0, a * 17 + 0:a * 17 + 4, 2, 3] = 0.0       # centre of the cell, anchor-sized box
    cx, cy = (3 + 0.5) / 4, (2 + 0.5) / 4
    w, h = TINY_YOLO_ANCHORS[a]
    expected = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    assert torch.allclose(decode(out), expected)
    target = expected.clamp(0, 1)
    logits = out.clone().requires_grad_(True)
    value = DetectionLoss()(logits, target)
    value.backward()
    assert math.isfinite(float(value.detach())) and logits.grad.abs().sum() > 0


def test_tiny_yolo_target_assignment_round_trip_and_minimal_loss():
    """A known box goes to the cell holding its centre and the anchor of the best shape IoU; the 51-channel
    encoding decodes back to it, and the loss is lowest there (any moved or resized box costs more)."""
    from mixq_nn.detection import TINY_YOLO_ANCHORS

    grid = (4, 4)
    # centre (0.35, 0.625) -> row 2, col 1; a 0.1 x 0.15 box matches anchor 2 (0.089 x 0.139) best,
    # a 0.03 x 0.04 box anchor 0 (0.024 x 0.034), a 0.06 x 0.06 box anchor 1 (0.055 x 0.065)
    boxes = torch.tensor([[0.30, 0.55, 0.40, 0.70], [0.86, 0.05, 0.89, 0.09], [0.02, 0.90, 0.08, 0.96]])
    where = [(2, 2, 1), (0, 0, 3), (1, 3, 0)]                     # (anchor, row, col)
    out = encode(boxes, grid, TINY_YOLO_ANCHORS, fields=17)
    assert out.shape == (3, 51, *grid)
    for i, (anchor, row, col) in enumerate(where):
        obj = out[i].reshape(3, 17, *grid)[:, 4]
        assert float(obj[anchor, row, col]) == 10.0 and int((obj > 0).sum()) == 1
    assert torch.allclose(decode(out), boxes, atol=1e-5)
    loss = DetectionLoss()
    best = float(loss(out, boxes))
    assert best < 0.01
    for moved in (boxes + torch.tensor([0.02, 0.0, 0.02, 0.0]), boxes + torch.tensor([0.0, 0.0, 0.01, 0.01])):
        assert float(loss(encode(moved, grid, TINY_YOLO_ANCHORS, fields=17), boxes)) > best
    with pytest.raises(ValueError, match="fields must be an int >= 5"):
        encode(boxes, grid, TINY_YOLO_ANCHORS, fields=4)
