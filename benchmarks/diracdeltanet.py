"""DiracDeltaNet on the Ultra96-V2: the full-size network's clear refusal, and the width-scaled variant's build.

    python benchmarks/diracdeltanet.py SMALL.pt [--frames 2] [--work build/diracdeltanet]

- ``refusal``: an untrained full-size DiracDeltaNet (3x224x224, W4A4 with 8-bit first and last layers) through
  ``python -m mixq_hw.build --board ultra96``: the exit status, the message and how long it took to say it
  (it must stop before the export, the folding or any hardware).
- ``build``: the trained DiracDeltaNetSmall checkpoint ``SMALL.pt`` (``benchmarks/zoo_training.py --keep``)
  through ``python -m mixq_hw.build --board ultra96`` at its full size (1x32x32): cycles per frame, fps,
  resources, bottleneck, wall time.
- ``verify``: the same folding (``--fold``) with ``--verify N`` on the default compiled backend: test images
  bit-exact against the Graph reference, measured cycles per frame.

Writes ``benchmarks/results/diracdeltanet.json`` and ``diracdeltanet.md`` (a table generated from the JSON;
``--replot`` re-renders it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REPORT_KEYS = ("cycles_per_frame", "clock_mhz", "fps", "gops", "macs_per_frame", "resources", "budget", "bottleneck",
               "latency_cycles")


def build(source: Path, out: Path, *extra: str) -> tuple[int, str, dict | None, float]:
    """``python -m mixq_hw.build source --board ultra96 --out out extra...``: exit status, stderr tail, report,
    wall seconds."""
    command = [sys.executable, "-m", "mixq_hw.build", str(source), "--board", "ultra96", "--out", str(out), "-q",
               *extra]
    print(f"== {' '.join(command[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    report = out / "report.json"
    found = json.loads(report.read_text()) if done.returncode == 0 and report.exists() else None
    return done.returncode, "\n".join(done.stderr.strip().splitlines()[-6:]), found, round(seconds, 1)


def refusal(work: Path) -> dict:
    """The full-size network's build: status, message, seconds."""
    from mixq_nn import checkpoint, models

    info = models.MODELS["DiracDeltaNet"]
    model = models.build("DiracDeltaNet", "fixed", info.default_bitw, info.default_bita)
    path = work / "diracdeltanet_untrained.pt"
    checkpoint.save(path, model, name="DiracDeltaNet", bitw=info.default_bitw, bita=info.default_bita,
                    input_shape=info.input_shape)
    status, message, _, seconds = build(path, work / "full")
    return {"exit": status, "message": message, "seconds": seconds, "input_shape": list(info.input_shape),
            "macs_per_frame": info.reference_macs}


def small(checkpoint_path: Path, work: Path, frames: int) -> dict:
    """Build, then verify ``frames`` test images with the build's folding."""
    entry: dict = {"checkpoint": checkpoint_path.name}
    status, message, report, seconds = build(checkpoint_path, work / "build")
    if report is None:
        return {**entry, "build": {"exit": status, "failed": message, "seconds": seconds}}
    entry["build"] = {"seconds": seconds, **{k: report[k] for k in REPORT_KEYS if k in report}}
    entry["build"]["layers"] = len(report.get("layers", []))
    status, message, report, seconds = build(checkpoint_path, work / "verify", "--fold",
                                             str(work / "build" / "folding.json"), "--verify", str(frames))
    entry["verify"] = ({"seconds": seconds, **report.get("verify", {})} if report is not None
                       else {"exit": status, "failed": message, "seconds": seconds})
    return entry


def markdown(result: dict) -> str:
    """The report's tables."""
    m, r = result["machine"], result.get("refusal", {})
    lines = ["# DiracDeltaNet on the Ultra96-V2", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cpus']} CPUs, load average at start "
             f"{m['load_average_at_start'][0]:.1f}); `python benchmarks/diracdeltanet.py`.", ""]
    if r:
        lines += ["## Full size (3x224x224): refused before any work", "",
                  f"`python -m mixq_hw.build` on an untrained DiracDeltaNet checkpoint exits with status {r['exit']} "
                  f"after {r['seconds']:.1f} s (Python start-up, loading the checkpoint and the weight count; no "
                  "export, folding or hardware):", "", "```", r["message"], "```", ""]
    s = result.get("small")
    if s:
        b, v = s["build"], s.get("verify", {})
        lines += ["## DiracDeltaNetSmall (1x32x32, digits), full size", ""]
        if "failed" in b:
            lines += [f"Build failed (exit {b['exit']}):", "", "```", b["failed"], "```", ""]
        else:
            res = b["resources"]
            verified = f"{v['bit_exact']}/{v['images']}" if "images" in v else "failed" if "failed" in v else "-"
            measured = f"{v['cycles_per_frame']:,}" if v.get("cycles_per_frame") is not None else "-"
            lines += ["| cycles/frame | fps | clock MHz | bottleneck | DSP | LUT | FF | BRAM36 | build s | "
                      "verified | measured cycles/frame | verify s |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|",
                      f"| {b['cycles_per_frame']:,} | {b['fps']:,.0f} | {b['clock_mhz']:g} | {b.get('bottleneck', '-')} "
                      f"| {res['dsp']:,} | {res['lut']:,} | {res['ff']:,} | {res['bram36']:g} | {b['seconds']:.0f} | "
                      f"{verified} | {measured} | {v.get('seconds', 0):.0f} |"]
            if "failed" in v:
                lines += ["", "Verification failed:", "", "```", v["failed"], "```"]
            lines += [""]
    return "\n".join(lines)


def write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "diracdeltanet.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    (RESULTS / "diracdeltanet.md").write_text(markdown(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, help="trained DiracDeltaNetSmall checkpoint")
    parser.add_argument("--frames", type=int, default=2, help="test images verified (default 2)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the builds (default: a temporary one)")
    parser.add_argument("--replot", action="store_true", help="only re-render the table from diracdeltanet.json")
    args = parser.parse_args(argv)
    if args.replot:
        write(json.loads((RESULTS / "diracdeltanet.json").read_text()))
    else:
        if args.checkpoint is None or not args.checkpoint.is_file():
            parser.error(f"checkpoint {args.checkpoint}: no such file (train one with benchmarks/zoo_training.py "
                         "--models DiracDeltaNetSmall --keep DIR)")
        result: dict = {"benchmark": "diracdeltanet", "machine": machine(), "frames": args.frames}
        with tempfile.TemporaryDirectory() as tmp:
            work = (args.work or Path(tmp)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            result["refusal"] = refusal(work)
            result["small"] = small(args.checkpoint.resolve(), work, args.frames)
        write(result)
    print((RESULTS / "diracdeltanet.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
