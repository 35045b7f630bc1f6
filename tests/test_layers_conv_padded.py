# amaranth: UnusedElaboratable=no
"""ConvEngine with ``pe`` not dividing ``out_ch``: the last fold computes zero filters (accumulators 0).

Every ``pe`` that does not divide ``out_ch`` for out_ch 3, 5 and 7, on packed DSPs, LUT cores and P cascades,
with the SlidingWindow (kernel plans) and the RowWindow (filter plans), under random stalls, two frames
against ``conv2d_int``; the padded lanes must hold 0 (``dont_care_zero``).  The frame interval, measured
without stalls, is the engine's analytic ``cycles_per_frame``.
"""

from __future__ import annotations

import numpy as np
import pytest

from mixq_hw.graph.ops import conv2d_int
from mixq_hw.layers.conv import ConvEngine, ConvEngineSpec
from mixq_hw.packing.layout import act_range, weight_range
from conv_cases import Chain, stable_seed
from sim.formats import grouped
from sim.streams import run_streams
from sim.tensors import tensor_to_beats

PADDED = [(oc, pe) for oc in (3, 5, 7) for pe in range(2, oc) if oc % pe]


def run_padded(*, in_ch, out_ch, hw, k, w_bits, a_bits, simd, pe, pixels, multiplier="dsp", windows=("taps",),
               stall=0.4, frames=2, seed=0):
    """Window -> engine on random images; every frame checked exactly; returns the engine and the run."""
    rng = np.random.default_rng(seed)
    lo, hi = weight_range(w_bits)
    weight = rng.integers(lo, hi + 1, size=(out_ch, in_ch, k, k))
    images = rng.integers(0, act_range(a_bits)[1] + 1, size=(frames, in_ch, *hw))
    pad = k // 2
    engine = ConvEngine(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k, simd=simd, pe=pe,
                        pixels=pixels, out_size=hw, multiplier=multiplier, windows=windows, name="t")
    dut = Chain(engine.make_window(*hw, pad), engine)
    per = engine.out_beats_per_frame
    assert per == -(-hw[1] // pixels) * hw[0] * -(-out_ch // pe)
    run = run_streams(dut, {"i": tensor_to_beats(images, simd)}, {"o": frames * per}, stall=stall, seed=seed,
                      max_cycles=200 * frames * engine.cycles_per_frame() + 5000)
    got = run.outputs["o"]
    for n in range(frames):
        expect = conv2d_int(images[n:n + 1], weight, stride=1, pad=pad)[0]
        # the padded lanes hold 0; a ragged group's slots past the width (filter plans: real pixels) are not
        # checked
        out = grouped(pe, pixels).to_frame(got[n * per:(n + 1) * per], (out_ch, *hw),
                                           dont_care_zero=hw[1] % pixels == 0)
        np.testing.assert_array_equal(out, expect, err_msg=f"frame {n}")
    return engine, run


@pytest.mark.parametrize("out_ch, pe", PADDED)
@pytest.mark.parametrize("multiplier", ["dsp", "lut", "cascade"])
def test_padded_pe_kernel_plans(out_ch, pe, multiplier):
    run_padded(in_ch=2, out_ch=out_ch, hw=(3, 4), k=3, w_bits=3, a_bits=3, simd=2, pe=pe, pixels=2,
               multiplier=multiplier, seed=stable_seed(out_ch, pe, multiplier))


@pytest.mark.parametrize("out_ch, pe", PADDED)
@pytest.mark.parametrize("pixels", [2, 3])
def test_padded_pe_filter_plans(out_ch, pe, pixels):
    """The RowWindow and a filter plan (w2a3: several taps per multiply); 3 pixels over width 4 are ragged."""
    engine, _ = run_padded(in_ch=2, out_ch=out_ch, hw=(3, 4), k=3, w_bits=2, a_bits=3, simd=1, pe=pe,
                           pixels=pixels, windows=("rows",), seed=stable_seed("rows", out_ch, pe))
    assert engine.window_kind == "rows"


@pytest.mark.parametrize("multiplier, windows", [("dsp", ("taps",)), ("dsp", ("taps", "rows")), ("lut", ("taps",))])
def test_padded_pe_interval_is_analytic(multiplier, windows):
    """64 -> 5 channels at pe 2 (3 folds, one lane padded), no stalls: frames 1 and 2 end cycles_per_frame
    apart (within 5 %), and the useful MACs per cycle leave out the padded lane."""
    engine, run = run_padded(in_ch=4, out_ch=5, hw=(4, 6), k=3, w_bits=3, a_bits=3, simd=2, pe=2, pixels=2,
                             multiplier=multiplier, windows=windows, stall=0.0, frames=3, seed=5)
    per = engine.out_beats_per_frame
    ends = run.beat_cycles["o"][per - 1::per]
    measured = ends[2] - ends[1]
    assert abs(measured - engine.cycles_per_frame()) <= 0.05 * engine.cycles_per_frame()
    assert engine.cycles_per_frame() * engine.macs_per_cycle == pytest.approx(4 * 6 * 5 * 4 * 9)


def test_padded_pe_errors():
    weight = np.zeros((5, 4, 3, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="pe 6 exceeds out_ch 5 in layer 'c'"):
        ConvEngineSpec(weight, w_bits=3, a_bits=3, in_ch=4, out_ch=5, k=3, simd=2, pe=6, pixels=1, out_size=(2, 2),
                       name="c")
    dw = np.zeros((4, 1, 3, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="depthwise pe 3 must equal simd 2"):
        ConvEngineSpec(dw, w_bits=3, a_bits=3, in_ch=4, out_ch=4, k=3, groups=4, simd=2, pe=3, pixels=1,
                       out_size=(2, 2), name="c")
