"""QONNX's integer quantizer on constants, its rounding modes, and reading a model: the pieces of
:mod:`mixq_nn.qonnx_import` that do not walk the graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixq_hw.packing.bits import WEIGHT_BITS

from .export import ExportError

__all__ = ["QonnxImportError", "ROUNDING", "MAX_MODEL_BYTES", "QWeight", "qonnx_round", "weight_codes",
           "per_channel_scale", "load_onnx"]

#: rounding modes and the shift of the half-up requant that reproduces them on the 2**-T grid:
#: floor(x + 1/2 + a + b * 2**-T) with (a, b) below.
ROUNDING = {"HALF_UP": (0.0, 0), "ROUND": (0.0, 0), "HALF_EVEN": (0.0, 0), "FLOOR": (-0.5, 0),
            "DOWN": (-0.5, 0), "ROUND_TO_ZERO": (-0.5, 0), "CEIL": (0.5, -1), "UP": (0.5, -1),
            "HALF_DOWN": (0.0, -1)}
#: Largest model file read.
MAX_MODEL_BYTES = 1 << 30


class QonnxImportError(ExportError):
    """The QONNX model cannot be imported; the message names the node, the op and the value."""


@dataclass(eq=False)
class QWeight:
    """A quantized constant: integer ``codes``, their ``scale`` (the same shape) and signed width ``bits``."""

    codes: np.ndarray
    scale: np.ndarray
    bits: int

    @property
    def value(self) -> np.ndarray:
        """The real values, as QONNX's Quant outputs them."""
        return self.codes * self.scale


def load_onnx(source: Any) -> tuple[Any, str]:
    """``(onnx.ModelProto, where)`` from a ``.onnx`` path, a ModelProto or a qonnx ModelWrapper; ``where``
    names the file in messages (``"model"`` for one in memory)."""
    import onnx

    if isinstance(getattr(source, "model", None), onnx.ModelProto):  # a qonnx ModelWrapper
        return source.model, "model"
    if isinstance(source, onnx.ModelProto):
        return source, "model"
    path = Path(source)
    if not path.is_file():
        raise QonnxImportError(f"{path}: no such file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise QonnxImportError(f"{path}: {path.stat().st_size:,} bytes is above the 1 GiB limit for a model")
    try:
        return onnx.load(str(path), load_external_data=False), str(path)
    except Exception as exc:  # noqa: BLE001 - protobuf reports a corrupt file in several ways
        raise QonnxImportError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def qonnx_round(mode: str, x: np.ndarray) -> np.ndarray:
    """QONNX's rounding ``mode`` applied to ``x`` (its ``resolve_rounding_mode``)."""
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(x)
    if mode in ("FLOOR", "CEIL"):
        return np.floor(x) if mode == "FLOOR" else np.ceil(x)
    if mode in ("DOWN", "ROUND_TO_ZERO"):
        return np.fix(x)
    if mode == "UP":
        return np.sign(x) * np.ceil(np.abs(x))
    if mode == "HALF_UP":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.sign(x) * np.ceil(np.abs(x) - 0.5)  # HALF_DOWN


def weight_codes(where: str, w: np.ndarray, scale: np.ndarray, lo: int, hi: int, mode: str) -> QWeight:
    """The integer codes of a quantized constant (as QONNX's Quant computes them) and their width."""
    try:
        full = np.broadcast_to(scale, w.shape) if w.ndim else scale
    except ValueError:
        raise QonnxImportError(f"{where}: scale of shape {scale.shape} does not broadcast to the weight "
                               f"{w.shape}") from None
    codes = qonnx_round(mode, np.clip(w / full, lo, hi)).astype(np.int64)
    top = int(np.abs(codes).max()) if codes.size else 0
    bits = next((b for b in WEIGHT_BITS if 2 ** (b - 1) - 1 >= top), None)
    declared = (hi + 1).bit_length() if lo < 0 else hi.bit_length() + 1
    if bits is None:
        raise QonnxImportError(f"{where}: weight codes up to {top} need more than {WEIGHT_BITS.stop - 1} "
                               f"bits (signed, narrow range)")
    return QWeight(codes, np.array(full, dtype=np.float64), max(bits, min(declared, WEIGHT_BITS.stop - 1)))


def per_channel_scale(scale: np.ndarray, where: str) -> np.ndarray:
    """One weight scale per output channel (row); refuses scales that vary along a row."""
    rows = scale.reshape(scale.shape[0], -1) if scale.ndim else scale.reshape(1, 1)
    if np.any(rows != rows[:, :1]):
        raise QonnxImportError(f"{where}: the weight scale varies within an output channel; only per-tensor or "
                               f"per-output-channel weight scales")
    return rows[:, 0].astype(np.float64)
