"""ConvEngine against the integer reference: dense k x k (stride 1/2), 1x1, 5x5, depthwise, linear.

Inputs are window beats built in numpy from an image exactly as the
SlidingWindow format specifies; outputs are compared with ``conv2d_int``.
Every case runs with random stalls on both streams and two frames back to back.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from mixq_hw.graph.ops import conv2d_int, linear_int
from mixq_hw.layers.conv import ConvEngine, ConvEngineSpec
from mixq_hw.layers.conv_weights import check_conv_config, weight_rom_words
from mixq_hw.layers.window import SlidingWindow
from mixq_hw.packing import plans
from mixq_hw.packing.layout import act_range, weight_range
from mixq_hw.packing.split import SplitPlan, split_plans
from conv_cases import Chain, stable_seed
from sim.formats import grouped, taps
from sim.streams import run_streams, send, to_python
from sim.tensors import tensor_to_beats


def conv_reference(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """The integer graph's convolution of one (C, H, W) image."""
    return conv2d_int(x[None], w, stride, pad, groups)[0]


def random_layer(rng, *, in_ch, out_ch, k, groups, w_bits, extreme=False):
    lo, hi = weight_range(w_bits)
    shape = (out_ch, in_ch // groups, k, k)
    if extreme:
        return rng.choice([lo, hi], size=shape).astype(np.int64)
    return rng.integers(lo, hi + 1, size=shape)


def run_conv(*, in_ch, out_ch, hw, k, stride, pad, groups, w_bits, a_bits, simd, pe, pixels,
             stall, frames=2, seed=0, extreme=False, plan=None, multiplier="dsp", cascade=1, weight_store="bram"):
    """Build the engine, stream `frames` random images through it, check every output exactly."""
    rng = np.random.default_rng(seed)
    weight = random_layer(rng, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups, w_bits=w_bits,
                          extreme=extreme)
    h, w = hw
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    amax = act_range(a_bits)[1]
    images = [np.full((in_ch, h, w), amax) if extreme else rng.integers(0, amax + 1, size=(in_ch, h, w))
              for _ in range(frames)]
    dut = ConvEngine(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups,
                     simd=simd, pe=pe, pixels=pixels, out_size=(oh, ow), plan=plan, multiplier=multiplier, cascade=cascade,
                     weight_store=weight_store, name="t")
    beats = [b for img in images for b in taps(k, stride, pad, pixels, simd).beats(img)]
    assert len(beats) == frames * dut.in_beats_per_frame
    run = run_streams(dut, {"i": beats}, {"o": frames * dut.out_beats_per_frame}, stall=stall, seed=seed,
                      max_cycles=40 * len(beats) * dut.geometry.folds + 2000)
    got = run.outputs["o"]
    per = dut.out_beats_per_frame
    for n, img in enumerate(images):
        expect = conv_reference(img, weight, stride, pad, groups)
        out = grouped(pe, pixels).to_frame(got[n * per:(n + 1) * per], (out_ch, oh, ow), dont_care_zero=True)
        np.testing.assert_array_equal(out, expect, err_msg=f"frame {n}")
    return dut, run


# name: (in_ch, out_ch, (h, w), k, stride, pad, groups, w_bits, a_bits, simd, pe, pixels)
CASES = {
    "dense3x3_s1_w4a4": (4, 4, (4, 4), 3, 1, 1, 1, 4, 4, 2, 2, 2),
    "dense3x3_s2_w2a2": (2, 4, (8, 8), 3, 2, 1, 1, 2, 2, 2, 4, 2),
    "dense1x1_w8a8_pe3": (8, 6, (3, 4), 1, 1, 0, 1, 8, 8, 4, 3, 2),
    "dense5x5_w3a5_scalar": (2, 2, (3, 3), 5, 1, 2, 1, 3, 5, 1, 1, 1),
    "depthwise3x3_w4a4": (4, 4, (4, 4), 3, 1, 1, 4, 4, 4, 2, 2, 2),
    "depthwise3x3_w2a2_p4": (2, 2, (4, 4), 3, 1, 1, 2, 2, 2, 2, 2, 4),
    "dense3x3_nopad_w5a3_pix4": (3, 2, (5, 6), 3, 1, 0, 1, 5, 3, 3, 2, 4),
    "dense1x1_one_beat_per_group": (2, 2, (2, 2), 1, 1, 0, 1, 4, 4, 2, 2, 2),
    "dense3x3_s2_ragged_pix3": (2, 4, (4, 9), 3, 2, 1, 1, 4, 4, 1, 2, 3),   # 5 columns: groups of 3 and 2
    "depthwise3x3_ragged_pix4": (2, 2, (3, 5), 3, 1, 1, 2, 3, 3, 2, 2, 4),  # 5 columns: groups of 4 and 1
}


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("case", list(CASES))
def test_conv_matches_reference(case, stall):
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels = CASES[case]
    run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb, a_bits=ab,
             simd=simd, pe=pe, pixels=pixels, stall=stall, seed=stable_seed(case))


def test_packed_weight_rom_engine_matches_reference():
    """An engine whose weight ROM holds three 12-bit words per 36-bit memory word, under stalls."""
    dut, _ = run_conv(in_ch=8, out_ch=64, hw=(2, 2), k=3, stride=1, pad=1, groups=1, w_bits=3, a_bits=4, simd=2,
                      pe=2, pixels=2, stall=0.3, seed=11)
    assert (dut.weight_rom.depth, dut.weight_rom.pack) == (1152, 3)


@pytest.mark.parametrize("multiplier", ["dsp", "lut"])
def test_lut_weight_store_engine_matches_reference(multiplier):
    """An engine whose weight ROM is LUT logic (``weight_store="lut"``), under stalls: no block RAM for it."""
    dut, _ = run_conv(in_ch=8, out_ch=64, hw=(2, 2), k=3, stride=1, pad=1, groups=1, w_bits=3, a_bits=4, simd=2,
                      pe=2, pixels=2, stall=0.3, seed=12, multiplier=multiplier, weight_store="lut")
    assert dut.weight_rom.store == "lut" and dut.weight_rom.estimate().bram36 == 0


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_linear_as_1x1_over_flattened_input(stall):
    """A linear layer: the (C, H, W) raster stream (HWC order) is the engine's k=1 input, pixels=1."""
    rng = np.random.default_rng(5)
    c, h, w, out, simd, pe, wb, ab = 2, 2, 3, 4, 2, 2, 4, 4
    weight = rng.integers(-7, 8, size=(out, h * w * c))
    images = [rng.integers(0, 16, size=(c, h, w)) for _ in range(2)]
    dut = ConvEngine(weight.reshape(out, -1, 1, 1), w_bits=wb, a_bits=ab, in_ch=h * w * c, out_ch=out, k=1,
                     simd=simd, pe=pe, pixels=1, out_size=(1, 1), name="fc")
    # the raster stream of the (C, H, W) input (pixel by pixel, channels together) is the engine's input
    beats = [[beat] for beat in tensor_to_beats(np.stack(images), simd)]
    run = run_streams(dut, {"i": beats}, {"o": 2 * out // pe}, stall=stall, seed=3)
    got = np.array(run.outputs["o"]).reshape(2, out)
    np.testing.assert_array_equal(got, linear_int(np.stack(images), weight)[:, :, 0, 0])


@pytest.mark.parametrize("wb,ab", [(2, 2), (4, 4), (8, 8), (3, 5)])
def test_extreme_codes_fill_accumulators(wb, ab):
    """All weights at +-max, all acts at max: the widest sums; core depth boundaries inside a fold."""
    for sign_seed in (1, 2):
        run_conv(in_ch=4, out_ch=2, hw=(3, 4), k=3, stride=1, pad=1, groups=1, w_bits=wb, a_bits=ab,
                 simd=1, pe=2, pixels=2 if sign_seed == 1 else 1, stall=0.3, seed=sign_seed, extreme=True,
                 frames=1)


def test_all_max_positive_weights_reach_acc_bits():
    """Weights all +max and acts all max: the accumulator's largest value, which must fit acc_bits."""
    wb, ab, c, k = 8, 8, 4, 3
    weight = np.full((2, c, k, k), weight_range(wb)[1])
    dut = ConvEngine(weight, w_bits=wb, a_bits=ab, in_ch=c, out_ch=2, k=k, simd=2, pe=2, pixels=1,
                     out_size=(1, 1), name="max")
    top = c * k * k * weight_range(wb)[1] * act_range(ab)[1]
    assert top < 2 ** (dut.acc_bits - 1) <= 2 * top  # acc_bits is tight
    beats = [[[act_range(ab)[1]] * 2] for _ in range(k * k * c // 2)]
    run = run_streams(dut, {"i": beats + beats}, {"o": 2}, stall=0.3, seed=1)
    assert run.outputs["o"] == [[[top, top]]] * 2
    weight = -weight
    dut = ConvEngine(weight, w_bits=wb, a_bits=ab, in_ch=c, out_ch=2, k=k, simd=2, pe=2, pixels=1,
                     out_size=(1, 1), name="min")
    run = run_streams(dut, {"i": beats}, {"o": 1}, stall=0.0)
    assert run.outputs["o"] == [[[-top, -top]]]


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_shallow_core_depth_segments(depth):
    """Force a shallow plan: folds span several core accumulations, summed in the fabric accumulators."""
    base = next(p for p in plans(4, 4, 3, kinds=("kernel",), max_acts=2) if p.depth >= 5 and p.n_acts == 2)
    plan = base.with_depth(depth)
    dut, _ = run_conv(in_ch=4, out_ch=4, hw=(2, 4), k=3, stride=1, pad=1, groups=1, w_bits=4, a_bits=4,
                      simd=2, pe=2, pixels=2, stall=0.3, seed=depth, plan=plan)
    assert dut.segments == -(-dut.geometry.beats_per_fold // depth)


@pytest.mark.parametrize("case", ["dense3x3_s1_w4a4", "depthwise3x3_w4a4", "dense1x1_w8a8_pe3",
                                  "dense3x3_s2_ragged_pix3"])
def test_cycles_per_frame_matches_simulation(case):
    """Steady-state interval between frame ends, unstalled, within 5 % of the analytic figure."""
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels = CASES[case]
    dut, run = run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb,
                        a_bits=ab, simd=simd, pe=pe, pixels=pixels, stall=0.0, frames=3)
    per = dut.out_beats_per_frame
    ends = run.beat_cycles["o"][per - 1::per]
    measured = (ends[2] - ends[0]) / 2
    assert abs(measured - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), (measured, dut.cycles_per_frame())



def test_consumer_holding_each_beat_for_the_beat_interval_costs_no_cycles():
    """The engine freezes only when its next beat is due while the last is untaken: a consumer that
    holds every beat for the engine's cycles per beat (as a time-shared Requant does) leaves the frame
    interval at the analytic figure (freezing whenever a beat waits would nearly double it here)."""
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels = CASES["dense3x3_s1_w4a4"]
    rng = np.random.default_rng(4)
    weight = random_layer(rng, in_ch=c, out_ch=oc, k=k, groups=groups, w_bits=wb)
    dut = ConvEngine(weight, w_bits=wb, a_bits=ab, in_ch=c, out_ch=oc, k=k, groups=groups, simd=simd, pe=pe,
                     pixels=pixels, out_size=hw, name="hold")
    hold = dut.cycles_per_frame() // dut.out_beats_per_frame
    assert hold >= 8
    images = [rng.integers(0, 16, size=(c, *hw)) for _ in range(3)]
    beats = [b for img in images for b in taps(k, stride, pad, pixels, simd).beats(img)]
    total = len(images) * dut.out_beats_per_frame
    got, taken = [], []

    async def sender(ctx):
        await send(ctx, dut.i, beats)

    async def holder(ctx):
        cycle, budget = 0, 50 * total * hold     # a lost beat ends the run (and fails the count below)
        while len(got) < total and cycle < budget:
            waited = 0
            ctx.set(dut.o.ready, 0)
            while waited < hold - 1 and cycle < budget:   # wait for a beat, then keep it hold - 1 cycles
                _, _, valid = await ctx.tick().sample(dut.o.valid)
                cycle += 1
                waited = waited + 1 if valid else 0
            if waited < hold - 1:
                break
            ctx.set(dut.o.ready, 1)
            _, _, payload = await ctx.tick().sample(dut.o.payload)
            cycle += 1
            got.append(to_python(payload))
            taken.append(cycle)
        ctx.set(dut.o.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(sender, background=True)
    sim.add_testbench(holder)
    sim.run()
    assert len(got) == total
    per = dut.out_beats_per_frame
    for n, img in enumerate(images):
        out = grouped(pe, pixels).to_frame(got[n * per:(n + 1) * per], (oc, *hw), dont_care_zero=True)
        np.testing.assert_array_equal(out, conv_reference(img, weight, stride, pad, groups))
    ends = taken[per - 1::per]
    measured = (ends[2] - ends[0]) / 2
    assert abs(measured - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), (measured, dut.cycles_per_frame())

def test_ragged_figures():
    """UltraNet's first layer at 6 pixels: ceil(320/6) = 54 groups per row set the cycles, and the average
    useful MACs per cycle leave out the 4 empty slots of each row's last group."""
    weight = np.zeros((16, 3, 3, 3), dtype=np.int64)
    dut = ConvEngineSpec(weight, w_bits=4, a_bits=8, in_ch=3, out_ch=16, k=3, simd=3, pe=16, pixels=6,
                         out_size=(160, 320), name="conv0")
    assert dut.groups_per_frame == 160 * 54
    assert dut.cycles_per_frame() == 160 * 54 * 9
    assert dut.cycles_per_frame() * dut.macs_per_cycle == pytest.approx(160 * 320 * 16 * 3 * 9)
    assert dut.in_beats_per_frame == 160 * 54 * 9 and dut.out_beats_per_frame == 160 * 54


def test_figures_estimate_and_lint():
    """DSP count, achieved density, cycles and estimate are consistent; rtlil finds no combinational loop."""
    rng = np.random.default_rng(0)
    weight = rng.integers(-7, 8, size=(8, 4, 3, 3))
    dut = ConvEngine(weight, w_bits=4, a_bits=4, in_ch=4, out_ch=8, k=3, simd=4, pe=4, pixels=2,
                     out_size=(4, 4), name="est")
    assert dut.n_dsps * dut.macs_per_dsp == 4 * 4 * 2
    assert dut.macs_per_dsp <= dut.plan.macs_per_dsp
    assert dut.cycles_per_frame() == 4 * 4 // 2 * (8 // 4) * 9 * 4 // 4
    est = dut.estimate()
    assert est.dsp == dut.n_dsps and est.lut > 0 and est.ff > 0
    assert dut.acc_bits == (4 * 9 * 7 * 15).bit_length() + 1
    assert "module" in rtlil.convert(dut)


@pytest.mark.parametrize("depthwise", [False, True])
def test_padded_slots(depthwise):
    """A plan whose slots overhang pe/pixels (zero-padded), and depthwise use of a multi-weight plan."""
    base = next(p for p in plans(4, 4, 3, kinds=("kernel",), max_acts=2) if p.n_weights == 2 and p.n_acts == 2)
    c, oc, groups, simd, pe = (3, 3, 3, 3, 3) if depthwise else (2, 3, 1, 2, 3)
    dut, _ = run_conv(in_ch=c, out_ch=oc, hw=(3, 3), k=3, stride=1, pad=1, groups=groups, w_bits=4, a_bits=4,
                      simd=simd, pe=pe, pixels=3, stall=0.3, seed=7, plan=base)
    assert dut.n_dsps == (3 * 2 if depthwise else 2 * 2 * 2)


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_ch=3, simd=2), "in_ch 3 not divisible by simd 2"),
    (dict(out_ch=5, pe=6), "pe 6 exceeds out_ch 5"),
    (dict(groups=2), "groups 2 must be 1"),
    (dict(w_bits=9), "w_bits 9 outside"),
    (dict(out_size=(2, 1)), "the width must be at least pixels 2"),
    (dict(groups=4, pe=1), "depthwise pe 1 must equal simd 2"),
    (dict(weight_scale=8), "weight code 8 outside the 4-bit narrow range"),
    (dict(weight_shape=(4, 4, 1, 1)), "weight shape (4, 4, 1, 1)"),
    (dict(out_size=4), "out_size 4 must be (out_height, out_width)"),
    (dict(plan="filter"), "one product per field"),
    (dict(plan="w2a2"), "plan is for w2a2"),
    (dict(weight_store="uram"), "weight_store 'uram' must be one of"),
])
@pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")
def test_bad_configuration_names_layer_and_value(kwargs, message):
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, groups=1, simd=2, pe=2, pixels=2, out_size=(2, 2))
    scale = kwargs.pop("weight_scale", 1)
    shape = kwargs.pop("weight_shape", None)
    args.update(kwargs)
    if args.get("plan") == "filter":
        args["plan"] = plans(4, 4, 3, kinds=("filter",), max_acts=2)[0]
    elif args.get("plan") == "w2a2":
        args["plan"] = plans(2, 2, 3, kinds=("kernel",), max_acts=2)[0]
    shape = shape or (args["out_ch"], args["in_ch"] // args["groups"] if args["groups"] in (1, args["in_ch"])
                      else args["in_ch"], args["k"], args["k"])
    weight = np.ones(shape, dtype=np.int64) * scale
    with pytest.raises(ValueError, match="conv9") as err:
        ConvEngine(weight, name="conv9", **args)
    assert message in str(err.value)
    del err
    gc.collect()  # the half-built component warns "never used" when collected: here, under the filter


@pytest.mark.parametrize("stride,stall", [(1, 0.3), (2, 0.0)])
def test_sliding_window_feeds_engine(stride, stall):
    """The real line buffer in front of the engine: raster pixels in, exact accumulators out."""
    rng = np.random.default_rng(stride)
    c, oc, h, w, k, simd, pe, pixels = 4, 4, 6, 4 * stride, 3, 2, 2, 2
    weight = rng.integers(-7, 8, size=(oc, c, k, k))
    images = rng.integers(0, 16, size=(2, c, h, w))
    window = SlidingWindow(c, h, w, k, stride, "same", lanes=simd, pixels=pixels, bits=4, name="win")
    _, oh, ow = window.out_shape
    engine = ConvEngine(weight, w_bits=4, a_bits=4, in_ch=c, out_ch=oc, k=k, simd=simd, pe=pe, pixels=pixels,
                        out_size=(oh, ow), name="conv")
    dut = Chain(window, engine)
    run = run_streams(dut, {"i": tensor_to_beats(images, simd)}, {"o": 2 * engine.out_beats_per_frame},
                      stall=stall, seed=stride, max_cycles=20_000)
    per = engine.out_beats_per_frame
    for n in range(2):
        got = grouped(pe, pixels).to_frame(run.outputs["o"][n * per:(n + 1) * per], (oc, oh, ow), dont_care_zero=True)
        np.testing.assert_array_equal(got, conv_reference(images[n], weight, stride, k // 2, 1))


@pytest.mark.parametrize("groups", [1, 4])
def test_weight_rom_word_layout(groups):
    """ROM word per (fold, tap, chunk): element [p][s] (dense) or [s] (depthwise), two's complement."""
    rng = np.random.default_rng(groups)
    c, oc, k, simd, pe, wb = 4, 4, 3, 2, 2, 4
    weight = rng.integers(-7, 8, size=(oc, c // groups, k, k))
    geo = check_conv_config(weight, w_bits=wb, a_bits=4, in_ch=c, out_ch=oc, k=k, groups=groups, simd=simd,
                            pe=pe, pixels=1, name="rom")
    words = weight_rom_words(weight, geo, wb)
    assert len(words) == geo.folds * geo.beats_per_fold

    def element(word, e):
        v = (word >> (e * wb)) & ((1 << wb) - 1)
        return v - (1 << wb) if v >> (wb - 1) else v

    for f in range(geo.folds):
        for ky in range(k):
            for kx in range(k):
                if groups == 1:
                    for chunk in range(c // simd):
                        word = words[f * geo.beats_per_fold + (ky * k + kx) * (c // simd) + chunk]
                        for p in range(pe):
                            for s in range(simd):
                                assert element(word, p * simd + s) == weight[f * pe + p, chunk * simd + s, ky, kx]
                else:
                    word = words[f * k * k + ky * k + kx]
                    for s in range(simd):
                        assert element(word, s) == weight[f * simd + s, 0, ky, kx]


# ---- LUT multipliers (multiplier="lut": LutMAC cores, no DSP48E2) ------------------------------------

LUT_CASES = ["dense3x3_s1_w4a4", "dense3x3_s2_w2a2", "dense1x1_w8a8_pe3", "depthwise3x3_w4a4",
             "dense3x3_nopad_w5a3_pix4", "dense5x5_w3a5_scalar", "dense3x3_s2_ragged_pix3"]


@pytest.mark.parametrize("case", LUT_CASES)
def test_lut_engine_matches_reference(case):
    """The engine on LUT cores: bit-exact under stalls, same cycles as on DSPs, 0 DSPs, one core per lane."""
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels = CASES[case]
    dut, _ = run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb,
                      a_bits=ab, simd=simd, pe=pe, pixels=pixels, stall=0.3, seed=stable_seed(case),
                      multiplier="lut")
    assert dut.multiplier == "lut" and dut.plan.multiplier == "lut"
    assert dut.n_dsps == 0 and dut.estimate().dsp == 0 and dut.macs_per_dsp == 0.0
    # dense: one core of pe x pixels dot products over the simd lanes; depthwise: one core per channel lane
    assert dut.n_cores == (simd if groups > 1 else 1)
    assert dut.plan.kind == ("dot" if groups == 1 and simd > 1 else "kernel") and dut.adder_tree.levels == 0
    assert dut.segments == 1                                 # a core accumulates a whole fold
    weight = np.zeros((oc, c // groups, k, k), dtype=np.int64)
    oh, ow = (hw[0] + 2 * pad - k) // stride + 1, (hw[1] + 2 * pad - k) // stride + 1
    dsp = ConvEngineSpec(weight, w_bits=wb, a_bits=ab, in_ch=c, out_ch=oc, k=k, groups=groups, simd=simd, pe=pe,
                         pixels=pixels, out_size=(oh, ow), name="dsp")
    assert dsp.cycles_per_frame() == dut.cycles_per_frame() and dsp.n_dsps > 0


@pytest.mark.parametrize("wb,ab", [(2, 2), (4, 8), (8, 8)])
def test_lut_engine_extreme_codes(wb, ab):
    """All-extreme codes through LUT cores: the accumulators' widest sums, exact."""
    for sign_seed in (1, 2):
        run_conv(in_ch=4, out_ch=2, hw=(3, 4), k=3, stride=1, pad=1, groups=1, w_bits=wb, a_bits=ab,
                 simd=2, pe=2, pixels=2, stall=0.3, seed=sign_seed, extreme=True, frames=1, multiplier="lut")


def test_lut_engine_cycles_match_simulation_and_lint():
    """Unstalled steady state within 5 % of cycles_per_frame; rtlil finds no combinational loop."""
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels = CASES["dense3x3_s1_w4a4"]
    dut, run = run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb,
                        a_bits=ab, simd=simd, pe=pe, pixels=pixels, stall=0.0, frames=3, multiplier="lut")
    per = dut.out_beats_per_frame
    ends = run.beat_cycles["o"][per - 1::per]
    assert abs((ends[2] - ends[0]) / 2 - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()
    assert "module" in rtlil.convert(dut)


@pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")
def test_lut_engine_bad_multiplier_names_layer():
    weight = np.ones((4, 4, 3, 3), dtype=np.int64)
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, simd=2, pe=2, pixels=2, out_size=(2, 2))
    with pytest.raises(ValueError, match="multiplier 'fpga' is not one of .* in layer 'conv9'"):
        ConvEngine(weight, multiplier="fpga", name="conv9", **args)
    with pytest.raises(ValueError, match="runs on 'dsp' multipliers, layer 'conv9' asks for 'lut'"):
        ConvEngine(weight, plan=plans(4, 4, 3, kinds=("kernel",), max_acts=2)[0], multiplier="lut", name="conv9",
                   **args)
    gc.collect()


@pytest.mark.parametrize("wb,ab", [(2, 2), (4, 4), (4, 8), (8, 3), (5, 7)])
@pytest.mark.parametrize("in_ch,out_ch,k,groups,simd,pe,pixels", [
    (8, 16, 3, 1, 4, 8, 5), (8, 16, 1, 1, 1, 16, 3), (12, 12, 3, 12, 3, 3, 4), (6, 4, 5, 1, 6, 2, 1)])
def test_lut_layer_figures_match_the_built_plan(wb, ab, in_ch, out_ch, k, groups, simd, pe, pixels):
    """The folding search's shape-only LUT costing equals the plan the engine builds: cores and LUTs."""
    from mixq_hw.layers.conv_weights import cores_for, lut_layer_figures, lut_layer_plan
    from mixq_hw.packing.lut_core import lut_core_estimate

    weight = np.zeros((out_ch, in_ch // groups, k, k), dtype=np.int64)
    geo = check_conv_config(weight, w_bits=wb, a_bits=ab, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups,
                            simd=simd, pe=pe, pixels=pixels, name="conv3")
    taps, cores, core_luts = lut_layer_figures(geo, wb, ab, "conv3")
    plan = lut_layer_plan(geo, wb, ab, "conv3")
    assert taps.window_kind == "taps" and cores == cores_for(plan, taps)
    assert core_luts == lut_core_estimate(plan, plan.depth)[0]


# ---- digit-split plans (SplitMAC cores: two DSP48E2s each, full-width codes in) -----------------------

def split_plan(wb, ab, k, kind, operand, rounding, n_weights, n_acts):
    """The planner's digit split of (wb, ab, k) with this operand, rounding and slot counts."""
    return next(s for s in split_plans(wb, ab, k, kinds=(kind,)) if (s.operand, s.rounding, s.n_weights, s.n_acts)
                == (operand, rounding, n_weights, n_acts))


# name: (in_ch, out_ch, (h, w), k, stride, pad, groups, w_bits, a_bits, simd, pe, pixels), (operand, rounding,
# weight slots, act slots) of the kernel split
SPLIT_CASES = {
    "w4a4_act_digits_2x4": ((4, 4, (3, 4), 3, 1, 1, 1, 4, 4, 2, 2, 4), ("act", "floor", 2, 4)),
    "w4a4_round_digits_4x2_pe3_padded": ((2, 3, (3, 4), 3, 1, 1, 1, 4, 4, 1, 3, 2), ("weight", "round", 4, 2)),
    "w3a3_trunc_digits_3x4_ragged": ((2, 3, (3, 5), 3, 1, 1, 1, 3, 3, 2, 3, 4), ("weight", "trunc", 3, 4)),
    "w8a4_round_sign_bit_2x3_s2": ((2, 2, (5, 6), 3, 2, 1, 1, 8, 4, 1, 2, 3), ("weight", "round", 2, 3)),
    "w8a5_1x1_round_depth8_segments": ((16, 2, (2, 2), 1, 1, 0, 1, 8, 5, 1, 2, 2), ("weight", "round", 2, 2)),
    "depthwise_w4a4_act_digits": ((2, 2, (3, 4), 3, 1, 1, 2, 4, 4, 2, 2, 4), ("act", "floor", 2, 4)),
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_split_kernel_plan_matches_reference(case):
    """Kernel digit splits (activation digits, floor/round/trunc weight digits, a sign-bit digit layout, a
    depth-8 split over two segments, depthwise) bit-exact under stalls; two DSPs per core."""
    (c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels), how = SPLIT_CASES[case]
    split = split_plan(wb, ab, k, "kernel", *how)
    for stall, seed in ((0.3, 1), (0.7, 2)):
        dut, _ = run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb,
                          a_bits=ab, simd=simd, pe=pe, pixels=pixels, stall=stall, seed=seed, plan=split)
    assert dut.plan is split and dut.n_dsps == 2 * dut.n_cores == dut.estimate().dsp
    assert dut.n_dsps * dut.macs_per_dsp == pytest.approx(dut.macs_per_cycle)
    if "segments" in case:
        assert dut.core_depth == split.depth == 8 and dut.segments == 2


@pytest.mark.parametrize("case", ["w4a4_act_digits_2x4", "w8a5_1x1_round_depth8_segments",
                                  "w3a3_trunc_digits_3x4_ragged"])
def test_split_kernel_plan_extreme_codes(case):
    """All weights at +-max (both digits at their extremes), all acts at max: the recombined fields' bounds."""
    (c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels), how = SPLIT_CASES[case]
    split = split_plan(wb, ab, k, "kernel", *how)
    for seed in (1, 2):
        run_conv(in_ch=c, out_ch=oc, hw=hw, k=k, stride=stride, pad=pad, groups=groups, w_bits=wb, a_bits=ab,
                 simd=simd, pe=pe, pixels=pixels, stall=0.3, seed=seed, extreme=True, frames=1, plan=split)


def test_split_kernel_figures_and_lint():
    """A split engine's DSPs are twice its cores, its cycles are the fold's (as with the single plan the engine
    picks), its estimate counts the DSPs and fabric; rtlil finds no combinational loop."""
    weight = np.zeros((4, 4, 3, 3), dtype=np.int64)
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, simd=2, pe=2, pixels=4, out_size=(4, 4))
    split = ConvEngine(weight, plan=split_plan(4, 4, 3, "kernel", "act", "floor", 2, 4), name="split", **args)
    single = ConvEngineSpec(weight, name="single", **args)
    assert isinstance(split.plan, SplitPlan) and not isinstance(single.plan, SplitPlan)
    assert split.n_dsps == 2 * split.n_cores == 2 * 2 and split.cycles_per_frame() == single.cycles_per_frame()
    assert split.macs_per_dsp == pytest.approx(4 * 2 * 2 / 4)
    est = split.estimate()
    assert est.dsp == split.n_dsps and est.lut > 0 and est.ff > 0
    assert "module" in rtlil.convert(split)


def test_taps_choice_takes_no_split_that_is_not_denser():
    """w4a4 kernel splits (4 MACs/DSP) never beat the 6-MAC single layout: the tap format keeps a Plan."""
    for out_ch, pe, pixels in ((8, 2, 4), (8, 4, 4), (8, 8, 2), (6, 6, 6)):
        dut = ConvEngineSpec(np.zeros((out_ch, 8, 3, 3), dtype=np.int64), w_bits=4, a_bits=4, in_ch=8,
                             out_ch=out_ch, k=3, simd=2, pe=pe, pixels=pixels, out_size=(4, 12), name="taps")
        assert not isinstance(dut.plan, SplitPlan) and dut.n_dsps == dut.n_cores


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_cores_share_weight_words(stall):
    """A kernel plan with the activation sign bit (UltraNet MixQ's conv0.0 mix, w5a7): the cores of the other
    pixel groups take their packed weight word from one WeightWord per weight set, and the engine stays exact."""
    dut, _ = run_conv(in_ch=2, out_ch=4, hw=(3, 6), k=3, stride=1, pad=1, groups=1, w_bits=5, a_bits=7, simd=2, pe=4,
                      pixels=6, stall=stall, seed=17)
    assert dut.plan.act_sign_bit and dut.mac_array.shared_words
    assert len(dut.mac_array.weight_sets) < dut.n_cores
