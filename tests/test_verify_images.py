"""``--verify N`` runs on N test images of the checkpoint's data set (and says which; a build's report says
so too: tests/test_build.py's test_small_graph_builds_and_verifies); ``python -m sim`` takes a build folder and
says when it falls back to a one-lane folding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from networks import small_graph
from test_build import graph_file  # noqa: F401 - the fixture

from mixq_hw.build import DEFAULT_CHECKPOINT, build, load_graph
from mixq_hw.pipeline import plan_stages
from mixq_nn.data import get_images_uint8
from sim.__main__ import main
from sim.images import verification_images

EXAMPLE = Path(DEFAULT_CHECKPOINT)


def test_the_shipped_example_verifies_on_the_digits_test_images():
    graph, meta = load_graph(EXAMPLE)
    assert meta["dataset"] == "digits" and meta["data"]["dataset"] == "digits"
    images, origin = verification_images(graph, meta["data"], 4)
    expected = get_images_uint8("digits", "test", graph.input_shape, count=4)
    np.testing.assert_array_equal(images, expected)
    assert origin == {"dataset": "digits", "split": "test", "indices": [0, 1, 2, 3],
                      "text": "digits test images 0-3"}
    random_pixels = np.random.default_rng(0).integers(0, 256, images.shape).astype(np.uint8)
    assert not np.array_equal(images, random_pixels)


def test_a_graph_without_a_data_set_verifies_on_seeded_random_pixels(capsys):
    graph = small_graph()
    images, origin = verification_images(graph, None, 2, seed=4)
    np.testing.assert_array_equal(images, np.random.default_rng(4).integers(0, 256, (2, 3, 8, 8)))
    assert origin["random_pixels"] and origin["seed"] == 4 and "random pixels, seed 4" in origin["text"]
    images, origin = verification_images(graph, {"dataset": "no-such-set"}, 1)
    assert origin["random_pixels"] and "no no-such-set images" in origin["text"]
    assert "verifying on random pixels" in capsys.readouterr().err


def test_sim_cli_takes_a_build_folder(graph_file, tmp_path, capsys):  # noqa: F811
    build(graph_file, out=tmp_path, quiet=True)
    assert main([str(tmp_path), "--random", "--images", "1", "--backend", "pysim", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["folding_from"].startswith("the build's") and report["backend"] == "pysim"
    built = json.loads((tmp_path / "report.json").read_text())["cycles_per_frame"]
    assert report["analytic_cycles_per_frame"] == built < plan_stages(small_graph(), {}).cycles_per_frame()
    assert main([str(tmp_path), "--fold", str(tmp_path / "folding.json"), "-q"]) == 2
    assert "brings its folding" in capsys.readouterr().err
    (tmp_path / "report.json").unlink()
    assert main([str(tmp_path), "-q"]) == 2
    assert "not a build folder (no report.json" in capsys.readouterr().err


def test_sim_cli_says_when_it_simulates_a_one_lane_folding(graph_file, capsys):  # noqa: F811
    assert main([str(graph_file), "--random", "--images", "1", "--backend", "pysim"]) == 0
    err = capsys.readouterr().err
    cycles = plan_stages(small_graph(), {}).cycles_per_frame()
    assert f"simulating a one-lane folding, {cycles:,} cycles per frame" in err
    assert "[sim] backend pysim" in err
