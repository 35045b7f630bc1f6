"""Measure how the DSP weight ``cd`` steers the search: short searches on digits at several cd values.

    python benchmarks/search_cd.py [--cds 3e-6,3e-5,3e-4] [--epochs 2] [--input-shape 3,16,16]

For each cd: run ``python -m mixq_nn.search`` (in-process, same settings otherwise), then record the
expected DSP48E2-cycles per frame of the supernet, the DSP-cycles of its argmax (chosen) network,
the chosen bit widths, expected BitOps and the supernet's test accuracy.  Writes
``benchmarks/results/search_cd.json``, ``search_cd.md`` (a table) and ``search_cd.png``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def run(cds: list[float], epochs: int, input_shape: str, limit: int | None, model: str,
        extra: list[str]) -> list[dict]:
    """One search per cd; the rows of the report."""
    from mixq_nn import checkpoint, search

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cd in cds:
            out = Path(tmp) / f"search_cd{cd:g}.pt"
            argv = ["--model", model, "--dataset", "digits", "--cd", repr(cd), "--epochs", str(epochs),
                    "--input-shape", input_shape, "--eval-every", "0", "--out", str(out), *extra]
            if limit:
                argv += ["--limit", str(limit)]
            print(f"== cd {cd:g}: python -m mixq_nn.search {' '.join(argv)}", flush=True)
            start = time.perf_counter()
            status = search.main(argv)
            if status:
                raise SystemExit(f"search with cd {cd:g} failed ({status})")
            found = checkpoint.load(out, build=False)
            metrics = found.metrics
            rows.append({
                "cd": cd, "bitw": "".join(map(str, found.bitw)), "bita": "".join(map(str, found.bita)),
                "expected_dsp_cycles": metrics["expected_dsp_cycles"],
                "chosen_dsp_cycles": metrics["chosen_dsp_cycles"],
                "expected_bitops": metrics["expected_bitops"],
                "supernet_test_accuracy": metrics["test_accuracy"],
                "seconds": round(time.perf_counter() - start, 1),
                "history": [{k: h[k] for k in ("epoch", "bitw", "bita", "expected_dsp_cycles",
                                               "chosen_dsp_cycles", "test_accuracy", "train_accuracy")}
                            for h in found.meta["extra"]["history"]],
            })
    return rows


def write(rows: list[dict], settings: dict, machine: dict | None = None) -> None:
    """JSON, markdown table and plot under benchmarks/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "search_cd", "settings": settings, "machine": machine or _machine(), "rows": rows}
    (RESULTS / "search_cd.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    lines = [
        f"# DSP-aware search vs cd ({settings['model']} on digits, input {settings['input_shape']}, "
        f"{settings['epochs']} epoch(s) per search)", "",
        f"Measured {report['machine']['date']} on {report['machine']['platform']}, "
        f"{report['machine']['cpus']} CPUs, torch {report['machine']['torch']}. "
        "DSP-cycles = DSP48E2-cycles per frame at the packing density of `mixq_hw.packing`; "
        "'expected' is the supernet's softmax expectation, 'chosen' its argmax network. "
        "Accuracy: the supernet (mixed) on the digits test split.", "",
        "| cd | bitw | bita | E[DSP-cycles] | chosen DSP-cycles | E[BitOps] | supernet test acc. | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['cd']:g} | {r['bitw']} | {r['bita']} | {r['expected_dsp_cycles'] / 1e6:.2f} M "
                     f"| {r['chosen_dsp_cycles'] / 1e6:.2f} M | {r['expected_bitops'] / 1e9:.2f} G "
                     f"| {r['supernet_test_accuracy']:.2f}% | {r['seconds']:.0f} s |")
    (RESULTS / "search_cd.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    cds = [r["cd"] for r in rows]
    ax.semilogx(cds, [r["expected_dsp_cycles"] / 1e6 for r in rows], "o-", label="E[DSP-cycles] (supernet)")
    ax.semilogx(cds, [r["chosen_dsp_cycles"] / 1e6 for r in rows], "s--", label="DSP-cycles (chosen)")
    for r in rows:
        ax.annotate(f"w{r['bitw']}\na{r['bita']}", (r["cd"], r["chosen_dsp_cycles"] / 1e6),
                    textcoords="offset points", xytext=(4, 6), fontsize=7)
    ax.set_xlabel("cd")
    ax.set_ylabel("M DSP48E2-cycles / frame")
    ax2 = ax.twinx()
    ax2.semilogx(cds, [r["supernet_test_accuracy"] for r in rows], "^:", color="tab:green", label="test acc.")
    ax2.set_ylabel("supernet test accuracy (%)")
    ax.legend(loc="upper right", fontsize=8)
    ax2.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{settings['model']} search on digits, input {settings['input_shape']}: DSP cost vs cd",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "search_cd.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cds", default="3e-6,3e-5,3e-4", help="comma-separated cd values")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--input-shape", default="3,16,16",
                        help="C,H,W (default 3,16,16: a quarter of the MACs of 3,32,32, so short runs)")
    parser.add_argument("--limit", type=int, default=None, help="training/test images per search")
    parser.add_argument("--model", default="VGGtiny")
    parser.add_argument("--replot", action="store_true",
                        help="only re-render the table and plot from the existing search_cd.json")
    args, extra = parser.parse_known_args(argv)
    if args.replot:
        report = json.loads((RESULTS / "search_cd.json").read_text())
        write(report["rows"], report["settings"], report["machine"])
        print((RESULTS / "search_cd.md").read_text())
        return 0
    cds = [float(c) for c in args.cds.split(",")]
    settings = {"cds": cds, "epochs": args.epochs, "input_shape": args.input_shape, "limit": args.limit,
                "model": args.model, "search_options": extra}
    rows = run(cds, args.epochs, args.input_shape, args.limit, args.model, extra)
    write(rows, settings)
    print((RESULTS / "search_cd.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
