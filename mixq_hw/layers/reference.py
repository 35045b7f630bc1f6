"""Numpy references of the code-moving and pooling stream operators (numpy only, no Amaranth).

Every function takes an (N, C, H, W) integer batch of codes and returns int64 arrays; the hardware
blocks in this package (``shift``, ``pool``, ``avgpool``, ``upsample``, ``residual``, ``channels``)
are tested bit for bit against them.  Concatenation is :func:`mixq_hw.graph.ops.concat`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHIFT_OFFSETS", "shift_offset", "shift", "maxpool", "sum_pool", "global_sum_pool", "upsample2x",
           "residual_bounds", "residual_add", "channel_split", "channel_slice", "channel_shuffle"]

#: (dy, dx) of channel ``c`` is ``SHIFT_OFFSETS[c % 5]``: up, left, centre, right, down.
SHIFT_OFFSETS: tuple[tuple[int, int], ...] = ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))


def _batch(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected an integer (N, C, H, W) array, got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.int64)


def shift_offset(channel: int) -> tuple[int, int]:
    """The (dy, dx) that channel ``channel`` reads from: ``SHIFT_OFFSETS[channel % 5]``."""
    return SHIFT_OFFSETS[channel % 5]


def shift(x: object) -> np.ndarray:
    """DiracDeltaNet's shift: ``out[n, c, y, x] = in[n, c, y + dy, x + dx]`` with (dy, dx) = shift_offset(c),
    0 where that lies outside the image.  So channel 0 (``up``) takes each value from the pixel above
    (the picture moves down), channel 4 (``down``) from the pixel below."""
    x = _batch(x, "shift")
    n, c, h, w = x.shape
    padded = np.zeros((n, c, h + 2, w + 2), dtype=np.int64)
    padded[:, :, 1:-1, 1:-1] = x
    out = np.empty_like(x)
    for ch in range(c):
        dy, dx = shift_offset(ch)
        out[:, ch] = padded[:, ch, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
    return out


def maxpool(x: object, pad: int = 0) -> np.ndarray:
    """2x2 max pooling, stride 2, with ``pad`` rows/columns of -inf on every side (pad 0 or 1), as PyTorch pads.

    Output size ``(H + 2*pad - 2) // 2 + 1`` (PyTorch's floor mode); every window holds at least one real
    code, so the result is the maximum of a window's real codes, unsigned or signed.
    """
    x = _batch(x, "maxpool")
    if pad not in (0, 1):
        raise ValueError(f"maxpool: pad must be 0 or 1, not {pad!r}")
    n, c, h, w = x.shape
    ho, wo = (h + 2 * pad - 2) // 2 + 1, (w + 2 * pad - 2) // 2 + 1
    padded = np.full((n, c, 2 * ho, 2 * wo), np.iinfo(np.int64).min, dtype=np.int64)
    rows, cols = min(h, 2 * ho - pad), min(w, 2 * wo - pad)
    padded[:, :, pad:pad + rows, pad:pad + cols] = x[:, :, :rows, :cols]
    return padded.reshape(n, c, ho, 2, wo, 2).max(axis=(3, 5))


def sum_pool(x: object, kernel: tuple[int, int]) -> np.ndarray:
    """Sum over non-overlapping ``kernel`` = (kh, kw) windows (stride = kernel): an average pool without its
    1/(kh*kw) scale, which the following requant applies.  H and W must be multiples of kh and kw."""
    x = _batch(x, "sum_pool")
    kh, kw = kernel
    n, c, h, w = x.shape
    if h % kh or w % kw:
        raise ValueError(f"sum_pool: {h}x{w} is not a multiple of the {kh}x{kw} window")
    return x.reshape(n, c, h // kh, kh, w // kw, kw).sum(axis=(3, 5))


def global_sum_pool(x: object) -> np.ndarray:
    """Sum over the whole H x W map: (N, C, 1, 1)."""
    x = _batch(x, "global_sum_pool")
    return sum_pool(x, (x.shape[2], x.shape[3]))


def upsample2x(x: object) -> np.ndarray:
    """Nearest-neighbour upsampling by 2: ``out[n, c, y, x] = in[n, c, y // 2, x // 2]``."""
    x = _batch(x, "upsample2x")
    return x.repeat(2, axis=2).repeat(2, axis=3)


def residual_bounds(range_a: tuple[int, int], range_b: tuple[int, int], m0: int, m1: int,
                    shift: int) -> tuple[int, int]:
    """Least and greatest value of ``m0*a + m1*b + round`` over codes a, b in the given inclusive ranges."""
    rnd = (1 << (shift - 1)) if shift else 0
    ends_a = (m0 * range_a[0], m0 * range_a[1])
    ends_b = (m1 * range_b[0], m1 * range_b[1])
    return min(ends_a) + min(ends_b) + rnd, max(ends_a) + max(ends_b) + rnd


def residual_add(a: object, b: object, m0: int, m1: int, shift: int, out_range: tuple[int, int],
                 neg_shift: int | None = None) -> np.ndarray:
    """The residual add's integer contract: ``clip((m0*a + m1*b + round) >> shift, lo, hi)``.

    ``round`` is ``2**(shift-1)`` (0 when shift is 0), ``>>`` an arithmetic shift (floor), so the result
    is round-half-up of ``(m0*a + m1*b) / 2**shift``; ``out_range`` = (lo, hi) is the output code range
    (``(0, 2**bits - 1)`` fuses the ReLU that follows the add).  ``neg_shift = k``: LeakyReLU of slope
    ``2**-k`` before the rounding (:func:`mixq_hw.graph.ops.leaky_round`).
    """
    # imported here: mixq_hw.graph imports the op registry, whose ops import this module
    from ..graph.ops import leaky_round

    a, b = _batch(a, "residual_add: a"), _batch(b, "residual_add: b")
    if a.shape != b.shape:
        raise ValueError(f"residual_add: shapes {a.shape} and {b.shape} differ")
    return np.clip(leaky_round(m0 * a + m1 * b, shift, neg_shift), out_range[0], out_range[1])


def channel_split(x: object, channels0: int) -> tuple[np.ndarray, np.ndarray]:
    """Channels ``[0, channels0)`` and ``[channels0, C)``."""
    x = _batch(x, "channel_split")
    if not 0 < channels0 < x.shape[1]:
        raise ValueError(f"channel_split: channels0 {channels0} must lie strictly inside 0..{x.shape[1]}")
    return x[:, :channels0], x[:, channels0:]


def channel_slice(x: object, start: int, stop: int) -> np.ndarray:
    """Channels ``[start, stop)`` (``0 <= start < stop <= C``)."""
    x = _batch(x, "channel_slice")
    if not 0 <= start < stop <= x.shape[1]:
        raise ValueError(f"channel_slice: channels [{start}, {stop}) must lie inside 0..{x.shape[1]} and be non-empty")
    return x[:, start:stop]


def channel_shuffle(x: object) -> np.ndarray:
    """DiracDeltaNet's shuffle: the last quarter of the channels moves to the front (C divisible by 4)."""
    x = _batch(x, "channel_shuffle")
    c = x.shape[1]
    if c % 4:
        raise ValueError(f"channel_shuffle: {c} channels are not divisible by 4")
    return np.concatenate([x[:, c - c // 4:], x[:, :c - c // 4]], axis=1)
