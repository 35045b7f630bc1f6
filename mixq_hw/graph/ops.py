"""The integer semantics of every Graph op, as plain numpy functions on int64 arrays.

These functions are the golden model: ``Graph.reference`` calls them, and the
hardware tests call them directly to check one streaming layer against numpy.
Tensors are int64 arrays shaped (N, C, H, W); per-channel parameters run
along axis 1.  Every function checks its inputs and raises ``ValueError``
naming the offending argument rather than computing something silently wrong.
"""

from __future__ import annotations

import numpy as np

from ..packing.bits import INPUT_BITS, NEG_SHIFTS, act_codes, act_magnitude, signed_width, weight_max
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "input_codes", "conv2d_int", "linear_int", "requant", "leaky_shift", "leaky_round", "NEG_SHIFTS", "maxpool2x2", "reorg",
    "concat", "output_int", "hwc_flatten", "signed_width", "acc_bound", "acc_width",
    "weight_limit",
]

# float64 holds every integer of magnitude <= 2**53 exactly, so a matrix product
# whose worst-case partial sum stays below this runs on BLAS and is still exact.
_FLOAT_EXACT = 2 ** 53
_INT64_SAFE = 2 ** 62


def _int_array(x: object, what: str, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as an int64 array, refusing floats/bools and wrong ranks by name."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}: expected an integer array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what}: expected {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= 2 ** 63:
        raise ValueError(f"{what}: value {int(arr.max())} does not fit int64")
    return arr.astype(np.int64, copy=False)


def _max_abs(arr: np.ndarray) -> int:
    return int(np.abs(arr).max()) if arr.size else 0


#: Largest weight magnitude of the narrow signed range: ``2**(w_bits-1) - 1`` (:mod:`mixq_hw.packing.bits`).
weight_limit = weight_max


def acc_bound(fan_in: int, w_bits: int, a_bits: int, signed_act: bool = False) -> int:
    """Largest |sum w*a| over ``fan_in`` products of narrow-range weights and unsigned codes (two's-complement
    codes with ``signed_act``)."""
    return int(fan_in) * weight_limit(w_bits) * act_magnitude(int(a_bits), bool(signed_act))


def acc_width(fan_in: int, w_bits: int, a_bits: int, signed_act: bool = False) -> int:
    """Signed width of an accumulator of ``fan_in`` products (the ``acc_bits`` of a requant)."""
    bound = acc_bound(fan_in, w_bits, a_bits, signed_act)
    return signed_width(-bound, bound)


def input_codes(pixels: object, bits: int) -> np.ndarray:
    """Keep the top ``bits`` bits of 8-bit pixels: ``pixel >> (8 - bits)`` (the input quantizer)."""
    if int(bits) not in INPUT_BITS:
        raise ValueError(f"input_codes: bits must be {INPUT_BITS.start}..{INPUT_BITS.stop - 1}, got {bits}")
    px = _int_array(pixels, "input_codes: pixels")
    if px.size and (px.min() < 0 or px.max() > 255):
        raise ValueError(f"input_codes: pixels must be 0..255, got range "
                         f"[{int(px.min())}, {int(px.max())}]")
    return px >> (8 - int(bits))


def conv2d_int(x: object, w: object, stride: int = 1, pad: int = 0, groups: int = 1) -> np.ndarray:
    """Exact integer 2-D convolution (cross-correlation like torch), zero padding, grouped.

    ``x`` (N, C, H, W), ``w`` (O, C/groups, k, k) -> (N, O, Ho, Wo) with
    ``Ho = (H + 2*pad - k) // stride + 1``.  Output channel ``o`` belongs to
    group ``o // (O/groups)``, as in torch.
    """
    x = _int_array(x, "conv2d_int: x", 4)
    w = _int_array(w, "conv2d_int: w", 4)
    n, c, h, wd = x.shape
    o, cg, k, k2 = w.shape
    stride, pad, groups = int(stride), int(pad), int(groups)
    if k != k2:
        raise ValueError(f"conv2d_int: kernel must be square, got {k}x{k2}")
    if stride < 1 or pad < 0 or groups < 1:
        raise ValueError(f"conv2d_int: bad stride={stride}, pad={pad} or groups={groups}")
    if c % groups or o % groups or cg != c // groups:
        raise ValueError(f"conv2d_int: {c} input / {o} output channels do not match "
                         f"weight shape {w.shape} with groups={groups}")
    if h + 2 * pad < k or wd + 2 * pad < k:
        raise ValueError(f"conv2d_int: input {h}x{wd} (pad {pad}) smaller than kernel {k}")
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    bound = _max_abs(x) * _max_abs(w) * cg * k * k
    if bound >= _INT64_SAFE:
        raise ValueError(f"conv2d_int: accumulator bound {bound} overflows int64")
    # float64 (BLAS) is exact while every partial sum stays below 2**53; int64 otherwise.
    dtype = np.float64 if bound < _FLOAT_EXACT else np.int64
    xp = np.pad(x.astype(dtype), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    wf = w.astype(dtype)
    if groups == 1 and cg * k * k > 64:
        out = _conv_dense_by_offset(xp, wf, stride, ho, wo)
    elif cg == 1 and o == groups:
        out = _conv_depthwise_by_offset(xp, wf, stride, ho, wo)
    else:
        out = _conv_im2col(xp, wf, stride, groups, ho, wo)
    return np.rint(out).astype(np.int64) if dtype is np.float64 else out


def _offset(a: np.ndarray, dy: int, dx: int, stride: int, ho: int, wo: int, axes: tuple[int, int]) -> np.ndarray:
    """View of ``a`` at kernel offset (dy, dx): the input pixel each output pixel reads there."""
    idx = [slice(None)] * a.ndim
    idx[axes[0]] = slice(dy, dy + stride * (ho - 1) + 1, stride)
    idx[axes[1]] = slice(dx, dx + stride * (wo - 1) + 1, stride)
    return a[tuple(idx)]


def _conv_dense_by_offset(xp: np.ndarray, w: np.ndarray, stride: int, ho: int, wo: int) -> np.ndarray:
    """Dense conv as k*k matrix products of channel vectors (no k*k-times larger im2col copy)."""
    n, o, k = xp.shape[0], w.shape[0], w.shape[2]
    nhwc = np.ascontiguousarray(xp.transpose(0, 2, 3, 1))
    out = np.zeros((n * ho * wo, o), dtype=xp.dtype)
    for dy in range(k):
        for dx in range(k):
            # contiguous 2-D operands: numpy's batched/strided matmul can miss BLAS by far
            patch = np.ascontiguousarray(_offset(nhwc, dy, dx, stride, ho, wo, (1, 2))).reshape(n * ho * wo, -1)
            out += patch @ np.ascontiguousarray(w[:, :, dy, dx].T)
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _conv_depthwise_by_offset(xp: np.ndarray, w: np.ndarray, stride: int, ho: int, wo: int) -> np.ndarray:
    """Depthwise conv (one input and one output channel per group) as k*k multiply-adds."""
    n, c, k = xp.shape[0], xp.shape[1], w.shape[2]
    out = np.zeros((n, c, ho, wo), dtype=xp.dtype)
    for dy in range(k):
        for dx in range(k):
            out += _offset(xp, dy, dx, stride, ho, wo, (2, 3)) * w[:, 0, dy, dx].reshape(1, c, 1, 1)
    return out


def _conv_im2col(xp: np.ndarray, w: np.ndarray, stride: int, groups: int, ho: int, wo: int) -> np.ndarray:
    """Grouped conv as one batched matrix product over im2col patches (best for small fan-in)."""
    n, c = xp.shape[:2]
    o, cg, k = w.shape[:3]
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride][:, :, :ho, :wo]
    # (groups, N*Ho*Wo, Cg*k*k) @ (groups, Cg*k*k, O/groups)
    cols = win.reshape(n, groups, cg, ho, wo, k * k).transpose(1, 0, 3, 4, 2, 5)
    cols = cols.reshape(groups, n * ho * wo, cg * k * k)
    wmat = np.ascontiguousarray(w.reshape(groups, o // groups, cg * k * k).transpose(0, 2, 1))
    out = np.matmul(np.ascontiguousarray(cols), wmat)
    return out.reshape(groups, n, ho, wo, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)


def _exact_matmul(a: np.ndarray, b: np.ndarray, bound: int, what: str) -> np.ndarray:
    """Integer matmul, on float64 BLAS when ``bound`` (max |partial sum|) keeps it exact."""
    if bound >= _INT64_SAFE:
        raise ValueError(f"{what}: accumulator bound {bound} overflows int64")
    if bound < _FLOAT_EXACT:
        return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)
    return np.matmul(a, b)


def hwc_flatten(x: object) -> np.ndarray:
    """Flatten (N, C, H, W) to (N, H*W*C) in the hardware's streaming order (h, w, c)."""
    x = _int_array(x, "hwc_flatten: x", 4)
    return x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1)


def linear_int(x: object, w: object) -> np.ndarray:
    """Exact fully connected layer: ``w`` (O, H*W*C) on the HWC flattening of ``x`` -> (N, O, 1, 1)."""
    flat = hwc_flatten(x)
    w = _int_array(w, "linear_int: w", 2)
    if w.shape[1] != flat.shape[1]:
        raise ValueError(f"linear_int: weight has {w.shape[1]} inputs, x flattens to {flat.shape[1]}")
    out = _exact_matmul(np.ascontiguousarray(flat), np.ascontiguousarray(w.T),
                        _max_abs(flat) * _max_abs(w) * w.shape[1], "linear_int")
    return out.reshape(flat.shape[0], w.shape[0], 1, 1)


def _per_channel(v: object, what: str, channels: int) -> np.ndarray:
    arr = _int_array(v, what, 1)
    if arr.shape[0] != channels:
        raise ValueError(f"{what}: expected {channels} per-channel values, got {arr.shape[0]}")
    return arr.reshape(1, channels, 1, 1)


def leaky_shift(x: object, neg_shift: int) -> np.ndarray:
    """LeakyReLU with slope ``2**-neg_shift`` on integers: ``x >= 0 ? x : x >> neg_shift``, where ``>>`` is an
    arithmetic shift (floor division by ``2**neg_shift``: ``-1 >> k == -1``, ``-5 >> 1 == -3``)."""
    x = _int_array(x, "leaky_shift: x")
    if isinstance(neg_shift, bool) or not isinstance(neg_shift, (int, np.integer)) or int(neg_shift) not in NEG_SHIFTS:
        raise ValueError(f"leaky_shift: neg_shift must be an integer {NEG_SHIFTS.start}..{NEG_SHIFTS.stop - 1}, "
                         f"got {neg_shift!r}")
    return np.where(x >= 0, x, x >> int(neg_shift))


def leaky_round(total: object, shift: int, neg_shift: int | None = None) -> np.ndarray:
    """``total / 2**shift`` rounded half up (``(total + 2**(shift-1)) >> shift``, no rounding term at shift 0);
    with ``neg_shift = k``, LeakyReLU of slope ``2**-k`` before the rounding: a negative result is
    ``(total + 2**(shift+k-1)) >> (shift+k)``, the rounding of ``total / 2**(shift+k)``.  So the integer codes
    equal the fake-quantised ``floor(leaky(v) + 1/2)`` of ``v = total / 2**shift``."""
    total = _int_array(total, "leaky_round: total")
    shift = int(shift)
    if shift < 0:
        raise ValueError(f"leaky_round: shift must be >= 0, got {shift}")
    y = (total + ((1 << shift) >> 1)) >> shift
    if neg_shift is None:
        return y
    if isinstance(neg_shift, bool) or not isinstance(neg_shift, (int, np.integer)) or int(neg_shift) not in NEG_SHIFTS:
        raise ValueError(f"leaky_round: neg_shift must be an integer {NEG_SHIFTS.start}..{NEG_SHIFTS.stop - 1}, "
                         f"got {neg_shift!r}")
    t = shift + int(neg_shift)
    return np.where(y >= 0, y, (total + (1 << (t - 1))) >> t)


def requant(acc: object, inc: object, bias: object, shift: int, out_bits: int, *, neg_shift: int | None = None,
            signed_out: bool = False) -> np.ndarray:
    """Per-channel requantization ``clip(act((acc*inc + bias + 2**(T-1)) >> T), lo, hi)``.

    ``>>`` is an arithmetic shift (floor division by ``2**T``), so the
    rounding is half up, exactly like the activation quantizer.  The default
    is ReLU: ``act`` the identity and the clip to unsigned codes
    ``0 .. 2**out_bits - 1``.  ``signed_out``: the clip is to signed codes
    ``-2**(out_bits-1) .. 2**(out_bits-1) - 1`` (no activation: a residual branch);
    with ``neg_shift = k`` as well, LeakyReLU with slope ``2**-k`` comes before the
    rounding (:func:`leaky_round`): a negative value is
    ``(acc*inc + bias + 2**(T+k-1)) >> (T + k)``, as the fake-quantised model rounds it.
    """
    acc = _int_array(acc, "requant: acc", 4)
    shift, out_bits = int(shift), int(out_bits)
    if not 1 <= shift <= 61:
        raise ValueError(f"requant: shift must be 1..61, got {shift}")
    if not 1 <= out_bits <= 32:
        raise ValueError(f"requant: out_bits must be 1..32, got {out_bits}")
    if not isinstance(signed_out, (bool, np.bool_)):
        raise ValueError(f"requant: signed_out must be True or False, got {signed_out!r}")
    if neg_shift is not None and not signed_out:
        raise ValueError(f"requant: neg_shift {neg_shift!r} (LeakyReLU) needs signed_out: unsigned codes clip "
                         f"every negative value to 0")
    inc = _per_channel(inc, "requant: inc", acc.shape[1])
    bias = _per_channel(bias, "requant: bias", acc.shape[1])
    if _max_abs(acc) * _max_abs(inc) + _max_abs(bias) + 2 ** (shift - 1) >= _INT64_SAFE:
        raise ValueError("requant: acc*inc + bias overflows int64")
    y = leaky_round(acc * inc + bias, shift, neg_shift)
    lo, hi = act_codes(out_bits, bool(signed_out))
    return np.clip(y, lo, hi)


def _even_hw(x: np.ndarray, what: str) -> None:
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"{what}: height and width must be even, got {x.shape[2]}x{x.shape[3]}")


def maxpool2x2(x: object) -> np.ndarray:
    """2x2 max pooling with stride 2 on codes; H and W must be even."""
    x = _int_array(x, "maxpool2x2: x", 4)
    _even_hw(x, "maxpool2x2")
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def reorg(x: object) -> np.ndarray:
    """Space-to-depth by 2: out channel ``c*4 + dy*2 + dx`` = x[c, 2i+dy, 2j+dx] (pixel_unshuffle)."""
    x = _int_array(x, "reorg: x", 4)
    _even_hw(x, "reorg")
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)


def concat(xs: list) -> np.ndarray:
    """Concatenate tensors along channels, in order; batch and spatial sizes must agree."""
    if not xs:
        raise ValueError("concat: needs at least one input")
    arrs = [_int_array(x, f"concat: input {i}", 4) for i, x in enumerate(xs)]
    first = arrs[0].shape
    for i, a in enumerate(arrs):
        if (a.shape[0],) + a.shape[2:] != (first[0],) + first[2:]:
            raise ValueError(f"concat: input {i} has shape {a.shape}, input 0 has {first}")
    return np.concatenate(arrs, axis=1)


def output_int(acc: object, bias: object) -> np.ndarray:
    """The network output ``acc + bias`` per channel, checked to fit signed 32 bits."""
    acc = _int_array(acc, "output_int: acc", 4)
    y = acc + _per_channel(bias, "output_int: bias", acc.shape[1])
    if y.size and (y.min() < -2 ** 31 or y.max() > 2 ** 31 - 1):
        raise ValueError(f"output_int: value range [{int(y.min())}, {int(y.max())}] exceeds int32")
    return y
