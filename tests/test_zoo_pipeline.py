"""Every zoo model through the whole flow: random weights, BN calibrated, exported, folded, simulated
(the fastest compiled backend here, random stalls), bit-exact against Graph.reference, at the analytic frame
interval; two of them also on CXXRTL, which must agree with Verilator output for output and cycle for cycle.

The models keep their published channel counts at the smallest
input their pooling allows (16x32 for the UltraNets; 8x16 / 8x8 for SkyNet / VGG-tiny), so each design
is 2-4 MB of C++ and g++ dominates these tests (30-170 s per model on a loaded 2-core machine with
hierarchical CXXRTL output; several times that with the flattened output).  Simulation itself takes
4-17 s per model.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from networks import bypass_net
from torch import nn

from mixq_hw.graph import Graph
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_nn import models
from mixq_nn.calibrate import calibrate_random
from mixq_nn.export import export
from sim.backends import default_backend
from sim.network import simulate

F = LayerFold

#: CNV's reduced widths (six convs, two hidden FC layers) at its smallest input, 32x32 (unpadded convs)
CNV_SMALL = {"channels": (4, 4, 8, 8, 8, 8, 16, 16)}
#: its folding: 16,200 cycles per frame, the first conv the bottleneck
CNV_FOLD = {"features.0.0": F(3, 2, 1), "features.1.0": F(4, 4, 1), "features.3.0": F(4, 4, 1),
            "features.4.0": F(8, 4, 1), "features.6.0": F(8, 4, 1), "features.7.0": F(8, 4, 1)}

#: Tiny-YOLOv3's reduced widths (five backbone convs, 3x3, 1x1, 1x1, 3x3) at 32x64 and its folding: 9,216
#: cycles per frame, the first conv's window the bottleneck
YOLO_SMALL = {"channels": (4, 8, 8, 8, 8, 8, 8, 8, 8)}
YOLO_FOLD = {"backbone.0.0": F(3, 4, 2), "backbone.2.0": F(4, 8, 1), "backbone.4.0": F(8, 4, 1),
             "conv8.0": F(8, 4, 1)}

#: DiracDeltaNetSmall's depth (4, 8, 4 blocks: channel splits, shifts, concats, shuffles) at reduced widths and
#: its smallest input, 1x32x32 (maps 17, 9, 4, 2, 1, floor-mode pools on the odd ones), and its folding: 4,096
#: cycles per frame, the first conv the bottleneck (global average pool and FC at the end)
DIRAC_SMALL = {"stem": (4, 8), "stages": (8, 16, 16), "head": 16}
DIRAC_FOLD = {"stem.3.0": F(4, 2, 1), "blocks.0.conv1.0": F(4, 2, 1), "blocks.4.conv1.0": F(8, 2, 1)}

#: ResNet-8's reduced widths (stem, stage 1 (mid, out), stages 2 and 3 (mid, out, shortcut)) at 8x8 and its
#: folding: 1,152 cycles per frame, the stem the bottleneck
RESNET_SMALL = {"channels": (4, 4, 4, 4, 8, 8, 4, 8, 8)}
RESNET_FOLD = {"stem.0": F(3, 2, 1), "blocks.0.conv1": F(4, 4, 1), "blocks.0.conv2": F(4, 4, 1),
               "blocks.1.conv1": F(4, 2, 1), "blocks.1.conv2": F(4, 4, 1), "blocks.1.shortcut": F(4, 4, 1),
               "blocks.2.conv1": F(8, 2, 1), "blocks.2.shortcut": F(8, 4, 1)}

#: model -> (input shape, folding[, build options]).  Each folding balances the heavy layers at one interval
#: (VGG-tiny 73,728 cycles, UltraNets 36,864, SkyNets 24,576) with a few DSPs per layer.
ZOO = {
    "VGGtiny": ((3, 8, 8), {
        "features.0.0": F(3, 1, 1), "features.1.0": F(8, 4, 1), "features.3.0": F(8, 2, 1),
        "features.4.0": F(8, 4, 1), "features.6.0": F(8, 2, 1), "features.7.0": F(8, 4, 1)}),
    "UltraNet": ((3, 16, 32), {
        "conv0.0": F(3, 2, 1), "conv1.0": F(4, 4, 1), "conv2.0": F(4, 4, 1), "conv3.0": F(4, 2, 1),
        "conv4.0": F(4, 4, 1), "conv5.0": F(4, 4, 1), "conv6.0": F(4, 4, 1), "conv7.0": F(4, 4, 1)}),
    "UltraNetBypass": ((3, 16, 32), {
        "conv0.0": F(3, 2, 1), "conv1.0": F(4, 4, 1), "conv2.0": F(4, 4, 1), "conv3.0": F(4, 2, 1),
        "conv4.0": F(4, 4, 1), "conv5.0": F(4, 4, 1), "conv6.0": F(4, 4, 1), "conv7.0": F(4, 4, 1)}),
    "SkyNet": ((3, 8, 16), {
        "bundles.4.0": F(2, 3, 1), "bundles.7.0": F(2, 3, 1), "bundles.10.0": F(2, 3, 1),
        "bundles.12.0": F(4, 4, 1), "bundles.14.0": F(2, 2, 1)}),
    "SkyNetk5": ((3, 8, 16), {
        "bundles.3.0": F(2, 2, 1), "bundles.4.0": F(2, 3, 1), "bundles.7.0": F(2, 3, 1),
        "bundles.10.0": F(2, 3, 1), "bundles.12.0": F(4, 4, 1), "bundles.13.0": F(2, 2, 1),
        "bundles.14.0": F(2, 2, 1)}),
    **{f"CNV{preset}": ((3, 32, 32), CNV_FOLD, CNV_SMALL) for preset in ("w2a2", "w4a4", "w8a8")},
    "TinyYOLOv3": ((3, 32, 64), YOLO_FOLD, YOLO_SMALL),
    "DiracDeltaNetSmall": ((1, 32, 32), DIRAC_FOLD, DIRAC_SMALL),
    # residual adds; the Leaky variant's convs, adds, pool and FC read signed codes
    **{name: ((3, 8, 8), RESNET_FOLD, RESNET_SMALL) for name in ("ResNet8", "ResNet8Leaky")},
}


def calibrated(name: str, shape: tuple[int, int, int], seed: int = 0, **opts) -> nn.Module:
    """Zoo model ``name`` (build options ``opts``) with random weights, random BN affine parameters and BN
    statistics from a few train-mode passes on random 8-bit images (so that every requant sees realistic
    ranges)."""
    torch.manual_seed(seed)
    model = models.build(name, input_shape=shape, **opts)
    return calibrate_random(model, shape, seed=seed, passes=3, batch=8)


#: Zoo models whose operators reach the hardware with the op registry of issue 15 (residual add, shift,
#: channel split / shuffle, nearest upsample, padded max pool, signed activations, unpadded convs and the
#: FC chain): each moves into ZOO, with its input shape and folding, when its ops land.
AWAITING_OPS: set[str] = set()

#: Zoo models whose weights do not fit the Ultra96's block RAM: the build refuses them before any work
#: (tests/test_weight_fit.py).
DO_NOT_FIT = {"DiracDeltaNet"}

#: zoo models also simulated on CXXRTL when the default backend is Verilator, to compare the two: SkyNet
#: (depthwise convs, reorg bypass, concat) and ResNet-8 Leaky (residual adds, signed codes through convs, adds,
#: pool and FC).  VGG-tiny (plain convs and max pools, which SkyNet has too) runs on the default
#: backend only: it is the widest test design, 31 s of CXXRTL build and run on this machine.
CROSS_CHECKED = ("SkyNet", "ResNet8Leaky")


def test_every_zoo_model_is_covered():
    assert set(ZOO) | AWAITING_OPS | DO_NOT_FIT == set(models.MODELS), "add the new model (input shape, folding) to ZOO"
    assert not set(ZOO) & (AWAITING_OPS | DO_NOT_FIT)


#: build options of a zoo model's variants that run too: (model, options), the model's ZOO entry otherwise
VARIANTS = [("TinyYOLOv3", {"leaky": True})]    # signed codes through max pools, concat and upsample


@pytest.mark.parametrize("name,variant", [(name, {}) for name in sorted(ZOO)] + VARIANTS,
                         ids=[*sorted(ZOO), *(f"{n}-{'-'.join(v)}" for n, v in VARIANTS)])
def test_zoo_model_bit_exact_at_the_analytic_interval(name, variant):
    shape, folding, *opts = ZOO[name]
    started = time.perf_counter()
    graph = export(calibrated(name, shape, **(opts[0] if opts else {}), **variant), shape)
    exported = time.perf_counter()
    plan = plan_stages(graph, folding)
    assert any(f != LayerFold() for f in plan.folding.values())
    # The codes must not be degenerate, or bit-exactness would prove little.
    images = np.random.default_rng(7).integers(0, 256, (3, *shape)).astype(np.uint8)
    reference = graph.reference(images)
    assert len(np.unique(reference)) > 10, f"{name}: near-constant outputs make the comparison vacuous"

    backend = default_backend()
    run = simulate(graph, images, folding=folding, backend=backend, stall=0.3, seed=11, progress=False)
    print(f"{name} {shape}: export {exported - started:.1f}s, compile {run.compile_seconds:.1f}s, "
          f"simulate {run.sim_seconds:.1f}s ({run.cycles_total:,} cycles, {run.cycles_per_second:,.0f}/s); "
          f"interval {run.cycles_per_frame:,} vs analytic {run.analytic_cycles_per_frame:,} "
          f"({run.bottleneck}), {plan.resources().dsp} DSPs")
    assert run.bit_exact == 3, f"{name}: {run.first_mismatch()}"
    np.testing.assert_array_equal(run.outputs, reference)
    # Frames 2 -> 3 leave one bottleneck interval apart, even with 30 % stalls on both ends.
    assert run.analytic_cycles_per_frame == plan.cycles_per_frame()
    assert abs(run.cycles_per_frame - run.analytic_cycles_per_frame) <= 0.05 * run.analytic_cycles_per_frame, \
        (name, run.cycles_per_frame, run.analytic_cycles_per_frame, run.bottleneck)
    if name in CROSS_CHECKED and backend == "verilator":
        other = simulate(graph, images, folding=folding, backend="cxxrtl", stall=0.3, seed=11, progress=False)
        np.testing.assert_array_equal(other.outputs, run.outputs)
        assert other.frame_end_cycles == run.frame_end_cycles and other.cycles_total == run.cycles_total


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_every_backend_agrees_cycle_for_cycle(stall):
    """One small network (conv, pool, reorg bypass, concat) on every backend here, with and without stalls:
    the same outputs and the same cycle for every frame's last beat."""
    from sim.backends import available_backends

    rng = np.random.default_rng(3)
    graph: Graph = bypass_net(rng)
    folding = {"c1": F(2, 2, 2), "c4": F(4, 5, 1)}
    images = rng.integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    runs = {name: simulate(graph, images, folding=folding, backend=name, stall=stall, seed=5, progress=False)
            for name in available_backends()}
    py = runs["pysim"]
    assert py.bit_exact == 3, py.first_mismatch()
    for name, run in runs.items():
        np.testing.assert_array_equal(run.outputs, py.outputs)
        assert run.frame_end_cycles == py.frame_end_cycles, name
        assert run.cycles_total == py.cycles_total, name



#: ResNet-8 at 16x16 with the first block's two convs at the interval (4,608 cycles): the identity shortcut's
#: FIFO must hold the rows that those two convs lag by at the bottleneck rate (4,720 cycles without them)
RESNET_EQUAL = {"channels": (8, 8, 8, 16, 16, 16, 32, 32, 32)}
RESNET_EQUAL_FOLD = {"stem.0": F(3, 8, 1), "blocks.0.conv1": F(4, 8, 1), "blocks.0.conv2": F(4, 8, 1),
                     "blocks.1.conv1": F(2, 16, 1), "blocks.1.conv2": F(4, 16, 1), "blocks.1.shortcut": F(2, 8, 1),
                     "blocks.2.conv1": F(1, 32, 1), "blocks.2.conv2": F(2, 32, 1), "blocks.2.shortcut": F(2, 8, 1)}


def test_residual_block_at_the_bottleneck_meets_the_interval():
    shape = (3, 16, 16)
    graph = export(calibrated("ResNet8", shape, **RESNET_EQUAL), shape)
    plan = plan_stages(graph, RESNET_EQUAL_FOLD)
    assert plan.stage("blocks.0.conv1").cycles == plan.stage("blocks.0.conv2").cycles == plan.cycles_per_frame()
    images = np.random.default_rng(7).integers(0, 256, (3, *shape)).astype(np.uint8)
    run = simulate(graph, images, folding=RESNET_EQUAL_FOLD, backend=default_backend(), progress=False)
    assert run.bit_exact == 3, run.first_mismatch()
    ends = run.frame_end_cycles
    assert ends[2] - ends[1] == ends[1] - ends[0] == plan.cycles_per_frame() == 4608, ends
