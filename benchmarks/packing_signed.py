"""Packing density for signed activation codes: exact MACs per DSP48E2 of the signed-activation table next to
the unsigned one, and planner speed.

Writes ``benchmarks/results/packing_signed.json`` and ``packing_signed.md``.  The table is ``best_plan``'s with
``signed_act=True`` (two's-complement activations ``-2**(a-1) .. 2**(a-1)-1`` times signed narrow-range
weights, as after a LeakyReLU or a residual add).  ``--synth`` synthesises the signed and unsigned cores of a
few entries (yosys, tens of seconds each) to put a figure on the activation word's fabric ``D - A``.

    python benchmarks/packing_signed.py [--synth]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.packing import fmt, grid, layout_cell  # noqa: E402
from mixq_hw.packing import planner  # noqa: E402
from mixq_hw.packing.planner import KERNEL_SIZES, density_table, plan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: Entries whose single-layout cores --synth synthesises, signed and unsigned: weights on A:D (the activation
#: word's D - A into B2) and on B (into A2).
SYNTH_ENTRIES = ((4, 4, 3), (2, 2, 3), (3, 3, 3))


def timed_table() -> tuple[list[dict], float]:
    planner.PLANNER.cache_clear()
    start = time.perf_counter()
    rows = density_table(KERNEL_SIZES, signed_act=True)
    return rows, time.perf_counter() - start


def synthesis(entries=SYNTH_ENTRIES) -> list[dict]:
    """Each entry's best single layout, signed and unsigned, through yosys (DSP48E2 primitives)."""
    from mixq_hw.packing.synth import synth_core

    out = []
    for w, a, k in entries:
        for signed_act in (True, False):
            p = plan(w, a, k, signed_act=signed_act)
            result = synth_core(w, a, k, plan=p)
            out.append({"w": w, "a": a, "k": k, "signed_act": signed_act, "macs_per_dsp": p.macs_per_dsp,
                        "weight_port": p.weight_port, "estimate_lut_ff": list(p.fabric_cost(p.depth)),
                        "layout": layout_cell(_cell(p)),
                        **{key: result[key] for key in ("dsp48e2", "lut", "ff", "carry", "extract_lut")}})
    return out


def _cell(p) -> dict:
    figures = p.split_figures()
    return {"kind": p.kind, "n_weights": p.n_weights, "n_acts": p.n_acts, "depth": p.depth,
            "act_sign_bit": p.act_sign_bit, "split": figures["split"], "mixed": figures["mixed"]}


def markdown(rows: list[dict], meta: dict) -> str:
    higher = [r for r in rows if r["macs_per_dsp"] > r["unsigned_macs_per_dsp"]]
    lower = [r for r in rows if r["macs_per_dsp"] < r["unsigned_macs_per_dsp"]]
    mean = sum(r["macs_per_dsp"] / r["unsigned_macs_per_dsp"] for r in rows) / len(rows)
    splits = [r for r in rows if r["split"]]
    lines = [
        "# DSP48E2 packing density, signed activation codes",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['cpus']} CPUs, load average {meta['load']}).",
        f"Planner: whole {len(rows)}-entry signed table (w, a in 2..8, k in 1, 3, 5; single layouts, weight "
        f"and activation digit splits) in {meta['planner_seconds']:.2f} s cold.",
        "",
        "Activations are two's-complement codes -2^(a-1) .. 2^(a-1)-1 (after a LeakyReLU or a residual add),",
        "weights signed narrow-range.  Every figure is exact: each plan passes `check` and its emulated DSP48E2",
        "arithmetic equals the promised sums (tests/test_packing_signed.py: every code combination in every",
        "slot for w, a <= 4, random and extreme codes at full depth for the whole table), and the cores",
        "(PackedMAC, SplitMAC, MixedSplitMAC, LutMAC) reproduce it in simulation under en/valid gaps.",
        "",
        "What changes against unsigned codes: a product is at most max|w| * 2^(a-1) in magnitude instead of",
        "max|w| * (2^a - 1), so fields need about one bit less; but the packed activation word is now signed",
        "(made in fabric as D - A into the activation port's second register, as the weights' on B) and must",
        "fit its signed port, so the unsigned table's sign-bit trick (`act_sign_bit`: an unsigned word using",
        "the port's top bit, corrected through C) does not apply, and neither do the mixed-rate splits' raw",
        "unsigned low-digit fields (unsigned weight digits times signed activations make signed fields).",
        "An activation digit split cuts a signed code into a signed high digit a >> s and an unsigned low",
        "digit a mod 2^s, both through one unsigned layout without the sign-bit trick (the high digit's copy",
        "with signed codes, which that layout always holds).",
        "",
        f"Against the unsigned table: signed is denser at {len(higher)} entries, equal at "
        f"{len(rows) - len(higher) - len(lower)}, less dense at {len(lower)}; mean ratio signed/unsigned "
        f"{mean:.2f}.  {len(splits)} entries are digit splits (2 DSP48E2s per core).",
        "",
        "Less dense: " + ", ".join(f"w{r['w']}a{r['a']} {r['k']}x{r['k']} {fmt(r['macs_per_dsp'])} vs "
                                   f"{fmt(r['unsigned_macs_per_dsp'])} ({r['unsigned_how']})" for r in lower) + ".",
    ]
    for k in KERNEL_SIZES:
        lines += ["", f"## {k}x{k} kernels: signed / unsigned activations (MACs per DSP48E2 per cycle)", ""]
        lines += grid(rows, k, lambda r: f"{fmt(r['macs_per_dsp'])}{'*' if r['split'] else ''} / "
                                         f"{fmt(r['unsigned_macs_per_dsp'])}")
        lines += ["", "(* digit split, 2 DSP48E2s per core.)  Signed layout and accumulation depth (K = "
                  "kernel, F = filter packing; depth in multiplies; w: / a: = weight / activation digit split, the "
                  "digit layout shown):", ""]
        lines += grid(rows, k, layout_cell)
    if meta.get("synth"):
        lines += ["", "## Fabric of the signed activation word", "",
                  "yosys synth_xilinx -family xcup (DSP48E2 primitives; LUT/FF the fabric beside the slice, "
                  "mixq_hw/packing/synth.py) of the best single layout of a few entries, signed and unsigned; "
                  "'estimate' is `packed_core_cost`:", "",
                  "| entry | activations | MACs/DSP | layout | weights on | DSP48E2 | LUT | FF | CARRY | "
                  "estimate LUT / FF |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in meta["synth"]:
            lines.append(f"| w{r['w']}a{r['a']} {r['k']}x{r['k']} | {'signed' if r['signed_act'] else 'unsigned'} "
                         f"| {fmt(r['macs_per_dsp'])} | {r['layout']} | {r['weight_port']} | {r['dsp48e2']} | "
                         f"{r['lut']} | {r['ff']} | {r['carry']} | {r['estimate_lut_ff'][0]} / "
                         f"{r['estimate_lut_ff'][1]} |")
    lines += ["", "## README rows", "", "3x3 kernels, exact MACs per DSP48E2 per cycle, signed / unsigned "
              "activations (* = digit split on 2 DSP48E2s):", ""]
    lines += grid(rows, 3, lambda r: f"{fmt(r['macs_per_dsp'])}{'*' if r['split'] else ''} / "
                                     f"{fmt(r['unsigned_macs_per_dsp'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", action="store_true",
                        help="synthesise the signed and unsigned cores of " + ", ".join(
                            f"w{w}a{a}k{k}" for w, a, k in SYNTH_ENTRIES) + " (a few minutes)")
    args = parser.parse_args()
    rows, cold = timed_table()
    unsigned = {(r["w"], r["a"], r["k"]): r for r in density_table(KERNEL_SIZES)}
    for r in rows:
        u = unsigned[(r["w"], r["a"], r["k"])]
        r["unsigned_macs_per_dsp"] = u["macs_per_dsp"]
        r["unsigned_how"] = ("mixed split" if u["mixed"] else f"{u['split']} split" if u["split"] else
                             "sign-bit layout" if u["act_sign_bit"] else "layout")
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
            "cpus": os.cpu_count(), "load": f"{os.getloadavg()[0]:.1f}", "planner_seconds": cold,
            "signed_act": True}
    if args.synth:
        meta["synth"] = synthesis()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "packing_signed.json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / "packing_signed.md").write_text(markdown(rows, meta))
    print(f"signed planner: {len(rows)} entries in {cold:.2f} s cold; wrote {RESULTS / 'packing_signed.json'} "
          f"and packing_signed.md")


if __name__ == "__main__":
    main()
