"""PYNQ host driver for a mixq accelerator (copied next to mixq.bit / mixq.hwh by the build).

Runs on the board with only numpy and pynq: loads the overlay, streams a batch
of 8-bit images through the AXI DMA in one transfer each way, and turns the
raw ``acc + bias`` outputs into classes or boxes.  Everything the driver needs
to know about the design (shapes, stream widths, per-channel scales, the
detection anchors) is in ``mixq_meta.json``, written by the same build.

    from mixq_driver import MixqAccelerator
    acc = MixqAccelerator("mixq.bit")
    labels = acc.classify(images)          # images: (N, H, W, C) uint8
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["MixqAccelerator", "pack_images", "unpack_outputs", "decode_boxes"]


def pack_images(images: np.ndarray, meta: dict) -> np.ndarray:
    """(N, H, W, C) uint8 images -> the input stream's bytes: one pixel per beat, channels zero-padded."""
    c, h, w = meta["input_shape"]
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (h, w, c):
        raise ValueError(f"images must be uint8 (N, {h}, {w}, {c}), got {images.dtype} {images.shape}")
    beat = meta["in_width"] // 8
    packed = np.zeros((images.shape[0], h, w, beat), dtype=np.uint8)
    packed[..., :c] = images
    return packed.reshape(-1)


def unpack_outputs(words: np.ndarray, n: int, meta: dict) -> np.ndarray:
    """The output stream's int32 words -> (N, C, H, W) raw ``acc + bias`` values."""
    c, h, w = meta["output_shape"]
    lanes, beat = meta["out_lanes"], meta["out_width"] // 32
    beats = np.asarray(words, dtype=np.int32).reshape(n, h, w, c // lanes, beat)[..., :lanes]
    return beats.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_boxes(output: np.ndarray, anchors) -> np.ndarray:
    """(N, 6*A, H, W) dequantised head output -> (N, 4) boxes (x1, y1, x2, y2) in [0, 1].

    The most confident (anchor, cell) wins, ties to the first in (anchor, row, col) order; the same
    rule as ``mixq_nn.detection.decode``, which the tests compare this with.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    n, ch, h, w = output.shape
    out = output.reshape(n, len(anchors), ch // len(anchors), h, w)
    best = out[:, :, 4].reshape(n, -1).argmax(axis=1)
    anchor, cell = best // (h * w), best % (h * w)
    row, col = cell // w, cell % w
    picked = out[np.arange(n), anchor, :, row, col]
    cx = (col + _sigmoid(picked[:, 0])) / w
    cy = (row + _sigmoid(picked[:, 1])) / h
    bw = anchors[anchor, 0] * np.exp(np.minimum(picked[:, 2], 8.0))
    bh = anchors[anchor, 1] * np.exp(np.minimum(picked[:, 3], 8.0))
    return np.clip(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1), 0.0, 1.0)


class MixqAccelerator:
    """The accelerator on the board: ``infer`` for raw outputs, ``classify`` / ``detect`` for results."""

    def __init__(self, bitfile: str = "mixq.bit", meta: str | None = None, *, dma: str = "dma"):
        from pynq import Overlay  # only on the board

        bitfile = Path(bitfile)
        self.meta = json.loads(Path(meta or bitfile.with_name("mixq_meta.json")).read_text())
        self.overlay = Overlay(str(bitfile))
        self.dma = getattr(self.overlay, dma)
        self.scale = np.asarray(self.meta["scale"], dtype=np.float64)
        self.last_seconds = 0.0

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Raw ``acc + bias`` (N, C, H, W) int32 for a batch of (N, H, W, C) uint8 images."""
        from pynq import allocate

        data = pack_images(images, self.meta)
        n = images.shape[0]
        c, h, w = self.meta["output_shape"]
        out_words = n * h * w * (c // self.meta["out_lanes"]) * (self.meta["out_width"] // 32)
        src = allocate(shape=data.shape, dtype=np.uint8)
        dst = allocate(shape=(out_words,), dtype=np.int32)
        try:
            src[:] = data
            started = time.perf_counter()
            self.dma.recvchannel.transfer(dst)
            self.dma.sendchannel.transfer(src)
            self.dma.sendchannel.wait()
            self.dma.recvchannel.wait()
            self.last_seconds = time.perf_counter() - started
            return unpack_outputs(np.array(dst), n, self.meta)
        finally:
            src.freebuffer()
            dst.freebuffer()

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        """Real-valued outputs: ``(acc + bias) * scale`` per channel."""
        return raw * self.scale.reshape(1, -1, 1, 1)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class index per image (classification networks)."""
        return self.dequantize(self.infer(images)).reshape(images.shape[0], -1).argmax(axis=1)

    def detect(self, images: np.ndarray) -> np.ndarray:
        """(N, 4) boxes (x1, y1, x2, y2) in [0, 1] (single-object detection networks)."""
        return decode_boxes(self.dequantize(self.infer(images)), self.meta["anchors"])
