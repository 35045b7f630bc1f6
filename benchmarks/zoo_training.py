"""Measure how the small seed classifiers train on digits: one short ``python -m mixq_nn.train`` run each.

    python benchmarks/zoo_training.py [--models DiracDeltaNetSmall,CNVw2a2,ResNet8] [--epochs 4]
                                      [--input-shape 1,32,32] [--threads 1]

For each model: train (in-process, preset bit widths, digits, seeded) and record the fake-quantised test
accuracy after every epoch, the parameter count, MACs per frame at the input size and the wall time.
Then the integer Graph's accuracy on the same test split (``mixq_nn.evaluate``), where the network exports.
Writes ``benchmarks/results/zoo_training.json`` and ``zoo_training.md`` (a table generated from the JSON;
``--replot`` re-renders it); the rows of models not named in ``--models`` are kept from the previous JSON when
it was measured with the same epochs and input shape.  ``--keep DIR`` keeps the trained checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, run_training  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = "DiracDeltaNetSmall,CNVw2a2,ResNet8"


def integer_accuracy(path: Path) -> dict:
    """The integer Graph's test accuracy and its agreement with the fake-quantised model, or the export error."""
    from mixq_nn.evaluate import evaluate_checkpoint
    from mixq_nn.export import ExportError

    try:
        result = evaluate_checkpoint(str(path))
    except ExportError as exc:
        return {"integer_accuracy": None, "export_error": str(exc)}
    return {"integer_accuracy": result["integer_metric"], "fake_quant_accuracy": result["float_metric"],
            "prediction_agreement": result["prediction_agreement"]}


def run(names: list[str], epochs: int, input_shape: str, threads: int, keep: Path | None = None) -> list[dict]:
    """One training run per model; the rows of the report."""
    from mixq_nn import checkpoint, models
    from mixq_nn.loops import parse_shape

    shape = parse_shape(input_shape)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = (keep or Path(tmp)) / f"{name}.pt"
            argv = ["--model", name, "--dataset", "digits", "--input-shape", input_shape, "--epochs", str(epochs),
                    "--threads", str(threads), "--out", str(out), "-q"]
            seconds = run_training(argv, name)
            found = checkpoint.load(out)
            info = models.MODELS[name]
            rows.append({
                "model": name, "input_shape": list(shape), "bitw": "".join(map(str, found.bitw)),
                "bita": "".join(map(str, found.bita)),
                "params": sum(p.numel() for p in found.model.parameters()),
                "macs": models.macs(found.model, shape), "published_macs": info.reference_macs,
                "test_accuracy": found.metrics["test_accuracy"], "test_samples": found.metrics["test_samples"],
                "seconds": round(seconds, 1),
                "history": [{k: h[k] for k in ("epoch", "loss", "train_accuracy", "test_accuracy", "seconds")}
                            for h in found.meta["extra"]["history"]],
                **integer_accuracy(out),
            })
    return rows


def write(rows: list[dict], settings: dict, machine: dict) -> None:
    """JSON and markdown table under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "zoo_training", "settings": settings, "machine": machine, "rows": rows}
    (RESULTS / "zoo_training.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    lines = [
        f"# Seed classifiers trained on digits ({settings['epochs']} epochs, input {settings['input_shape']})", "",
        f"Measured {machine['date']} on {machine['platform']}, {machine['cpus']} CPUs (load average at start "
        f"{machine['load_average_at_start'][0]:.1f}), torch {machine['torch']}, {settings['threads']} thread(s), "
        "nice'd. `python -m mixq_nn.train` with the preset bit widths, Adam, cosine schedule, seed 0; "
        "accuracy of the fake-quantised model on the digits test split, and of its exported integer Graph "
        "(`python -m mixq_nn.evaluate`; \"no export\": the network does not export yet).  Training drops the "
        "last partial batch (a 3-image batch gave DiracDeltaNetSmall's 1x1 stage BatchNorm statistics of three "
        "values: 42.7 % before).", "",
        *([f"Rows of {', '.join(settings['kept_from_previous_run'])} are kept from earlier runs with the same "
           f"settings (the latest {machine['previous_run']['date']}, load "
           f"{machine['previous_run']['load_average_at_start'][0]:.1f}; each run's date and load in the JSON's "
           "machine.previous_run chain; runs before 2026-12-06T02:00 trained with the partial batch).", ""]
          if settings.get("kept_from_previous_run") else []),
        "| model | bitw / bita | params | MACs/frame | test acc. per epoch | final test acc. | integer Graph | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_epoch = ", ".join(f"{h['test_accuracy']:.1f}" for h in r["history"])
        graph = ("no export" if "export_error" in r else "not measured" if r.get("integer_accuracy") is None
                 else f"{r['integer_accuracy']:.2f}%")
        lines.append(f"| {r['model']} | {r['bitw']} / {r['bita']} | {r['params']:,} | {r['macs']:,} | {per_epoch} "
                     f"| {r['test_accuracy']:.2f}% | {graph} | {r['seconds']:.0f} s |")
    (RESULTS / "zoo_training.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--input-shape", default="1,32,32", help="C,H,W (default 1,32,32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--replot", action="store_true", help="only re-render the table from zoo_training.json")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the trained checkpoints in")
    args = parser.parse_args(argv)
    if args.replot:
        report = json.loads((RESULTS / "zoo_training.json").read_text())
        write(report["rows"], report["settings"], report["machine"])
        print((RESULTS / "zoo_training.md").read_text())
        return 0
    info = machine()
    names = [n for n in args.models.split(",") if n]
    settings = {"models": names, "epochs": args.epochs, "input_shape": args.input_shape, "threads": args.threads}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    rows = run(names, args.epochs, args.input_shape, args.threads, args.keep)
    previous = RESULTS / "zoo_training.json"
    if previous.exists():
        old = json.loads(previous.read_text())
        if all(old["settings"][k] == settings[k] for k in ("epochs", "input_shape")):
            kept = [r for r in old["rows"] if r["model"] not in names]
            rows = kept + rows
            settings["models"] = [r["model"] for r in rows]
            settings["kept_from_previous_run"] = [r["model"] for r in kept]
            info["previous_run"] = old["machine"]
    write(rows, settings, info)
    print((RESULTS / "zoo_training.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
