"""What a single-layout plan promises and what a DSP48E2 computes with it, in numpy / Python integers.

:func:`expected_fields` is the arithmetic a :class:`~mixq_hw.packing.layout.Plan` promises (the sums of
its fields' products); :func:`emulate` (one accumulation, Python integers) and :func:`emulate_batch`
(vectorised, int64) pack both words, multiply at the DSP48E2's port widths, accumulate in the 48-bit P
register with the plan's C-port constant and slice the fields with its correction.  An exact plan makes
the two agree for every input (:func:`~mixq_hw.packing.layout.check`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .geometry import DSP48E2_GEOMETRY

if TYPE_CHECKING:
    from .layout import Plan
    from .protocol import PackingPlan

__all__ = ["expected_fields", "emulate", "emulate_batch"]

P_BITS = DSP48E2_GEOMETRY.p_bits
PRODUCT_BITS = DSP48E2_GEOMETRY.product_bits


def expected_fields(plan: PackingPlan, weights: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """The arithmetic a plan promises, vectorised over a batch.

    ``weights``: int array ``(..., depth, n_weights)``; ``acts``: ``(..., depth,
    n_acts)``.  Returns ``(..., n_fields)``: for every field the sum over the
    ``depth`` multiplies of the products listed in its terms.
    """
    w = np.asarray(weights, dtype=np.int64)
    a = np.asarray(acts, dtype=np.int64)
    out = []
    for fld in plan.fields:
        s = np.zeros(w.shape[:-2], dtype=np.int64)
        for i, j in fld.terms:
            s = s + (w[..., i] * a[..., j]).sum(axis=-1)
        out.append(s)
    return np.stack(out, axis=-1)


def _wrap(x: int, bits: int) -> int:
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def emulate(plan: Plan, weights: Sequence[Sequence[int]], acts: Sequence[Sequence[int]]) -> list[int]:
    """Compute the fields the way a DSP48E2 does, for one accumulation.

    ``weights[d]`` / ``acts[d]`` are the slot values of multiply ``d``
    (``len(weights) <= plan.depth``).  Packs both words, multiplies them at the
    port widths, accumulates in 48 bits with the C-port constant added once,
    removes the known field parities (overlap plans), and slices every field
    with its correction.  With ``act_sign_bit`` the activation word is read as
    signed (as the DSP48E2 does) and C adds :meth:`Plan.sign_correction` on
    every multiply.  Pure Python integers: slow, exact, the cores' model.
    """
    if not 1 <= len(weights) == len(acts) <= plan.depth:
        raise ValueError(f"need 1..{plan.depth} multiplies, got {len(weights)} weight and {len(acts)} act rows")
    if plan.multiplier == "lut":       # fabric products: the exact arithmetic
        return [int(v) for v in expected_fields(plan, np.asarray(weights), np.asarray(acts))]
    p = plan.offset_constant()
    parity = [0] * len(plan.fields)
    for wrow, arow in zip(weights, acts):
        wword = _wrap(sum(int(w) << o for w, o in zip(wrow, plan.weight_offsets)), plan.weight_port_bits)
        unsigned_aword = sum(int(a) << o for a, o in zip(arow, plan.act_offsets))
        aword = _wrap(unsigned_aword, plan.act_port_bits)
        product = _wrap(wword * aword, PRODUCT_BITS)
        p = _wrap(p + product + plan.sign_correction(wword, unsigned_aword), P_BITS)
        for f, fld in enumerate(plan.fields):
            for i, j in fld.terms:
                parity[f] ^= int(wrow[i]) & int(arow[j]) & 1
    if plan.overlap:
        p = _wrap(p - sum(bit << fld.offset for bit, fld in zip(parity, plan.fields)), P_BITS)
    u = p & ((1 << P_BITS) - 1)
    out = []
    for f, fld in enumerate(plan.fields):
        lo, hi = plan.field_slice(f)
        raw = (u >> lo) & ((1 << (hi - lo)) - 1)
        if plan.correction == "offset":
            g = raw - (1 << (hi - lo - 1))
        elif plan.correction == "none":
            g = raw
        else:
            g = _wrap(raw, hi - lo) + ((u >> (lo - 1)) & 1 if lo > 0 else 0)
        out.append(2 * g + parity[f] if plan.overlap else g)
    return out


def _wrap_array(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of an int64 array to ``bits`` bits (signed result)."""
    half = np.int64(1) << np.int64(bits - 1)
    return ((x + half) & ((np.int64(1) << np.int64(bits)) - 1)) - half


def emulate_batch(plan: Plan, weights: np.ndarray, acts: np.ndarray, *, repeat: int = 1) -> np.ndarray:
    """:func:`emulate`, vectorised over a batch in int64 (48-bit P fits easily).

    ``weights``: ``(..., depth, n_weights)``, ``acts``: ``(..., depth, n_acts)``
    as for :func:`expected_fields`; returns ``(..., n_fields)``.  Every multiply
    row is applied ``repeat`` times (``depth * repeat <= plan.depth``), so long
    accumulations of the same codes need no long arrays; the result then equals
    ``repeat * expected_fields(...)`` for an exact plan.
    """
    w = np.asarray(weights, dtype=np.int64)
    a = np.asarray(acts, dtype=np.int64)
    if w.ndim < 2 or a.ndim < 2 or w.shape[-1] != plan.n_weights or a.shape[-1] != plan.n_acts \
            or w.shape[:-1] != a.shape[:-1]:
        raise ValueError(f"need weights (..., depth, {plan.n_weights}) and acts (..., depth, {plan.n_acts}) "
                         f"with equal leading shapes, got {w.shape} and {a.shape}")
    depth = w.shape[-2] * repeat
    if not 1 <= depth <= plan.depth or repeat < 1:
        raise ValueError(f"need 1..{plan.depth} multiplies, got {w.shape[-2]} rows x repeat {repeat}")
    if plan.multiplier == "lut":       # fabric products: the exact arithmetic
        return expected_fields(plan, w, a) * repeat
    wword = _wrap_array((w << np.asarray(plan.weight_offsets, dtype=np.int64)).sum(axis=-1), plan.weight_port_bits)
    aword = _wrap_array((a << np.asarray(plan.act_offsets, dtype=np.int64)).sum(axis=-1), plan.act_port_bits)
    product = _wrap_array(wword * aword, PRODUCT_BITS)
    if plan.act_sign_bit:
        # C adds W << n where the DSP read the word's top bit as a sign (aword < 0 after the wrap).
        sign_c = np.where(aword < 0, wword << np.int64(plan.act_port_bits), np.int64(0))
        product = _wrap_array(product + sign_c, P_BITS)
    # (sum of products) * repeat modulo 2**48: uint64 arithmetic wraps modulo 2**64, a multiple of 2**48.
    total = product.sum(axis=-1).astype(np.uint64) * np.uint64(repeat)
    p = _wrap_array((total & np.uint64((1 << P_BITS) - 1)).astype(np.int64), P_BITS)
    p = _wrap_array(p + np.int64(_wrap(plan.offset_constant(), P_BITS)), P_BITS)
    parities = []
    for fld in plan.fields:
        bits = np.zeros(w.shape[:-1], dtype=np.int64)
        for i, j in fld.terms:
            bits = bits ^ (w[..., i] & a[..., j] & 1)
        parities.append((bits.sum(axis=-1) * repeat) & 1)
    if plan.overlap:
        for bit, fld in zip(parities, plan.fields):
            p = _wrap_array(p - (bit << np.int64(fld.offset)), P_BITS)
    u = p & ((np.int64(1) << np.int64(P_BITS)) - 1)
    out = []
    for f, fld in enumerate(plan.fields):
        lo, hi = plan.field_slice(f)
        raw = (u >> np.int64(lo)) & ((np.int64(1) << np.int64(hi - lo)) - 1)
        if plan.correction == "offset":
            g = raw - (np.int64(1) << np.int64(hi - lo - 1))
        elif plan.correction == "none":
            g = raw
        else:
            g = _wrap_array(raw, hi - lo) + ((u >> np.int64(lo - 1)) & 1 if lo > 0 else 0)
        out.append(2 * g + parities[f] if plan.overlap else g)
    return np.stack(out, axis=-1)
