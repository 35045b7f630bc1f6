"""The build command: a small graph end to end, and every error case the issue names."""

import json

import numpy as np
import pytest
import torch
from networks import small_graph

from mixq_hw.build import build, main
from mixq_hw.graph import Graph


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "small.npz"
    small_graph().save(path)
    return path


def test_small_graph_builds_and_verifies(graph_file, tmp_path):
    report = build(graph_file, out=tmp_path, verify=2, backend="pysim", quiet=True)
    for name in ("mixq_accel.v", "build_vivado.tcl", "mixq_ultra96.xdc", "mixq_driver.py", "mixq_meta.json",
                 "report.json", "report.md", "report_layers.png", "folding.json"):
        assert (tmp_path / name).exists(), name
    on_disk = json.loads((tmp_path / "report.json").read_text())
    for key in ("cycles_per_frame", "clock_mhz", "fps", "resources", "budget", "layers", "verify"):
        assert key in on_disk, key
    assert set(on_disk["resources"]) == set(on_disk["budget"]) == {"dsp", "lut", "ff", "bram36"}
    assert on_disk["verify"]["images"] == on_disk["verify"]["bit_exact"] == 2
    assert on_disk["verify"]["cycles_per_frame"] > 0
    # layer by layer on both images, then the whole accelerator on min(2, 2) frames
    assert on_disk["verify"]["layers"]["all_exact"] and on_disk["verify"]["whole"]["images"] == 2
    assert "Layer by layer (2 images" in (tmp_path / "report.md").read_text()
    # a graph without a data set: the report says the images were seeded random pixels
    assert report["verify"]["images_from"]["random_pixels"] and report["verify"]["backend"] == "pysim"
    assert "random pixels, seed 0" in (tmp_path / "report.md").read_text()
    verilog = (tmp_path / "mixq_accel.v").read_text()
    assert "module mixq_accel" in verilog and "s_axis_tdata" in verilog and "m_axis_tlast" in verilog
    meta = json.loads((tmp_path / "mixq_meta.json").read_text())
    assert meta["output_shape"] == [4, 4, 4] and len(meta["scale"]) == 4
    # the folder explains itself (README.md) and holds deploy/ with what goes to the board
    readme = (tmp_path / "README.md").read_text()
    for text in ("vivado -mode batch -source build_vivado.tcl", "Vivado 2022.1", "PYNQ 3.0.1",
                 "python3 mixq_driver.py --validate", "--throughput", "scp -r deploy",
                 "python -m mixq_hw.report --vivado .", "`mixq.hwh`", "`vectors/test_vectors.npz`"):
        assert text in readme, text
    assert (tmp_path / "deploy" / "mixq_driver.py").read_bytes() == (tmp_path / "mixq_driver.py").read_bytes()
    assert json.loads((tmp_path / "deploy" / "mixq_meta.json").read_text())["cycles_per_frame"] == \
        report["cycles_per_frame"]
    # stream widths, the DMA's memory maps and bandwidth, the measured first-frame latency
    streams = report["streams"]
    assert (streams["in_width"], streams["out_width"]) == (report["in_width"], report["out_width"])
    assert (streams["dma_mm_in"], streams["dma_mm_out"]) == (128, 128) and streams["memory_port_bits"] == 128
    assert report["latency"]["cycles"] == report["verify"]["latency"] > 0
    assert "first-frame latency" in (tmp_path / "report.md").read_text()


def test_hand_written_folding(graph_file, tmp_path):
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"c1": {"simd": 3, "pe": 2, "pixels": 2}, "c2": {"simd": 8, "pe": 4, "pixels": 1}}))
    report = build(graph_file, out=tmp_path / "out", fold=fold, quiet=True)
    rows = {row["name"]: row for row in report["layers"]}
    assert rows["c1"]["folding"] == {"simd": 3, "pe": 2, "pixels": 2}


def test_synth_counts_per_layer(graph_file, tmp_path):
    """--synth: yosys' DSP count equals the estimate, in total and per layer; the per-layer counts plus what
    sits outside every stage add up to the totals, and report.md sets yosys' LUTs next to each estimate."""
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"c1": {"simd": 3, "pe": 2, "pixels": 2}, "c2": {"simd": 8, "pe": 4, "pixels": 1}}))
    report = build(graph_file, out=tmp_path / "out", fold=fold, synth=True, quiet=True)
    synth, layers = report["synth"], report["synth"]["layers"]
    assert synth["dsp"] == report["resources"]["dsp"] > 0
    assert set(layers) == {row["name"] for row in report["layers"]} | {""}
    for row in report["layers"]:
        assert layers[row["name"]]["dsp"] == row["resources"]["dsp"], row["name"]
    for key in ("dsp", "lut", "ff", "bram36"):
        assert sum(entry[key] for entry in layers.values()) == synth[key], key
    assert layers["c1"]["lut"] > 0 and layers["p1"]["lut"] > 0
    # the estimates bound yosys' LUTs and BRAMs, layer by layer (the packed cores are DSP48E2 primitives and
    # every memory carries the ram_style the estimate assumed)
    for row in report["layers"]:
        assert layers[row["name"]]["lut"] <= row["resources"]["lut"], (row["name"], layers[row["name"]])
        assert layers[row["name"]]["bram36"] <= row["resources"]["bram36"], (row["name"], layers[row["name"]])
    verilog = (tmp_path / "out" / "mixq_accel.v").read_text()
    # every DSP is an instance: the packed cores' and the requantizers' (one slice per multiplier lane)
    assert verilog.count("DSP48E2 #(") == sum(row["resources"]["dsp"] for row in report["layers"])
    assert "LUT (yosys)" in (tmp_path / "out" / "report.md").read_text()


def test_folding_that_does_not_divide(graph_file, tmp_path, capsys):
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"c1": {"simd": 2, "pe": 1, "pixels": 1}}))
    assert main([str(graph_file), "--out", str(tmp_path / "o"), "--fold", str(fold), "-q"]) == 2
    err = capsys.readouterr().err
    assert "c1" in err and "simd" in err and "2" in err


def test_design_over_budget(tmp_path, capsys):
    rng = np.random.default_rng(1)
    g = Graph("wide", (64, 8, 8))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-127, 128, (64, 64, 3, 3)), w_bits=8)
    g.add_output("out", c1, np.zeros(64, dtype=np.int64), np.ones(64))
    path = tmp_path / "wide.npz"
    g.save(path)
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"c1": {"simd": 64, "pe": 64, "pixels": 2}}))
    assert main([str(path), "--out", str(tmp_path / "o"), "--fold", str(fold), "-q"]) == 2
    err = capsys.readouterr().err
    assert "dsp" in err.lower() and "c1" in err


def test_truncated_checkpoint(tmp_path, capsys):
    good = tmp_path / "ok.pt"
    torch.save({"format": "mixq-checkpoint", "version": 1, "state": {"w": torch.zeros(1000)}}, good)
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good.read_bytes()[:200])
    assert main([str(bad), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "truncated.pt" in capsys.readouterr().err


def test_foreign_checkpoint(tmp_path, capsys):
    path = tmp_path / "plain_state_dict.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    assert main([str(path), "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "plain_state_dict.pt" in err and "mixq" in err


def test_unsupported_layer(tmp_path):
    g = Graph("k7", (1, 8, 8))
    x = g.add_input(8)
    c = g.add_conv("big_kernel", x, np.ones((2, 1, 7, 7), dtype=np.int64), w_bits=2)
    g.add_output("out", c, np.zeros(2, dtype=np.int64), np.ones(2))
    path = tmp_path / "k7.npz"
    g.save(path)
    with pytest.raises(ValueError, match="big_kernel"):
        build(path, out=tmp_path / "o", quiet=True)


def test_missing_file_and_unknown_board(tmp_path, graph_file, capsys):
    assert main([str(tmp_path / "nope.pt"), "-q"]) == 2
    assert "nope.pt" in capsys.readouterr().err
    assert main([str(graph_file), "--board", "zcu104", "-q", "--out", str(tmp_path / "o")]) == 2
    assert "ultra96" in capsys.readouterr().err


def test_multipliers_option(graph_file, tmp_path, capsys):
    """--multipliers restricts what the folding search may use; an unknown kind is a clear error."""
    assert main([str(graph_file), "--out", str(tmp_path / "dsp"), "--multipliers", "dsp", "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    folds = json.loads((tmp_path / "dsp" / "folding.json").read_text())
    assert all(f.get("multiplier", "dsp") == "dsp" for f in folds.values()) and report["resources"]["dsp"] > 0
    assert main([str(graph_file), "--out", str(tmp_path / "x"), "--multipliers", "dsp,fpga", "-q"]) == 2
    err = capsys.readouterr().err
    assert "multipliers" in err and "fpga" in err


def test_stream_wider_than_the_dma(tmp_path, capsys):
    """An output of 64 lanes is a 2048-bit stream: no AXI DMA takes it; the build says so before elaborating."""
    g = Graph("widehead", (8, 2, 2))
    x = g.add_input(8)
    fc = g.add_conv("head", x, np.ones((64, 8, 1, 1), dtype=np.int64), w_bits=2)
    g.add_output("out", fc, np.zeros(64, dtype=np.int64), np.ones(64))
    path = tmp_path / "wide.npz"
    g.save(path)
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"head": {"simd": 8, "pe": 64, "pixels": 1}}))
    assert main([str(path), "--out", str(tmp_path / "o"), "--fold", str(fold), "-q"]) == 2
    err = capsys.readouterr().err
    assert "output stream (m_axis) is 2048 bits wide" in err and "1024 bits" in err
    assert not (tmp_path / "o" / "mixq_accel.v").exists()


def test_hostile_out_name_end_to_end(graph_file, tmp_path):
    """A build into a folder whose name is Tcl code: the generated script, run under tclsh against the Vivado
    stubs after the folder has moved, executes none of it and finds every file."""
    import shutil

    from test_boards import run_vivado_script

    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"c1": {"simd": 3, "pe": 2, "pixels": 2}, "c2": {"simd": 8, "pe": 4, "pixels": 1}}))
    name = "x}; exec touch PWNED; #[exec touch PWNED2]$x"
    assert main([str(graph_file), "--out", str(tmp_path / name), "--fold", str(fold), "-q"]) == 0
    moved = tmp_path / "moved" / name
    moved.parent.mkdir()
    shutil.move(str(tmp_path / name), str(moved))
    proc = run_vivado_script(tmp_path, moved / "build_vivado.tcl")
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("PWNED*"))
    assert (moved / "deploy" / "mixq.bit").exists() and (moved / "deploy" / "mixq_driver.py").exists()
