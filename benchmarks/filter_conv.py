"""Conv-engine packing benchmark: achieved MACs per DSP48E2 with kernel plans (SlidingWindow) vs filter plans (RowWindow).

For UltraNet-like layers (64->64 3x3 at 10x20, the four middle layers of
UltraNet) and a few others (5x5, depthwise) at every output-pixel group that
divides the width, this builds the ConvEngine three ways -- kernel plans only,
filter plans only, and the engine's own choice over both -- and records the
achieved density (useful MACs per DSP per cycle: slot padding, wasted end
fields and extra multiplies per kernel row included), DSPs, cycles per frame
and the estimated fabric/BRAM of engine + window.  It also lists the density
the alternative filter scheme (partial fields carried between pixel groups,
see ``mixq_hw/layers/conv_weights.py``) would reach, to justify the scheme the
engine uses.  Cycle figures are the engines' analytic ``cycles_per_frame``,
which the tests check against simulation.

Writes ``benchmarks/results/filter_conv.json`` and ``filter_conv.md``.

    python benchmarks/filter_conv.py
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from mixq_hw.layers.conv import ConvEngineSpec
from mixq_hw.packing import plans

RESULTS = Path(__file__).resolve().parent / "results"

#: (label, in_ch, out_ch, k, groups, out (h, w), simd, pe)
LAYERS = [
    ("ultranet 64->64 3x3", 64, 64, 3, 1, (10, 20), 8, 8),
    ("64->64 5x5", 64, 64, 5, 1, (10, 20), 8, 8),
    ("depthwise 64 3x3", 64, 64, 3, 64, (10, 20), 8, 8),
    ("depthwise 64 5x5", 64, 64, 5, 64, (10, 20), 8, 8),
]
BITS = [(2, 2), (2, 3), (3, 3), (4, 2), (4, 4)]


def carried_density(w: int, a: int, k: int, pixels: int, width: int) -> float:
    """Best MACs/DSP of the carry-between-groups filter scheme: ceil(pixels/N) cores per group and
    ceil((k-1)/pixels) extra prologue groups per row (output groups stay aligned)."""
    groups = width // pixels
    best = 0.0
    for p in plans(w, a, k, kinds=("filter",)):
        kp, n = p.n_weights, p.n_acts
        per_group = k * pixels / (math.ceil(pixels / n) * math.ceil(k / kp))
        best = max(best, per_group * groups / (groups + math.ceil((k - 1) / pixels)))
    return best


def engine_row(label, in_ch, out_ch, k, groups, out_hw, simd, pe, w, a, pixels, windows) -> dict:
    weight = np.zeros((out_ch, in_ch // groups, k, k), dtype=np.int64)
    e = ConvEngineSpec(weight, w_bits=w, a_bits=a, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups, simd=simd,
                       pe=pe, pixels=pixels, out_size=out_hw, windows=windows, name="bench")
    window = e.window_spec(*out_hw, k // 2)
    res = e.estimate() + window.estimate()
    return {"kind": e.plan.kind, "window": e.window_kind, "macs_per_dsp": round(e.macs_per_dsp, 3),
            "plan_macs_per_dsp": e.plan.macs_per_dsp, "taps": e.plan.n_weights, "act_slots": e.plan.n_acts,
            "depth": e.core_depth, "dsps": e.n_dsps, "cycles_per_frame": e.cycles_per_frame(),
            "lut": res.lut, "ff": res.ff, "bram36": res.bram36}


def measure() -> list[dict]:
    rows = []
    for label, in_ch, out_ch, k, groups, out_hw, simd, pe in LAYERS:
        for w, a in BITS:
            for pixels in [d for d in range(1, out_hw[1] + 1) if out_hw[1] % d == 0]:
                row = {"layer": label, "w": w, "a": a, "k": k, "depthwise": groups > 1, "simd": simd,
                       "pe": pe, "pixels": pixels}
                for key, windows in (("kernel", ("taps",)), ("filter", ("rows",)), ("chosen", ("taps", "rows"))):
                    row[key] = engine_row(label, in_ch, out_ch, k, groups, out_hw, simd, pe, w, a, pixels, windows)
                row["filter_carried_macs_per_dsp"] = round(carried_density(w, a, k, pixels, out_hw[1]), 3)
                rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["# Conv engine: kernel packing (SlidingWindow) vs filter packing (RowWindow)", "",
             "Achieved useful MACs per DSP48E2 per cycle of the whole ConvEngine (simd 8, pe 8; depthwise: "
             "pe = simd = 8) at each output-pixel group; `filter` is the engine's group-local filter scheme, "
             "`carried` the alternative that carries partial fields between groups (analytic only); "
             "DSPs / cycles / LUT are for the chosen plan (engine + its window, estimates).", ""]
    for label in dict.fromkeys(r["layer"] for r in rows):
        lines += [f"## {label} (output 10x20)", "",
                  "| w/a | pixels | kernel | filter | carried | chosen | plan (taps x slots) | DSPs | cycles/frame "
                  "| LUT | BRAM36 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["layer"] == label):
            c = r["chosen"]
            lines.append(f"| w{r['w']}a{r['a']} | {r['pixels']} | {r['kernel']['macs_per_dsp']:g} | "
                         f"{r['filter']['macs_per_dsp']:g} | {r['filter_carried_macs_per_dsp']:g} | "
                         f"**{c['macs_per_dsp']:g}** ({c['kind']}) | {c['taps']}x{c['act_slots']} | {c['dsps']} | "
                         f"{c['cycles_per_frame']} | {c['lut']} | {c['bram36']:g} |")
        lines.append("")
    best = ["## Best over pixels", "", "| layer | w/a | kernel | filter | carried |", "|---|---|---|---|---|"]
    for label in dict.fromkeys(r["layer"] for r in rows):
        for w, a in BITS:
            sel = [r for r in rows if r["layer"] == label and (r["w"], r["a"]) == (w, a)]
            best.append(f"| {label} | w{w}a{a} | {max(r['kernel']['macs_per_dsp'] for r in sel):g} | "
                        f"{max(r['filter']['macs_per_dsp'] for r in sel):g} | "
                        f"{max(r['filter_carried_macs_per_dsp'] for r in sel):g} |")
    return "\n".join(lines + best) + "\n"


def main() -> None:
    start = time.perf_counter()
    rows = measure()
    seconds = time.perf_counter() - start
    RESULTS.mkdir(exist_ok=True)
    meta = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "seconds": round(seconds, 2)}
    (RESULTS / "filter_conv.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (RESULTS / "filter_conv.md").write_text(markdown(rows))
    print(markdown(rows))
    print(f"{len(rows)} configurations in {seconds:.1f} s")


if __name__ == "__main__":
    main()
