"""A readable account of a packing plan: bit maps of both ports and of P, fields, depth, correction.

Each plan kind's :meth:`~mixq_hw.packing.protocol.PackingPlan.explain` calls its function here:
:func:`explain_layout` (:class:`~mixq_hw.packing.layout.Plan`), :func:`explain_split`
(:class:`~mixq_hw.packing.split.SplitPlan`), :func:`explain_mixed`
(:class:`~mixq_hw.packing.mixed.MixedSplitPlan`); :func:`explain` is any plan's account
(:mod:`.planner` re-exports it).  This module reads plans only through their attributes, so the plan
modules import it, not the other way round.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from .bits import act_magnitude
from .geometry import DSP48E2_GEOMETRY

if TYPE_CHECKING:
    from .layout import Plan
    from .mixed import MixedSplitPlan
    from .protocol import PackingPlan
    from .split import SplitPlan

__all__ = ["explain", "explain_layout", "explain_split", "explain_mixed"]

AD_BITS, B_BITS, P_BITS = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _char(i: int) -> str:
    return _CHARS[i] if i < len(_CHARS) else "#"


def _bit_map(width: int, marks: dict[int, str], label: str) -> str:
    """One port or register as a row of characters, bit ``width-1`` on the left."""
    return f"  {label:<6}" + "".join(marks.get(b, ".") for b in range(width - 1, -1, -1))


def _ruler(width: int) -> list[str]:
    tens = "".join(str(b // 10) if b >= 10 else " " for b in range(width - 1, -1, -1))
    units = "".join(str(b % 10) for b in range(width - 1, -1, -1))
    return [f"  {'bit':<6}{tens}", f"  {'':<6}{units}"]


def _weight_slot_meaning(p: "Plan", i: int) -> str:
    if p.kind == "kernel":
        return f"output channel (or depthwise tap) {i}"
    if p.kind == "filter":
        return f"kernel-row tap {i}"
    # filter_bank: taps of one filter are one field stride apart, filters further
    stride = p.fields[1].offset - p.fields[0].offset
    gaps = [y - x for x, y in zip(p.weight_offsets, p.weight_offsets[1:])]
    taps = next((n + 1 for n, g in enumerate(gaps) if g != stride), p.n_weights)
    return f"filter {i // taps} tap {i % taps}"


def explain_split(sp: "SplitPlan") -> str:
    """A digit split's account: its digits and recombination, then its digit layout's."""
    digit = "weight" if sp.operand == "weight" else "activation"
    lines = [f"plan w{sp.w_bits}a{sp.a_bits} k={sp.k}: {digit} digit split of {sp.kind} packing on 2 DSP48E2s, "
             f"{sp.macs_per_dsp:g} useful MACs per DSP48E2 per cycle, accumulation depth {sp.depth} multiplies "
             f"before extraction",
             textwrap.fill(sp.note, width=110, initial_indent="  ", subsequent_indent="  "), ""]
    for f, fld in enumerate(sp.fields):
        lines.append(f"  field {_char(f)} = (hi field {_char(f)} << {sp.shift}) + lo field {_char(f)}: signed "
                     f"{fld.width} bits, " + " + ".join(f"w{i}*a{j}" for i, j in fld.terms))
    caps = (f"hi digits of magnitude <= {sp.hi.weight_max} (depth {sp.hi.depth}), lo digits <= "
            f"{sp.lo.weight_max} (depth {sp.lo.depth})" if sp.operand == "weight" else
            f"hi digits a >> {sp.shift}, lo digits a mod 2**{sp.shift}"
            + (" unsigned; the signed hi digits through its copy with signed codes, shown" if sp.signed_act and
               sp.operand == "act" else ""))
    lines += ["", f"both digits run through this layout ({caps}):", "", sp.hi.explain()]
    return "\n".join(lines)


def explain_mixed(mp: "MixedSplitPlan") -> str:
    """A mixed-rate split's account: its recombination, then its high and low digit layouts'."""
    lines = [f"plan w{mp.w_bits}a{mp.a_bits} k={mp.k}: mixed-rate weight digit split of {mp.kind} packing on "
             f"{mp.dsps} DSP48E2s ({mp.copies} for the high digit, 1 for the low digit), {mp.macs_per_dsp:g} useful "
             f"MACs per DSP48E2 per cycle, accumulation depth {mp.depth} multiplies before extraction",
             textwrap.fill(mp.note, width=110, initial_indent="  ", subsequent_indent="  "), ""]
    for f, (fld, pairs) in enumerate(zip(mp.fields, mp.combine)):
        hi = " + ".join(f"hi{c} field {_char(g)}" for c, g in pairs)
        lines.append(f"  field {_char(f)} = (({hi}) << {mp.shift}) + lo field {_char(f)}: signed {fld.width} bits, "
                     + " + ".join(f"w{i}*a{j}" for i, j in fld.terms))
    lines += ["", f"high digit w >> {mp.shift} (magnitude <= {mp.hi.weight_max}, depth {mp.hi.depth}), copy c on "
              f"activation slots c*{mp.hi.n_acts} .. c*{mp.hi.n_acts}+{mp.hi.n_acts - 1}:", "", mp.hi.explain(), "",
              f"low digit w & {(1 << mp.shift) - 1} (unsigned 0..{mp.lo.weight_max}, depth {mp.lo.depth}), all "
              f"{mp.lo.n_acts} activation slots:", "", mp.lo.explain()]
    return "\n".join(lines)


def explain(p: "PackingPlan") -> str:
    """A readable account of any plan: bit maps of both ports and of P, fields and their terms, depth,
    correction (for a split plan: its digits and recombination, then its digit layouts' accounts)."""
    return p.explain()


def explain_layout(p: "Plan") -> str:
    """A single layout's account: bit maps of both ports and of P, fields and their terms, depth, correction."""
    a_meaning = "pixel" if p.kind == "kernel" else "input pixel"
    lines = [f"plan w{p.w_bits}a{p.a_bits} k={p.k}{' (signed activations)' if p.signed_act else ''}: {p.kind} "
             f"packing, {p.macs_per_dsp:g} useful MACs per DSP48E2 "
             f"per multiply, accumulation depth {p.depth} multiplies before extraction",
             textwrap.fill(p.note, width=110, initial_indent="  ", subsequent_indent="  "), ""]
    # Weight port.
    w_marks = {o + b: _char(i) for i, o in enumerate(p.weight_offsets) for b in range(p.w_bits)}
    if p.weight_port == "AD":
        lines += [f"weight port A:D (27-bit pre-adder, D - A): {p.n_weights} weight slot(s), digit = slot"]
        lines += _ruler(AD_BITS)
        lines.append(_bit_map(AD_BITS, w_marks, "D"))
        signs = {} if p.w_unsigned else {o + p.w_bits: "s" for o in p.weight_offsets if o + p.w_bits < AD_BITS}
        lines.append(_bit_map(AD_BITS, signs, "A"))
        lines.append("  D = unsigned weight codes concatenated; A = 0; D is the packed word" if p.w_unsigned else
                     "  D = two's-complement weight codes concatenated; A = each weight's sign bit (s) at "
                     "offset + w_bits (a sign at bit 27 is implicit: D's own sign); D - A = the packed word")
    else:
        lines += [f"weight port B (18-bit signed, packed word precomputed): {p.n_weights} weight slot(s)"]
        lines += _ruler(B_BITS)
        lines.append(_bit_map(B_BITS, w_marks, "B"))
    for i, o in enumerate(p.weight_offsets):
        lines.append(f"    slot {_char(i)}: {_weight_slot_meaning(p, i)}, "
                     f"{'unsigned' if p.w_unsigned else 'signed'} {p.w_bits}-bit code at bit {o}")
    # Activation port.
    a_port, a_bits = ("B", B_BITS) if p.weight_port == "AD" else ("A:D", AD_BITS)
    a_marks = {o + b: _char(j) for j, o in enumerate(p.act_offsets) for b in range(p.a_bits)}
    if p.signed_act:
        sign_use = "a signed packed word"
    elif p.act_sign_bit:
        a_marks[a_bits - 1] = "S"
        sign_use = "sign bit S used by the top slot, corrected through C"
    else:
        a_marks[a_bits - 1] = "0"
        sign_use = "sign bit kept 0"
    lines += ["", f"activation port {a_port} ({a_bits}-bit signed, {sign_use}): {p.n_acts} slot(s), "
              + ("two's-complement codes: D - A in fabric (D = the codes concatenated, A = each code's sign bit "
                 "at offset + a_bits)" if p.signed_act else "unsigned codes concatenated")]
    lines += _ruler(a_bits)
    lines.append(_bit_map(a_bits, a_marks, a_port))
    for j, o in enumerate(p.act_offsets):
        lines.append(f"    slot {_char(j)}: {a_meaning} {j}, {'signed' if p.signed_act else 'unsigned'} "
                     f"{p.a_bits}-bit code at bit {o}")
    # P register.
    p_marks: dict[int, str] = {}
    for f, fld in enumerate(p.fields):
        for b in range(fld.offset, fld.offset + fld.width):
            p_marks[b] = "*" if b in p_marks else _char(f)
    lines += ["", f"P (48 bits): {len(p.fields)} field(s), digit = field"
              + (", * = bit shared by two fields (overlap)" if p.overlap else "") + ", . = unused"]
    lines += _ruler(P_BITS)
    lines.append(_bit_map(P_BITS, p_marks, "P"))
    hi_w = p.weight_max
    hi_a = act_magnitude(p.a_bits, p.signed_act)
    for f, fld in enumerate(p.fields):
        lo, hi = p.field_slice(f)
        terms = " + ".join(f"w{i}*a{j}" for i, j in fld.terms)
        bound = p.depth * len(fld.terms) * hi_w * hi_a
        lines.append(f"    field {_char(f)}: bits [{fld.offset}, {fld.offset + fld.width}), slice [{lo}, {hi}), "
                     f"|value| <= {bound} at depth {p.depth}: {terms}")
    lines.append("")
    if p.overlap:
        lines.append("overlap: neighbouring fields share one bit; each field's low bit is its parity, the XOR of "
                     "w & a & 1 over its terms and multiplies, kept in fabric and removed from P before slicing")
    if p.correction == "none":
        lines.append("correction: none -- weights and activations are unsigned, so every field is >= 0 and "
                     "borrows nothing from the next: the field is its raw unsigned slice")
    elif p.correction == "offset":
        lines.append(f"correction: offset -- C adds {p.offset_constant():#x} once per accumulation, so every "
                     "slice is offset-binary: the field is the slice with its top bit inverted")
    else:
        lines.append("correction: borrow -- each field is its signed slice plus the P bit just below it")
    if p.act_sign_bit:
        lines.append(textwrap.fill(
            f"activation sign bit: the top slot's code reaches bit {a_bits - 1} (S), which the DSP48E2 reads as "
            f"a sign: a word X >= 2**{a_bits - 1} is multiplied as X - 2**{a_bits}, short by W * 2**{a_bits} "
            f"(W = the signed packed weight word).  On exactly those multiplies C adds W << {a_bits} (45 bits), "
            f"computed in fabric and summed with the other C terms before the C register "
            f"(C = offset constant on the first multiply + parity corrections + sign correction); P wraps "
            f"modulo 2**48, so it then holds what an unsigned multiplier would give", width=110,
            subsequent_indent="  "))
    return "\n".join(lines)
