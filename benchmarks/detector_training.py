"""The reduced Tiny-YOLOv3 (LSQ W3A3) trained on synthetic boxes: mean IoU of the fake-quantised model and of
its exported integer Graph, per epoch and at the end.

    python benchmarks/detector_training.py [--epochs 10] [--input-shape 3,64,64] [--limit 2000] [--batch-size 16]
                                           [--replot]

Writes ``benchmarks/results/detector_training.json`` and the table generated from it, ``detector_training.md``.
The real detection data (DAC-SDC) cannot be had here; ``--dataset synthetic`` draws one solid rectangle per image
on a noisy background, its box the target (``mixq_nn.data``).  The recipe is Adam at the trainer's default
learning rate with batches of 16: four times the steps of the default 64 per epoch, which the detector needs
(64: test IoU near 0.5 after 10 float epochs on 1,024 images; 16: above 0.7).  Run it under the heavy-work lock
(minutes of CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, run_training  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "TinyYOLOv3"


def run(epochs: int, input_shape: str, limit: int, batch_size: int, threads: int) -> dict:
    """One training run and one evaluation of its checkpoint; the report's row."""
    from mixq_nn import checkpoint, models
    from mixq_nn.evaluate import evaluate_checkpoint
    from mixq_nn.loops import parse_shape

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{MODEL}.pt"
        argv = ["--model", MODEL, "--dataset", "synthetic", "--input-shape", input_shape, "--epochs", str(epochs),
                "--limit", str(limit), "--batch-size", str(batch_size), "--threads", str(threads), "--out", str(out), "-q"]
        seconds = run_training(argv, MODEL)
        found = checkpoint.load(out)
        result = evaluate_checkpoint(str(out), dataset="synthetic", limit=limit)
        shape = parse_shape(input_shape)
        return {"model": MODEL, "input_shape": list(shape), "bitw": "".join(map(str, found.bitw)),
                "bita": "".join(map(str, found.bita)), "macs": models.macs(found.model, shape),
                "seconds": round(seconds, 1), "history": found.meta["extra"]["history"],
                "evaluation": result}


def write(row: dict, settings: dict, at_start: dict) -> None:
    """The JSON and the markdown table generated from it."""
    report = {"machine": at_start, "settings": settings, "row": row}
    atomic_write_text(RESULTS / "detector_training.json", json.dumps(report, indent=1) + "\n")
    render(report)


def render(report: dict) -> None:
    """``detector_training.md`` from the report."""
    row, ev, m = report["row"], report["row"]["evaluation"], report["machine"]
    per_epoch = ", ".join(f"{h['test_mean_iou']:.3f}" for h in row["history"] if "test_mean_iou" in h)
    lines = [f"# {MODEL} (reduced, LSQ) on synthetic boxes", "",
             f"Measured {m['date']} ({m['cpu']}, {m['cpus']} CPUs, load average at start "
             f"{m['load_average_at_start'][0]:.1f}), torch {m['torch']}. `python -m mixq_nn.train --model {MODEL} "
             f"--dataset synthetic` ({report['settings']}), then `python -m mixq_nn.evaluate` on the checkpoint: "
             f"mean IoU (0..1) of the decoded box against the true box on the test split, for the fake-quantised "
             f"model and for its exported integer Graph; 'box agreement': mean IoU between the two models' boxes.",
             "", "| model | input | bitw / bita | MACs/frame | test mean IoU per epoch | fake-quant IoU | "
                 "integer Graph IoU | box agreement | samples | train s |",
             "|---|---|---|---|---|---|---|---|---|---|",
             f"| {row['model']} | {'x'.join(map(str, row['input_shape']))} | {row['bitw']} / {row['bita']} | "
             f"{row['macs']:,} | {per_epoch} | {ev['float_metric']:.4f} | {ev['integer_metric']:.4f} | "
             f"{ev.get('box_agreement_iou', float('nan')):.4f} | {ev['samples']} | {row['seconds']:g} |", ""]
    atomic_write_text(RESULTS / "detector_training.md", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--input-shape", default="3,64,64", help="C,H,W (default 3,64,64)")
    parser.add_argument("--limit", type=int, default=2000, help="training (and test) images at most")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--replot", action="store_true", help="only re-render the table from the JSON")
    args = parser.parse_args(argv)
    if args.replot:
        render(json.loads((RESULTS / "detector_training.json").read_text()))
        return 0
    at_start = machine()
    settings = (f"{args.epochs} epochs, input {args.input_shape}, at most {args.limit} images, batch size "
                f"{args.batch_size}, {args.threads} threads")
    write(run(args.epochs, args.input_shape, args.limit, args.batch_size, args.threads), settings, at_start)
    print((RESULTS / "detector_training.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
