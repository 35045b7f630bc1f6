"""The README's results section, generated from ``benchmarks/results/*.json`` (never typed by hand).

    python benchmarks/readme_results.py          # rewrite the block between the markers in README.md
    python benchmarks/readme_results.py --check  # exit 1 if README.md is not what the JSON gives

The block sits between ``<!-- results:begin -->`` and ``<!-- results:end -->``.  Each figure comes from one
JSON file written by a benchmark script; the table says which, and on what machine and date it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
#: Full-size networks in the order the README lists them (file stem -> row label).
FULLSIZE = {"ultranet_bjut": "UltraNet, BJUT W4A4 preset", "ultranet_mixq": "UltraNet, MixQ searched preset",
            "ultranet_bypass": "UltraNet-Bypass W4A4", "skynet": "SkyNet W5A8", "cnv_w2a2": "CNV W2A2 (digits)",
            "cnv_w4a4": "CNV W4A4 (digits)", "cnv_w8a8": "CNV W8A8 (digits)",
            "cnv_w2a2_p50": "CNV W2A2 pruned 50 % (digits)", "cnv_mixq": "CNV, searched bit widths (digits)",
            "tinyyolo": "Tiny-YOLOv3 W3A3 (reduced)",
            "resnet8": "ResNet-8 W4A4", "diracdeltanetsmall": "DiracDeltaNetSmall W4A4 (digits)"}


def _layers_sentence(layers: dict) -> str:
    """How the layer-by-layer check ran: one compiled stage bank after the whole design, or designs in turn."""
    n, images, seconds = len(layers.get("stages", [])), layers.get("images", 0), layers.get("seconds", 0)
    designs = layers.get("designs", 0)
    if designs == 1:
        return (f"{n} stages, each alone on {images} images, from one compiled stage bank, checked in "
                f"{seconds:.0f} s after ")
    return f"{n} stages alone on {images} images in {seconds:.0f} s ({designs} designs compiled), then "


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _date(meta: dict[str, Any] | None) -> str:
    if not meta:
        return "?"
    return str(meta.get("date", "?"))[:10]


def packing_section() -> list[str]:
    """How our exact MACs per DSP48E2 compare with DeepBurning-MixQ's published lookup."""
    data = _load("packing.json")
    if data is None:
        return []
    rows = [r for r in data["rows"] if r["k"] in (1, 3) and r.get("mixq") is not None]
    above = sum(r["macs_per_dsp"] > r["mixq"] for r in rows)
    equal = sum(r["macs_per_dsp"] == r["mixq"] for r in rows)
    below = sum(r["macs_per_dsp"] < r["mixq"] for r in rows)
    lines = ["### Packing: exact MACs per DSP48E2 per cycle",
             "",
             f"Against DeepBurning-MixQ's {len(rows)} published 1x1/3x3 entries (w, a in 2..8): "
             f"**above at {above}, equal at {equal}, below at {below}**; every entry exact (emulated DSP48E2 "
             f"arithmetic equals the promised sums, and the core reproduces it in simulation). 3x3 kernels, "
             "ours / MixQ (`*` digit split, `+` mixed-rate split):",
             "",
             "| w\\a | " + " | ".join(str(a) for a in range(2, 9)) + " |",
             "|---|" + "---|" * 7]
    by = {(r["w"], r["a"]): r for r in rows if r["k"] == 3}
    for w in range(2, 9):
        cells = []
        for a in range(2, 9):
            r = by[(w, a)]
            mark = "+" if r.get("mixed") else ("*" if r.get("split") else "")
            ours = f"{_fmt(r['macs_per_dsp'])}{mark}"
            if r["macs_per_dsp"] > r["mixq"]:
                ours = f"**{ours}**"
            cells.append(f"{ours} / {_fmt(r['mixq'])}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines += ["", f"Full grids (1x1, 3x3, 5x5, FINN's RTL MVU alongside): "
                  f"[`packing.md`](benchmarks/results/packing.md) (`benchmarks/packing.py`, {_date(data)})."]
    return lines


def _stale_note() -> str:
    """Which full-size rows were verified before the Verilator backend (re-measure with benchmarks/fullsize.py)."""
    stale = [label for stem, label in FULLSIZE.items()
             if (d := _load(f"fullsize/{stem}.json")) and d.get("verify", {}).get("backend") not in (None, "verilator")]
    return (f"; measured before the Verilator backend and the realistic budget, to re-measure with "
            f"`python benchmarks/fullsize.py`: {'; '.join(stale)}" if stale else "")


def refusal(log_tail: str) -> str:
    """The first sentence of the last ``error:`` in a failed build's log tail, on one line."""
    text = " ".join(log_tail[log_tail.rfind("error:") + len("error:"):].split())
    end = text.find(". ")
    return (text[:end] if end >= 0 else text).rstrip(".")


def network_section() -> list[str]:
    """The main job and the full-size networks: cycles, fps, resources, verification."""
    lines = ["### Networks on the Ultra96-V2 (360 DSP, 70,560 LUT, 216 BRAM36) at 300 MHz", "",
             "| network | cycles/frame analytic / simulated | verified | fps | DSP | LUT | BRAM36 | measured |",
             "|---|---|---|---|---|---|---|---|"]
    main = _load("mainjob.json")
    if main is not None:
        rep = main["report"]
        ver = rep.get("verify", {})
        lines.append(f"| VGG-tiny (digits, 3x32x32), the main job | {rep['cycles_per_frame']:,} / "
                     f"{ver.get('cycles_per_frame', 0):,} | {ver.get('bit_exact', 0)}/{ver.get('images', 0)} "
                     f"({ver.get('images_from', {}).get('text', '')}) | {rep['fps']:,.0f} | {rep['resources']['dsp']} | "
                     f"{rep['resources']['lut']:,} | {_fmt(rep['resources']['bram36'])} | "
                     f"{_date(main.get('machine'))}, `benchmarks/mainjob.py` |")
    refused = []
    for stem, label in FULLSIZE.items():
        data = _load(f"fullsize/{stem}.json")
        if data is None:
            continue
        build, ver, syn = data["build"], data.get("verify", {}), data.get("synth")
        if "resources" not in build:
            if "error:" in build.get("failed", ""):
                refused.append(f"{label} ({_date(data.get('machine'))}): {refusal(build['failed'])}")
            continue
        if syn and ("lut" not in syn or syn.get("of_build")):   # failed, or of an older build than this one
            syn = None
        res = build["resources"]
        sim = ver.get("cycles_per_frame")
        off = f" ({(sim / build['cycles_per_frame'] - 1) * 100:+.0f} %)" if sim and sim != build["cycles_per_frame"] else ""
        lut = f"{res['lut']:,}" + (f" (yosys {syn['lut']:,})" if syn else "")
        dsp = f"{res['dsp']}" + (f" (yosys {syn['dsp']})" if syn else "")
        shape = "x".join(map(str, data.get("input_shape", (3, 160, 320))))
        verified = f"{ver['bit_exact']}/{ver['images']}" if "images" in ver else "-"
        lines.append(f"| {label}, {shape} | {build['cycles_per_frame']:,} / {f'{sim:,}' if sim else '-'}{off} | "
                     f"{verified} | {build['fps']:,.0f} | {dsp} | {lut} | "
                     f"{_fmt(res['bram36'])} | {_date(data.get('machine'))}, `benchmarks/fullsize.py` |")
    lines += ["", "Resources are the folding's estimates unless marked yosys (`synth_xilinx -family xcup` on the "
                  "emitted Verilog); per-layer figures, verification times and simulation speed in "
                  "[`fullsize.md`](benchmarks/results/fullsize.md). Each row's last column is the date it was "
                  "measured" + _stale_note() + "."]
    if refused:
        lines += ["", "Refused by the build (`benchmarks/fullsize.py`; they do not fit the Ultra96-V2 under the "
                      "realistic budget): " + "; ".join(refused) + "."]
    budget = _load("budget.json")
    if budget is not None:
        parts = []
        for d in budget["designs"]:
            real, target = d.get("realistic"), d.get("target_cycles")
            if not real:
                continue
            miss = (f" (target {target:,}: {'met' if real['cycles_per_frame'] <= target else 'missed'})"
                    if target else "")
            parts.append(f"{d['network']} `{d['design']}` {real['cycles_per_frame']:,} cycles/frame{miss}")
        lines += ["", f"Every full-size row above is folded by the build's default budget. That budget's "
                      f"analytic foldings against the targets "
                      f"({budget['utilization']:.0%} of the device less the shell, analytic folding, "
                      f"{_date(budget.get('machine'))}): " + "; ".join(parts)
                  + " ([`budget.md`](benchmarks/results/budget.md), `benchmarks/budget.py`)."]
    return lines


def verification_section() -> list[str]:
    """How fast a design is proven bit-exact."""
    main = _load("mainjob.json")
    if main is None:
        return []
    t, ver = main["seconds"], main["report"].get("verify", {})
    stages = {"folding": t.get("trying target", 0) + sum(v for k, v in t.items() if k.startswith(("layer ", "T="))),
              "elaboration and Verilog": t.get("elaborating the", 0), "verification": t.get("verifying " +
                                                                                           str(ver.get("images", "")), 0)}
    layers, whole = ver.get("layers", {}), ver.get("whole", {})
    lines = ["### Verification speed", "",
             f"The main job (`{main['command']}`), cold compile cache, {main['machine'].get('cpus', '?')} cores "
             f"({main['machine'].get('cpu', '')}, load {main['machine']['load_average_at_start'][0]:.1f} at start, "
             f"{_date(main['machine'])}): **{t['total']:.0f} s wall**, {main['cpu_seconds']:.0f} CPU-s; "
             + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()) + ". "
             f"Verification ({ver.get('backend', '?')}, mode {ver.get('mode', '?')}): "
             + _layers_sentence(layers) +
             f"the whole accelerator on {whole.get('images', 0)} frames ("
             + (f"compiled beside the stage bank in {whole['build']['build_seconds']:.0f} s"
                if ver.get("one_build") and "build_seconds" in whole.get("build", {}) else
                f"{whole.get('compile_seconds', 0):.0f} s to compile")
             + f", {whole.get('cycles_per_second', 0):,.0f} cycles/s)."]
    speeds = []
    for stem, label in FULLSIZE.items():
        data = _load(f"fullsize/{stem}.json")
        fver = (data or {}).get("verify", {})
        if "cycles_per_second" in fver and "seconds" in fver:
            speeds.append(f"{label} {fver['cycles_per_second']:,.0f} cycles/s ({fver['bit_exact']}/"
                          f"{fver['images']} frames verified in {fver['seconds']:.0f} s, {_date(fver if 'date' in fver else data.get('machine'))})")
    if speeds:
        lines += ["", "Full-size whole-network simulation (the whole design alone on the machine, then every stage "
                      "layer by layer; issue #13's target is 100,000 cycles/s): " + "; ".join(speeds)
                  + ". Verilator and C++ compiler options on full-size UltraNet: [`verilator_fullsize.md`]"
                    "(benchmarks/results/verilator_fullsize.md)."]
    ver_bench = _load("verilator.json")
    if ver_bench is not None:
        lines += ["", "Simulators compared on one design (compile and run, threads, -O levels): "
                      "[`verilator.md`](benchmarks/results/verilator.md) (`benchmarks/sim_backends.py`)."]
    lint = _load("verilator_lint.json")
    if lint is not None:
        classes = lint["classes"]
        lines += ["", f"`verilator --lint-only -Wall` on the main job's Verilog: {lint['errors']} errors, "
                      f"{sum(c['count'] for c in classes):,} warnings in {len(classes)} classes, each explained "
                      "in [`verilator_lint.md`](benchmarks/results/verilator_lint.md) (none is a width or logic "
                      "bug; `benchmarks/verilator_lint.py`)."]
    return lines


def comparison_section() -> list[str]:
    """FINN's CNV-W2A2 beside ours, pruning's fps, and the timing estimates (all analytic unless stated)."""
    lines: list[str] = []
    finn = _load("finn_cnv.json")
    if finn is not None:
        ours, theirs = finn["mixq"], finn["finn"]
        res = ours["resources"]
        measured = ("not yet simulated at full size" if not ours.get("measured_cycles_per_frame") else
                    f"{ours['measured_cycles_per_frame']:,} measured")
        lines += [f"- **CNV-W2A2 (FINN's BNN-PYNQ network, 3x32x32)**: {ours['cycles_per_frame']:,} cycles/frame "
                  f"({measured}), {ours['clock_mhz'] * 1e6 / ours['cycles_per_frame']:,.0f} fps at "
                  f"{ours['clock_mhz']:.0f} MHz, {res['dsp']} DSP, {res['lut']:,} LUT (estimates); FINN's published "
                  f"folding needs {theirs['cycles_per_frame']:,} cycles/frame ({theirs['fps']:,.0f} fps at its "
                  f"{theirs['clock_mhz']:.0f} MHz). [`finn_cnv.md`](benchmarks/results/finn_cnv.md), "
                  f"{_date(finn.get('machine'))}."]
    prune = _load("pruning.json")
    if prune is not None and "ultra96" in prune:
        acc = {r["sparsity"]: r["test_accuracy"] for r in prune["rows"]}
        rows = prune["ultra96"]["rows"]
        base = rows[0]["fps"]
        epochs = prune.get("settings", {}).get("finetune_epochs", "?")
        lines += [f"- **Channel pruning of CNV-W2A2** (L1, aligned to 8, {epochs} fine-tune epoch(s); digits accuracy, "
                  "analytic Ultra96 fps): " + "; ".join(
                      f"{r['sparsity'] * 100:.0f} % sparsity {acc.get(r['sparsity'], float('nan')):.1f} %, "
                      f"{r['fps']:,.0f} fps ({r['fps'] / base:.2f}x)" for r in rows)
                  + f". [`pruning.md`](benchmarks/results/pruning.md), {_date(prune['ultra96'].get('machine'))}."]
    zoo = _load("zoo_training.json")
    if zoo is not None:
        lines += ["- **Seed classifiers trained on digits** (fake-quant / integer Graph test accuracy): " + "; ".join(
            f"{r['model']} {r['test_accuracy']:.2f} / "
            + (f"{r['integer_accuracy']:.2f} %" if r.get("integer_accuracy") is not None else "not measured")
            for r in zoo["rows"]) + f". [`zoo_training.md`](benchmarks/results/zoo_training.md), "
            f"{_date(zoo.get('machine'))}."]
    detector = _load("detector_training.json")
    if detector is not None:
        row, ev = detector["row"], detector["row"]["evaluation"]
        lines += [f"- **{row['model']} (reduced, LSQ W3A3) on synthetic boxes** ({detector['settings']}): "
                  f"test mean IoU {ev['float_metric']:.3f} fake-quant, "
                  f"{ev['integer_metric']:.3f} integer Graph (box agreement {ev['box_agreement_iou']:.3f}). "
                  f"[`detector_training.md`](benchmarks/results/detector_training.md), "
                  f"{_date(detector.get('machine'))}."]
    timing = _load("timing.json")
    if timing is not None:
        lines += ["- **Fmax estimates** (yosys xcup logic levels and a delay model, not Vivado): " + "; ".join(
            f"{d['design']} {d['timing']['fmax_mhz']:.0f} MHz (set by `{d['timing']['critical_stage']}`, "
            f"{_date(d.get('machine'))})" for d in timing["designs"])
            + ". [`timing.md`](benchmarks/results/timing.md)."]
    return ["### Other systems, pruning and timing", "", *lines] if lines else []


def render() -> str:
    parts: list[str] = []
    for section in (network_section(), comparison_section(), packing_section(), verification_section()):
        if section:
            parts += section + [""]
    return "\n".join([BEGIN, "", *parts, END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    args = parser.parse_args(argv)
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"error: {README}: no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + render() + tail
    if args.check:
        if new != text:
            print(f"{README} is out of date: run python benchmarks/readme_results.py", file=sys.stderr)
            return 1
        return 0
    tmp = README.with_name(f".{README.name}.{os.getpid()}.tmp")
    tmp.write_text(new)
    tmp.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
