"""Tensors <-> stream beats, in the layers' stream convention (see ``mixq_hw.layers``).

A (C, H, W) tensor travels in raster order; each pixel is ``C / lanes``
consecutive beats, beat ``b`` carrying channels ``b*lanes .. b*lanes+lanes-1``.
A batch (N, C, H, W) is its frames back to back.  These two functions are the
one place tests turn arrays into beats for :func:`sim.streams.run_streams` and
the received beats back into arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["tensor_to_beats", "beats_to_tensor"]


def _check_lanes(channels: int, lanes: int) -> None:
    if not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
    if channels % lanes:
        raise ValueError(f"channels {channels} not divisible by lanes {lanes}")


def tensor_to_beats(x: np.ndarray, lanes: int) -> list[list[int]]:
    """Beats (each a list of ``lanes`` ints) of a (C, H, W) tensor or an (N, C, H, W) batch.

    >>> tensor_to_beats(np.arange(4).reshape(2, 1, 2), lanes=1)
    [[0], [2], [1], [3]]
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a (C, H, W) tensor or an (N, C, H, W) batch, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"expected an integer tensor, got dtype {x.dtype}")
    batch = x if x.ndim == 4 else x[None]
    _check_lanes(batch.shape[1], lanes)
    # (N, C, H, W) -> (N, H, W, C): raster order with the channels of a pixel together.
    flat = np.ascontiguousarray(batch.transpose(0, 2, 3, 1)).reshape(-1, lanes)
    return flat.astype(np.int64).tolist()


def beats_to_tensor(beats: Sequence[Sequence[int]], shape: Sequence[int], lanes: int) -> np.ndarray:
    """The int64 tensor of ``shape`` ((C, H, W) or (N, C, H, W)) that ``beats`` carry; inverse of tensor_to_beats.

    Raises ``ValueError`` if the number of beats or of lanes per beat does not match the shape.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"shape must be (C, H, W) or (N, C, H, W), not {shape}")
    n, c, h, w = shape if len(shape) == 4 else (1, *shape)
    _check_lanes(c, lanes)
    expected = n * h * w * c // lanes
    if len(beats) != expected:
        raise ValueError(f"{len(beats)} beats do not make a tensor of shape {shape} "
                         f"at {lanes} lanes (expected {expected})")
    try:
        flat = np.array(beats, dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"beats are not a rectangular list of integers: {exc}") from exc
    if flat.ndim == 1 and lanes == 1:
        flat = flat[:, None]
    if flat.shape != (expected, lanes):
        raise ValueError(f"beats have shape {flat.shape}, expected ({expected}, {lanes}) "
                         f"for a tensor of shape {shape} at {lanes} lanes")
    out = flat.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    out = np.ascontiguousarray(out)
    return out if len(shape) == 4 else out[0]
