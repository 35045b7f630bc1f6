"""benchmarks/fullsize.py: the table cells read from the JSON, and a failed verification's report kept."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import fullsize


def test_layers_and_whole_cells() -> None:
    verify = {"images": 2, "bit_exact": 1, "backend": "verilator",
              "layers": {"images": 2, "stages": [{"bit_exact": True}, {"bit_exact": False}, {"bit_exact": True}]},
              "whole": {"images": 2, "bit_exact": 1, "backend": "verilator"}}
    assert fullsize._layers_cell(verify) == "2/3 stages, 2 frames"
    assert fullsize._whole_cell(verify) == "1/2 (verilator)"
    old = {"images": 2, "bit_exact": 2, "backend": "cxxrtl"}   # an entry from before the layer-by-layer check
    assert fullsize._layers_cell(old) == "-"
    assert fullsize._whole_cell(old) == "2/2 (cxxrtl)"
    assert fullsize._layers_cell({"failed": "x"}) == fullsize._whole_cell({"failed": "x"}) == "failed"
    assert fullsize._layers_cell({}) == fullsize._whole_cell({}) == "-"


def test_one_line() -> None:
    assert fullsize._one_line("a |b\n  c") == "a /b c"
    cut = fullsize._one_line("x" * 500, limit=20)
    assert len(cut) == 20 and cut.endswith("...")
    end = fullsize._one_line("a" * 400 + " error: b", limit=20, tail=True)
    assert len(end) == 20 and end.startswith("...") and end.endswith("error: b")


def test_failed_verification_keeps_its_report(tmp_path: Path) -> None:
    out = tmp_path / "verify"
    kept = tmp_path / "verify.failed-verify"
    kept.mkdir()
    (kept / "report.json").write_text(json.dumps({"verify": {"images": 2, "bit_exact": 0, "message": "conv1"}}))
    log_path = tmp_path / "verify.log"
    log_path.write_text("line\nerror: verification failed\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    report, seconds = fullsize._finish(proc, time.perf_counter(), out, log_path)
    assert report is not None and report["exit"] == 1 and "verification failed" in report["failed"]
    assert report["verify"]["message"] == "conv1" and seconds >= 0
    (kept / "report.json").unlink()   # nothing kept: only the log's tail
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    report, _ = fullsize._finish(proc, time.perf_counter(), out, log_path)
    assert report == {"failed": "line\nerror: verification failed", "exit": 2}


def test_speed_cell() -> None:
    verify = {"cycles_per_second": 20_000.0, "whole": {"cycles_total": 500_000, "sim_cpu_seconds": 10.0}}
    assert fullsize._speed_cell(verify) == "20,000 (50,000 per CPU-s)"
    assert fullsize._speed_cell({"cycles_per_second": 600.0}) == "600"
    assert fullsize._speed_cell({}) == "-"


def test_accuracy_line() -> None:
    classify = {"dataset": "digits", "split": "test", "metric": "accuracy", "samples": 450, "float_metric": 97.5,
                "integer_metric": 97.25, "prediction_agreement": 99.75, "date": "2026-12-06T06:40:00"}
    line = fullsize._accuracy_line(classify)
    assert "fake-quant 97.50, integer Graph 97.25 (-0.25 points)" in line and "agree on 99.8 %" in line
    assert "450 digits test images" in line and "2026-12-06T06:40" in line
    detect = {**classify, "metric": "mAP", "box_agreement_iou": 0.875}
    del detect["prediction_agreement"]
    assert "mean IoU of the two models' boxes 0.875" in fullsize._accuracy_line(detect)
    assert "failed: error: x" in fullsize._accuracy_line({"failed": "error: x"})


def test_evaluate_failure_keeps_the_log_tail(tmp_path: Path) -> None:
    missing = tmp_path / "none.pt"
    result = fullsize.evaluate(missing, tmp_path / "accuracy.log")
    assert result["exit"] != 0 and str(missing) in result["failed"] and result["seconds"] >= 0


def test_failure_shows_the_error() -> None:
    tail = "[build 1s] trying\n[build 2s] T=9: over budget\nerror: CNV does not fit: " + "x" * 800
    cell = fullsize._failure(tail)
    assert cell.startswith("error: CNV does not fit: x") and len(cell) == 700 and cell.endswith("...")
    assert fullsize._failure("a\nb") == "a b"
