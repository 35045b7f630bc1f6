"""LUT plans as data: the layouts that :class:`~mixq_hw.packing.lut_core.LutMAC` runs (plain Python).

A LUT plan is a :class:`~mixq_hw.packing.layout.Plan` with ``multiplier == "lut"``:
either a kernel layout (one product per field, ``lanes == 1``) or a ``"dot"``
layout whose fields each sum one product per input lane.  :func:`lut_plan`
builds one, :func:`check_lut` is what :func:`~mixq_hw.packing.layout.check` runs
for it; ``expected_fields`` and ``emulate`` apply unchanged (``emulate`` is the
exact arithmetic for LUT plans).
"""

from __future__ import annotations

from .layout import Field, Plan, _field_bound, _slice_fits, act_range, weight_range

__all__ = ["lut_plan", "check_lut"]


def check_lut(plan: Plan, name: str) -> None:
    """:func:`~mixq_hw.packing.layout.check` for a LUT plan: :func:`lut_plan`'s layout, every field holding
    ``depth`` multiplies; ``name`` prefixes the messages."""
    if plan.kind not in ("kernel", "dot") or plan.overlap or plan.act_sign_bit or plan.correction != "borrow":
        raise ValueError(f"{name}: a LUT plan is a kernel or dot layout without overlap, sign bit or offset "
                         f"correction (got kind {plan.kind!r}, overlap {plan.overlap}, act_sign_bit "
                         f"{plan.act_sign_bit}, correction {plan.correction!r})")
    if plan.n_weights < 1 or plan.n_acts < 1 or plan.depth < 1 or not plan.fields:
        raise ValueError(f"{name}: a LUT plan needs weight and act slots, fields and depth >= 1, got "
                         f"{plan.n_weights} x {plan.n_acts}, {len(plan.fields)} fields, depth {plan.depth}")
    lanes, width = plan.lanes, plan.fields[0].width
    if plan.n_weights % lanes or plan.n_acts % lanes or (plan.kind == "dot") != (lanes > 1):
        raise ValueError(f"{name}: {plan.n_weights} x {plan.n_acts} slots are not {lanes} lanes of a "
                         f"{plan.kind} layout")
    want = _lut_layout(plan.n_weights // lanes, plan.n_acts // lanes, lanes, width)
    if (plan.weight_offsets, plan.act_offsets, plan.fields) != want:
        raise ValueError(f"{name}: not lut_plan's layout of {plan.n_weights // lanes} x {plan.n_acts // lanes} "
                         f"fields over {lanes} lane(s), {width} bits each")
    if not _slice_fits(plan, 0, plan.depth):
        raise ValueError(f"{name}: LUT fields of {width} bits cannot hold +-{_field_bound(plan, 0, plan.depth)} "
                         f"after {plan.depth} multiplies")


def _lut_layout(n_w: int, n_a: int, lanes: int, width: int) -> tuple:
    """(weight offsets, act offsets, fields) of a LUT plan with fields ``width`` bits apart.

    One lane: the kernel layout in an unbounded multiplier (weight ``i`` at ``i * n_a * width``, act ``j``
    at ``j * width``, so every product lands in its field).  Several lanes (a dot layout): weight slot
    ``i * lanes + l`` and act slot ``j * lanes + l`` meet in field ``i * n_a + j``; the offsets only
    number the slots (``slot * width``), no single multiplier word holds this layout.
    """
    fields = tuple(Field(offset=(i * n_a + j) * width, width=width,
                         terms=tuple((i * lanes + l, j * lanes + l) for l in range(lanes)))
                   for i in range(n_w) for j in range(n_a))
    if lanes == 1:
        return tuple(i * n_a * width for i in range(n_w)), tuple(j * width for j in range(n_a)), fields
    return (tuple(s * width for s in range(n_w * lanes)), tuple(s * width for s in range(n_a * lanes)), fields)


def lut_plan(w_bits: int, a_bits: int, n_weights: int, n_acts: int, depth: int, *, lanes: int = 1,
             k: int = 1) -> Plan:
    """A plan for LUT multipliers: ``n_weights x n_acts`` fields, each ``depth`` multiplies deep.

    ``lanes == 1``: a kernel plan, weight slot ``i`` and act slot ``j`` meet in
    field ``i * n_acts + j`` (one product per field).  ``lanes > 1``: a ``"dot"``
    plan with ``n_weights * lanes`` weight and ``n_acts * lanes`` act slots;
    field ``i * n_acts + j`` sums the ``lanes`` products of weight slot
    ``i * lanes + l`` and act slot ``j * lanes + l`` (a dot product over input
    lanes, summed before it is accumulated).  Fields are
    ``signed_bits(depth * lanes * max|w| * max a)`` wide; no DSP48E2 port
    bounds the layout (see :func:`_lut_layout` for the offsets).
    """
    for label, value, lo in (("w_bits", w_bits, 2), ("a_bits", a_bits, 1), ("n_weights", n_weights, 1),
                             ("n_acts", n_acts, 1), ("depth", depth, 1), ("lanes", lanes, 1), ("k", k, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(f"lut_plan: {label} {value!r} must be an integer >= {lo}")
    if w_bits > 16 or a_bits > 16:
        raise ValueError(f"lut_plan: w{w_bits}a{a_bits} wider than 16 bits")
    bound = depth * lanes * max(-weight_range(w_bits)[0], weight_range(w_bits)[1]) * act_range(a_bits)[1]
    w_offsets, a_offsets, fields = _lut_layout(n_weights, n_acts, lanes, bound.bit_length() + 1)
    kind = "kernel" if lanes == 1 else "dot"
    note = (f"LUT multipliers: {n_weights} x {n_acts} shift-and-add products" if lanes == 1 else
            f"LUT multipliers: {n_weights} x {n_acts} dot products over {lanes} lanes")
    return Plan(w_bits, a_bits, k, kind, "AD", w_offsets, a_offsets, fields, False, "borrow", depth, 0.0,
                note=note + ", no DSP48E2", multiplier="lut")
