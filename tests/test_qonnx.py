"""QONNX in and out: a Brevitas model trained on digits comes in through mixq_nn.qonnx_import, its
integer Graph equals QONNX's own execution and the hardware equals the Graph; a mixq Graph goes out
through mixq_nn.qonnx_export and qonnx's executor reproduces its integers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from brevitas_nets import SHAPE, DefaultNet, ExactNet, train_and_export
from networks import bypass_net, plain_net
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from mixq_hw.graph import Graph
from mixq_hw.pipeline import LayerFold
from mixq_nn.data import get_dataset, get_images_uint8
from mixq_nn.qonnx_export import QonnxExportError, save_qonnx, to_qonnx
from mixq_nn.qonnx_import import QonnxImportError, import_qonnx
from sim.network import simulate

IMAGES = 24


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    path = tmp_path_factory.mktemp("qonnx") / "exact.onnx"
    model, accuracy = train_and_export(ExactNet(), path)
    return path, model, accuracy


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    path = tmp_path_factory.mktemp("qonnx") / "default.onnx"
    model, accuracy = train_and_export(DefaultNet(), path)
    return path, model, accuracy


@pytest.fixture(scope="module")
def pixels():
    return get_images_uint8("digits", "test", SHAPE, count=IMAGES)


def _execute(model, pixels: np.ndarray, scale: float) -> list[dict[str, np.ndarray]]:
    """qonnx's executor on each image (``pixels * scale``); every tensor of every run."""
    wrapper = ModelWrapper(model if isinstance(model, onnx.ModelProto) else str(model)).transform(InferShapes())
    name = wrapper.graph.input[0].name
    return [execute_onnx(wrapper, {name: (px[None].astype(np.float32) * np.float32(scale))},
                         return_full_exec_context=True) for px in pixels]


def _step(graph: Graph, name: str) -> float:
    node = graph.node(name)
    while node.op != "requant":
        node = graph.node(node.inputs[0])
    return float(node.attrs["out_step"])


def test_brevitas_exact_net_equals_qonnx_execution_code_for_code(exact, pixels):
    path, model, _ = exact
    graph = import_qonnx(path)
    requants = [n for n in graph if n.op == "requant"]
    assert len(requants) == 3 and all(n.attrs["exact"] and n.attrs["rounding"] == "FLOOR" for n in requants)
    assert graph.output_node.attrs["exact"]
    trace = graph.reference(pixels, keep=True)
    runs = _execute(path, pixels, 1 / 256)
    out = graph.output_node
    onnx_out = np.stack([r[model_output(path)][0] for r in runs])
    scale = out.tensors["scale"]
    ours = trace[out.name].reshape(len(pixels), -1)
    assert np.array_equal(ours * scale, onnx_out.astype(np.float64))       # same float: the codes agree
    with torch.no_grad():
        torch_out = model(torch.from_numpy(pixels).float() / 256).numpy()
    assert np.array_equal(torch_out, onnx_out)
    checked = 0
    for node in graph:                                  # every quantized tensor, code for code
        if "qonnx_output" in node.attrs:
            theirs = np.stack([r[node.attrs["qonnx_output"]][0] for r in runs]) / _step(graph, node.name)
            assert np.array_equal(trace[node.name], theirs), node.name
            checked += 1
    assert checked == 3
    graph_accuracy = float(np.mean(ours.argmax(1) == get_dataset("digits", "test", SHAPE).targets[:IMAGES].numpy()))
    assert graph_accuracy > 0.2          # it learned something in one epoch (chance: 0.1)


def model_output(path) -> str:
    return onnx.load(str(path)).graph.output[0].name


def test_brevitas_exact_net_hardware_is_bit_exact_against_the_graph(exact, pixels):
    graph = import_qonnx(exact[0])
    fold = {"c1.Conv": LayerFold(1, 4, 1), "c2.Conv": LayerFold(4, 4, 1), "c3.Conv": LayerFold(8, 2, 1),
            "fc.MatMul": LayerFold(4, 2, 1)}
    run = simulate(graph, pixels[:3], folding=fold, backend="pysim", stall=0.3, seed=2, progress=False)
    assert run.all_exact, run.first_mismatch()


def test_brevitas_default_quantizers_within_one_code_layer_by_layer(default, pixels):
    """Float scales, BatchNorm, ROUND: every requant, fed QONNX's own input codes, gives QONNX's codes
    within one (a tie or the inc/bias approximation), and almost always exactly."""
    path, _, _ = default
    graph = import_qonnx(path)
    assert not any(n.attrs["exact"] for n in graph if n.op == "requant")
    assert max(n.attrs["inc_rel_error"] for n in graph if n.op == "requant") < 2.0 ** -16
    runs = _execute(path, pixels, 1 / 256)
    differ = total = 0
    for acc in (n for n in graph if n.op in ("conv", "linear")):
        codes = [r[acc.attrs["qonnx_input"]] / acc.attrs["in_step"] for r in runs]
        codes = np.concatenate(codes).astype(np.float64)
        assert np.abs(codes - np.round(codes)).max() < 1e-3, acc.name    # float32 code * scale / scale
        x = np.round(codes).astype(np.int64)
        if acc.op == "linear":        # ONNX's flatten is (C, H, W): back to 4-D for the Graph
            x = x.reshape((len(pixels),) + graph.value_info(graph.node(acc.inputs[0]).name).shape)
        value = graph.run_node(acc.name, [x])
        node = acc
        while "qonnx_output" not in node.attrs and graph.consumers(node.name):
            node = graph.consumers(node.name)[0]
            if node.op == "output":
                break
            value = graph.run_node(node.name, [value])
        if node.op == "output":
            continue
        theirs = np.concatenate([r[node.attrs["qonnx_output"]] for r in runs]) / _step(graph, node.name)
        theirs = np.round(theirs.astype(np.float64))
        diff = np.abs(value - theirs.reshape(value.shape))
        assert diff.max() <= 1, node.name
        differ, total = differ + int((diff > 0).sum()), total + diff.size
    assert total > 0 and differ <= total // 1000


def test_import_refuses_unsupported_ops_by_node_name(exact, tmp_path):
    model = onnx.load(str(exact[0]))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.op_type = "ConvTranspose"
    with pytest.raises(QonnxImportError, match=r"node '/c1/Conv' \(ConvTranspose\): op 'ConvTranspose'"):
        import_qonnx(model)
    model = onnx.load(str(exact[0]))
    quant = next(n for n in model.graph.node if n.op_type == "Quant" and "r2" in n.name)
    quant.op_type = "BipolarQuant"
    with pytest.raises(QonnxImportError, match="BipolarQuant"):
        import_qonnx(model)
    model = onnx.load(str(exact[0]))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    next(a for a in conv.attribute if a.name == "strides").ints[:] = [3, 3]
    with pytest.raises(QonnxImportError, match=r"node '/c1/Conv' \(Conv\): strides \[3, 3\]"):
        import_qonnx(model)
    with pytest.raises(QonnxImportError, match="input quantizer"):
        import_qonnx(exact[0], input_scale=1 / 255)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(QonnxImportError, match="bad.onnx: not a readable ONNX model"):
        import_qonnx(bad)


@pytest.mark.parametrize("make", [plain_net, bypass_net])
def test_export_runs_in_qonnx_with_the_graphs_integers(make, tmp_path):
    graph = make(np.random.default_rng(1))
    path = save_qonnx(graph, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert {n.op_type for n in model.graph.node} >= {"Quant", "Conv"}
    px = np.random.default_rng(0).integers(0, 256, size=(3,) + graph.input_shape).astype(np.uint8)
    runs = _execute(model, px, 1.0)
    ours = graph.reference(px)
    theirs = np.stack([r[graph.output_node.name][0] for r in runs]).reshape(ours.shape)
    assert np.array_equal(ours, theirs)
    if make is plain_net:                  # and back in: the same integer function
        again = import_qonnx(path, input_scale=1.0)
        assert np.array_equal(again.reference(px), ours)


def test_export_refuses_an_accumulator_float32_cannot_hold():
    g = Graph("wide", (64, 4, 4))
    x = g.add_input(8)
    c = g.add_conv("c", x, np.full((2, 64, 3, 3), 127), w_bits=8)
    g.add_output("out", c, np.zeros(2, dtype=np.int64), np.ones(2))
    with pytest.raises(QonnxExportError, match=r"node 'c' \(conv\): accumulator bound"):
        to_qonnx(g)


def test_export_refuses_signed_codes_by_node_name():
    g = Graph("signed", (3, 4, 4))
    c = g.add_conv("c", g.add_input(8), np.ones((2, 3, 1, 1), dtype=np.int64), w_bits=2)
    r = g.add_requant("r", c, np.ones(2, dtype=np.int64), np.full(2, -500), shift=4, out_bits=3, signed_out=True,
                      neg_shift=2)
    c2 = g.add_conv("c2", r, np.ones((2, 2, 1, 1), dtype=np.int64), w_bits=2)
    g.add_output("out", c2, np.zeros(2, dtype=np.int64), np.ones(2))
    with pytest.raises(QonnxExportError, match=r"node 'r' \(requant\): signed codes with a LeakyReLU have no QONNX"):
        to_qonnx(g)


def test_export_cli_writes_qonnx_from_a_graph_file(tmp_path, capsys):
    from mixq_nn.export import main

    graph = plain_net(np.random.default_rng(1))
    graph.save(tmp_path / "g.npz")
    assert main([str(tmp_path / "g.npz"), "--qonnx", str(tmp_path / "g.onnx"), "-q"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'g.onnx'}"
    assert np.array_equal(import_qonnx(tmp_path / "g.onnx", input_scale=1.0).reference(
        np.full((1,) + graph.input_shape, 200, np.uint8)), graph.reference(np.full((1,) + graph.input_shape, 200,
                                                                                    np.uint8)))
    assert main([str(tmp_path / "g.npz"), "--qonnx", str(tmp_path / "g.txt")]) == 2
    assert "--qonnx" in capsys.readouterr().err and not (tmp_path / "g.txt").exists()
    assert main([str(tmp_path / "g.npz")]) == 2        # a graph file is only an input for --qonnx
    assert "expected a .pt or .pth file" in capsys.readouterr().err


def test_build_and_api_take_a_qonnx_model(exact, tmp_path):
    from mixq_hw.api import as_graph
    from mixq_hw.build import BuildError, check_options, load_graph

    graph, meta = load_graph(exact[0])
    assert meta["source_kind"] == "qonnx" and graph.name == "exact"
    assert check_options(exact[0], board="ultra96", clock_mhz=None, out=tmp_path / "b", fold=None, verify=0,
                         backend="auto", multipliers=("dsp",)) == tmp_path / "b"
    in_memory = as_graph(onnx.load(str(exact[0])), name="mine")
    assert in_memory.name == "mine" and [n.op for n in in_memory] == [n.op for n in graph]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"junk")
    with pytest.raises(BuildError, match="bad.onnx: not a readable ONNX model"):
        load_graph(bad)


def test_sim_cli_takes_a_qonnx_model(exact, tmp_path):
    import json

    from sim.__main__ import main

    fold = tmp_path / "fold.json"
    lanes = {"c1.Conv": (1, 4), "c2.Conv": (4, 4), "c3.Conv": (8, 2), "fc.MatMul": (4, 2)}
    fold.write_text(json.dumps({k: {"simd": s, "pe": p, "pixels": 1} for k, (s, p) in lanes.items()}))
    assert main([str(exact[0]), "--images", "1", "--backend", "pysim", "--fold", str(fold), "-q"]) == 0
