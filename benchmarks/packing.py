"""Packing density benchmark: our exact MACs per DSP48E2 next to DeepBurning-MixQ's and FINN's, and planner speed.

Writes ``benchmarks/results/packing.json`` and ``packing.md``.  The table is
``best_plan``'s: a digit-split plan (two DSP48E2s, one per digit of the split
operand) or a mixed-rate weight split (``mixq_hw.packing.mixed``: signed high
digit on several DSP48E2s, unsigned low digit on one) where it beats every
single layout, else ``plan``'s layout.
``--synth`` adds LUT/FF per single-layout core via
``mixq_hw.packing.synth.synth_core`` (slow); ``--synth-sign`` synthesises the
sign-bit plans of a few entries next to the best plan of the same entry without
the sign bit (what the C-side correction costs in fabric); ``--synth-split``
synthesises a few split cores (SplitMAC) next to the single core of the same
entry.

    python benchmarks/packing.py [--synth] [--synth-sign] [--synth-split]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

from mixq_hw.packing import planner
from mixq_hw.packing.planner import BIT_WIDTHS, KERNEL_SIZES, MIXQ_PUBLISHED, best_plan, density_table, plan, plans

#: Entries whose sign-bit plan --synth-sign synthesises: one with weights on A:D (act word on B's sign bit),
#: one with weights on B (act word on A:D's sign bit).
SIGN_SYNTH_ENTRIES = ((3, 8, 3), (6, 5, 3))
#: Entries whose split core --synth-split synthesises: activation digits, weight digits rounded to nearest
#: (magnitude-capped 5-bit digits), weight digits truncated toward zero.
#: w8a2: the mixed-rate split (3 DSP48E2s).
SPLIT_SYNTH_ENTRIES = ((4, 4, 3), (8, 7, 3), (7, 2, 3), (8, 2, 3))

RESULTS = Path(__file__).resolve().parent / "results"


def finn_macs_per_dsp(w: int, a: int) -> float | None:
    """FINN's RTL MVU (via shared/REFERENCE.md): 4 per DSP at <=4-bit weights and activations, 2 at <=8 bits,
    only for 4..8-bit signed weights (narrower layers go to LUTs: None)."""
    if w < 4:
        return None
    return 4.0 if w <= 4 and a <= 4 else 2.0


def split_synthesis(entries=SPLIT_SYNTH_ENTRIES) -> list[dict]:
    """Synthesise each entry's split core (SplitMAC) and its single-layout core (PackedMAC)."""
    from mixq_hw.packing.synth import synth_core

    out = []
    for w, a, k in entries:
        for p in (best_plan(w, a, k), plan(w, a, k)):
            is_split = not hasattr(p, "weight_offsets")
            result = synth_core(w, a, k, plan=p)
            mixed = hasattr(p, "copies")
            out.append({"w": w, "a": a, "k": k, "split": p.operand if is_split else None,
                        "rounding": p.rounding if is_split else None, "macs_per_dsp": p.macs_per_dsp,
                        "mixed": mixed, "dsps": p.dsps if is_split else 1,
                        "depth": p.depth, "layout": layout_cell(p.to_dict() | {"n_weights": p.n_weights,
                                                                              "n_acts": p.n_acts,
                                                                              "act_sign_bit": p.act_sign_bit,
                                                                              "kind": p.kind,
                                                                              "split": p.operand if is_split
                                                                              else None, "mixed": mixed}),
                        **{key: result.get(key) for key in ("dsp48e2", "lut", "ff", "carry", "extract_lut",
                                                            "recombine_lut")}})
    return out


def sign_bit_synthesis(entries=SIGN_SYNTH_ENTRIES) -> list[dict]:
    """Synthesise each entry's (sign-bit) table plan and the best plan of that entry without the sign bit."""
    from mixq_hw.packing.synth import synth_core

    out = []
    for w, a, k in entries:
        best = plan(w, a, k)
        plain = next(p for p in plans(w, a, k) if not p.act_sign_bit)
        for p in (best, plain):
            result = synth_core(w, a, k, plan=p)
            out.append({"w": w, "a": a, "k": k, "act_sign_bit": p.act_sign_bit, "macs_per_dsp": p.macs_per_dsp,
                        "depth": p.depth, "layout": layout_cell(p.to_dict() | {"n_weights": p.n_weights,
                                                                              "n_acts": p.n_acts}),
                        "weight_port": p.weight_port,
                        **{key: result[key] for key in ("dsp48e2", "lut", "ff", "carry", "extract_lut")}})
    return out


def timed_table() -> tuple[list[dict], float, float]:
    planner.PLANNER.cache_clear()
    start = time.perf_counter()
    rows = density_table(KERNEL_SIZES)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for r in rows:
        best_plan(r["w"], r["a"], r["k"])
    warm = time.perf_counter() - start
    return rows, cold, warm


def grid(rows: list[dict], k: int, cell) -> list[str]:
    by = {(r["w"], r["a"]): r for r in rows if r["k"] == k}
    out = ["| w\\a | " + " | ".join(str(a) for a in BIT_WIDTHS) + " |", "|---" * (len(BIT_WIDTHS) + 1) + "|"]
    for w in BIT_WIDTHS:
        out.append(f"| {w} | " + " | ".join(cell(by[(w, a)]) for a in BIT_WIDTHS) + " |")
    return out


def mark(r: dict) -> str:
    """``†`` for a mixed-rate weight split, ``*`` for a same-layout digit split, else nothing."""
    return "†" if r.get("mixed") else "*" if r["split"] else ""


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def layout_cell(r: dict) -> str:
    """``F 3x3 d1`` (kind, weights x activations, depth), `` s`` when the act word uses the sign bit, and a
    ``w:`` / ``a:`` prefix for a weight / activation digit split (2 DSPs), ``m:`` for a mixed-rate weight split
    (its low-digit layout)."""
    split = "m: " if r.get("mixed") else f"{r['split'][0]}: " if r.get("split") else ""
    return (f"{split}{r['kind'][0].upper()} {r['n_weights']}x{r['n_acts']} d{r['depth']}"
            + (" s" if r["act_sign_bit"] else ""))


def sign_bit_section(rows: list[dict], meta: dict) -> list[str]:
    """Where the sign-bit correction raised the table, and (with --synth-sign) what it costs in fabric."""
    used = [r for r in rows if r["single_act_sign_bit"]]
    lines = ["", "## Activation word in the port's sign bit", "",
             f"{len(used)} of {len(rows)} single-layout entries use it (each only where no layout without it is "
             "as dense; the column 'without' is the best plan without it; a digit split's layout may use it too, "
             "marked s in the grids):", "",
             "| entry | with sign bit | without | MixQ | layout |", "|---|---|---|---|---|"]
    for r in used:
        lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {fmt(r['single_macs_per_dsp'])} | "
                     f"{fmt(r['without_sign_bit'])} | {fmt(r['mixq'])} | {r['single_layout']} |")
    if meta.get("sign_bit_synth"):
        lines += ["", "Synthesis (yosys synth_xilinx -family xcup, DSP48E2 primitives; LUT/FF: the fabric beside the slices, see mixq_hw/packing/synth.py) "
                  "of a sign-bit core next to the best core of the same entry without the sign bit:", "",
                  "| entry | sign bit | MACs/DSP | layout | weights on | DSP48E2 | LUT | FF | CARRY | extract LUT |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in meta["sign_bit_synth"]:
            lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {'yes' if r['act_sign_bit'] else 'no'} | "
                         f"{fmt(r['macs_per_dsp'])} | {r['layout']} | {r['weight_port']} | {r['dsp48e2']} | "
                         f"{r['lut']} | {r['ff']} | {r['carry']} | {r['extract_lut']} |")
    return lines


def split_section(rows: list[dict], meta: dict) -> list[str]:
    """The digit-split entries: what they reach over the single layout, and (with --synth-split) their cost."""
    used = [r for r in rows if r["split"] and not r["mixed"]]
    lines = ["", "## Digit-split plans", "",
             f"{len(used)} of {len(rows)} entries are denser split (the table above uses them): one operand is cut",
             "into two digits, each digit's products run through the same packed layout on its own DSP48E2",
             "(a SplitMAC: two PackedMACs, PackedMAC's ports and latency), and every field is recombined as",
             "(hi << shift) + lo after extraction.  Activation digits are bit slices; weight digits are",
             "signed: floor (bit slices), trunc (toward zero) or round (to nearest), chosen so both digits",
             "stay inside the digit plan's range (an 8-bit weight, round at shift 4: digits of magnitude <= 8 in",
             "5-bit slots whose fields need room for 8 * max a per product only).  Exact like every plan",
             "(tests/test_packing_split.py: numpy exhaustive where the codes allow, the core in simulation with",
             "every code pair in every slot at w, a <= 4, extreme and digit-extreme codes at full depth).", "",
             "| entry | MACs/DSP split | single layout | MixQ | operand | digits | digit layout |",
             "|---|---|---|---|---|---|---|"]
    for r in used:
        digits = (f"a = (hi << {r['shift']}) + lo, {r['digit_bits']}-bit digits" if r["split"] == "act" else
                  f"w = (hi << {r['shift']}) + lo ({r['rounding']}), {r['digit_bits']}-bit digits")
        lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {fmt(r['macs_per_dsp'])} | "
                     f"{fmt(r['single_macs_per_dsp'])} | {fmt(r['mixq'])} | {r['split']} | {digits} | "
                     f"{layout_cell(r | {'split': None})} |")
    if meta.get("split_synth"):
        lines += ["", "Synthesis (yosys synth_xilinx -family xcup, DSP48E2 primitives; LUT/FF: the fabric beside the slices, see mixq_hw/packing/synth.py) "
                  "of split cores next to the single core of the same entry:", "",
                  "| entry | core | MACs/DSP | layout | DSP48E2 | LUT | FF | CARRY | extract LUT | recombine LUT |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in meta["split_synth"]:
            core = (f"mixed split ({r['dsps']} DSPs)" if r.get("mixed") else
                    f"split ({r['split']}{', ' + r['rounding'] if r['split'] == 'weight' else ''})" if r["split"]
                    else "single")
            lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {core} | {fmt(r['macs_per_dsp'])} | "
                         f"{r['layout']} | {r['dsp48e2']} | {r['lut']} | {r['ff']} | {r['carry']} | "
                         f"{r['extract_lut']} | {r['recombine_lut'] if r['recombine_lut'] is not None else '–'} |")
    return lines + mixed_section(rows)


def mixed_section(rows: list[dict]) -> list[str]:
    """The mixed-rate weight splits: a signed high digit on several DSPs, an unsigned low digit on one."""
    used = [r for r in rows if r["mixed"]]
    lines = ["", "## Mixed-rate weight splits", "",
             f"{len(used)} of {len(rows)} entries are densest as a mixed-rate weight split (marked † in the density",
             "grids, m: in the layout grids; mixq_hw/packing/mixed.py, MixedSplitMAC).  The weight is cut with",
             "floor at `shift`: hi = w >> shift is signed and takes the whole two's-complement range of its",
             "w - shift bits (w8, shift 3: -16..15; -16 fits the 5-bit slot and the pre-adder's D - A, fields are",
             "sized for magnitude 16), lo = w & (2^shift - 1) is unsigned.  Unsigned low digits times unsigned",
             "activations make only non-negative fields: no sign room, no borrow or offset, a raw slice of P",
             "(`Plan.w_unsigned`, correction `none`), so the low digit's layout packs about twice as many pixels",
             "as the high digit's.  The low layout runs once on all pixels; `copies` DSPs run the high layout on",
             "consecutive pixel groups with the same weights; fields of neighbouring high copies that meet in",
             "one output field (a filter layout's partial end fields) add, and every field is",
             "(hi << shift) + lo.  MACs per DSP = low layout's MACs per multiply / (copies + 1).  Exact: the low",
             "and high digit layouts exhaustively, the split for all 255 weight codes in every slot, the core in",
             "simulation with en/valid gaps (tests/test_packing_unsigned.py).  The conv engine is not offered",
             "these plans yet (`split_plans(mixed=False)`, the default); `best_plan` and this table are.", "",
             "| entry | MACs/DSP | single layout | MixQ | DSPs | digits | hi layout (per copy) | lo layout |",
             "|---|---|---|---|---|---|---|---|"]
    for r in used:
        p = best_plan(r["w"], r["a"], r["k"])
        hi, lo = (layout_cell(d.to_dict() | {"n_weights": d.n_weights, "n_acts": d.n_acts}) for d in (p.hi, p.lo))
        lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {fmt(r['macs_per_dsp'])} | "
                     f"{fmt(r['single_macs_per_dsp'])} | {fmt(r['mixq'])} | {p.copies} + 1 | "
                     f"hi = w >> {p.shift} in [{-p.hi.weight_max}, {p.hi.weight_max - 1}], lo = w & "
                     f"{(1 << p.shift) - 1} | {hi} x {p.copies} | {lo} unsigned, no correction |")
    return lines


W8A2_WHY = (
    "MixQ's 6 is its w4a2 figure (12) over two DSPs: it cuts the 8-bit weight into two 4-bit digits. "
    "Exact digits of the 255 narrow codes -127..127 cannot both be 4-bit narrow codes: two sets of at most 15 "
    "values (magnitude <= 7) make at most 15 x 15 = 225 sums hi * R + lo, at any radix R; every split of an "
    "8-bit weight therefore has a digit of magnitude 8 (our best: round at shift 4, hi in [-8, 8], lo in [-8, 7]). "
    "A 3x3 filter field then sums three products up to 8 * 3 = 24: 72 > 63, the most a 6-bit field stride holds "
    "(the stride of the 15-MAC w4a2 layout), so fields need a 7-bit stride; the planner's exhaustive search over kernel, filter and filter-bank layouts "
    "finds 9 MACs per multiply for such digits (4.5 per DSP after the split), 9 in 4-bit slots holding "
    "-8..7 too, and MixQ's 12 would need e.g. 3 taps x 4 pixels, whose 4 activation slots at a 7-bit stride "
    "overflow B (23 > 18 bits) and whose 3 weight slots on B overflow it for a -8 digit (8 * (1 + 2^7 + 2^14) = "
    "132,104 > 2^17). Activation digits (1-bit) reach 6 per multiply, 3 per DSP. The mixed-rate split gets "
    "around the bound because its low digit is unsigned: codes 0..7 times 0..3 need no sign room, so 3-tap sums "
    "<= 63 fit 5-bit strides with the parity overlap (3 taps x 6 pixels = 18 MACs per multiply), while its "
    "5-bit high digit (-16..15; 3-tap sums <= 144 in 8-bit strides) takes 9 per multiply on each of 2 DSPs: "
    "18 MACs on 3 DSPs = 6.")


def markdown(rows: list[dict], meta: dict) -> str:
    compared = [r for r in rows if r["mixq"] is not None]
    above = [r for r in compared if r["macs_per_dsp"] > r["mixq"]]
    equal = [r for r in compared if r["macs_per_dsp"] == r["mixq"]]
    below = [r for r in compared if r["macs_per_dsp"] < r["mixq"]]
    single_below = [r for r in compared if r["single_macs_per_dsp"] < r["mixq"]]
    gain = sum(r["macs_per_dsp"] / r["mixq"] for r in compared) / len(compared)
    lines = [
        "# DSP48E2 packing density",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} CPUs, load average {meta['load']}).",
        f"Planner: whole {len(rows)}-entry table (w, a in 2..8, k in 1, 3, 5; single layouts and digit splits) in "
        f"{meta['planner_seconds']:.2f} s cold, {meta['lookup_seconds'] * 1e3:.2f} ms for all {len(rows)} "
        "`best_plan` look-ups once cached.",
        "",
        "Every figure is exact: each plan passes `check` and its emulated DSP48E2 arithmetic equals the",
        "promised sums (tests/test_packing_planner.py: exhaustive where the codes allow, else random and",
        "extreme codes, at depth 1 and at the plan's full accumulation depth), and the PackedMAC core",
        "reproduces it in simulation (tests/test_packing_cores.py); digit-split plans likewise",
        "(tests/test_packing_split.py, SplitMAC).  Weights are signed narrow-range codes, activations",
        "unsigned.  An activation word either keeps its port's sign bit clear, or (`act_sign_bit`,",
        "marked `s` below) uses it: the DSP48E2 then multiplies by X - 2^n, and the C port adds W << n on",
        "exactly those multiplies (W the signed packed weight word, n the port width), summed in fabric with",
        "the offset constant and the overlap parity corrections before the C register.  P wraps modulo",
        "2^48, so the fields come out as from an unsigned multiplier.  The planner uses the sign bit only",
        "where no layout without it is as dense.  Entries marked `w:` / `a:` are digit splits (2 DSPs per",
        "core, MACs per DSP counted over both), `m:` mixed-rate weight splits (3 DSPs per core; see the",
        "sections below); `plan()` uses single layouts, the conv engine single layouts and `w:`/`a:` splits,",
        "`best_plan()` and this table all three.",
        "",
        f"Against DeepBurning-MixQ's published lookup (1x1 and 3x3, 98 entries): above at {len(above)}, equal at "
        f"{len(equal)}, below at {len(below)}; mean ratio ours/MixQ {gain:.2f} (single layouts alone: below at "
        f"{len(single_below)}).",
        "",
        "Where we exceed it: " + ", ".join(f"w{r['w']}a{r['a']} {r['k']}x{r['k']} {fmt(r['macs_per_dsp'])} vs "
                                         f"{fmt(r['mixq'])}{' (split)' if r['split'] else ''}" for r in above) + ".",
        "The gains come from sizing every field by its exact range, `depth * terms * max|w| * max a` with",
        "narrow-range weights, instead of w + a + guard bits (a 2-bit weight is +-1, so its products need only",
        "a bits; a 3-term sum of w2a2 products fits 4 bits with the one-bit overlap, not 2 + 2 + 1), from",
        "trying every slot nest with both port assignments (w4a4 1x1: three weights on B x two activations",
        "on A:D = 6 MACs), and for splits from those denser digit layouts.",
        "",
    ]
    if below:
        lines += ["Where we are below, no exact plan reaches the published figure:", "", "| entry | ours | MixQ | why |",
                  "|---|---|---|---|"]
    else:
        lines += ["We are below at no entry.  The last one, w8a2 3x3 (MixQ 6), is reached by a mixed-rate weight",
                  "split (section below); no same-layout split gets there: " + W8A2_WHY]
    for r in below:
        why = W8A2_WHY if (r["w"], r["a"], r["k"]) == (8, 2, 3) else "not analysed"
        lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {fmt(r['macs_per_dsp'])} | {fmt(r['mixq'])} | {why} |")
    for k in KERNEL_SIZES:
        lines += ["", f"## {k}x{k} kernels: ours / MixQ / FINN (MACs per DSP48E2 per cycle)", ""]
        lines += grid(rows, k, lambda r: f"{fmt(r['macs_per_dsp'])}{mark(r)} / {fmt(r['mixq'])} / "
                                         f"{fmt(r['finn'])}")
        lines += ["", "(* digit split, 2 DSP48E2s per core; † mixed-rate weight split, 3.)  Layout and accumulation "
                  "depth (K = kernel, F = filter packing; depth in multiplies; s = activation word in the port's sign "
                  "bit; w: / a: = weight / activation digit split, the digit layout shown; m: = mixed-rate weight "
                  "split, its low-digit layout shown):", ""]
        lines += grid(rows, k, layout_cell)
    for k in sorted({r["k"] for r in rows if "lut" in r}):
        lines += ["", f"## {k}x{k} single-layout packed core: DSP48E2 / LUT / FF (yosys synth_xilinx -family xcup; "
                  "DSP48E2 primitives, LUT and FF the fabric beside the slice)", ""]
        lines += grid(rows, k, lambda r: f"{r.get('dsp48e2', '?')} / {r.get('lut', '?')} / {r.get('ff', '?')}")
    lines += split_section(rows, meta)
    lines += sign_bit_section(rows, meta)
    lines += ["", "## README rows", "", "3x3 kernels, exact MACs per DSP48E2 per cycle, ours / DeepBurning-MixQ "
              "(* = digit split on 2 DSP48E2s, † = mixed-rate weight split on 3):", ""]
    lines += grid(rows, 3, lambda r: f"{fmt(r['macs_per_dsp'])}{mark(r)} / {fmt(r['mixq'])}")
    lines += ["", "MixQ: DeepBurning-MixQ generator lookup; FINN: RTL MVU; both via shared/REFERENCE.md.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", action="store_true", help="also synthesise every core (slow: tens of s each)")
    parser.add_argument("--synth-k", nargs="+", type=int, default=[3], metavar="K",
                        help="kernel sizes whose cores --synth synthesises (default: 3)")
    parser.add_argument("--synth-sign", action="store_true",
                        help="synthesise the sign-bit cores of " + ", ".join(f"w{w}a{a}k{k}" for w, a, k in
                                                                         SIGN_SYNTH_ENTRIES)
                             + " and their best plans without the sign bit (about a minute)")
    parser.add_argument("--synth-split", action="store_true",
                        help="synthesise the split cores of " + ", ".join(f"w{w}a{a}k{k}" for w, a, k in
                                                                          SPLIT_SYNTH_ENTRIES)
                             + " and their single-layout cores (a few minutes)")
    args = parser.parse_args()
    rows, cold, warm = timed_table()
    for r in rows:
        r["mixq"] = MIXQ_PUBLISHED.get(r["k"], {}).get(r["w"], {}).get(r["a"])
        r["finn"] = finn_macs_per_dsp(r["w"], r["a"])
        single = plan(r["w"], r["a"], r["k"])
        r["single_act_sign_bit"] = single.act_sign_bit
        r["single_layout"] = layout_cell(single.to_dict() | {"n_weights": single.n_weights, "n_acts": single.n_acts})
        r["without_sign_bit"] = max(p.macs_per_dsp for p in plans(r["w"], r["a"], r["k"]) if not p.act_sign_bit)
    if args.synth:
        try:
            from mixq_hw.packing.synth import synth_core
        except ImportError as err:
            raise SystemExit(f"--synth needs mixq_hw.packing.synth.synth_core: {err}")
        for r in rows:
            if r["k"] in args.synth_k:
                result = synth_core(r["w"], r["a"], r["k"])
                r.update({key: result[key] for key in ("dsp48e2", "lut", "ff") if key in result})
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "cpus": os.cpu_count(), "load": f"{os.getloadavg()[0]:.1f}",
            "planner_seconds": cold, "lookup_seconds": warm}
    if args.synth_sign:
        meta["sign_bit_synth"] = sign_bit_synthesis()
    if args.synth_split:
        meta["split_synth"] = split_synthesis()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "packing.json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / "packing.md").write_text(markdown(rows, meta))
    print(f"planner: {len(rows)} entries in {cold:.2f} s cold, {warm * 1e3:.2f} ms cached; "
          f"wrote {RESULTS / 'packing.json'} and packing.md")


if __name__ == "__main__":
    main()
