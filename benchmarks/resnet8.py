"""ResNet-8 (MLPerf Tiny image classification) at full size, 3x32x32, through ``python -m mixq_hw.build --board
ultra96 --verify N``, next to the published MLPerf Tiny FPGA submissions of hls4ml and FINN.

Random weights with calibrated BatchNorm (the zoo's ReLU ResNet-8, W4A4 with 8-bit first conv / FC and 8-bit
residual adds; ``--network ResNet8Leaky``: its LeakyReLU variant, signed codes into every layer after the
stem), exported, built and verified on the default compiled backend.  Writes
``benchmarks/results/resnet8.json`` and ``benchmarks/results/resnet8.md`` (``resnet8_leaky.*`` for the
LeakyReLU variant; the table is generated from the JSON).  Run it under the heavy-work lock:

    flock /tmp/mixq-heavy.lock nice -n 5 python benchmarks/resnet8.py [--network ResNet8Leaky] [--frames 2] [--work DIR]
    python benchmarks/resnet8.py --report build/resnet8/build/report.json   # tabulate an existing build

Published figures come from docs/references.md (Borras et al., "Open-source FPGA-ML codesign for the MLPerf
Tiny Benchmark", 2022, arXiv:2206.11791); a figure not found in the sources consulted is "not found", never
estimated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import calibrated_graph, machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (3, 32, 32)
#: the zoo networks this benchmark builds -> the stem of their result files and default build folder
NETWORKS = {"ResNet8": "resnet8", "ResNet8Leaky": "resnet8_leaky"}
NOT_FOUND = "not found"
#: the published MLPerf Tiny FPGA submissions for image classification, from the submitters' own result logs
#: (mlcommons/tiny_results_v0.7 and _v1.0, open division; docs/references.md).  Throughput is the EEMBC runner's
#: median inferences per second on the board, so it includes the processor's transfers; resources are not in
#: those logs and stay "not found".
PUBLISHED = [
    {"design": "hls4ml RN08 (ResNet-8 class, 8-bit weights, 9-bit activations)",
     "board": "Pynq-Z2 (XC7Z020) @ 100 MHz", "round": "MLPerf Tiny v1.0 open",
     "source": "mlcommons/tiny_results_v1.0 open/hls4ml/results/pynq-z2/ic/RN08",
     "fps": 130.8, "top1": 83.5, "energy_uj": 12266, "latency_us": NOT_FOUND, "lut": NOT_FOUND, "ff": NOT_FOUND,
     "dsp": NOT_FOUND, "bram36": NOT_FOUND},
    {"design": "hls4ml RN07 (reduced ResNet)", "board": "Pynq-Z2 (XC7Z020)", "round": "MLPerf Tiny v0.7 open",
     "source": "mlcommons/tiny_results_v0.7 open/hls4ml-finn/results/pynq-z2/ic/RN07",
     "fps": 36.6, "top1": 83.5, "energy_uj": NOT_FOUND, "latency_us": NOT_FOUND, "lut": NOT_FOUND,
     "ff": NOT_FOUND, "dsp": NOT_FOUND, "bram36": NOT_FOUND},
    {"design": "FINN CNV-W1A1 (the FINN team's image-classification entry; not a ResNet)",
     "board": "Pynq-Z2 (XC7Z020)", "round": "MLPerf Tiny v0.7 open",
     "source": "mlcommons/tiny_results_v0.7 open/hls4ml-finn/results/pynq-z2/ic/CNV-W1A1",
     "fps": 661.5, "top1": 84.5, "energy_uj": NOT_FOUND, "latency_us": NOT_FOUND, "lut": NOT_FOUND,
     "ff": NOT_FOUND, "dsp": NOT_FOUND, "bram36": NOT_FOUND},
]


def run_build(work: Path, frames: int, network: str = "ResNet8") -> tuple[dict, float]:
    """Export the calibrated ``network`` (ResNet8 or ResNet8Leaky) and build it; the build's report and its wall
    time."""
    work.mkdir(parents=True, exist_ok=True)
    graph = calibrated_graph(network, shape=SHAPE)
    graph_path = work / f"{NETWORKS[network]}.npz"
    graph.save(graph_path)
    out = work / "build"
    command = [sys.executable, "-m", "mixq_hw.build", str(graph_path), "--board", "ultra96", "--out", str(out),
               "--verify", str(frames)]
    started = time.perf_counter()
    with (work / "build.log").open("w") as log:
        code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log).returncode
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"error: the build failed (exit {code}); see {work / 'build.log'}")
    return json.loads((out / "report.json").read_text()), seconds


def summary(report: dict, seconds: float | None) -> dict:
    """The figures of our build that the table shows."""
    keys = ("cycles_per_frame", "clock_mhz", "fps", "gops", "resources", "bottleneck", "verify")
    entry = {k: report[k] for k in keys if k in report}
    if "cycles_per_frame" in report and "clock_mhz" in report:
        entry["latency_us_bound"] = report["cycles_per_frame"] / report["clock_mhz"]
    entry["build_seconds"] = seconds
    return entry


def _fmt(value: object, spec: str = "{:,.0f}") -> str:
    return spec.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def markdown(result: dict) -> str:
    """The comparison table, from the JSON."""
    ours = result["mixq"]
    res = ours.get("resources", {})
    whole = ours.get("verify", {}).get("whole") or {}
    measured = (f"{whole['cycles_per_frame']:,} ({whole['bit_exact']}/{whole['images']} frames bit-exact, "
                f"Verilator)" if "cycles_per_frame" in whole else "not verified")
    variant = " with LeakyReLU (slope 1/8, signed codes)" if result["network"] == "ResNet8Leaky" else ""
    lines = [f"# ResNet-8{variant} (MLPerf Tiny, 3x32x32) on the Ultra96-V2 next to published FPGA submissions", "",
             "mixq: random weights with calibrated BatchNorm, folded under the Ultra96-V2 budget, "
             f"`python benchmarks/resnet8.py --network {result['network']}`; 'latency' for mixq is the frame interval "
             "(cycles per frame / "
             "clock), a lower bound of the latency, and its fps is the accelerator's alone (no host transfers).  "
             "Published rows: only figures stated in the cited result logs (MLPerf Tiny's EEMBC runner: median "
             "inferences per second on the board, CIFAR-10 top-1 on the test set); they are smaller boards "
             "(XC7Z020: 220 DSP, 53,200 LUT) and networks trained on CIFAR-10, so the rows compare systems, "
             "not engines.", "",
             "| design | board | cycles/frame | measured cycles/frame | fps (mixq: analytic) | latency (us) | top-1 % | DSP | LUT | FF "
             "| BRAM36 | source |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|",
             f"| mixq (this build) | Ultra96-V2 @ {_fmt(ours.get('clock_mhz', '-'))} MHz | "
             f"{_fmt(ours.get('cycles_per_frame', '-'))} | {measured} | {_fmt(ours.get('fps', '-'))} | "
             f"{_fmt(ours.get('latency_us_bound', '-'), '{:,.1f}')} | - (random weights) | {_fmt(res.get('dsp', '-'))} | "
             f"{_fmt(res.get('lut', '-'))} | {_fmt(res.get('ff', '-'))} | {_fmt(res.get('bram36', '-'), '{:g}')} | "
             f"measured here |"]
    for row in result["published"]:
        lines.append(f"| {row['design']} | {row['board']} | - | - | {_fmt(row['fps'], '{:,.1f}')} | "
                     f"{row['latency_us']} | {row['top1']} | {row['dsp']} | {row['lut']} | {row['ff']} | "
                     f"{row['bram36']} | {row['round']}: `{row['source']}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--network", choices=sorted(NETWORKS), default="ResNet8",
                   help="ResNet8 (ReLU, default) or ResNet8Leaky (LeakyReLU, signed codes)")
    p.add_argument("--frames", type=int, default=2, help="frames to verify (default 2)")
    p.add_argument("--work", type=Path, help="build folder (default build/resnet8 or build/resnet8_leaky)")
    p.add_argument("--report", type=Path, help="tabulate this existing build report.json instead of building")
    args = p.parse_args(argv)
    if args.report is not None:
        if not args.report.is_file():
            print(f"error: --report {args.report}: no such file", file=sys.stderr)
            return 2
        report, seconds = json.loads(args.report.read_text()), None
    else:
        report, seconds = run_build(args.work or Path("build") / NETWORKS[args.network], args.frames, args.network)
    result = {"network": args.network, "input": list(SHAPE), "machine": machine(),
              "mixq": summary(report, seconds), "published": PUBLISHED}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = NETWORKS[args.network]
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
