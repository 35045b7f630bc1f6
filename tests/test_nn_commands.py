"""The search / train / evaluate commands: --help, tiny end-to-end runs, and their user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mixq_nn import checkpoint, evaluate, loops, search, train
from mixq_nn.data import get_dataset, get_images_uint8

TINY = ["--input-shape", "1,8,8", "--limit", "48", "--batch-size", "16"]


def _run(main, argv, capsys):
    """Run a command in-process the way ``python -m`` does; returns (status, stdout, stderr)."""
    status = loops.run_command(main, argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("command", [search, train, evaluate])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m mixq_nn.")
    for option in {"search": ["--cd", "--epochs", "--wbits", "--dataset", "--out"],
                   "train": ["--bitw", "--bita", "--from-search", "--epochs", "--input-shape", "--data-root"],
                   "evaluate": ["--json", "--dataset", "--limit"]}[command.__name__.split(".")[-1]]:
        assert option in text


def test_train_evaluate_export_end_to_end(tmp_path, capsys):
    out = tmp_path / "w.pt"
    status, text, _ = _run(train.main, TINY + ["--epochs", "1", "--bitw", "844444", "--bita", "8,4,4,4,4,4",
                                                 "--out", str(out)], capsys)
    assert status == 0 and out.exists()
    assert "epoch 1/1" in text and "test accuracy" in text
    ckpt = checkpoint.load(out)
    assert (ckpt.name, ckpt.bitw, ckpt.bita, ckpt.input_shape) == ("VGGtiny", [8, 4, 4, 4, 4, 4],
                                                                    [8, 4, 4, 4, 4, 4], (1, 8, 8))
    assert ckpt.meta["extra"]["data"]["dataset"] == "digits" and len(ckpt.meta["extra"]["history"]) == 1

    graph_path = tmp_path / "g.npz"
    status, text, _ = _run(evaluate.main, [str(out), "--json", "--limit", "40",
                                           "--save-graph", str(graph_path)], capsys)
    assert status == 0
    result = json.loads(text)
    assert {"float_metric", "integer_metric", "metric", "samples"} <= result.keys()
    assert result["metric"] == "accuracy" and result["samples"] == 40
    # The integer metric is the exported graph's accuracy on the same 40 test pixels.
    from mixq_hw.graph import Graph

    graph = Graph.load(graph_path)
    pixels = get_images_uint8("digits", "test", (1, 8, 8), count=40)
    labels = get_dataset("digits", "test", (1, 8, 8)).targets[:40].numpy()
    logits = graph.reference(pixels).reshape(40, -1) * graph.output_node.tensors["scale"]
    assert result["integer_metric"] == pytest.approx(100.0 * np.mean(logits.argmax(1) == labels))
    with torch.no_grad():
        float_pred = ckpt.model(torch.from_numpy(pixels).float() / 256).argmax(1).numpy()
    assert result["float_metric"] == pytest.approx(100.0 * np.mean(float_pred == labels))

    status, text, _ = _run(evaluate.main, [str(out), "--limit", "10"], capsys)
    assert status == 0 and "fake-quant model" in text and "integer graph" in text


def test_epochs_zero_calibrates_batchnorm(tmp_path, capsys):
    out = tmp_path / "untrained.pt"
    argv = ["--input-shape", "1,8,8", "--limit", "32", "--batch-size", "16", "--epochs", "0",
            "--calibration-batches", "2", "--out", str(out)]
    status, text, _ = _run(train.main, argv, capsys)
    assert status == 0 and "calibrated on 32 images" in text
    ckpt = checkpoint.load(out)
    assert (ckpt.bitw, ckpt.bita) == ([8, 2, 2, 2, 2, 2], [8, 3, 3, 3, 6, 3])  # the VGG-tiny preset
    norms = [m for m in ckpt.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 6
    for bn in norms:
        assert int(bn.num_batches_tracked) == 2
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    # Two batches of 16 = all 32 training images: the first BN's mean is the first conv's mean on them.
    train_set = get_dataset("digits", "train", (1, 8, 8), size=32)
    images = torch.stack([train_set[i][0] for i in range(32)])
    with torch.no_grad():
        conv_out = ckpt.model.features[0][0](images)
    assert torch.allclose(norms[0].running_mean, conv_out.mean(dim=(0, 2, 3)), atol=1e-5)


def test_search_then_train_from_search(tmp_path, capsys):
    out = tmp_path / "s.pt"
    argv = ["--input-shape", "1,8,8", "--limit", "16", "--batch-size", "8", "--epochs", "2",
            "--wbits", "2,4,8", "--abits", "2,4", "--eval-every", "0", "--out", str(out)]
    status, text, _ = _run(search.main, argv, capsys)
    assert status == 0, text
    assert text.count("E[DSP-cycles]") == 2 and "bitw" in text
    assert (tmp_path / "s.png").stat().st_size > 1000
    found = checkpoint.load(out)
    assert found.variant == "supernet"
    history = found.meta["extra"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert found.bitw == history[-1]["bitw"] and all(b in (2, 4, 8) for b in found.bitw)
    assert found.bita[0] == 8 and all(b in (2, 4) for b in found.bita[1:])

    trained = tmp_path / "t.pt"
    status, text, _ = _run(train.main, ["--from-search", str(out), "--limit", "16", "--epochs", "1",
                                        "--batch-size", "8", "--out", str(trained)], capsys)
    assert status == 0, text
    assert "tensors from" in text
    ckpt = checkpoint.load(trained)
    assert (ckpt.bitw, ckpt.bita, ckpt.input_shape) == (found.bitw, found.bita, (1, 8, 8))

    status, _, err = _run(evaluate.main, [str(out)], capsys)
    assert status == 2 and "a supernet checkpoint" in err and "--from-search" in err


def test_search_cost_term_lowers_the_dsp_count(tmp_path, capsys):
    """An overwhelming cd drives every searchable layer to its cheapest candidates."""
    from mixq_nn import models
    from mixq_nn.cost import expected_dsps

    out = tmp_path / "heavy.pt"
    argv = ["--input-shape", "1,8,8", "--limit", "16", "--batch-size", "8", "--epochs", "1",
            "--wbits", "2,3,8", "--abits", "2,3,8", "--cd", "1", "--arch-lr", "0.1", "--eval-every", "0",
            "--out", str(out)]
    status, text, _ = _run(search.main, argv, capsys)
    assert status == 0, text
    heavy = checkpoint.load(out)
    assert heavy.bitw == [2] * 6 and heavy.bita == [8] + [2] * 5
    uniform = models.build("VGGtiny", "supernet", input_shape=(1, 8, 8), wbits=(2, 3, 8), abits=(2, 3, 8))
    with torch.no_grad():
        before = float(expected_dsps(uniform, (1, 8, 8)))
        after = float(expected_dsps(heavy.model, (1, 8, 8)))
    assert after == heavy.metrics["expected_dsp_cycles"] or abs(after / heavy.metrics["expected_dsp_cycles"] - 1) < 1e-6
    assert after < 0.9 * before


def test_detection_model_end_to_end(tmp_path, capsys):
    out = tmp_path / "det.pt"
    status, text, _ = _run(train.main, ["--model", "UltraNet", "--input-shape", "3,16,32", "--limit", "16",
                                        "--batch-size", "8", "--epochs", "1", "--out", str(out)], capsys)
    assert status == 0, text
    assert "test mean_iou" in text
    status, text, _ = _run(evaluate.main, [str(out), "--json", "--limit", "8"], capsys)
    assert status == 0
    result = json.loads(text)
    assert result["metric"] == "mean_iou" and result["samples"] == 8
    assert 0.0 <= result["float_metric"] <= 1.0 and 0.0 <= result["integer_metric"] <= 1.0


def test_user_errors_are_one_line(tmp_path, capsys):
    status, _, err = _run(train.main, ["--bitw", "8222"], capsys)
    assert status == 2
    assert "--bitw '8222' gives 4 bit widths, but VGGtiny has 6 quantised layers" in err
    status, _, err = _run(train.main, ["--model", "UltraNet", "--bita", "84444"], capsys)
    assert status == 2 and "UltraNet has 9 quantised layers" in err
    status, _, err = _run(train.main, ["--model", "LeNet"], capsys)
    assert status == 2 and "unknown model 'LeNet'" in err and "VGGtiny" in err
    status, _, err = _run(train.main, ["--bitw", "82x222"], capsys)
    assert status == 2 and "one digit per layer" in err
    status, _, err = _run(train.main, ["--dataset", "cifar10", "--epochs", "0"], capsys)
    assert status == 2 and "--data-root" in err
    status, _, err = _run(train.main, ["--input-shape", "3,12,12", "--epochs", "0"], capsys)
    assert status == 2 and "multiples of 8" in err
    status, _, err = _run(evaluate.main, [str(tmp_path / "missing.pt")], capsys)
    assert status == 2 and "missing.pt: no such file" in err
    status, _, err = _run(search.main, ["--wbits", "1,2"], capsys)
    assert status == 2 and "--wbits" in err
    assert all(len(e.strip().splitlines()) == 1 for e in [err])


def test_python_dash_m_entry_point(tmp_path):
    """``python -m mixq_nn.train`` wires main() and turns a bad option into exit status 2 and one line."""
    proc = subprocess.run([sys.executable, "-m", "mixq_nn.train", "--bitw", "82", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --bitw '82' gives 2 bit widths, but VGGtiny has 6 quantised layers: give exactly 6"]
