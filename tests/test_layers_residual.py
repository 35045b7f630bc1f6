# amaranth: UnusedElaboratable=no
"""Residual add against its integer contract: every code pair of small widths, several alignments, stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import STALLS, codes, frame_intervals, run_tensors

from mixq_hw.layers.reference import residual_add, residual_bounds
from mixq_hw.layers.residual import Rescale, Residual, code_range, csd_digits, residual_sum_bits

FRAMES = 2


def all_pairs(bits_a: int, signed_a: bool, bits_b: int, signed_b: bool, lanes: int) -> tuple[np.ndarray, ...]:
    """Every (a, b) code pair once, as two (FRAMES, C, 1, W) batches (padded to whole beats by repeating)."""
    ra, rb = code_range(bits_a, signed_a), code_range(bits_b, signed_b)
    pairs = np.array(list(itertools.product(range(ra[0], ra[1] + 1), range(rb[0], rb[1] + 1))))
    per_frame = -(-len(pairs) // FRAMES)
    per_frame += -per_frame % (2 * lanes)
    pairs = np.resize(pairs, (FRAMES * per_frame, 2))
    shape = (FRAMES, 2 * lanes, 1, per_frame // (2 * lanes))
    return pairs[:, 0].reshape(shape), pairs[:, 1].reshape(shape)


def run_residual(a: np.ndarray, b: np.ndarray, lanes: int, stall: float, seed: int, **kwargs) -> None:
    frames, channels, height, width = a.shape
    dut = Residual(channels, height, width, lanes, **kwargs)
    expected = residual_add(a, b, kwargs["m0"], kwargs["m1"], kwargs["shift"], dut.out_range, kwargs.get("neg_shift"))
    got, run = run_tensors(dut, {"i0": (a, lanes), "i1": (b, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    if stall == 0.0:
        assert np.all(frame_intervals(run, "o", frames) == dut.cycles_per_frame())


ALIGNMENTS = [  # (m0, m1, shift): equal steps, a step twice b's, odd ratios with rounding, a negative multiplier
    (1, 1, 0), (2, 1, 1), (3, 5, 2), (7, 1, 3), (-3, 4, 1), (1, 0, 0), (13, 11, 4),
]


@pytest.mark.parametrize("m0,m1,shift", ALIGNMENTS)
def test_residual_exhaustive_code_pairs(m0: int, m1: int, shift: int) -> None:
    """Every pair of 3-bit codes (unsigned/signed each side) into unsigned (ReLU fused) and signed outputs."""
    for index, (signed_a, signed_b, out_signed) in enumerate(itertools.product((False, True), repeat=3)):
        lanes = 1 + index % 3
        a, b = all_pairs(3, signed_a, 3, signed_b, lanes)
        stall = STALLS[index % len(STALLS)]
        run_residual(a, b, lanes, stall, seed=index, bits_a=3, bits_b=3, out_bits=3, m0=m0, m1=m1, shift=shift,
                     signed_a=signed_a, signed_b=signed_b, out_signed=out_signed)


@pytest.mark.parametrize("m0,m1,shift", ALIGNMENTS)
@pytest.mark.parametrize("k", [1, 3])
def test_residual_leaky_exhaustive_code_pairs(m0: int, m1: int, shift: int, k: int) -> None:
    """Every pair of 3-bit codes (signed or unsigned sides) into signed codes through LeakyReLU 2**-k."""
    for index, (signed_a, signed_b) in enumerate(itertools.product((False, True), repeat=2)):
        lanes = 1 + index % 2
        a, b = all_pairs(3, signed_a, 3, signed_b, lanes)
        run_residual(a, b, lanes, STALLS[(index + k) % len(STALLS)], seed=index + k, bits_a=3, bits_b=3,
                     out_bits=3, m0=m0, m1=m1, shift=shift, signed_a=signed_a, signed_b=signed_b,
                     out_signed=True, neg_shift=k)


def test_residual_leaky_reference_rounds_after_the_slope() -> None:
    """Plain Python integers: a negative sum is rounded half up after the slope, a positive one before it."""
    a = np.arange(-64, 64).reshape(1, 1, 1, -1)
    got = residual_add(a, a, 3, 0, 2, (-128, 127), neg_shift=2)
    want = [(3 * v + 2) // 4 if (3 * v + 2) // 4 >= 0 else (3 * v + 8) // 16 for v in range(-64, 64)]
    assert got.ravel().tolist() == want
    assert residual_add(np.array([[[[-6]]]]), np.zeros((1, 1, 1, 1), np.int64), 1, 0, 0, (-8, 7), 3).item() == -1
    assert residual_add(np.array([[[[-4]]]]), np.zeros((1, 1, 1, 1), np.int64), 1, 0, 0, (-8, 7), 3).item() == 0


@pytest.mark.parametrize("m,shift", [(1, 0), (3, 1), (-5, 2), (2862, 12), (7, 3)])
@pytest.mark.parametrize("k", [None, 1, 3])
def test_rescale_exhaustive_codes(m: int, shift: int, k: int | None) -> None:
    """Every 4-bit code (unsigned or signed) re-scaled into unsigned or signed codes (LeakyReLU with k), under
    stalls: the add with m1 = 0, on one input."""
    for index, (signed_in, out_signed) in enumerate(itertools.product((False, True), repeat=2)):
        if k is not None and not out_signed:
            continue
        lanes = 1 + index % 2
        lo, hi = code_range(4, signed_in)
        x = np.resize(np.arange(lo, hi + 1), FRAMES * 2 * lanes * 8).reshape(FRAMES, 2 * lanes, 1, 8)
        dut = Rescale(2 * lanes, 1, 8, lanes, bits=4, out_bits=3, m=m, shift=shift, signed_in=signed_in,
                      out_signed=out_signed, neg_shift=k)
        expected = residual_add(x, np.zeros_like(x), m, 0, shift, dut.out_range, k)
        stall = STALLS[(index + shift) % len(STALLS)]
        got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed=index + shift)
        np.testing.assert_array_equal(got["o"], expected)
        if stall == 0.0:
            assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())


def test_rescale_estimate_and_errors() -> None:
    dut = Rescale(8, 4, 4, 4, bits=8, out_bits=4, m=2862, shift=15, signed_in=True, out_signed=True, neg_shift=3)
    assert dut.estimate().dsp == 0 and dut.estimate().lut > 0 and "$mul" not in rtlil.convert(dut)
    with pytest.raises(ValueError, match="neg_shift 2 .LeakyReLU. needs out_signed: .* in layer 'rs'"):
        Rescale(4, 2, 2, 2, bits=3, out_bits=3, m=3, shift=1, neg_shift=2, name="rs")
    with pytest.raises(ValueError, match="m must be an integer, not 1.5 in layer 'rs'"):
        Rescale(4, 2, 2, 2, bits=3, out_bits=3, m=1.5, shift=1, name="rs")


def test_residual_random_wider_under_stalls() -> None:
    rng = np.random.default_rng(4)
    for stall in STALLS:
        a, b = codes(rng, (FRAMES, 8, 3, 4), 4), codes(rng, (FRAMES, 8, 3, 4), 6, signed=True)
        run_residual(a, b, 4, stall, seed=int(10 * stall), bits_a=4, bits_b=6, out_bits=5, m0=37, m1=-21, shift=5,
                     signed_b=True, out_signed=True)


def test_sum_width_is_exact_and_least() -> None:
    for (m0, m1, shift), sa, sb in itertools.product(ALIGNMENTS, (False, True), (False, True)):
        ra, rb = code_range(4, sa), code_range(3, sb)
        lo, hi = residual_bounds(ra, rb, m0, m1, shift)
        w = residual_sum_bits(ra, rb, m0, m1, shift)
        assert -(1 << (w - 1)) <= lo and hi < (1 << (w - 1))
        assert lo < -(1 << (w - 2)) or hi >= (1 << (w - 2)) or w == 1


def test_residual_estimate_and_rtlil() -> None:
    dut = Residual(64, 8, 8, 8, bits_a=4, bits_b=4, out_bits=4, m0=3, m1=5, shift=2)
    assert dut.estimate().dsp == 0 and dut.estimate().lut > 0 and dut.sum_bits == 8      # 3*15 + 5*15 + 2 = 122
    assert "$mul" not in rtlil.convert(dut)         # shifts and adds: synthesis has no multiply to put in a DSP


@pytest.mark.parametrize("kwargs,message", [
    (dict(shift=-1), "shift must be an integer >= 0, not -1 in layer 'add'"),
    (dict(m0=1.5), "m0 must be an integer, not 1.5 in layer 'add'"),
    (dict(lanes=3), "channels 4 not divisible by lanes 3 in layer 'add'"),
    (dict(out_bits=0), "out_bits must be a positive integer, not 0 in layer 'add'"),
    (dict(neg_shift=2), "neg_shift 2 .LeakyReLU. needs out_signed: .* in layer 'add'"),
    (dict(neg_shift=0, out_signed=True), "neg_shift .* must be an integer 1..31, not 0 in layer 'add'"),
])
def test_residual_rejects_bad_configuration(kwargs, message: str) -> None:
    args = dict(channels=4, height=2, width=2, lanes=2, bits_a=3, bits_b=3, out_bits=3, m0=1, m1=1, shift=0)
    with pytest.raises(ValueError, match=message):
        Residual(**(args | kwargs), name="add")


def test_csd_digits() -> None:
    for value in range(-300, 301):
        digits = csd_digits(value)
        assert sum(sign << shift for shift, sign in digits) == value
        shifts = [shift for shift, _ in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))         # non-adjacent: the canonical form
    assert csd_digits(7) == [(0, -1), (3, 1)] and csd_digits(0) == []
