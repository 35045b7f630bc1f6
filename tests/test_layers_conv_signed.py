"""ConvEngine on signed (two's-complement) input codes, behind its real window, against conv2d_int.

Kernel packing (SlidingWindow), filter packing (RowWindow), depthwise, LUT cores and digit splits, each
with the planner's signed-activation plan, random valid/ready stalls on both streams, two frames back to
back; every code pair of a small layer exhaustively, and the extreme codes that fill the accumulators.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mixq_hw.graph.ops import acc_width, conv2d_int
from mixq_hw.layers.conv import ConvEngine, ConvEngineSpec
from mixq_hw.layers.conv_weights import check_conv_config, choose_plan
from mixq_hw.packing.bits import signed_act_range
from mixq_hw.packing.layout import weight_range
from conv_cases import STALLS, Chain, stable_seed
from sim.formats import grouped
from sim.streams import run_streams
from sim.tensors import tensor_to_beats

def run_signed(weight: np.ndarray, images: np.ndarray, *, k: int, stride: int, pad: int, groups: int, w_bits: int,
               a_bits: int, simd: int, pe: int, pixels: int, stall: float, seed: int, windows=("taps", "rows"),
               multiplier: str = "dsp", plan=None) -> ConvEngine:
    """Window + engine with signed input codes on ``images`` (N, C, H, W); every output checked exactly."""
    out_ch, in_ch = weight.shape[0], images.shape[1]
    h, w = images.shape[2:]
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    engine = ConvEngine(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups,
                        simd=simd, pe=pe, pixels=pixels, out_size=(oh, ow), stride=stride, windows=windows,
                        multiplier=multiplier, plan=plan, signed_act=True, name="sconv")
    assert engine.plan.signed_act and engine.i.payload.shape().elem_shape.elem_shape.signed
    window = engine.make_window(h, w, pad)
    per = engine.out_beats_per_frame
    run = run_streams(Chain(window, engine), {"i": tensor_to_beats(images, simd)}, {"o": len(images) * per},
                      stall=stall, seed=seed, max_cycles=60 * len(images) * engine.cycles_per_frame() + 5000)
    for n, img in enumerate(images):
        got = grouped(pe, pixels).to_frame(run.outputs["o"][n * per:(n + 1) * per], (out_ch, oh, ow),
                                           dont_care_zero=engine.window_kind == "taps")
        np.testing.assert_array_equal(got, conv2d_int(img[None], weight, stride, pad, groups)[0], err_msg=f"frame {n}")
    return engine


def signed_images(rng, a_bits: int, shape: tuple[int, ...]) -> np.ndarray:
    lo, hi = signed_act_range(a_bits)
    x = rng.integers(lo, hi + 1, size=shape)
    x.reshape(-1)[:2] = lo, hi          # both ends of the range in every run
    return x


# name: (in_ch, out_ch, (h, w), k, stride, pad, groups, w_bits, a_bits, simd, pe, pixels, windows, multiplier)
CASES = {
    "taps3x3_s1_w4a4": (4, 4, (4, 4), 3, 1, 1, 1, 4, 4, 2, 2, 2, ("taps",), "dsp"),
    "taps3x3_s2_w2a3": (2, 4, (6, 6), 3, 2, 1, 1, 2, 3, 2, 4, 2, ("taps",), "dsp"),
    "taps1x1_w8a8_pe3": (4, 6, (3, 4), 1, 1, 0, 1, 8, 8, 2, 3, 2, ("taps",), "dsp"),
    "rows3x3_w2a2_pix4": (2, 2, (5, 6), 3, 1, 1, 1, 2, 2, 1, 2, 4, ("rows",), "dsp"),
    "rows3x3_w4a3_ragged": (2, 2, (4, 5), 3, 1, 1, 1, 4, 3, 2, 2, 3, ("rows",), "dsp"),
    "depthwise3x3_w4a4": (4, 4, (4, 4), 3, 1, 1, 4, 4, 4, 2, 2, 2, ("taps", "rows"), "dsp"),
    "lut3x3_w3a5": (2, 2, (4, 4), 3, 1, 1, 1, 3, 5, 2, 2, 2, ("taps",), "lut"),
    "lut_depthwise3x3_w2a4": (2, 2, (4, 4), 3, 1, 1, 2, 2, 4, 2, 2, 2, ("taps",), "lut"),
    "split1x1_w7a2": (4, 3, (2, 6), 1, 1, 0, 1, 7, 2, 2, 3, 3, ("taps",), "dsp"),
}


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("case", list(CASES))
def test_signed_conv_matches_reference(case, stall):
    c, oc, hw, k, stride, pad, groups, wb, ab, simd, pe, pixels, windows, mult = CASES[case]
    seed = stable_seed(case, stall)
    rng = np.random.default_rng(seed)
    lo, hi = weight_range(wb)
    weight = rng.integers(lo, hi + 1, size=(oc, c // groups, k, k))
    engine = run_signed(weight, signed_images(rng, ab, (2, c, *hw)), k=k, stride=stride, pad=pad, groups=groups,
                        w_bits=wb, a_bits=ab, simd=simd, pe=pe, pixels=pixels, stall=stall, seed=seed,
                        windows=windows, multiplier=mult)
    if len(windows) == 1:
        assert engine.window_kind == windows[0]
    assert engine.multiplier == mult
    if case.startswith("split"):
        assert engine.plan.plan_type == "split" and engine.n_dsps == 2 * engine.n_cores


@pytest.mark.parametrize("wb,ab", [(2, 2), (3, 2), (2, 3)])
def test_every_code_pair_of_a_two_lane_dot(wb, ab):
    """1x1 conv over two channels: every pair of signed codes (pixels) meets every pair of weights (output
    channels), so each output is one of all (w0*a0 + w1*a1) combinations, under stalls."""
    alo, ahi = signed_act_range(ab)
    wlo, whi = weight_range(wb)
    acts = np.array(list(itertools.product(range(alo, ahi + 1), repeat=2))).T          # (2, n)
    weights = np.array(list(itertools.product(range(wlo, whi + 1), repeat=2)))          # (out, 2)
    width = acts.shape[1]
    images = acts.reshape(1, 2, 1, width)
    pe = next(p for p in (3, 5, 2, 1) if weights.shape[0] % p == 0)
    run_signed(weights.reshape(-1, 2, 1, 1), images, k=1, stride=1, pad=0, groups=1, w_bits=wb, a_bits=ab,
               simd=2, pe=pe, pixels=2, stall=0.3, seed=wb * 10 + ab, windows=("taps",))


@pytest.mark.parametrize("windows", [("taps",), ("rows",)])
@pytest.mark.parametrize("wb,ab", [(2, 2), (4, 4), (8, 8), (3, 5)])
def test_extreme_codes_reach_the_accumulator_width(windows, wb, ab):
    """Acts all -2**(a-1) against weights all +max, all -max and random +-max: the accumulators reach
    +-fan_in*max|w|*2**(a-1), which acc_bits (from the signed bound) holds exactly."""
    rng = np.random.default_rng(wb * 10 + ab)
    lo, hi = weight_range(wb)
    c, k = 3, 3
    images = np.full((1, c, 4, 5), signed_act_range(ab)[0])
    for weight in (np.full((2, c, k, k), hi), np.full((2, c, k, k), lo), rng.choice([lo, hi], size=(2, c, k, k))):
        engine = run_signed(weight.astype(np.int64), images, k=k, stride=1, pad=0, groups=1, w_bits=wb, a_bits=ab,
                            simd=1, pe=2, pixels=3, stall=0.3, seed=1, windows=windows)
        assert engine.acc_bits == acc_width(c * k * k, wb, ab, True) < acc_width(c * k * k, wb, ab)


def test_plan_choice_and_refusals_name_the_layer():
    weight = np.ones((4, 4, 3, 3), dtype=np.int64)
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, simd=2, pe=2, pixels=2, out_size=(4, 4), name="l7")
    geo = check_conv_config(weight, w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, groups=1, simd=2, pe=2,
                            pixels=2, name="l7")
    signed_plan = choose_plan(geo, 4, 4, "l7", signed_act=True)
    unsigned_plan = choose_plan(geo, 4, 4, "l7")
    assert signed_plan.signed_act and not unsigned_plan.signed_act
    assert ConvEngineSpec(weight, signed_act=True, **args).plan == signed_plan
    with pytest.raises(ValueError, match="plan is for unsigned activation codes, layer 'l7' reads signed ones"):
        ConvEngineSpec(weight, signed_act=True, plan=unsigned_plan, **args)
    with pytest.raises(ValueError, match="plan is for signed activation codes, layer 'l7' reads unsigned ones"):
        ConvEngineSpec(weight, plan=signed_plan, **args)
    with pytest.raises(ValueError, match="signed_act must be True or False, not 1 in layer 'l7'"):
        ConvEngineSpec(weight, signed_act=1, **args)


@pytest.mark.parametrize("wb,ab", [(2, 2), (4, 4), (3, 8)])
@pytest.mark.parametrize("in_ch,out_ch,k,groups,simd,pe,pixels", [(8, 16, 3, 1, 4, 8, 5), (12, 12, 3, 12, 3, 3, 4)])
def test_folding_figures_match_the_built_signed_engine(wb, ab, in_ch, out_ch, k, groups, simd, pe, pixels):
    """The folding search's costing of a layer on signed codes (DSP plan choice, LUT shape-only estimate)
    equals the engine it builds."""
    from mixq_hw.layers.conv_weights import cores_for, dsps_per_core, geometry_for_plan, lut_layer_figures
    from mixq_hw.packing.lut_core import lut_core_estimate

    weight = np.zeros((out_ch, in_ch // groups, k, k), dtype=np.int64)
    args = dict(w_bits=wb, a_bits=ab, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups, simd=simd, pe=pe,
                pixels=pixels)
    geo = check_conv_config(weight, name="c", **args)
    dsp = ConvEngineSpec(weight, out_size=(4, 8), windows=("taps", "rows"), signed_act=True, **args)
    plan = choose_plan(geo, wb, ab, "c", windows=("taps", "rows"), signed_act=True)
    assert dsp.plan == plan and dsp.n_dsps == cores_for(plan, geometry_for_plan(geo, plan)) * dsps_per_core(plan)
    lut = ConvEngineSpec(weight, out_size=(4, 8), multiplier="lut", signed_act=True, **args)
    taps, cores, core_luts = lut_layer_figures(geo, wb, ab, "c", signed_act=True)
    assert lut.plan.signed_act and cores == cores_for(lut.plan, taps)
    assert core_luts == lut_core_estimate(lut.plan, lut.plan.depth)[0]
