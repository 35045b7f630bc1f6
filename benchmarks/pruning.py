"""Measure accuracy against sparsity of SIMD-aligned channel pruning: CNV on digits at a small input.

    python benchmarks/pruning.py [--model CNVw2a2] [--input-shape 1,32,32] [--epochs 4]
                                 [--sparsities 0,0.25,0.5,0.75] [--align 8] [--finetune-epochs 2]
    python benchmarks/pruning.py --fps      # add frames per second on the Ultra96 to pruning.json

Trains the model once (``python -m mixq_nn.train``, in-process), then for each sparsity runs
``python -m mixq_nn.prune`` on that checkpoint and records the kept channel widths, parameters, MACs per
frame and the fake-quantised digits test accuracy before and after fine-tuning.  Writes
``benchmarks/results/pruning.json``, ``pruning.md`` (a table generated from the JSON) and ``pruning.png``
(``--replot`` re-renders both from the JSON).

``--fps`` adds, for every row of pruning.json, frames per second on the Ultra96-V2 at 300 MHz: the network
with that row's kept channels at FINN's CNV input (3x32x32, random weights with calibrated BN) folded as
``python -m mixq_hw.build --board ultra96`` folds it (analytic cycles under the realistic budget), and the
cycles the 2-frame verification measured where ``benchmarks/fullsize.py`` built that network
(:data:`MEASURED`).  Plot: ``pruning_fps.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: The input the fps figures use: FINN's CNV input, the published size.
FPS_SHAPE = (3, 32, 32)
#: sparsity -> the benchmarks/fullsize.py network built (and verified) at it
MEASURED = {0.0: "cnv_w2a2", 0.5: "cnv_w2a2_p50"}


def ultra96_rows(settings: dict, rows: list[dict]) -> list[dict]:
    """Per pruned row: analytic cycles, fps and resources of the Ultra96 folding, and measured cycles if any."""
    from benchmarks.common import calibrated_graph, ultra96_folding

    out = []
    for r in rows:
        start = time.perf_counter()
        result = ultra96_folding(calibrated_graph(settings["model"], shape=FPS_SHAPE, channels=r["channels"]))
        entry = {"sparsity": r["sparsity"], "cycles_per_frame": result.cycles_per_frame, "fps": round(result.fps, 1),
                 "clock_mhz": result.clock_mhz, "resources": result.resources.to_dict(),
                 "bottleneck": result.bottleneck, "seconds": round(time.perf_counter() - start, 1)}
        tag = MEASURED.get(r["sparsity"])
        path = RESULTS / "fullsize" / f"{tag}.json"
        if tag and path.exists():
            full = json.loads(path.read_text())
            verify = full.get("verify", {})
            entry["fullsize"] = {"network": tag, "analytic_cycles_per_frame": full.get("build", {}).get("cycles_per_frame"),
                                 "measured_cycles_per_frame": verify.get("cycles_per_frame")
                                 if verify.get("images", 0) >= 2 else None,
                                 "verified": f"{verify['bit_exact']}/{verify['images']}" if "images" in verify else None}
        print(f"sparsity {r['sparsity']:g}: {entry}", flush=True)
        out.append(entry)
    return out


def run(settings: dict) -> tuple[dict, list[dict]]:
    """Train once, prune at every sparsity; (the trained model's row, the pruned rows)."""
    from mixq_nn import checkpoint, prune, train

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.pt"
        argv = ["--model", settings["model"], "--dataset", "digits", "--input-shape", settings["input_shape"],
                "--epochs", str(settings["epochs"]), "--threads", "1", "--out", str(base), "-q"]
        print(f"== python -m mixq_nn.train {' '.join(argv)}", flush=True)
        start = time.perf_counter()
        if train.main(argv):
            raise SystemExit("training failed")
        trained = checkpoint.load(base)
        base_row = {"test_accuracy": trained.metrics["test_accuracy"], "seconds": round(time.perf_counter() - start, 1)}
        for sparsity in settings["sparsities"]:
            out = Path(tmp) / f"pruned{sparsity:g}.pt"
            argv = [str(base), "--sparsity", repr(sparsity), "--align", str(settings["align"]), "--out", str(out),
                    "--finetune-epochs", str(settings["finetune_epochs"]), "--threads", "1", "-q"]
            print(f"== python -m mixq_nn.prune {' '.join(argv)}", flush=True)
            start = time.perf_counter()
            if prune.main(argv):
                raise SystemExit(f"pruning at {sparsity} failed")
            found = checkpoint.load(out, build=False)
            info = found.meta["extra"]["pruning"]
            rows.append({"sparsity": sparsity, "channels": info["channels"], "params": info["params"][1],
                         "macs": info["macs"][1], "test_accuracy_before_finetune": info["test_accuracy_before_finetune"],
                         "test_accuracy": found.metrics["test_accuracy"], "file_bytes": out.stat().st_size,
                         "seconds": round(time.perf_counter() - start, 1)})
        base_row.update(params=info["params"][0], macs=info["macs"][0], file_bytes=base.stat().st_size)
    return base_row, rows


def write(base: dict, rows: list[dict], settings: dict, info: dict, ultra96: dict | None = None) -> None:
    """JSON, markdown table and plot under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "pruning", "settings": settings, "machine": info, "trained": base, "rows": rows}
    if ultra96:
        report["ultra96"] = ultra96
    (RESULTS / "pruning.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    lines = [
        f"# Channel pruning of {settings['model']} on digits (input {settings['input_shape']}, align "
        f"{settings['align']})", "",
        f"Measured {info['date']} on {info['platform']}, {info['cpus']} CPUs (load average at start "
        f"{info['load_average_at_start'][0]:.1f}), torch {info['torch']}, one thread, nice'd. The model is "
        f"trained {settings['epochs']} epochs (test accuracy {base['test_accuracy']:.2f} %, {base['params']:,} "
        f"parameters, {base['macs']:,} MACs/frame), then pruned by `python -m mixq_nn.prune` (L1 norm, kept "
        f"counts multiples of {settings['align']}) and fine-tuned {settings['finetune_epochs']} epoch(s). "
        "Accuracy of the fake-quantised model on the digits test split.", "",
        "| sparsity | kept channels | params | MACs/frame | acc. before fine-tune | acc. after | checkpoint |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['sparsity']:g} | {'-'.join(map(str, r['channels']))} | {r['params']:,} | {r['macs']:,} "
                     f"| {r['test_accuracy_before_finetune']:.2f}% | {r['test_accuracy']:.2f}% "
                     f"| {r['file_bytes'] / 1024:.0f} KiB |")
    if ultra96:
        lines += fps_lines(ultra96, rows)
    (RESULTS / "pruning.md").write_text("\n".join(lines) + "\n")
    if ultra96:
        plot_fps(ultra96, rows, settings)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    xs = [r["sparsity"] for r in rows]
    ax.plot(xs, [r["test_accuracy"] for r in rows], "o-", label=f"after {settings['finetune_epochs']} epoch(s) fine-tune")
    ax.plot(xs, [r["test_accuracy_before_finetune"] for r in rows], "s--", label="before fine-tune")
    ax.axhline(base["test_accuracy"], color="gray", lw=0.8, ls=":", label="trained, unpruned")
    ax.set_xlabel("sparsity (fraction of channels removed)")
    ax.set_ylabel("digits test accuracy (%)")
    ax2 = ax.twiny()
    ax2.set_xlim(ax.get_xlim())
    ax2.set_xticks(xs)
    ax2.set_xticklabels([f"{r['macs'] / 1e6:.1f}M" for r in rows], fontsize=7)
    ax2.set_xlabel("MACs / frame", fontsize=8)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{settings['model']} {settings['input_shape']}: accuracy vs sparsity (align {settings['align']})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "pruning.png", dpi=100)
    plt.close(fig)


def fps_lines(ultra96: dict, rows: list[dict]) -> list[str]:
    """The markdown section of frames per second on the Ultra96 against sparsity."""
    info = ultra96["machine"]
    lines = ["", "## Frames per second on the Ultra96-V2", "",
             f"Each row's kept channels at {'x'.join(map(str, FPS_SHAPE))} (FINN's CNV input), folded by "
             "`python -m mixq_hw.build --board ultra96`'s search under the realistic budget (85 % of the device "
             "less the shell) at 300 MHz: analytic cycles per frame and estimated resources; 'measured': the "
             "interval between the two frames of the full-size build's verification (`benchmarks/fullsize.py`). "
             f"Computed {info['date']} (load average {info['load_average_at_start'][0]:.1f}).", "",
             "| sparsity | analytic cycles/frame | fps | speed-up | DSP | LUT | BRAM36 | bottleneck | measured cycles/frame |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = ultra96["rows"][0]["fps"]
    for u in ultra96["rows"]:
        full = u.get("fullsize", {})
        measured = full.get("measured_cycles_per_frame")
        cell = (f"{measured:,} ({full['network']}, {full['verified']} bit-exact)" if measured
                else f"- ({full['network']}: not verified)" if full else "-")
        res = u["resources"]
        lines.append(f"| {u['sparsity']:g} | {u['cycles_per_frame']:,} | {u['fps']:,.0f} | {u['fps'] / base:.2f}x | "
                     f"{res['dsp']:,} | {res['lut']:,} | {res['bram36']:g} | {u['bottleneck']} | {cell} |")
    return lines


def plot_fps(ultra96: dict, rows: list[dict], settings: dict) -> None:
    """pruning_fps.png: Ultra96 fps (analytic; measured where verified) and accuracy against sparsity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    us = ultra96["rows"]
    ax.plot([u["sparsity"] for u in us], [u["fps"] for u in us], "o-", label="Ultra96 fps (analytic, 300 MHz)")
    done = [(u["sparsity"], u["clock_mhz"] * 1e6 / u["fullsize"]["measured_cycles_per_frame"]) for u in us
            if u.get("fullsize", {}).get("measured_cycles_per_frame")]
    if done:
        ax.plot(*zip(*done), "k*", ms=10, label="measured (2-frame verification)")
    ax.set_xlabel("sparsity (fraction of channels removed)")
    ax.set_ylabel("frames per second")
    ax2 = ax.twinx()
    ax2.plot([r["sparsity"] for r in rows], [r["test_accuracy"] for r in rows], "s--", color="tab:green",
             label="digits accuracy (fine-tuned)")
    ax2.set_ylabel("digits test accuracy (%)")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="center left")
    ax.set_title(f"{settings['model']} on the Ultra96-V2: fps and accuracy vs sparsity (align {settings['align']})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "pruning_fps.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="CNVw2a2")
    parser.add_argument("--input-shape", default="1,32,32")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the unpruned model")
    parser.add_argument("--sparsities", default="0,0.25,0.5,0.75")
    parser.add_argument("--align", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--replot", action="store_true", help="only re-render table and plot from pruning.json")
    parser.add_argument("--fps", action="store_true",
                        help="add Ultra96 frames per second for every row of pruning.json (folding; measured cycles "
                             "from benchmarks/fullsize.py where it verified the network)")
    args = parser.parse_args(argv)
    if args.replot or args.fps:
        report = json.loads((RESULTS / "pruning.json").read_text())
        ultra96 = report.get("ultra96")
        if args.fps:
            ultra96 = {"machine": machine(), "rows": ultra96_rows(report["settings"], report["rows"])}
        write(report["trained"], report["rows"], report["settings"], report["machine"], ultra96)
        print((RESULTS / "pruning.md").read_text())
        return 0
    settings = {"model": args.model, "input_shape": args.input_shape, "epochs": args.epochs,
                "sparsities": [float(s) for s in args.sparsities.split(",")], "align": args.align,
                "finetune_epochs": args.finetune_epochs}
    info = machine()
    base, rows = run(settings)
    write(base, rows, settings, info)
    print((RESULTS / "pruning.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
