"""Helpers of the convolution engine: configuration checks, packing-plan choice, weight ROM layout.

Kept apart from :mod:`mixq_hw.layers.conv` so the engine file holds only the
hardware; everything here is plain Python/numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mixq_hw.packing import plans
from mixq_hw.packing.layout import Plan, weight_range

__all__ = ["ConvGeometry", "check_conv_config", "signed_bits", "choose_plan", "field_slots",
           "weight_rom_words"]


def signed_bits(bound: int) -> int:
    """Bits of a signed value that holds every integer in ``-bound .. bound``."""
    return max(int(bound), 0).bit_length() + 1


@dataclass(frozen=True)
class ConvGeometry:
    """The schedule's counts for one layer, derived once from the constructor's arguments.

    ``chunks`` = input beats per pixel (``in_ch / simd``); ``beats_per_group`` =
    window beats per output group (``k*k*chunks``); ``folds`` = output beats per
    group; ``beats_per_fold`` = engine cycles per output beat (the accumulation
    length: ``k*k*chunks`` dense, ``k*k`` depthwise).
    """

    in_ch: int
    out_ch: int
    k: int
    simd: int
    pe: int
    pixels: int
    depthwise: bool
    chunks: int
    beats_per_group: int
    folds: int
    beats_per_fold: int

    @property
    def fan_in(self) -> int:
        """Products summed into one output accumulator."""
        return self.k * self.k * (1 if self.depthwise else self.in_ch)


def check_conv_config(weight: np.ndarray, *, w_bits: int, a_bits: int, in_ch: int, out_ch: int, k: int,
                      groups: int, simd: int, pe: int, pixels: int, name: str) -> ConvGeometry:
    """Validate a ConvEngine configuration; raise ``ValueError`` naming the layer and the value."""
    where = f"in layer '{name}'" if name else "in ConvEngine"
    for label, value in (("in_ch", in_ch), ("out_ch", out_ch), ("k", k), ("simd", simd), ("pe", pe),
                         ("pixels", pixels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} {value!r} must be a positive integer {where}")
    if not 2 <= w_bits <= 8:
        raise ValueError(f"w_bits {w_bits} outside 2..8 {where}")
    if not 1 <= a_bits <= 8:
        raise ValueError(f"a_bits {a_bits} outside 1..8 {where}")
    if groups not in (1, in_ch):
        raise ValueError(f"groups {groups} must be 1 (dense) or in_ch {in_ch} (depthwise) {where}")
    depthwise = groups == in_ch and in_ch > 1
    if in_ch % simd:
        raise ValueError(f"in_ch {in_ch} not divisible by simd {simd} {where}")
    if out_ch % pe:
        raise ValueError(f"out_ch {out_ch} not divisible by pe {pe} {where}")
    if depthwise:
        if out_ch != in_ch:
            raise ValueError(f"depthwise out_ch {out_ch} must equal in_ch {in_ch} {where}")
        if pe != simd:
            raise ValueError(f"depthwise pe {pe} must equal simd {simd} {where}")
    shape = (out_ch, in_ch // groups, k, k)
    weight = np.asarray(weight)
    if weight.shape != shape:
        raise ValueError(f"weight shape {weight.shape} is not (out_ch, in_ch/groups, k, k) = {shape} {where}")
    if not np.issubdtype(weight.dtype, np.integer):
        raise ValueError(f"weight dtype {weight.dtype} is not an integer type {where}")
    lo, hi = weight_range(w_bits)
    if weight.size and (weight.min() < lo or weight.max() > hi):
        bad = weight[(weight < lo) | (weight > hi)].flat[0]
        raise ValueError(f"weight code {bad} outside the {w_bits}-bit narrow range {lo}..{hi} {where}")
    chunks = in_ch // simd
    beats_per_group = k * k * chunks
    folds = out_ch // pe
    return ConvGeometry(in_ch=in_ch, out_ch=out_ch, k=k, simd=simd, pe=pe, pixels=pixels,
                        depthwise=depthwise, chunks=chunks, beats_per_group=beats_per_group, folds=folds,
                        beats_per_fold=k * k if depthwise else beats_per_group)


def field_slots(plan: Plan) -> dict[tuple[int, int], int]:
    """Map ``(weight slot, act slot)`` to the index of the field holding that one product.

    The engine uses kernel packing: every field must be a single product, and
    every slot pair must have its own field.
    """
    slots: dict[tuple[int, int], int] = {}
    for f, fld in enumerate(plan.fields):
        if len(fld.terms) != 1:
            raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}): field {f} sums "
                             f"{len(fld.terms)} products; the conv engine needs one product per field")
        slots[fld.terms[0]] = f
    for i in range(plan.n_weights):
        for j in range(plan.n_acts):
            if (i, j) not in slots:
                raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}): product of "
                                 f"weight slot {i} and act slot {j} has no field")
    return slots


def _cores_for(plan: Plan, geo: ConvGeometry) -> int:
    """Packed cores the engine needs with ``plan`` (slots beyond pe/pixels are padded with zeros)."""
    n_w = 1 if geo.depthwise else plan.n_weights
    weight_groups = geo.pe if geo.depthwise else math.ceil(geo.pe / n_w)
    lanes = 1 if geo.depthwise else geo.simd
    return lanes * weight_groups * math.ceil(geo.pixels / plan.n_acts)


def choose_plan(geo: ConvGeometry, w_bits: int, a_bits: int, name: str) -> Plan:
    """The kernel-packing plan that gives this layer the most MACs per DSP (then the deepest).

    Candidates come from the planner (``plans(..., kinds=("kernel",), max_acts=pixels)``);
    for depthwise layers only one weight slot is usable (a lane is one channel),
    so one-weight plans are preferred and other plans use their slot 0 only.
    """
    try:
        candidates = plans(w_bits, a_bits, geo.k, kinds=("kernel",), max_acts=geo.pixels)
    except ValueError as err:
        raise ValueError(f"no packing plan for w{w_bits}a{a_bits} k{geo.k} in layer '{name}': {err}") from err
    usable = []
    for p in candidates:
        try:
            field_slots(p)
        except ValueError:
            continue
        if p.n_acts <= geo.pixels:
            usable.append(p)
    if not usable:
        raise ValueError(f"the planner has no kernel-packing plan with at most {geo.pixels} act slots "
                         f"for w{w_bits}a{a_bits} k{geo.k} in layer '{name}'")
    macs = geo.simd * geo.pixels * (1 if geo.depthwise else geo.pe)
    return max(usable, key=lambda p: (macs / _cores_for(p, geo), min(p.depth, geo.beats_per_fold),
                                      -len(p.fields)))


def weight_rom_words(weight: np.ndarray, geo: ConvGeometry, w_bits: int) -> list[int]:
    """The weight ROM's contents, one packed word per (fold, tap, chunk) engine cycle.

    Dense: word ``f*T + (ky*k + kx)*chunks + c`` holds ``weight[f*pe + p, c*simd + s, ky, kx]``
    as element ``[p][s]`` (bit offset ``(p*simd + s) * w_bits``, two's complement).
    Depthwise: word ``f*k*k + ky*k + kx`` holds ``weight[f*simd + s, 0, ky, kx]`` as element ``[s]``.
    """
    w = np.asarray(weight, dtype=np.int64)
    k, s_, p_ = geo.k, geo.simd, geo.pe
    if geo.depthwise:
        # (folds, simd, k, k) -> (folds, k*k, simd): one word per (fold, tap), lanes = channels
        arr = w[:, 0].reshape(geo.folds, s_, k * k).transpose(0, 2, 1)
    else:
        # (folds, pe, chunks, simd, k, k) -> (folds, k*k, chunks, pe, simd)
        arr = w.reshape(geo.folds, p_, geo.chunks, s_, k, k).transpose(0, 4, 5, 2, 1, 3)
    arr = arr.reshape(geo.folds * geo.beats_per_fold, -1) & ((1 << w_bits) - 1)
    shifts = [e * w_bits for e in range(arr.shape[1])]
    return [sum(int(v) << sh for v, sh in zip(row, shifts)) for row in arr]

