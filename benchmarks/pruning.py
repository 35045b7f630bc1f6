"""Measure accuracy against sparsity of SIMD-aligned channel pruning: CNV on digits at a small input.

    python benchmarks/pruning.py [--model CNVw2a2] [--input-shape 1,32,32] [--epochs 4]
                                 [--sparsities 0,0.25,0.5,0.75] [--align 8] [--finetune-epochs 2]

Trains the model once (``python -m mixq_nn.train``, in-process), then for each sparsity runs
``python -m mixq_nn.prune`` on that checkpoint and records the kept channel widths, parameters, MACs per
frame and the fake-quantised digits test accuracy before and after fine-tuning.  Writes
``benchmarks/results/pruning.json``, ``pruning.md`` (a table generated from the JSON) and ``pruning.png``
(``--replot`` re-renders both from the JSON).
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


def write(base: dict, rows: list[dict], settings: dict, info: dict) -> None:
    """JSON, markdown table and plot under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "pruning", "settings": settings, "machine": info, "trained": base, "rows": rows}
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
    (RESULTS / "pruning.md").write_text("\n".join(lines) + "\n")

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="CNVw2a2")
    parser.add_argument("--input-shape", default="1,32,32")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the unpruned model")
    parser.add_argument("--sparsities", default="0,0.25,0.5,0.75")
    parser.add_argument("--align", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--replot", action="store_true", help="only re-render table and plot from pruning.json")
    args = parser.parse_args(argv)
    if args.replot:
        report = json.loads((RESULTS / "pruning.json").read_text())
        write(report["trained"], report["rows"], report["settings"], report["machine"])
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
