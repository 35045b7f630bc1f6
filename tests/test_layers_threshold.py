# amaranth: UnusedElaboratable=no
"""ThresholdRequant (the DSP-free requantizer) against mixq_hw.graph.ops.requant, exhaustively, under stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.graph import ops
from mixq_hw.layers.threshold import ThresholdRequant, requant_thresholds
from tests.test_layers_requant import CONSTANTS, TWO_FRAMES, check, check_two_frames, every_acc

# signed codes, LeakyReLU, and a channel whose inc is 0 (constant code) among rising and falling ones
SIGNED = [
    ([5, -3, 0, 2], [-11, 40, -70, 3], 3, 3, None),
    ([9, -7, 1, 0], [20, -5, 0, 100], 4, 4, 2),
    ([2, -1, 4, -6], [0, 1, -3, 12], 1, 2, 1),
]


@pytest.mark.parametrize("consts", range(len(CONSTANTS)))
@pytest.mark.parametrize("acc_bits", [5, 9])
def test_thresholds_exact_every_accumulator(consts, acc_bits):
    """Counting the thresholds passed gives the reference for every accumulator (unsigned, signed, leaky)."""
    cases = [(*c, False, None) for c in CONSTANTS] + [(*c[:4], True, c[4]) for c in SIGNED]
    for inc, bias, shift, out_bits, signed_out, neg_shift in cases[consts::len(CONSTANTS)]:
        acc = np.arange(-2 ** (acc_bits - 1), 2 ** (acc_bits - 1))
        t, desc = requant_thresholds(inc, bias, shift, out_bits, acc_bits, neg_shift=neg_shift,
                                     signed_out=signed_out)
        lo = -2 ** (out_bits - 1) if signed_out else 0
        passed = (acc[None, None, :] >= t[:, :, None]) != desc[:, None, None]
        got = lo + passed.sum(axis=1)
        want = ops.requant(np.broadcast_to(acc, (len(inc), acc.size))[None, :, :, None], inc, bias, shift,
                           out_bits, neg_shift=neg_shift, signed_out=signed_out)[0, :, :, 0]
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("consts", range(len(CONSTANTS)))
@pytest.mark.parametrize("pe, pixels, lanes", [(1, 1, None), (2, 2, None), (4, 1, 2), (2, 2, 1), (1, 2, 2)])
def test_threshold_requant_exhaustive_small_acc(consts, pe, pixels, lanes):
    """Every 5-bit accumulator on every channel and pixel (inc < 0, inc = 0 among them), under stalls."""
    inc, bias, shift, out_bits = CONSTANTS[consts]
    dut = ThresholdRequant(np.array(inc), np.array(bias), shift, acc_bits=5, out_bits=out_bits, pe=pe,
                           pixels=pixels, lanes=lanes)
    assert dut.n_dsps == 0 and dut.estimate().dsp == 0
    acc = every_acc(4, pixels, 5)
    expected = ops.requant(acc[None], inc, bias, shift, out_bits)[0]
    check(dut, acc, expected, stall=(0.0, 0.3, 0.7)[(consts + pe) % 3], seed=consts)


@pytest.mark.parametrize("case", range(len(SIGNED)))
def test_threshold_requant_signed_and_leaky(case):
    """Signed codes and LeakyReLU, every 6-bit accumulator, two folds, time-shared lanes, stalls."""
    inc, bias, shift, out_bits, neg_shift = SIGNED[case]
    dut = ThresholdRequant(np.array(inc), np.array(bias), shift, acc_bits=6, out_bits=out_bits, pe=2, pixels=2,
                           lanes=2, signed_out=True, neg_shift=neg_shift)
    acc = every_acc(4, 2, 6)
    expected = ops.requant(acc[None], inc, bias, shift, out_bits, signed_out=True, neg_shift=neg_shift)[0]
    assert len(np.unique(expected)) > 2
    check(dut, acc, expected, stall=0.3, seed=case)


def test_threshold_requant_cycles_and_no_loop():
    """Two frames back to back run at cycles_per_frame(); the design has no combinational loop."""
    check_two_frames(ThresholdRequant(*TWO_FRAMES, 2, acc_bits=6, out_bits=4, pe=2, pixels=2, lanes=2, height=3,
                                      width=4))
    rtlil.convert(ThresholdRequant(*TWO_FRAMES, 2, acc_bits=6, out_bits=4, pe=2, pixels=2, lanes=2))


def test_threshold_requant_refuses_wide_codes():
    with pytest.raises(ValueError, match=r"out_bits 9 is too wide for thresholds .* in layer 'rq'"):
        ThresholdRequant(np.array([1]), np.array([0]), 2, acc_bits=8, out_bits=9, pe=1, name="rq")
