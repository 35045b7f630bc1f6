"""mixq's CNV-W2A2 on the Ultra96-V2 next to FINN's published CNV-W2A2 (finn-examples, BNN-PYNQ), side by side.

FINN's side is computed from its published folding (``build/bnn-pynq/folding_config/cnv-w2a2_folding_config.json``
of Xilinx/finn-examples: SIMD and PE of every MVAU) with FINN's cycle formula (output pixels x K*K*Cin/SIMD x
Cout/PE per layer), at the clock its build script sets (``synth_clk_period_ns=10.0``: 100 MHz); sources in
docs/references.md.  mixq's side is the full-size build of ``benchmarks/fullsize.py --networks cnv_w2a2``
(analytic cycles, the 2-frame verification's measured cycles, estimated resources) when its JSON exists, else
the folding alone (analytic).  Writes ``benchmarks/results/finn_cnv.json`` and ``finn_cnv.md`` (generated from
the JSON).

    python benchmarks/finn_cnv.py [--replot]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: FINN's CNV-W2A2 MVAUs as finn-examples folds them: (layer, Cin, Cout, kernel, output side, SIMD, PE).
FINN_FOLDING = (
    ("conv0", 3, 64, 3, 30, 3, 8), ("conv1", 64, 64, 3, 28, 16, 16), ("conv2", 64, 128, 3, 12, 16, 8),
    ("conv3", 128, 128, 3, 10, 16, 8), ("conv4", 128, 256, 3, 3, 8, 4), ("conv5", 256, 256, 3, 1, 8, 1),
    ("fc0", 256, 512, 1, 1, 2, 1), ("fc1", 512, 512, 1, 1, 2, 2), ("fc2", 512, 10, 1, 1, 1, 5),
)
FINN_CLOCK_MHZ = 100.0
FINN_SOURCE = ("Xilinx/finn-examples build/bnn-pynq: folding_config/cnv-w2a2_folding_config.json (SIMD/PE), "
               "build.py (synth_clk_period_ns=10.0; boards Pynq-Z1, Ultra96, ZCU104)")
#: Published FINN CNV figures with resources (docs/references.md); none for W2A2 on the Ultra96 was found.
FINN_RESOURCES = (
    {"what": "FINN cnv-w1a1 zynq build, post-synthesis, accelerator without shell (Xilinx/finn PR #209)",
     "lut": 21135, "ff": 31517, "bram36": 98 + 9 / 2, "dsp": 0},
    {"what": "FINN estimate, CNV 2-bit exhaustive folding at 85 % budget, Pynq-Z1 100 MHz (PYNQ thesis): 1,808 fps",
     "lut": 42237},
)


def finn_layers() -> list[dict]:
    """FINN's per-layer cycles per frame from its folding (FINN's MVAU formula)."""
    rows = []
    for name, cin, cout, k, side, simd, pe in FINN_FOLDING:
        if (k * k * cin) % simd or cout % pe:
            raise ValueError(f"{name}: SIMD {simd} / PE {pe} do not divide {k * k * cin} / {cout}")
        rows.append({"layer": name, "simd": simd, "pe": pe,
                     "cycles": side * side * (k * k * cin // simd) * (cout // pe)})
    return rows


def mixq_side() -> dict:
    """mixq's CNV-W2A2: the full-size build's figures if benchmarks/fullsize.py measured them, else the folding's."""
    path = RESULTS / "fullsize" / "cnv_w2a2.json"
    if path.exists():
        entry = json.loads(path.read_text())
        build, verify = entry.get("build", {}), entry.get("verify", {})
        if "cycles_per_frame" in build:
            measured = verify.get("cycles_per_frame") if verify.get("images", 0) >= 2 else None
            return {"source": f"benchmarks/fullsize.py build of {entry.get('checkpoint')} "
                              f"({entry.get('machine', {}).get('date', '?')})",
                    "cycles_per_frame": build["cycles_per_frame"], "clock_mhz": build["clock_mhz"],
                    "resources": build["resources"], "bottleneck": build.get("bottleneck"),
                    "measured_cycles_per_frame": measured,
                    "verified": f"{verify['bit_exact']}/{verify['images']}" if "images" in verify else None}
    from benchmarks.common import calibrated_graph, ultra96_folding

    result = ultra96_folding(calibrated_graph("CNVw2a2", shape=(3, 32, 32)))
    return {"source": "folding only (random weights; run benchmarks/fullsize.py --networks cnv_w2a2 for a build)",
            "cycles_per_frame": result.cycles_per_frame, "clock_mhz": result.clock_mhz,
            "resources": result.resources.to_dict(), "bottleneck": result.bottleneck,
            "measured_cycles_per_frame": None, "verified": None}


def markdown(report: dict) -> str:
    """The side-by-side table of the JSON report."""
    finn, mixq = report["finn"], report["mixq"]
    res = mixq["resources"]
    ratio = finn["cycles_per_frame"] / mixq["cycles_per_frame"]
    measured = mixq.get("measured_cycles_per_frame")
    lines = [
        "# CNV-W2A2: mixq on the Ultra96-V2 against FINN's published CNV-W2A2", "",
        f"FINN: {report['finn_source']}; cycles per layer from its SIMD/PE with FINN's MVAU formula.  mixq: "
        f"{mixq['source']}.  Resources of mixq are the folding's estimates (the Ultra96 budget at 85 % less "
        "the shell); FINN publishes none for W2A2 on the Ultra96, its nearest published figures are listed "
        "below the table.", "",
        "| | cycles/frame | clock | fps | fps at 100 MHz | DSP | LUT | BRAM36 | bottleneck |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| FINN CNV-W2A2 (finn-examples folding) | {finn['cycles_per_frame']:,} | {finn['clock_mhz']:g} MHz | "
        f"{finn['fps']:,.0f} | {finn['fps']:,.0f} | - | - | - | {finn['bottleneck']} |",
        f"| mixq CNV-W2A2 | {mixq['cycles_per_frame']:,} | {mixq['clock_mhz']:g} MHz | "
        f"{mixq['clock_mhz'] * 1e6 / mixq['cycles_per_frame']:,.0f} | {1e8 / mixq['cycles_per_frame']:,.0f} | "
        f"{res['dsp']:,} | {res['lut']:,} | {res['bram36']:g} | {mixq['bottleneck']} |", "",
        f"mixq needs {ratio:.1f}x fewer cycles per frame than FINN's published folding"
        + (f"; the 2-frame verification measured {measured:,} cycles/frame ({mixq['verified']} frames bit-exact)"
           if measured else "") + ".  FINN runs its W2A2 layers on LUTs (its DSP MVAU needs 4-8-bit signed "
        "weights); mixq packs 2-bit products into DSP48E2s.", "",
        "FINN's per-layer cycles:", "", "| layer | SIMD | PE | cycles/frame |", "|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['simd']} | {r['pe']} | {r['cycles']:,} |" for r in finn["layers"]]
    lines += ["", "Published FINN CNV resources (other precisions or boards, for scale):", ""]
    lines += [f"- {r['what']}: " + ", ".join(f"{k.upper()} {v:,g}" for k, v in r.items() if k != "what")
              for r in report["finn_resources"]]
    lines += ["", f"Generated {report['machine']['date']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replot", action="store_true", help="only re-render finn_cnv.md from finn_cnv.json")
    args = p.parse_args(argv)
    path = RESULTS / "finn_cnv.json"
    if args.replot:
        report = json.loads(path.read_text())
    else:
        layers = finn_layers()
        slowest = max(layers, key=lambda r: r["cycles"])
        finn = {"cycles_per_frame": slowest["cycles"], "bottleneck": slowest["layer"], "clock_mhz": FINN_CLOCK_MHZ,
                "fps": FINN_CLOCK_MHZ * 1e6 / slowest["cycles"], "layers": layers}
        report = {"benchmark": "finn_cnv", "machine": machine(), "finn_source": FINN_SOURCE, "finn": finn,
                  "finn_resources": list(FINN_RESOURCES), "mixq": mixq_side()}
        atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    atomic_write_text(RESULTS / "finn_cnv.md", markdown(report))
    print((RESULTS / "finn_cnv.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
