"""Filter packing in the convolution engine: RowWindow -> ConvEngine (filter plans) against ``conv2d_int``.

RowWindow is checked against a numpy model of its row format; the engine with
filter-packing plans is checked chained after the real RowWindow (raster
pixels in, accumulator groups out) against the integer graph's convolution,
dense and depthwise, 3x3 and 5x5, with random stalls on both streams and two
frames back to back.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.graph.ops import conv2d_int
from mixq_hw.layers.conv import ConvEngine, ConvEngineSpec
from mixq_hw.layers.conv_weights import check_conv_config, geometry_for_plan, weight_rom_words
from mixq_hw.layers.row_window import RowWindow
from mixq_hw.layers.window import SlidingWindow
from mixq_hw.packing import plans
from mixq_hw.packing.layout import act_range, weight_range
from mixq_hw.packing.split import SplitPlan, split_plans
from conv_cases import STALLS, Chain, stable_seed
from sim.formats import grouped, rows
from sim.streams import run_streams
from sim.tensors import tensor_to_beats

def steady_interval(beat_cycles: list[int], per_frame: int) -> float:
    """Cycles between the ends of frames 1 and 3 of a back-to-back run, per frame."""
    ends = beat_cycles[per_frame - 1::per_frame]
    return (ends[2] - ends[0]) / 2


# ---- RowWindow ---------------------------------------------------------------------------------

# name: (channels, height, width, k, pad, lanes, pixels)
WINDOW_CASES = {
    "k3_same_p2_l2": (4, 4, 6, 3, 1, 2, 2),
    "k3_nopad_p4_l1": (2, 5, 6, 3, 0, 1, 4),
    "k5_same_p3_l3": (3, 4, 6, 5, 2, 3, 3),
    "k5_pad1_p1_l1": (1, 5, 5, 5, 1, 1, 1),
    "k3_short_image_p1": (2, 2, 3, 3, 1, 2, 1),    # fewer rows than the kernel: top and bottom padding meet
    "k3_same_ragged_p4": (2, 3, 6, 3, 1, 1, 4),    # 6 columns in groups of 4: the last group holds 2
    "k3_nopad_ragged_p3": (2, 4, 7, 3, 0, 2, 3),   # 5 columns in groups of 3
    "k5_same_ragged_p3": (1, 3, 7, 5, 2, 1, 3),    # 7 columns in groups of 3: the last group holds 1
}


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("case", list(WINDOW_CASES))
def test_row_window_matches_model(case, stall):
    c, h, w, k, pad, lanes, pixels = WINDOW_CASES[case]
    rng = np.random.default_rng(stable_seed(case))
    images = rng.integers(0, 8, size=(2, c, h, w))
    dut = RowWindow(c, h, w, k, pad, lanes=lanes, pixels=pixels, bits=3, name="rw")
    run = run_streams(dut, {"i": tensor_to_beats(images, lanes)}, {"o": 2 * dut.out_beats}, stall=stall,
                      seed=int(stall * 10), max_cycles=40 * 2 * dut.out_beats + 2000)
    expect = rows(k, pad, pixels, lanes).beats(images[0]) + rows(k, pad, pixels, lanes).beats(images[1])
    assert len(expect) == 2 * dut.out_beats
    assert run.outputs["o"] == expect


@pytest.mark.parametrize("case", ["k3_same_p2_l2", "k3_nopad_p4_l1", "k5_same_p3_l3", "k3_nopad_ragged_p3"])
def test_row_window_cycles_per_frame(case):
    c, h, w, k, pad, lanes, pixels = WINDOW_CASES[case]
    dut = RowWindow(c, h, w, k, pad, lanes=lanes, pixels=pixels, bits=3, name="rw")
    images = np.random.default_rng(1).integers(0, 8, size=(3, c, h, w))
    run = run_streams(dut, {"i": tensor_to_beats(images, lanes)}, {"o": 3 * dut.out_beats})
    measured = steady_interval(run.beat_cycles["o"], dut.out_beats)
    assert abs(measured - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), (measured, dut.cycles_per_frame())


def test_row_window_estimate_and_lint():
    dut = RowWindow(8, 10, 20, 3, 1, lanes=4, pixels=4, bits=4, name="rw")
    assert dut.banks % dut.pixels == 0 and dut.banks >= dut.span
    est = dut.estimate()
    assert est.lut > 0 and est.ff > 0 and est.dsp == 0
    assert "module" in rtlil.convert(dut)


@pytest.mark.parametrize("args,message", [
    (dict(channels=3, lanes=2), "channels 3 not divisible by lanes 2"),
    (dict(pixels=7), "pixels 7 exceeds the output width 6 (pixels may be 1..6)"),
    (dict(pad=3), "pad must be an integer 0..2"),
    (dict(height=0), "height must be an integer >= 1"),
    (dict(width=1, pad=0), "smaller than the kernel"),
])
@pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")
def test_row_window_bad_configuration(args, message):
    kwargs = dict(channels=4, height=4, width=6, k=3, pad=1, lanes=2, pixels=2, bits=3)
    kwargs.update(args)
    with pytest.raises(ValueError, match="rw7") as err:
        RowWindow(**kwargs, name="rw7")
    assert message in str(err.value)
    del err
    gc.collect()  # the half-built component warns "never used" when collected: here, under the filter


# ---- ConvEngine with filter plans behind the RowWindow ------------------------------------------

# name: (in_ch, out_ch, (h, w), k, pad, groups, w_bits, a_bits, simd, pe, pixels)
CONV_CASES = {
    "dense3x3_w2a2_scalar": (2, 2, (3, 4), 3, 1, 1, 2, 2, 1, 1, 1),
    "dense3x3_w3a3_s2p2x2": (4, 4, (3, 4), 3, 1, 1, 3, 3, 2, 2, 2),
    "dense3x3_w4a2_s4p4x4_nopad": (4, 4, (3, 6), 3, 0, 1, 4, 2, 4, 4, 4),
    "dense3x3_w2a3_s3p1x3": (3, 2, (2, 6), 3, 1, 1, 2, 3, 3, 1, 3),
    "depthwise3x3_w2a2_x4": (4, 4, (3, 8), 3, 1, 4, 2, 2, 2, 2, 4),
    "depthwise3x3_w3a3_s4x2": (4, 4, (3, 4), 3, 1, 4, 3, 3, 4, 4, 2),
    "dense5x5_w2a2_s2p2x2": (2, 2, (3, 4), 5, 2, 1, 2, 2, 2, 2, 2),
    "dense5x5_w4a2_subrows_x4": (2, 3, (2, 4), 5, 2, 1, 4, 2, 1, 3, 4),
    "depthwise5x5_w2a3_x1": (2, 2, (3, 3), 5, 2, 2, 2, 3, 2, 2, 1),
    "depthwise5x5_w4a2_subrows": (3, 3, (3, 4), 5, 2, 3, 4, 2, 3, 3, 2),
    "dense3x3_w2a2_ragged_x3": (2, 2, (3, 5), 3, 1, 1, 2, 2, 1, 2, 3),        # 5 columns in groups of 3
    "depthwise3x3_w3a3_ragged_x4": (4, 4, (3, 7), 3, 0, 4, 3, 3, 2, 2, 4),   # 5 columns: groups of 4 and 1
}
#: Cases run with a given (taps, act slots) plan instead of the engine's choice, so that a group's window
#: spans two or more cores and the partial fields where cores meet must be added (dense, depthwise, 5x5,
#: sub-rows; the engine's choice covers a single core per window in most of these small shapes).
FORCED_PLANS = {
    "depthwise3x3_w2a2_x4": (3, 3),          # window 6 = 2 cores of 3
    "depthwise3x3_w3a3_s4x2": (3, 2),        # window 4 = 2 cores of 2, depth 97
    "dense5x5_w2a2_s2p2x2": (5, 3),          # window 6 = 2 cores of 3
    "dense5x5_w4a2_subrows_x4": (3, 3),      # 2 sub-rows, window 6 = 2 cores of 3
    "depthwise5x5_w4a2_subrows": (3, 2),     # 2 sub-rows, window 4 = 2 cores of 2
}


def random_weight(rng, shape, w_bits, extreme=False):
    lo, hi = weight_range(w_bits)
    if extreme:
        return rng.choice([lo, hi], size=shape).astype(np.int64)
    return rng.integers(lo, hi + 1, size=shape)


def run_chain(*, in_ch, out_ch, hw, k, pad, groups, w_bits, a_bits, simd, pe, pixels, stall, frames=2, seed=0,
              plan=None, weight=None, images=None, multiplier="dsp"):
    """RowWindow -> ConvEngine on ``frames`` images; every output checked against conv2d_int."""
    rng = np.random.default_rng(seed)
    if weight is None:
        weight = random_weight(rng, (out_ch, in_ch // groups, k, k), w_bits)
    h, w = hw
    if images is None:
        images = rng.integers(0, act_range(a_bits)[1] + 1, size=(frames, in_ch, h, w))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    engine = ConvEngine(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups,
                        simd=simd, pe=pe, pixels=pixels, out_size=(oh, ow), plan=plan, windows=("rows",),
                        multiplier=multiplier, name="fconv")
    assert engine.window_kind == "rows" and engine.plan.kind == "filter"
    window = engine.make_window(h, w, pad)
    assert isinstance(window, RowWindow)
    per = engine.out_beats_per_frame
    run = run_streams(Chain(window, engine), {"i": tensor_to_beats(images, simd)}, {"o": len(images) * per},
                      stall=stall, seed=seed, max_cycles=60 * len(images) * engine.cycles_per_frame() + 5000)
    for n, img in enumerate(images):
        got = grouped(pe, pixels).to_frame(run.outputs["o"][n * per:(n + 1) * per], (out_ch, oh, ow))
        np.testing.assert_array_equal(got, conv2d_int(img[None], weight, 1, pad, groups)[0], err_msg=f"frame {n}")
    return engine, run


@pytest.mark.parametrize("stall", STALLS)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_filter_conv_matches_reference(case, stall):
    c, oc, hw, k, pad, groups, wb, ab, simd, pe, pixels = CONV_CASES[case]
    plan = _filter_plan(wb, ab, k, taps=FORCED_PLANS[case][0], acts=FORCED_PLANS[case][1]) \
        if case in FORCED_PLANS else None
    engine, _ = run_chain(in_ch=c, out_ch=oc, hw=hw, k=k, pad=pad, groups=groups, w_bits=wb, a_bits=ab,
                          simd=simd, pe=pe, pixels=pixels, stall=stall, seed=stable_seed(case, stall), plan=plan)
    if "subrows" in case:
        assert engine.geometry.sub_rows > 1
    if case in FORCED_PLANS:
        # outputs fed by partial fields (fewer than Kp products) of more than one core
        partial = {(x, p) for core in engine._cores for f, x, p, _ in core.outputs
                   if len(engine.plan.fields[f].terms) < engine.plan.n_weights}
        assert partial and len(engine._cores) > engine.simd * (1 if groups > 1 else engine.pe)


def _filter_plan(wb, ab, k, *, taps, acts):
    return next(p for p in plans(wb, ab, k, kinds=("filter",)) if p.n_weights == taps and p.n_acts == acts)


# (w_bits, a_bits, k, taps, act slots, in_ch, pixels): plans whose depth a fold of in_ch channels reaches
EXTREME_CASES = [(2, 2, 3, 3, 5, 3, 3), (4, 4, 3, 3, 2, 4, 2), (3, 3, 3, 3, 4, 1, 2), (2, 3, 5, 5, 3, 1, 1),
                 (8, 8, 3, 2, 1, 3, 1)]


@pytest.mark.parametrize("wb,ab,k,taps,acts,in_ch,pixels", EXTREME_CASES)
def test_extreme_codes_at_full_core_depth(wb, ab, k, taps, acts, in_ch, pixels):
    """Weights all +max, all -max and random +-max, acts all max: every field at its bound after the plan's full depth."""
    plan = _filter_plan(wb, ab, k, taps=taps, acts=acts)
    rng = np.random.default_rng(wb * 10 + ab)
    lo, hi = weight_range(wb)
    shape = (2, in_ch, k, k)
    hw = (k + 1, k - 1 + 2 * pixels)      # no padding: every output reads k*k real pixels
    image = np.full((1, in_ch, *hw), act_range(ab)[1])
    for weight in (np.full(shape, hi), np.full(shape, lo), random_weight(rng, shape, wb, extreme=True)):
        engine, _ = run_chain(in_ch=in_ch, out_ch=2, hw=hw, k=k, pad=0, groups=1, w_bits=wb,
                              a_bits=ab, simd=1, pe=2, pixels=pixels, stall=0.3, plan=plan, weight=weight,
                              images=image)
        assert engine.core_depth == plan.depth < engine.geometry.beats_per_fold   # full depth, then more segments


@pytest.mark.parametrize("case", ["dense3x3_w3a3_s2p2x2", "depthwise3x3_w2a2_x4", "dense5x5_w4a2_subrows_x4",
                                  "dense3x3_w2a2_ragged_x3"])
def test_engine_cycles_per_frame(case):
    """Engine alone, fed numpy row beats unstalled: steady interval within 5 % of cycles_per_frame()."""
    c, oc, (h, w), k, pad, groups, wb, ab, simd, pe, pixels = CONV_CASES[case]
    rng = np.random.default_rng(3)
    weight = random_weight(rng, (oc, c // groups, k, k), wb)
    images = rng.integers(0, act_range(ab)[1] + 1, size=(3, c, h, w))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    dut = ConvEngine(weight, w_bits=wb, a_bits=ab, in_ch=c, out_ch=oc, k=k, groups=groups, simd=simd, pe=pe,
                     pixels=pixels, out_size=(oh, ow), windows=("rows",), name="cyc")
    beats = [b for img in images for b in rows(k, pad, pixels, simd).beats(img)]
    assert len(beats) == 3 * dut.in_beats_per_frame
    run = run_streams(dut, {"i": beats}, {"o": 3 * dut.out_beats_per_frame})
    per = dut.out_beats_per_frame
    for n, img in enumerate(images):
        got = grouped(pe, pixels).to_frame(run.outputs["o"][n * per:(n + 1) * per], (oc, oh, ow))
        np.testing.assert_array_equal(got, conv2d_int(img[None], weight, 1, pad, groups)[0])
    measured = steady_interval(run.beat_cycles["o"], per)
    assert abs(measured - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame(), (measured, dut.cycles_per_frame())


def test_chain_cycles_per_frame_is_the_slower_stage():
    """RowWindow -> engine, unstalled: the chain runs at its slower stage's cycles_per_frame (within 5 %)."""
    c, oc, hw, k, pad, groups, wb, ab, simd, pe, pixels = CONV_CASES["dense3x3_w3a3_s2p2x2"]
    engine, run = run_chain(in_ch=c, out_ch=oc, hw=hw, k=k, pad=pad, groups=groups, w_bits=wb, a_bits=ab,
                            simd=simd, pe=pe, pixels=pixels, stall=0.0, frames=3)
    window = engine.window_spec(*hw, pad)
    expect = max(engine.cycles_per_frame(), window.cycles_per_frame())
    measured = steady_interval(run.beat_cycles["o"], engine.out_beats_per_frame)
    assert abs(measured - expect) <= 0.05 * expect, (measured, expect)


# ---- plan choice, figures, formats, errors -----------------------------------------------------

def _engine(windows, *, w_bits, a_bits, in_ch=64, out_ch=64, k=3, groups=1, simd=8, pe=8, pixels=4,
            out_size=(10, 20), stride=1, plan=None, name="pick"):
    """An engine's spec, for its figures and formats."""
    weight = np.zeros((out_ch, in_ch // groups, k, k), dtype=np.int64)
    engine = ConvEngineSpec(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k, groups=groups,
                        simd=simd, pe=pe, pixels=pixels, out_size=out_size, stride=stride, windows=windows,
                        plan=plan, name=name)
    return engine


@pytest.mark.parametrize("wb,ab,pixels,groups", [(2, 2, 4, 1), (3, 3, 10, 1), (4, 4, 20, 1), (4, 2, 5, 1),
                                                  (2, 2, 4, 64), (4, 4, 2, 64)])
def test_choice_is_the_densest_format(wb, ab, pixels, groups):
    """With both windows allowed the engine takes whichever of its kernel-only and filter-only choices is denser."""
    simd = pe = 8
    kw = dict(w_bits=wb, a_bits=ab, pixels=pixels, groups=groups, simd=simd, pe=pe)
    both, taps, rows = (_engine(w, **kw) for w in (("taps", "rows"), ("taps",), ("rows",)))
    assert both.macs_per_dsp == max(taps.macs_per_dsp, rows.macs_per_dsp)
    assert both.window_kind == ("rows" if rows.macs_per_dsp > taps.macs_per_dsp else "taps")
    for e in (both, taps, rows):
        # cycles x MACs per cycle = the layer's MACs; DSPs x MACs per DSP = MACs per cycle
        macs = 10 * 20 * 64 * 9 * (1 if groups > 1 else 64)
        assert e.cycles_per_frame() * e.macs_per_cycle == macs
        assert e.n_dsps * e.macs_per_dsp == pytest.approx(e.macs_per_cycle)
        assert e.estimate().dsp == e.n_dsps
    if groups > 1:
        # depthwise: a kernel plan uses one weight slot, a filter plan a whole kernel row
        assert rows.macs_per_dsp > taps.macs_per_dsp


def test_stride_two_and_pointwise_stay_on_taps():
    assert _engine(("taps", "rows"), w_bits=2, a_bits=2, stride=2, out_size=(5, 20)).window_kind == "taps"
    assert _engine(("taps", "rows"), w_bits=2, a_bits=2, k=1).window_kind == "taps"
    assert _engine(("taps",), w_bits=2, a_bits=2).window_kind == "taps"   # the default format stays


def test_make_window_matches_the_engine():
    rows = _engine(("rows",), w_bits=3, a_bits=3, in_ch=4, out_ch=4, simd=2, pe=2, pixels=2, out_size=(4, 6))
    taps = _engine(("taps",), w_bits=3, a_bits=3, in_ch=4, out_ch=4, simd=2, pe=2, pixels=2, out_size=(4, 6))
    for engine, kind in ((rows, RowWindow), (taps, SlidingWindow)):
        window = engine.window_spec(4, 6, 1)
        assert window.component_class is kind
        assert window.payload_shape("o") == engine.payload_shape("i")
    assert "module" in rtlil.convert(rows.build())
    assert "module" in rtlil.convert(taps.make_window(4, 6, 1))


@pytest.mark.parametrize("groups", [1, 4])
def test_row_weight_rom_layout(groups):
    """ROM word per (fold, ky, sub-row, chunk): element [p][s][i] (dense) or [s][i], tap m*Kp + Kp-1-i reversed."""
    rng = np.random.default_rng(groups)
    c, oc, k, simd, pe, wb = 4, 4, 5, 2, 2, 4
    weight = rng.integers(-7, 8, size=(oc, c // groups, k, k))
    plan = _filter_plan(4, 4, 5, taps=3, acts=2)
    geo = check_conv_config(weight, w_bits=wb, a_bits=4, in_ch=c, out_ch=oc, k=k, groups=groups, simd=simd,
                            pe=pe if groups == 1 else simd, pixels=2, name="rom")
    geo = geometry_for_plan(geo, plan)
    kp, sub = geo.row_taps, geo.sub_rows
    assert (kp, sub) == (3, 2)
    words = weight_rom_words(weight, geo, wb)
    assert len(words) == geo.folds * geo.beats_per_fold

    def element(word, e):
        v = (word >> (e * wb)) & ((1 << wb) - 1)
        return v - (1 << wb) if v >> (wb - 1) else v

    for f in range(geo.folds):
        for ky in range(k):
            for m in range(sub):
                for i in range(kp):
                    t = m * kp + kp - 1 - i
                    if groups == 1:
                        for chunk in range(c // simd):
                            word = words[f * geo.beats_per_fold + (ky * sub + m) * (c // simd) + chunk]
                            for p in range(pe):
                                for s in range(simd):
                                    want = weight[f * pe + p, chunk * simd + s, ky, t] if t < k else 0
                                    assert element(word, (p * simd + s) * kp + i) == want
                    else:
                        word = words[f * geo.beats_per_fold + ky * sub + m]
                        for s in range(simd):
                            want = weight[f * simd + s, 0, ky, t] if t < k else 0
                            assert element(word, s * kp + i) == want


@pytest.mark.parametrize("kwargs,message", [
    (dict(windows=("rows",), stride=2, out_size=(2, 4)), "the row window needs stride 1"),
    (dict(windows=("bogus",)), "windows ('bogus',) must be a non-empty subset"),
    (dict(plan="filter"), "one product per field"),
    (dict(plan="filter", windows=("rows",), stride=2, out_size=(2, 4)), "filter plans need stride 1"),
    (dict(plan="kernel", windows=("rows",)), "a kernel plan needs the SlidingWindow"),
    (dict(plan="bank", windows=("rows",)), "not 'filter_bank'"),
    (dict(stride=0), "stride 0 must be a positive integer"),
])
@pytest.mark.filterwarnings("ignore::amaranth._unused.UnusedMustUse")
def test_bad_configuration_names_layer_and_value(kwargs, message):
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, simd=2, pe=2, pixels=2, out_size=(4, 4))
    args.update(kwargs)
    kinds = {"filter": ("filter",), "kernel": ("kernel",), "bank": ("filter_bank",)}
    if isinstance(args.get("plan"), str):
        args["plan"] = plans(4, 4, 3, kinds=kinds[args["plan"]], max_acts=2)[0]
    with pytest.raises(ValueError, match="conv9") as err:
        ConvEngine(np.ones((4, 4, 3, 3), dtype=np.int64), name="conv9", **args)
    assert message in str(err.value)
    del err
    gc.collect()  # the half-built component warns "never used" when collected: here, under the filter


def test_make_window_size_mismatch():
    engine = _engine(("rows",), w_bits=3, a_bits=3, in_ch=4, out_ch=4, simd=2, pe=2, pixels=2, out_size=(4, 6),
                     name="conv5")
    with pytest.raises(ValueError, match="conv5.*out_size"):
        engine.window_spec(4, 8, 1)


# ---- digit-split filter plans (SplitMAC cores: two DSP48E2s each) --------------------------------------

def _split_filter_plan(wb, ab, k, operand, rounding, taps, acts):
    return next(s for s in split_plans(wb, ab, k, kinds=("filter",))
                if (s.operand, s.rounding, s.n_weights, s.n_acts) == (operand, rounding, taps, acts))


# name: (in_ch, out_ch, (h, w), k, pad, groups, w_bits, a_bits, simd, pe, pixels), forced split or None (the
# engine's own choice, which must be a split there)
SPLIT_CASES = {
    "w4a4_choice_x3": ((2, 2, (3, 5), 3, 1, 1, 4, 4, 2, 2, 3), None),       # window 5 = 1 core: 4.5 vs 4 MACs/DSP
    "w4a4_act_x8_two_cores": ((2, 2, (3, 8), 3, 1, 1, 4, 4, 1, 2, 8), ("act", "floor", 3, 5)),
    "w5a3_trunc_sign_bit_x6": ((2, 2, (3, 6), 3, 1, 1, 5, 3, 2, 1, 6), ("weight", "trunc", 3, 5)),
    "w7a2_trunc_ragged_x4": ((2, 2, (3, 7), 3, 0, 1, 7, 2, 1, 2, 4), ("weight", "trunc", 3, 5)),
    "depthwise_w4a4_act_x4": ((4, 4, (3, 4), 3, 1, 4, 4, 4, 2, 2, 4), ("act", "floor", 3, 5)),
    "k5_w4a4_act_subrows_x4": ((2, 2, (3, 4), 5, 2, 1, 4, 4, 1, 2, 4), ("act", "floor", 3, 5)),
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_split_filter_plan_matches_reference(case):
    """RowWindow -> engine on digit-split filter plans (activation digits, trunc weight digits with a sign-bit
    digit layout, windows over two cores, ragged groups, depthwise, 5x5 sub-rows): bit-exact under stalls."""
    (c, oc, hw, k, pad, groups, wb, ab, simd, pe, pixels), how = SPLIT_CASES[case]
    plan = None if how is None else _split_filter_plan(wb, ab, k, *how)
    for stall in (0.3, 0.7):
        engine, _ = run_chain(in_ch=c, out_ch=oc, hw=hw, k=k, pad=pad, groups=groups, w_bits=wb, a_bits=ab,
                              simd=simd, pe=pe, pixels=pixels, stall=stall, seed=stable_seed(case, stall),
                              plan=plan)
    assert isinstance(engine.plan, SplitPlan) and engine.n_dsps == 2 * engine.n_cores == engine.estimate().dsp
    if "two_cores" in case or "subrows" in case or "depthwise" in case:
        assert len(engine._cores) == 2 * engine.simd * (1 if groups > 1 else engine.pe)
    if "subrows" in case:
        assert engine.geometry.sub_rows == 2


@pytest.mark.parametrize("wb,ab,operand,rounding", [(4, 4, "act", "floor"), (7, 2, "weight", "trunc")])
def test_split_filter_extreme_codes(wb, ab, operand, rounding):
    """Weights all +max, all -max and random +-max, acts all max: the recombined fields at their bounds."""
    plan = _split_filter_plan(wb, ab, 3, operand, rounding, 3, 5)
    rng = np.random.default_rng(wb * 10 + ab)
    lo, hi = weight_range(wb)
    shape = (2, 2, 3, 3)
    image = np.full((1, 2, 3, 10), act_range(ab)[1])
    for weight in (np.full(shape, hi), np.full(shape, lo), random_weight(rng, shape, wb, extreme=True)):
        run_chain(in_ch=2, out_ch=2, hw=(3, 10), k=3, pad=0, groups=1, w_bits=wb, a_bits=ab, simd=1, pe=2,
                  pixels=8, stall=0.3, plan=plan, weight=weight, images=image)


def test_split_filter_choice_at_ultranet_width():
    """64->64 3x3 w4a4 on a 10x20 map, 20 pixels: the split (act digits, 5 act slots per digit core) gives
    60 MACs on 10 DSPs per lane pair, the single filter layout 60 on 11, the kernel layout 160 on 30."""
    split = _engine(("taps", "rows"), w_bits=4, a_bits=4, pixels=20)
    rows_single = _engine(("rows",), w_bits=4, a_bits=4, pixels=20,
                          plan=_filter_plan(4, 4, 3, taps=3, acts=2))
    taps = _engine(("taps",), w_bits=4, a_bits=4, pixels=20)
    assert isinstance(split.plan, SplitPlan) and split.window_kind == "rows"
    assert split.macs_per_dsp == pytest.approx(6.0) and split.n_dsps == 8 * 8 * 5 * 2
    assert split.macs_per_dsp > max(rows_single.macs_per_dsp, taps.macs_per_dsp)
    assert split.cycles_per_frame() == rows_single.cycles_per_frame()



@pytest.mark.parametrize("stall", STALLS)
def test_filter_cores_share_weight_words(stall):
    """Weights on B with the activation sign bit (UltraNet MixQ's conv1.0 mix, w3a3): the window columns' cores
    of one (lane, output channel) take their packed weight word from one WeightWord, and the engine stays exact."""
    engine, _ = run_chain(in_ch=2, out_ch=2, hw=(3, 12), k=3, pad=1, groups=1, w_bits=3, a_bits=3, simd=2, pe=2,
                          pixels=12, stall=stall, seed=stable_seed("shared", stall))
    assert engine.plan.weight_port == "B" and engine.mac_array.shared_words
    assert len(engine.mac_array.weight_sets) == engine.simd * engine.pe < engine.n_cores
