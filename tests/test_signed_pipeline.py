"""Signed codes through the whole pipeline: LeakyReLU requants, a signed max pool (padded and not), convs on
signed codes (kernel and filter packing, LUT cores), a LeakyReLU residual add, the global pool and the FC, bit-exact
against Graph.reference under random stalls (Amaranth's simulator, layer by layer and end to end)."""

from __future__ import annotations

import numpy as np
import pytest
from networks import leaky_net, signed_moves_net

from mixq_hw.graph import GraphError
from mixq_hw.pipeline import LayerFold, plan_stages
from sim.layerwise import verify_layers
from sim.network import simulate


@pytest.mark.parametrize("pad,folding", [
    (1, {}),
    (0, {"c1": LayerFold(3, 2, 2), "c2": LayerFold(2, 2, 2, "lut"), "cs": LayerFold(4, 4, 1)}),
])
def test_leaky_net_bit_exact_under_stalls(pad, folding):
    graph = leaky_net(0, pad=pad, shape=(3, 6, 6) if pad else (3, 8, 8))
    images = np.random.default_rng(1).integers(0, 256, (2, *graph.input_shape), dtype=np.uint8)
    trace = graph.reference(images, keep=True)
    assert trace["p1"].min() < 0 and trace["add"].min() < 0 and trace["r3"].min() < 0   # signed all the way
    plan = plan_stages(graph, folding)
    engines = [s.spec for s in plan.stages if s.kind == "conv" or s.kind == "linear"]
    assert sum(e.signed_act for e in engines) == 3 and all(e.plan.signed_act == e.signed_act for e in engines)
    # c2 on filter packing (row window) unfolded, on LUT cores (tap window) folded
    assert [e.window_kind for e in engines if e.name == "c2"] == ["taps" if folding else "rows"]
    run = simulate(graph, images, folding=folding, backend="pysim", stall=0.3, seed=pad + 2, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, trace["out"])


def test_signed_codes_through_the_code_moving_ops():
    """slice, shift (zero fill: code 0), concat, shuffle, upsample and reorg carry signed codes, bit-exact under
    stalls."""
    graph = signed_moves_net(0)
    images = np.random.default_rng(2).integers(0, 256, (2, *graph.input_shape), dtype=np.uint8)
    trace = graph.reference(images, keep=True)
    infos = graph.value_infos()
    assert all(infos[n].signed_codes for n in ("lo", "hi", "sh", "cat", "shuf", "up", "reorg"))
    assert trace["up"].min() < 0 < trace["up"].max()
    run = simulate(graph, images, backend="pysim", stall=0.3, seed=4, progress=False)
    assert run.bit_exact == 2, run.first_mismatch()
    np.testing.assert_array_equal(run.outputs, trace["out"])


def test_mixed_signedness_at_a_concat_is_refused_naming_the_node():
    graph = signed_moves_net(0)
    r2 = graph.add_requant("r2", "c1", np.full(8, 3, np.int64), np.zeros(8, np.int64), shift=3, out_bits=4)
    s2 = graph.add("slice", "s2", [r2], {"start": 0, "stop": 4})
    with pytest.raises(GraphError, match=r"node 'cat2' \(concat\): input 's2' carries unsigned codes but 'lo' "
                                         r"signed ones; concat inputs need the same kind"):
        graph.add_concat("cat2", ["lo", s2])


@pytest.mark.parametrize("make", [leaky_net, signed_moves_net])
def test_every_stage_alone_on_signed_codes(make):
    """Layer by layer (what --verify runs first): every stage of the signed networks, the rescale and the
    slices included, alone on its reference beats under stalls."""
    graph = make(0)
    images = np.random.default_rng(3).integers(0, 256, (2, *graph.input_shape), dtype=np.uint8)
    run = verify_layers(graph, images, plan_stages(graph), backend="pysim", workers=1)
    assert run.all_exact, [s.stage for s in run.failed]
    assert {"rescale", "slice"} & {s.kind for s in plan_stages(graph).stages}
