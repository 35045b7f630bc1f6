"""LUT plans as data: the layouts that :class:`~mixq_hw.packing.lut_core.LutMAC` runs (plain Python).

A LUT plan is a :class:`~mixq_hw.packing.layout.Plan` with ``multiplier == "lut"``:
either a kernel layout (one product per field, ``lanes == 1``) or a ``"dot"``
layout whose fields each sum one product per input lane.  :func:`lut_plan`
builds one; :func:`~mixq_hw.packing.layout.check_lut` is what :func:`~mixq_hw.packing.layout.check` runs
for it; ``expected_fields`` and ``emulate`` apply unchanged (``emulate`` is the
exact arithmetic for LUT plans).
"""

from __future__ import annotations

from .bits import LUT_MAX_BITS, act_magnitude, weight_range
from .layout import Plan, check_lut, lut_layout

__all__ = ["lut_plan", "check_lut"]


def lut_plan(w_bits: int, a_bits: int, n_weights: int, n_acts: int, depth: int, *, lanes: int = 1,
             k: int = 1, signed_act: bool = False) -> Plan:
    """A plan for LUT multipliers: ``n_weights x n_acts`` fields, each ``depth`` multiplies deep.

    ``lanes == 1``: a kernel plan, weight slot ``i`` and act slot ``j`` meet in
    field ``i * n_acts + j`` (one product per field).  ``lanes > 1``: a ``"dot"``
    plan with ``n_weights * lanes`` weight and ``n_acts * lanes`` act slots;
    field ``i * n_acts + j`` sums the ``lanes`` products of weight slot
    ``i * lanes + l`` and act slot ``j * lanes + l`` (a dot product over input
    lanes, summed before it is accumulated).  Fields are
    ``signed_bits(depth * lanes * max|w| * max a)`` wide; no DSP48E2 port
    bounds the layout (see :func:`_lut_layout` for the offsets).  ``signed_act``: two's-complement activation
    codes (products bounded by ``max|w| * 2**(a-1)``).
    """
    for label, value, lo in (("w_bits", w_bits, 2), ("a_bits", a_bits, 1), ("n_weights", n_weights, 1),
                             ("n_acts", n_acts, 1), ("depth", depth, 1), ("lanes", lanes, 1), ("k", k, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(f"lut_plan: {label} {value!r} must be an integer >= {lo}")
    if w_bits > LUT_MAX_BITS or a_bits > LUT_MAX_BITS:
        raise ValueError(f"lut_plan: w{w_bits}a{a_bits} wider than {LUT_MAX_BITS} bits")
    if not isinstance(signed_act, bool):
        raise ValueError(f"lut_plan: signed_act {signed_act!r} must be True or False")
    bound = depth * lanes * max(-weight_range(w_bits)[0], weight_range(w_bits)[1]) * act_magnitude(a_bits, signed_act)
    w_offsets, a_offsets, fields = lut_layout(n_weights, n_acts, lanes, bound.bit_length() + 1)
    kind = "kernel" if lanes == 1 else "dot"
    note = (f"LUT multipliers: {n_weights} x {n_acts} shift-and-add products" if lanes == 1 else
            f"LUT multipliers: {n_weights} x {n_acts} dot products over {lanes} lanes")
    return Plan(w_bits, a_bits, k, kind, "AD", w_offsets, a_offsets, fields, False, "borrow", depth, 0.0,
                note=note + (", signed activations" if signed_act else "") + ", no DSP48E2", multiplier="lut",
                signed_act=signed_act)
