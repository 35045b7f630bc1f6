"""YOLO-style single-object detection head of the DAC-SDC networks: decode, loss, IoU.

The network's last layer emits, per grid cell, A anchors x F fields, channel ``anchor * F + field``,
fields (tx, ty, tw, th, obj, class scores...).  Two head layouts (:data:`HEADS`, chosen by the channel
count unless ``anchors`` are given): 36 = 6 anchors x (tx, ty, tw, th, obj, cls) (UltraNet, SkyNet) and
51 = 3 anchors x (5 + 12 classes) (the reduced Tiny-YOLOv3).  DAC-SDC images hold one object, so decoding keeps the single
(anchor, cell) with the largest objectness; the ``cls`` channel is unused.  Boxes are
``(x1, y1, x2, y2)`` normalised to the image (0..1); the DAC-SDC metric is the mean IoU.

    cx = (col + sigmoid(tx)) / W,  cy = (row + sigmoid(ty)) / H,
    w  = anchor_w * exp(tw),       h  = anchor_h * exp(th)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ANCHORS", "TINY_YOLO_ANCHORS", "HEADS", "FIELDS", "NUM_CHANNELS", "head_anchors", "decode", "encode",
           "iou", "DetectionLoss"]

#: Default anchors (width, height) as fractions of the image: a ladder over small to large objects,
#: both orientations (mixq's own choice; pass ``anchors=`` to change them).
ANCHORS: tuple[tuple[float, float], ...] = (
    (0.05, 0.08), (0.10, 0.15), (0.16, 0.28), (0.25, 0.18), (0.35, 0.45), (0.60, 0.60))
#: The reduced Tiny-YOLOv3's anchors (its cfg's mask 0, 1, 2: 10x14, 23x27, 37x58 pixels at 416x416).
TINY_YOLO_ANCHORS: tuple[tuple[float, float], ...] = tuple(
    (w / 416, h / 416) for w, h in ((10, 14), (23, 27), (37, 58)))
FIELDS = ("tx", "ty", "tw", "th", "obj", "cls")
NUM_CHANNELS = len(ANCHORS) * len(FIELDS)
#: Head layouts by output channel count: the default anchors of each.
HEADS: dict[int, tuple[tuple[float, float], ...]] = {NUM_CHANNELS: ANCHORS, 3 * (5 + 12): TINY_YOLO_ANCHORS}


def head_anchors(channels: int) -> tuple[tuple[float, float], ...]:
    """The default anchors of a detection head with ``channels`` output channels (:data:`HEADS`)."""
    if channels not in HEADS:
        raise ValueError(f"no default anchors for a {channels}-channel detection head (known: "
                         f"{', '.join(map(str, HEADS))}); pass anchors=")
    return HEADS[channels]
_MAX_LOG_SCALE = 8.0   # exp() clamp: keeps an untrained head from producing inf boxes


def _anchors(anchors: Sequence[Sequence[float]], like: Tensor) -> Tensor:
    t = torch.as_tensor(anchors, dtype=like.dtype, device=like.device)
    if t.dim() != 2 or t.shape[1] != 2 or not bool((t > 0).all()):
        raise ValueError(f"anchors must be a list of positive (width, height) pairs, got {anchors!r}")
    return t


def _split(output: Tensor, anchors: Sequence[Sequence[float]] | None) -> tuple[Tensor, Tensor]:
    output = torch.as_tensor(output)
    if not output.is_floating_point():
        output = output.float()
    if output.dim() != 4:
        raise ValueError(f"detection output must be (N, anchors x fields, H, W), got shape {tuple(output.shape)}")
    a = _anchors(head_anchors(output.shape[1]) if anchors is None else anchors, output)
    fields = output.shape[1] // a.shape[0]
    if output.shape[1] != a.shape[0] * fields or fields < 5:
        raise ValueError(f"detection output must be (N, {a.shape[0]} anchors x F fields (F >= 5: tx, ty, tw, "
                         f"th, obj, ...), H, W), got shape {tuple(output.shape)}")
    n, _, h, w = output.shape
    return output.reshape(n, a.shape[0], fields, h, w), a


def decode(output: Tensor, anchors: Sequence[Sequence[float]] | None = None) -> Tensor:
    """(N, A * F, H, W) head output -> (N, 4) boxes (x1, y1, x2, y2) in [0, 1] of the most confident
    (anchor, cell); ties go to the first in (anchor, row, col) order.  ``anchors``: default by the
    channel count (:func:`head_anchors`)."""
    out, a = _split(output, anchors)
    n, num_anchors, _, h, w = out.shape
    best = out[:, :, 4].reshape(n, -1).argmax(dim=1)
    anchor, cell = best // (h * w), best % (h * w)
    row, col = cell // w, cell % w
    picked = out[torch.arange(n, device=out.device), anchor, :, row, col]        # (N, 6)
    cx = (col.to(out.dtype) + torch.sigmoid(picked[:, 0])) / w
    cy = (row.to(out.dtype) + torch.sigmoid(picked[:, 1])) / h
    bw = a[anchor, 0] * torch.exp(picked[:, 2].clamp(max=_MAX_LOG_SCALE))
    bh = a[anchor, 1] * torch.exp(picked[:, 3].clamp(max=_MAX_LOG_SCALE))
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
    return boxes.clamp(0.0, 1.0)


def _check_boxes(boxes: Tensor, what: str) -> Tensor:
    boxes = torch.as_tensor(boxes)
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what} must be (N, 4) boxes (x1, y1, x2, y2), got shape {tuple(boxes.shape)}")
    return boxes


def _targets(boxes: Tensor, grid: tuple[int, int], a: Tensor) -> dict[str, Tensor]:
    """Responsible cell, anchor and regression targets of one box per image."""
    boxes = _check_boxes(boxes, "target boxes").to(a.dtype)
    x1, y1, x2, y2 = boxes.unbind(1)
    if bool(((x2 <= x1) | (y2 <= y1)).any()) or bool(((boxes < 0) | (boxes > 1)).any()):
        raise ValueError("target boxes must satisfy 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    h, w = grid
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    col = (cx * w).floor().clamp(0, w - 1).long()
    row = (cy * h).floor().clamp(0, h - 1).long()
    # Best anchor by shape-only IoU (both boxes centred at the origin).
    inter = torch.minimum(bw[:, None], a[None, :, 0]) * torch.minimum(bh[:, None], a[None, :, 1])
    shape_iou = inter / (bw[:, None] * bh[:, None] + a[None, :, 0] * a[None, :, 1] - inter)
    anchor = shape_iou.argmax(dim=1)
    return {"row": row, "col": col, "anchor": anchor,
            "dx": cx * w - col, "dy": cy * h - row,
            "tw": torch.log(bw / a[anchor, 0]), "th": torch.log(bh / a[anchor, 1])}


def encode(boxes: Tensor, grid: tuple[int, int], anchors: Sequence[Sequence[float]] = ANCHORS,
           confidence: float = 10.0, fields: int = len(FIELDS)) -> Tensor:
    """The (N, len(anchors) * fields, H, W) head output that decodes to ``boxes``: the inverse of
    :func:`decode` (objectness ``confidence`` at the responsible anchor and cell, ``-confidence`` elsewhere,
    class scores 0).  ``fields``: 6 for the DAC-SDC head, 17 for the reduced Tiny-YOLOv3's."""
    a = _anchors(anchors, torch.zeros((), dtype=torch.float64))
    if isinstance(fields, bool) or not isinstance(fields, int) or fields < 5:
        raise ValueError(f"fields must be an int >= 5 (tx, ty, tw, th, obj, classes...), got {fields!r}")
    t = _targets(boxes, grid, a)
    n = t["row"].shape[0]
    out = torch.zeros(n, a.shape[0], fields, *grid, dtype=torch.float64)
    out[:, :, 4] = -confidence
    idx = (torch.arange(n), t["anchor"], slice(None), t["row"], t["col"])
    eps = 1e-9
    picked = torch.zeros(n, fields, dtype=torch.float64)
    picked[:, :5] = torch.stack([torch.logit(t["dx"].clamp(eps, 1 - eps)), torch.logit(t["dy"].clamp(eps, 1 - eps)),
                                 t["tw"], t["th"], torch.full((n,), confidence, dtype=torch.float64)], dim=1)
    out[idx] = picked
    return out.reshape(n, -1, *grid).float()


def iou(pred_boxes: Tensor, true_boxes: Tensor) -> Tensor:
    """Element-wise IoU of two (N, 4) box tensors (x1, y1, x2, y2) -> (N,); 0 for empty unions."""
    p = _check_boxes(pred_boxes, "pred_boxes")
    t = _check_boxes(true_boxes, "true_boxes").to(p.dtype)
    if p.shape != t.shape:
        raise ValueError(f"pred_boxes {tuple(p.shape)} and true_boxes {tuple(t.shape)} differ in shape")
    iw = (torch.minimum(p[:, 2], t[:, 2]) - torch.maximum(p[:, 0], t[:, 0])).clamp(min=0)
    ih = (torch.minimum(p[:, 3], t[:, 3]) - torch.maximum(p[:, 1], t[:, 1])).clamp(min=0)
    inter = iw * ih
    area = lambda b: (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # noqa: E731
    union = area(p) + area(t) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


class DetectionLoss(nn.Module):
    """Single-object YOLO loss: squared error on the responsible anchor's (sigmoid tx, sigmoid ty, tw,
    th), binary cross-entropy on objectness (1 at the responsible anchor and cell, 0 elsewhere; the
    negatives averaged and weighted by ``noobj_weight``).  Mean over the batch.  ``anchors``: default
    by the head's channel count (:func:`head_anchors`)."""

    def __init__(self, anchors: Sequence[Sequence[float]] | None = None, coord_weight: float = 1.0,
                 noobj_weight: float = 1.0) -> None:
        super().__init__()
        self.anchors = None if anchors is None else tuple(tuple(float(v) for v in pair) for pair in anchors)
        self.coord_weight = coord_weight
        self.noobj_weight = noobj_weight

    def forward(self, output: Tensor, boxes: Tensor) -> Tensor:
        out, a = _split(output, self.anchors)
        n, _, _, h, w = out.shape
        t = _targets(torch.as_tensor(boxes).to(out.device), (h, w), a)
        if t["row"].shape[0] != n:
            raise ValueError(f"{n} outputs but {t['row'].shape[0]} target boxes")
        picked = out[torch.arange(n, device=out.device), t["anchor"], :, t["row"], t["col"]]
        coord = ((torch.sigmoid(picked[:, 0]) - t["dx"]) ** 2 + (torch.sigmoid(picked[:, 1]) - t["dy"]) ** 2
                 + (picked[:, 2] - t["tw"]) ** 2 + (picked[:, 3] - t["th"]) ** 2)
        obj = out[:, :, 4]
        target = torch.zeros_like(obj)
        target[torch.arange(n, device=out.device), t["anchor"], t["row"], t["col"]] = 1.0
        bce = F.binary_cross_entropy_with_logits(obj, target, reduction="none")
        pos = (bce * target).sum() / n
        neg = (bce * (1 - target)).sum() / (1 - target).sum().clamp(min=1)
        return self.coord_weight * coord.mean() + pos + self.noobj_weight * neg
