"""The network harness (sim.network.simulate) and the ``python -m sim`` command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from networks import linear_net, plain_net

from mixq_hw.pipeline import Accelerator, LayerFold, plan_stages
from mixq_nn import checkpoint, models
from mixq_nn.data import get_images_uint8
from sim.__main__ import CliError, load_source, main, pick_images
from sim.network import image_beats, simulate

FC_FOLD = {"fc": LayerFold(4, 3, 1)}


def _images(graph, n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *graph.input_shape)).astype(np.uint8)


# ---- the harness --------------------------------------------------------------------------------

def test_simulate_is_bit_exact_and_reports_consistent_figures():
    graph = linear_net(np.random.default_rng(1))
    images = _images(graph, 3)
    run = simulate(graph, images, folding=FC_FOLD, stall=0.3, seed=4, progress=False)
    assert run.images == 3 and run.bit_exact == 3 and run.all_exact and run.mismatched == []
    np.testing.assert_array_equal(run.outputs, graph.reference(images))
    assert run.outputs.dtype == np.int64 and run.outputs.shape == (3, 3, 1, 1)
    ends = run.frame_end_cycles
    assert len(ends) == 3 and ends[0] < ends[1] < ends[2]
    assert run.latency == ends[0] and run.cycles_total == ends[2] + 1
    assert run.cycles_per_frame == ends[2] - ends[1]
    assert run.analytic_cycles_per_frame == plan_stages(graph, FC_FOLD).cycles_per_frame()
    assert run.cycles_per_second > 0 and run.sim_seconds > 0 and run.compile_seconds >= 0
    assert run.backend == "pysim" and run.stall == 0.3 and run.first_mismatch() == ""
    assert json.loads(json.dumps(run.to_dict()))["bit_exact"] == 3


def test_one_image_reports_its_latency():
    graph = linear_net(np.random.default_rng(1))
    run = simulate(graph, _images(graph, 1), folding=FC_FOLD, progress=False)
    assert run.bit_exact == 1 and run.cycles_per_frame == run.latency == run.frame_end_cycles[0]


def test_interval_without_stalls_matches_the_analytic_model():
    graph = plain_net(np.random.default_rng(2))
    folding = {"c1": LayerFold(3, 2, 1), "c4": LayerFold(6, 2, 2)}
    run = simulate(graph, _images(graph, 3), folding=folding, progress=False)
    assert run.bit_exact == 3
    assert abs(run.cycles_per_frame - run.analytic_cycles_per_frame) <= 0.05 * run.analytic_cycles_per_frame


def test_a_wrong_result_is_counted_and_described():
    """Hardware built for one bias, reference computed with another: no image may count as exact."""
    graph = linear_net(np.random.default_rng(1))
    acc = Accelerator(graph, FC_FOLD)
    graph.output_node.tensors["bias"] = graph.output_node.tensors["bias"] + np.array([0, 1, 0])
    run = simulate(graph, _images(graph, 2), accelerator=acc, progress=False)
    assert run.bit_exact == 0 and run.mismatched == [0, 1] and not run.all_exact
    assert run.first_mismatch().startswith("image 0, channel 1, row 0, column 0: hardware ")
    np.testing.assert_array_equal(run.outputs - run.reference, np.broadcast_to([[[[0]], [[-1]], [[0]]]], (2, 3, 1, 1)))


def test_image_beats_are_pixels_in_raster_order():
    images = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    beats = image_beats(images)
    assert len(beats) == 8 and beats[0] == [0, 4, 8] and beats[1] == [1, 5, 9] and beats[4] == [12, 16, 20]


def test_bad_arguments_are_clear_errors():
    graph = linear_net(np.random.default_rng(1))
    good = _images(graph, 1)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 4, 4\), got \(1, 4, 4\)"):
        simulate(graph, good[0], progress=False)
    with pytest.raises(ValueError, match="uint8.*float"):
        simulate(graph, good.astype(np.float32), progress=False)
    with pytest.raises(ValueError, match=r"0\.\.255, got 30[0-9]\.\."):
        simulate(graph, good.astype(np.int64) + 300, progress=False)
    with pytest.raises(ValueError, match="no images"):
        simulate(graph, good[:0], progress=False)
    with pytest.raises(ValueError, match="backend .nope."):
        simulate(graph, good, backend="nope", progress=False)
    with pytest.raises(ValueError, match="stall"):
        simulate(graph, good, stall=1.0, progress=False)
    with pytest.raises(ValueError, match="VCD.*pysim"):
        simulate(graph, good, backend="cxxrtl", vcd="x.vcd", progress=False)
    acc = Accelerator(graph, FC_FOLD)
    with pytest.raises(ValueError, match="either a folding or an accelerator"):
        simulate(graph, good, folding=FC_FOLD, accelerator=acc, progress=False)
    other = linear_net(np.random.default_rng(1))
    with pytest.raises(ValueError, match="built for graph"):
        simulate(other, good, accelerator=acc, progress=False)
    assert simulate(graph, good, accelerator=acc, progress=False).all_exact   # the refused calls left it usable


def test_vcd_and_progress(tmp_path, capsys):
    graph = linear_net(np.random.default_rng(1))
    vcd = tmp_path / "wave.vcd"
    run = simulate(graph, _images(graph, 2), folding=FC_FOLD, vcd=vcd, progress=True)
    assert run.bit_exact == 2
    assert "$var" in vcd.read_text()[:200_000]
    err = capsys.readouterr().err
    assert "[sim pysim] cycles: 100%" in err and "2 of 2 frames out" in err and "done: 2/2 bit-exact" in err


# ---- the command line ---------------------------------------------------------------------------

@pytest.fixture
def graph_file(tmp_path):
    graph = linear_net(np.random.default_rng(1))
    path = tmp_path / "linear.npz"
    graph.save(path)
    return graph, path


def test_cli_json_on_a_graph_file(graph_file, tmp_path, capsys):
    graph, path = graph_file
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"fc": {"simd": 4, "pe": 3}}))
    rc = main([str(path), "--random", "--images", "2", "--backend", "pysim", "--stall", "0.3", "--fold", str(fold),
               "--json", "-q"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["images"] == 2 and out["bit_exact"] == 2 and out["graph"] == graph.name
    assert out["cycles_per_frame"] > 0 and out["cycles_per_second"] > 0
    assert out["analytic_cycles_per_frame"] == plan_stages(graph, FC_FOLD).cycles_per_frame()
    assert out["folding_from"] == f"from {fold}" and out["images_from"] == "random (seed 0)"


def test_cli_folds_under_a_dsp_budget(graph_file, capsys):
    graph, path = graph_file
    assert main([str(path), "--random", "--images", "1", "--backend", "pysim", "--dsp", "4", "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["folding_from"] == "balanced under 4 DSPs" and out["bit_exact"] == 1
    assert out["analytic_cycles_per_frame"] < plan_stages(graph, {}).cycles_per_frame()


def test_cli_text_report(graph_file, capsys):
    _, path = graph_file
    assert main([str(path), "--random", "--images", "1", "--backend", "pysim", "-q"]) == 0
    text = capsys.readouterr().out
    assert "1/1 images bit-exact" in text and "cycles per frame" in text and "cycles/s" in text


@pytest.mark.parametrize("args,message", [
    (["{missing}"], "no such file"),
    (["{corrupt}"], "corrupt"),
    (["{wrongsuffix}"], "expected a .pt or .pth or .npz or .onnx file"),
    (["{graph}", "--fold", "{badfold}"], "badfold.json"),
    (["{graph}", "--fold", "{missing}"], "--fold"),
    (["{graph}", "--vcd", "x.vcd", "--backend", "cxxrtl"], "--vcd needs --backend pysim"),
    (["{graph}", "--dsp", "0"], "--dsp must be"),
    (["{graph}", "--random", "--images", "0"], "--images 0: must be at least 1"),
])
def test_cli_errors_name_the_file(graph_file, tmp_path, capsys, args, message):
    _, path = graph_file
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    wrong = tmp_path / "weights.txt"
    wrong.write_text("hello")
    badfold = tmp_path / "badfold.json"
    badfold.write_text(json.dumps({"fc": {"simd": 5}}))
    names = {"missing": tmp_path / "nope.npz", "corrupt": corrupt, "wrongsuffix": wrong, "graph": path,
             "badfold": badfold}
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in args]
    assert main(argv + ["-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    if args[0] != "{graph}":
        assert str(names[args[0][1:-1]]) in err


def test_cli_images_come_from_the_data_set(graph_file):
    graph, _ = graph_file
    images, origin = pick_images(graph, {"dataset": None, "task": "classify", "seed": 0}, 3)
    assert origin == "digits test split" and images.dtype == np.uint8 and images.shape == (3, *graph.input_shape)
    np.testing.assert_array_equal(images, get_images_uint8("digits", "test", graph.input_shape, count=3))
    with pytest.raises(CliError, match="unknown dataset"):
        pick_images(graph, {"dataset": "imagenet"}, 1)


def test_cli_reads_a_checkpoint_and_its_data_set(tmp_path):
    shape = (3, 8, 8)
    torch.manual_seed(0)
    model = models.build("VGGtiny", input_shape=shape).eval()
    info = models.MODELS["VGGtiny"]
    path = checkpoint.save(tmp_path / "vgg.pt", model, name="VGGtiny", bitw=info.default_bitw,
                           bita=info.default_bita, input_shape=shape,
                           extra={"data": {"dataset": "synthetic", "seed": 3}})
    graph, meta = load_source(path)
    assert graph.name == "VGGtiny" and graph.input_shape == shape
    assert meta["dataset"] == "synthetic" and meta["seed"] == 3 and meta["task"] == "classify"
    images, origin = pick_images(graph, meta, 2)
    assert origin == "synthetic test split" and images.shape == (2, *shape)
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CliError, match="plain.pt.*state_dict"):
        load_source(tmp_path / "plain.pt")
