"""Layer-by-layer verification: every stage alone, bit-exact under stalls; agrees with the whole network;
a weight flipped in the hardware only is caught by both and named."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from networks import (
    bypass_net,
    concat3_net,
    linear_net,
    padded_pool_net,
    plain_net,
    pool_head,
    res_block,
    shuffle_net,
    yolo_tail,
)

from mixq_hw.graph import ops
from mixq_hw.pipeline import Accelerator, LayerFold, plan_stages
from sim.formats import ANY, ZERO, grouped, locate, raster, rows, taps
from sim.layerwise import verify_layers
from sim.stage_streams import stage_streams
from sim.tensors import tensor_to_beats
from sim.verify import verify_accelerator
from sim.verilator import verilator_available

#: (network, folding): a conv + requant + pool chain with a stride-2 conv, a depthwise conv and lane
#: converters; the bypass (fork, reorg, FIFOs, concat) with ragged pixel groups; a linear head
NETS = {
    "plain": (plain_net, {"c1": LayerFold(3, 2, 2), "c2": LayerFold(2, 3, 1), "d3": LayerFold(2, 2, 1),
                          "c4": LayerFold(2, 2, 1)}),
    "bypass-ragged": (bypass_net, {"c1": LayerFold(2, 2, 3), "c2": LayerFold(2, 2, 3), "c3": LayerFold(1, 4, 3),
                                   "c4": LayerFold(4, 5, 3)}),
    "linear": (linear_net, {"fc": LayerFold(4, 3, 1)}),
    # the operators of issue 15: upsample after a concat, shift into a concat of three, shuffle (re-laned),
    # padded pool
    "upsample": (yolo_tail, {"c1": LayerFold(3, 2, 2), "c3": LayerFold(4, 4, 1), "c4": LayerFold(4, 5, 2)}),
    "shift-concat3": (concat3_net, {"c1": LayerFold(3, 4, 2), "c2": LayerFold(4, 4, 1)}),
    "shuffle": (shuffle_net, {"c1": LayerFold(3, 4, 1)}),
    "padded-pool": (padded_pool_net, {"c1": LayerFold(3, 4, 2)}),
    # residual add of signed codes (a LeakyReLU branch and a projection shortcut), global average pool
    "residual": (lambda rng: res_block(rng, shortcut=True, leaky=True), {"c2": LayerFold(2, 2, 2)}),
    "avgpool": (pool_head, {"c1": LayerFold(3, 2, 2)}),
    # pe not dividing the output channels: padded last folds through requant, threshold, regroup and output
    "bypass-padded-pe": (bypass_net, {"c1": LayerFold(2, 3, 3), "c2": LayerFold(2, 3, 3),
                                      "c3": LayerFold(1, 3, 3, requant="threshold"), "c4": LayerFold(4, 2, 3)}),
}


def _images(graph, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *graph.input_shape)).astype(np.uint8)


def test_formats_are_the_layers_contract():
    """Taps and rows beats dotted with weights give the graph's convolution; grouped and raster beats put
    every element where the contract says; padding is ZERO, ragged slots ANY."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 8, (1, 4, 7, 8))
    weight = rng.integers(-3, 4, (3, 4, 3, 3))
    for k, stride, pad, px, lanes in [(3, 1, 1, 2, 2), (3, 2, 0, 1, 4), (3, 1, 1, 3, 1)]:
        beats = taps(k, stride, pad, px, lanes).to_array(x)
        oh, ow = (7 + 2 * pad - k) // stride + 1, (8 + 2 * pad - k) // stride + 1
        g = -(-ow // px)
        t = beats.reshape(oh, g, k, k, 4 // lanes, px, lanes).transpose(0, 1, 5, 4, 6, 2, 3)
        t = t.reshape(oh, g * px, 4, k, k)[:, :ow]
        np.testing.assert_array_equal(np.einsum("yxcij,ocij->oyx", t, weight),
                                      ops.conv2d_int(x, weight[:, :, :k, :k], stride, pad)[0])
    r = rows(3, 1, 2, 2).to_array(x)                      # (oh * groups * ky * chunks, span, lanes)
    r = r.reshape(7, 4, 3, 2, 4, 2)                       # y, g, ky, chunk, span position, lane
    span = r.transpose(0, 1, 2, 4, 3, 5).reshape(7, 4, 3, 4, 4)   # y, g, ky, position, channel
    out = np.zeros((3, 7, 8), dtype=np.int64)
    for kx in range(3):
        for j in range(2):
            out[:, :, j::2] += np.einsum("ygic,oci->oyg", span[:, :, :, j + kx, :], weight[:, :, :, kx])
    np.testing.assert_array_equal(out, ops.conv2d_int(x, weight, 1, 1)[0])
    idx = grouped(2, 3).index((4, 2, 7))
    # width 7 in groups of 3: per row groups (0-2), (3-5), (6, ragged, ragged), two folds each
    assert idx.shape == (2 * 3 * 2, 3, 2) and (idx[4:6, 1:] == ANY).all() and (idx[4:6, 0] >= 0).all()
    assert (idx[:4] >= 0).all() and (idx[6:10] >= 0).all()
    assert taps(3, 1, 1, 1, 4).index((4, 2, 2))[0, 0, 0] == ZERO
    assert raster(2).beats(x) == tensor_to_beats(x, 2)
    assert locate(int(grouped(2, 3).batch_index((4, 2, 7), 2)[12 + 1, 2, 1]), (4, 2, 7)) == (1, 3, 0, 2)


def test_every_stream_has_a_format():
    plan = plan_stages(bypass_net(np.random.default_rng(0)), NETS["bypass-ragged"][1])
    streams = stage_streams(plan)
    assert list(streams) == [s.name for s in plan.stages]
    assert streams["cat"].inputs["i0"].tensor == "reorg"
    windows = {streams[s.name].outputs["o"].fmt.kind for s in plan.stages if s.kind == "window"}
    assert windows == {"taps", "rows"}      # both window formats (see test_ragged_case_covers_both_windows)
    assert streams["c1.fork2"].outputs.keys() == {"o0", "o1"}


@pytest.mark.parametrize("net", sorted(NETS))
def test_every_stage_bit_exact_under_stalls(net):
    make, folding = NETS[net]
    graph = make(np.random.default_rng(0))
    plan = plan_stages(graph, folding)
    run = verify_layers(graph, _images(graph, 2), plan, backend="pysim", stall=0.3, workers=2, timing=False)
    assert run.all_exact, run.message()
    assert [s.stage for s in run.stages] == [s.name for s in plan.stages]
    assert run.exact_images() == 2 and run.message() == ""
    assert all(s.beats > 0 and s.cycles_per_frame > 0 for s in run.stages)
    assert "| c1 | c1 | conv | yes |" in run.markdown()


def test_layers_and_whole_network_agree_and_measure():
    graph = plain_net(np.random.default_rng(0))
    acc = Accelerator(graph, NETS["plain"][1])
    result = verify_accelerator(graph, _images(graph, 2), acc, backend="pysim", workers=2, progress=False)
    assert result["bit_exact"] == result["images"] == 2 and result["message"] == ""
    assert result["layers"]["all_exact"] and result["whole"]["bit_exact"] == result["whole"]["images"] == 2
    assert result["cycles_per_frame"] == result["whole"]["cycles_per_frame"] > 0
    stages = {s["stage"]: s for s in result["layers"]["stages"]}
    # stall-free, a stage alone runs at its analytic interval (as the pipeline tests check for the whole)
    assert stages["c1"]["cycles_per_frame"] == stages["c1"]["analytic_cycles_per_frame"]
    assert stages["c1"]["latency"] > 0


def test_a_weight_flipped_in_the_hardware_is_caught_and_named():
    graph = plain_net(np.random.default_rng(0))
    images = _images(graph, 2)
    # the centre tap of c2's busiest input channel, moved to the other end of its 4-bit range
    busy = int(np.argmax(graph.reference(images, keep=True)["p1"].sum(axis=(0, 2, 3))))
    broken = copy.deepcopy(graph)
    weight = broken.node("c2").tensors["weight"]
    weight[2, busy, 1, 1] = -7 if weight[2, busy, 1, 1] >= 0 else 7
    assert not np.array_equal(broken.reference(images), graph.reference(images))
    acc = Accelerator(broken, NETS["plain"][1])
    result = verify_accelerator(graph, images, acc, backend="pysim", workers=2, progress=False)
    assert result["bit_exact"] < 2 and result["whole"]["bit_exact"] < 2
    failed = [s for s in result["layers"]["stages"] if not s["bit_exact"]]
    assert [s["stage"] for s in failed] == ["c2"], [s["stage"] for s in failed]
    assert "layer 'c2', stage 'c2' (conv): image " in result["message"]
    assert "channel 2" in failed[0]["mismatch"] and "expected" in failed[0]["mismatch"]
    assert "whole network: image" in result["message"]


def test_bad_arguments_say_what_is_wrong():
    graph = plain_net(np.random.default_rng(0))
    plan = plan_stages(graph, {})
    with pytest.raises(ValueError, match="backend 'verilog'"):
        verify_layers(graph, _images(graph, 1), plan, backend="verilog")
    with pytest.raises(ValueError, match="images must have shape"):
        verify_layers(graph, np.zeros((1, 3, 4, 4), np.uint8), plan, backend="pysim")
    with pytest.raises(ValueError, match="verification mode 'all'"):
        verify_accelerator(graph, _images(graph, 1), None, mode="all")   # checked before any work


@pytest.mark.skipif(not verilator_available(), reason="the verilator package is not installed")
def test_on_verilator_all_stages_are_built_once_and_a_flipped_weight_is_named(fresh_compile_cache):
    """Layer by layer on Verilator, from a cold cache: one build of all stages serves both runs (stalled and
    stall-free), and a weight flipped in the hardware only fails exactly its stage; the whole network, built
    and run beside the layers, fails too and says where."""
    make, folding = NETS["linear"]
    graph = make(np.random.default_rng(0))
    images = _images(graph, 2)
    broken = copy.deepcopy(graph)
    weight = broken.node("fc").tensors["weight"].reshape(-1)   # a view: edits the graph's weights
    for k in range(weight.size):   # the first weight whose change shows in the outputs
        old = int(weight[k])
        weight[k] = -7 if old >= 0 else 7
        if not np.array_equal(broken.reference(images), graph.reference(images)):
            break
        weight[k] = old
    assert not np.array_equal(broken.reference(images), graph.reference(images))
    result = verify_accelerator(graph, images, Accelerator(broken, folding), backend="verilator", progress=False)
    layers = result["layers"]
    assert [s["stage"] for s in layers["stages"] if not s["bit_exact"]] == ["fc"], result["message"]
    assert "layer by layer: layer 'fc', stage 'fc' (conv): image " in result["message"]
    assert "expected" in result["message"] and "whole network: image" in result["message"]
    assert result["whole"]["bit_exact"] < 2 and result["bit_exact"] < 2
    assert all(len(s["design"]) == 12 and s["cycles_per_frame"] > 0 for s in layers["stages"])
    programs = list((fresh_compile_cache / "verilator").glob("*.bin"))
    # one build of all stages, one of the whole accelerator
    assert layers["designs"] == len({s["design"] for s in layers["stages"]}) == 1 and len(programs) == 2


@pytest.mark.skipif(not verilator_available(), reason="the verilator package is not installed")
def test_one_build_of_all_stages_measures_what_each_stage_alone_measures(fresh_compile_cache):
    """The stages side by side in one build give each stage the same verdict, cycles per frame and latency
    as its own build of each distinct stage design (each is driven alone, stall-free for the timing)."""
    make, folding = NETS["linear"]
    graph = make(np.random.default_rng(0))
    images = _images(graph, 2)
    plan = plan_stages(graph, folding)
    runs = [verify_layers(graph, images, plan, backend="verilator", stall=0.3, workers=2, one_build=flag)
            for flag in (True, False)]
    assert runs[0].designs == 1 and runs[1].designs > 1
    for run in runs:
        assert run.all_exact, run.message()
    timing = [[(s.stage, s.bit_exact, s.beats, s.cycles_per_frame, s.latency) for s in run.stages] for run in runs]
    assert timing[0] == timing[1]
