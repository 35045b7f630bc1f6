"""The installable package: what the wheel holds, versions, console scripts, the notebook API, the examples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from networks import small_graph

import boards
import mixq_hw
import mixq_nn
import sim
from mixq_hw.build import DEFAULT_CHECKPOINT, BuildError

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mixq_hw", "mixq_nn", "sim", "boards")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: a source copy leaves these out: caches, build products, and what is not part of the packages
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              "benchmarks", "tests", "docs", "site")


def package_data_files() -> list[str]:
    """Every non-Python file inside the package folders of the source tree (what the code reads at run time)."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                found.append(path.relative_to(ROOT).as_posix())
    return sorted(found)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of the source tree (no stale build/ folder can leak into it)."""
    src = tmp_path_factory.mktemp("src") / "mixq"
    shutil.copytree(ROOT, src, ignore=SKIP)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(out)], check=True, cwd=src, capture_output=True, text=True)
    (found,) = out.glob("mixq-*.whl")
    return found


def test_wheel_holds_package_data_license_and_scripts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = package_data_files()
    # the data files the code reads: the default checkpoint, the Vivado template, the CXXRTL driver, markers
    for needed in ("mixq_hw/default/vggtiny_digits.pt", "boards/vivado/zynqmp_axis_dma.tcl",
                   "sim/cxxrtl_driver.cc", *(f"{p}/py.typed" for p in PACKAGES)):
        assert needed in data, needed
    missing = [name for name in data if name not in names]
    assert not missing, f"package files left out of the wheel: {missing}"
    dist = f"mixq-{PYPROJECT['project']['version']}.dist-info"
    assert f"{dist}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"{dist}/METADATA").decode()
    assert "License-Expression: BSD-2-Clause" in meta and "Requires-Dist: tqdm" in meta
    scripts = zipfile.ZipFile(wheel).read(f"{dist}/entry_points.txt").decode()
    for name in PYPROJECT["project"]["scripts"]:
        assert f"{name} = " in scripts, name


def test_installed_wheel_works_outside_the_tree(wheel, tmp_path):
    """A fresh venv (sharing this interpreter's site-packages for torch and amaranth) with the wheel
    installed: from a folder outside the tree, the version, ``mixq-build --help`` and the packaged default
    checkpoint all come from the installed copy (the full build from the wheel is measured by hand)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import mixq_hw, sim, boards, mixq_hw.build as b; "
         "print(mixq_hw.__version__); print(mixq_hw.__file__); print(b.DEFAULT_CHECKPOINT)"],
        cwd=away, env=env, check=True, capture_output=True, text=True).stdout.split("\n")
    assert where[0] == PYPROJECT["project"]["version"]
    site = str(venv / "lib")
    assert where[1].startswith(site) and where[2].startswith(site) and where[2].endswith("vggtiny_digits.pt")
    usage = subprocess.run([str(venv / "bin" / "mixq-build"), "--help"], cwd=away, env=env, check=True,
                           capture_output=True, text=True).stdout
    assert "usage:" in usage and "--board" in usage


def test_license_file_matches_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 2-Clause License") and "Copyright (c) 2026, the mixq developers" in text
    assert PYPROJECT["project"]["license"] == "BSD-2-Clause"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_every_package_has_the_version():
    version = PYPROJECT["project"]["version"]
    assert mixq_hw.__version__ == mixq_nn.__version__ == sim.__version__ == boards.__version__ == version


def test_default_checkpoint_is_package_data():
    assert DEFAULT_CHECKPOINT == mixq_hw.default_checkpoint()
    assert DEFAULT_CHECKPOINT.is_file() and DEFAULT_CHECKPOINT.parent == Path(mixq_hw.__file__).parent / "default"


@pytest.mark.parametrize("name", sorted(PYPROJECT["project"]["scripts"]))
def test_console_scripts_answer_help(name, monkeypatch, capsys):
    """Each console script's target is importable and prints its usage for --help (exit status 0)."""
    module, func = PYPROJECT["project"]["scripts"][name].split(":")
    target = getattr(__import__(module, fromlist=[func]), func)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_:
        target()
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_mixq_hw_imports_without_torch():
    """``import mixq_hw`` and its hardware-side names never import torch (a Graph needs only numpy)."""
    code = ("import sys; import mixq_hw; mixq_hw.Graph; mixq_hw.build_accelerator; mixq_hw.PackedMAC; "
            "mixq_hw.choose_folding; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_public_names_resolve():
    for package in (mixq_hw, mixq_nn, sim):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
    with pytest.raises(AttributeError):
        mixq_hw.no_such_name
    # the package attribute and the submodule of the same stem do not clash
    from mixq_nn import export as export_module

    assert export_module.export is mixq_nn.export_graph


def test_build_accelerator_from_a_graph(tmp_path, capfd):
    graph = small_graph()
    result = mixq_hw.build_accelerator(graph, out=tmp_path)
    err = capfd.readouterr().err        # progress: the folding's T lines, timed stages, the next steps
    assert "T=" in err and "folding search done in" in err and "elaborating and emitting Verilog done in" in err
    assert err.rstrip().splitlines()[-3:][0].startswith("  check it bit-exact") and f"cd {tmp_path}" in err
    assert result.graph is graph and result.out == tmp_path
    assert result.report == json.loads(result.to_json()) == json.loads((tmp_path / "report.json").read_text())
    assert result.to_markdown() == (tmp_path / "report.md").read_text()
    assert set(result.folding) == {"c1", "c2"} and result.cycles_per_frame == result.report["cycles_per_frame"]
    assert {"mixq_accel.v", "build_vivado.tcl", "report.json", "folding.json"} <= set(result.paths)
    assert result.verilog == result.paths["mixq_accel.v"]
    fig = result.plot()
    assert [ax.get_ylabel() for ax in fig.axes] == ["cycles / frame", "DSP48E2 (estimate)", "LUT (estimate)",
                                                    "BRAM36 (estimate)", "% of the board"]
    pixels = np.random.default_rng(1).integers(0, 256, (2, *graph.input_shape), dtype=np.uint8)
    run = result.simulate(pixels, backend="pysim", progress=False)
    assert run.all_exact and np.array_equal(run.reference, graph.reference(pixels))


def test_build_accelerator_bad_source(tmp_path):
    with pytest.raises(BuildError, match="cannot build from a int"):
        mixq_hw.build_accelerator(3, out=tmp_path)
    torch = pytest.importorskip("torch")
    with pytest.raises(BuildError, match="needs input_shape"):
        mixq_hw.build_accelerator(torch.nn.Conv2d(1, 1, 3), out=tmp_path)
    with pytest.raises(BuildError, match="no such file"):
        mixq_hw.build_accelerator(tmp_path / "missing.pt", out=tmp_path)


def _example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_example_packed_mac(tmp_path):
    out = _example("packed_mac.py", "--w", "3", "--a", "2", "--k", "3", "--results", "20",
                   "--verilog", str(tmp_path / "dot.v"), cwd=tmp_path)
    assert "20/20 accumulations equal" in out and "module packed_dot" in (tmp_path / "dot.v").read_text()


def test_example_integer_graph(tmp_path):
    out = _example("integer_graph.py", "--images", "4", cwd=tmp_path)
    assert "integer graph accuracy" in out and "classifier" in out


def test_example_custom_model(tmp_path):
    out = _example("custom_model.py", "--size", "4", "--epochs", "1", "--images", "1", "--out",
                   str(tmp_path / "b"), "-q", cwd=tmp_path)
    assert "1/1 images bit-exact" in out and (tmp_path / "b" / "mixq_accel.v").exists()
