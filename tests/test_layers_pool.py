# amaranth: UnusedElaboratable=no
"""MaxPool2x2 (unpadded and padded) against the Graph's maxpool2x2 and the padded reference, exhaustive over small
shapes, with random stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.back import rtlil
from stream_cases import frame_intervals, run_tensors

from mixq_hw.graph.ops import maxpool2x2
from mixq_hw.layers.pool import MaxPool2x2
from mixq_hw.layers.reference import maxpool
from sim.streams import run_streams
from sim.tensors import beats_to_tensor, tensor_to_beats

FRAMES = 3
STALLS = (0.0, 0.3, 0.7)


def random_codes(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    x = rng.integers(0, 2 ** bits, size=shape, dtype=np.int64)
    x.flat[0], x.flat[-1] = 2 ** bits - 1, 0        # both extremes in every test
    return x


def run_pool(channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int):
    dut = MaxPool2x2(channels, height, width, lanes, bits)
    rng = np.random.default_rng(seed)
    x = random_codes(rng, (FRAMES, channels, height, width), bits)
    expected = maxpool2x2(x) if height % 2 == width % 2 == 0 else maxpool(x, pad=0)
    assert expected.shape[1:] == dut.out_shape
    out_beats = expected.size // lanes
    run = run_streams(dut, {"i": tensor_to_beats(x, lanes)}, {"o": out_beats}, stall=stall, seed=seed,
                      max_cycles=200 + 20 * x.size)
    got = beats_to_tensor(run.outputs["o"], expected.shape, lanes)
    np.testing.assert_array_equal(got, expected)
    return dut, run, out_beats // FRAMES


@pytest.mark.parametrize("height,width", list(itertools.product((2, 4, 6), (2, 4, 6))))
def test_pool_exhaustive_small_shapes(height: int, width: int) -> None:
    for index, (lanes, bits) in enumerate(itertools.product((1, 2, 4), (1, 3))):
        channels = lanes * (1 + index % 2)      # one or two beats per pixel
        for stall in STALLS:
            dut, run, per_frame = run_pool(channels, height, width, lanes, bits, stall,
                                           seed=height * 1000 + width * 100 + index * 10 + int(10 * stall))
            if stall == 0.0:
                # Steady-state frame interval: last output beat of frame f+1 minus that of frame f.
                ends = [run.beat_cycles["o"][(f + 1) * per_frame - 1] for f in range(FRAMES)]
                intervals = np.diff(ends)
                assert np.all(np.abs(intervals - dut.cycles_per_frame()) <= 0.05 * dut.cycles_per_frame()), \
                    (intervals, dut.cycles_per_frame())


@pytest.mark.parametrize("height,width", [(h, w) for h, w in itertools.product((2, 3, 4, 5), repeat=2)
                                          if h % 2 or w % 2])
def test_pool_odd_sizes_floor_mode(height: int, width: int) -> None:
    """Unpadded with an odd height or width: PyTorch's floor mode (the last row / column dropped), one or two
    beats per pixel, under stalls, one input beat per cycle."""
    for index, lanes in enumerate((1, 2, 3)):
        channels = lanes * (1 + (index + height + width) % 2)
        for stall in STALLS:
            dut, run, per_frame = run_pool(channels, height, width, lanes, 3, stall,
                                           seed=height * 1000 + width * 100 + index * 10 + int(10 * stall))
            if stall == 0.0:
                assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())


def test_floor_mode_reference_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = random_codes(np.random.default_rng(6), (2, 3, 9, 7), 4)
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x).float(), 2, 2).numpy()
    np.testing.assert_array_equal(maxpool(x, pad=0), want.astype(np.int64))


def test_pool_wider_random() -> None:
    run_pool(12, 9, 9, 4, 4, 0.3, seed=9)      # DiracDeltaNetSmall's 9x9 map
    run_pool(16, 4, 8, 4, 4, 0.3, seed=7)
    run_pool(12, 6, 4, 3, 8, 0.5, seed=8)


def test_pool_output_cadence_at_full_rate() -> None:
    """At stall 0 the pool never back-pressures: one input beat per cycle for the whole frame."""
    dut, run, per_frame = run_pool(4, 4, 4, 2, 3, 0.0, seed=3)
    total_in = FRAMES * 4 * 4 * 2
    # The last output leaves a couple of cycles after the last input beat entered.
    assert run.beat_cycles["o"][-1] <= total_in + 3


@pytest.mark.parametrize("channels,height,width,lanes,bits", [(4, 4, 6, 2, 3), (3, 2, 2, 1, 1), (64, 20, 40, 4, 4)])
def test_pool_converts_to_rtlil(channels: int, height: int, width: int, lanes: int, bits: int) -> None:
    text = rtlil.convert(MaxPool2x2(channels, height, width, lanes, bits))
    assert "memory" in text or "$mem" in text


def test_pool_estimate_uses_line_buffer() -> None:
    small = MaxPool2x2(4, 4, 4, 2, 3).estimate()
    big = MaxPool2x2(64, 40, 80, 4, 4).estimate()
    assert small.bram36 == 0 and small.lut > 0 and small.ff > 0
    assert big.bram36 >= 0.5          # 40 * 16 words of 16 bits = 10 Kb: one BRAM18
    assert small.dsp == big.dsp == 0


@pytest.mark.parametrize("args,message", [
    ((6, 4, 4, 4, 3), "channels 6 not divisible by lanes 4 in layer 'p1'"),
    ((4, 1, 4, 2, 3), "at least 2x2 codes, got 1x4 in layer 'p1'"),
    ((4, 4, 4, 0, 3), "lanes must be a positive integer"),
    ((4, 4, 4, 2, 0), "bits must be a positive integer"),
])
def test_pool_rejects_bad_configuration(args, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MaxPool2x2(*args, name="p1")


def run_padded(channels: int, height: int, width: int, lanes: int, bits: int, stall: float, seed: int) -> None:
    dut = MaxPool2x2(channels, height, width, lanes, bits, pad=1)
    x = random_codes(np.random.default_rng(seed), (FRAMES, channels, height, width), bits)
    expected = maxpool(x, pad=1)
    assert expected.shape[1:] == dut.out_shape
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)
    if stall == 0.0:
        assert np.all(frame_intervals(run, "o", FRAMES) == dut.cycles_per_frame())


def test_padded_reference_matches_torch() -> None:
    """The reference pads as PyTorch (-inf): it equals max_pool2d(2, 2, 1)."""
    torch = pytest.importorskip("torch")
    x = random_codes(np.random.default_rng(5), (2, 3, 7, 6), 4)
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x).float(), 2, 2, padding=1).numpy()
    np.testing.assert_array_equal(maxpool(x, pad=1), want.astype(np.int64))
    np.testing.assert_array_equal(maxpool(x[:, :, :6], pad=0), maxpool2x2(x[:, :, :6]))


@pytest.mark.parametrize("height,width", list(itertools.product((1, 2, 3, 4), (1, 2, 3, 4))))
def test_padded_pool_exhaustive_small_shapes(height: int, width: int) -> None:
    """pad=1: every odd/even size from 1, output H//2 + 1; one or two beats per pixel at 1, 2, 3 lanes."""
    for index, lanes in enumerate((1, 2, 3)):
        channels = lanes * (1 + (index + height + width) % 2)
        for stall in STALLS:
            run_padded(channels, height, width, lanes, 3, stall, seed=height * 100 + width * 10 + index)


def test_padded_pool_larger_random() -> None:
    run_padded(32, 8, 10, 4, 4, 0.3, seed=21)
    run_padded(6, 7, 5, 2, 8, 0.5, seed=22)


def test_padded_pool_shape_and_rtlil() -> None:
    assert MaxPool2x2(32, 112, 112, 4, 4, pad=1).out_shape == (32, 57, 57)
    assert MaxPool2x2(32, 112, 112, 4, 4, pad=1).estimate().bram36 >= 0.5      # 57 * 8 words of 16 bits
    rtlil.convert(MaxPool2x2(4, 5, 3, 2, 3, pad=1))
    with pytest.raises(ValueError, match="pad must be 0 or 1, not 2 in layer 'p'"):
        MaxPool2x2(4, 4, 4, 2, 3, pad=2, name="p")


def test_unpadded_pool_netlist_unchanged() -> None:
    """The padded generalisation leaves the unpadded pool's netlist as it was (RTLIL without source locations,
    amaranth 0.5.10; the Verilog writer converts the same text)."""
    import hashlib
    want = {(4, 4, 6, 2, 3): "7792b971e8f32cc3fa660e653843da8d50f8a613348c682ad39f98c12c66b2e0",
            (3, 2, 2, 1, 1): "650e2418a2090840c1c341064677ee66e0e13cd50a1411d1604ced886931140d"}
    for args, digest in want.items():
        assert hashlib.sha256(rtlil.convert(MaxPool2x2(*args), emit_src=False).encode()).hexdigest() == digest


# -- signed codes (after a LeakyReLU) ---------------------------------------------------------------

def run_signed_pool(channels: int, height: int, width: int, lanes: int, bits: int, pad: int, stall: float,
                    seed: int, x: np.ndarray | None = None) -> None:
    dut = MaxPool2x2(channels, height, width, lanes, bits, pad=pad, signed=True)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x is None:
        x = np.random.default_rng(seed).integers(lo, hi + 1, size=(FRAMES, channels, height, width))
        x.flat[0], x.flat[-1] = lo, hi
    expected = maxpool(x, pad=pad)
    got, run = run_tensors(dut, {"i": (x, lanes)}, {"o": (expected.shape, lanes)}, stall, seed)
    np.testing.assert_array_equal(got["o"], expected)


@pytest.mark.parametrize("pad", [0, 1])
@pytest.mark.parametrize("height,width", [(2, 2), (3, 4), (4, 3), (5, 5)])
def test_signed_pool_small_shapes(pad: int, height: int, width: int) -> None:
    """Signed codes compare signed: all-negative windows, padded borders (a border window's maximum is its
    own real code, never the padding), one or two beats per pixel, under stalls."""
    for index, (lanes, bits) in enumerate(itertools.product((1, 2), (2, 3))):
        channels = lanes * (1 + index % 2)
        for stall in STALLS:
            run_signed_pool(channels, height, width, lanes, bits, pad, stall,
                            seed=pad * 1000 + height * 100 + width * 10 + index + int(10 * stall))


def test_signed_pool_every_window_of_two_bit_codes() -> None:
    """2x2 windows holding every combination of 2-bit signed codes (4**4 windows), unpadded."""
    windows = np.array(list(itertools.product(range(-2, 2), repeat=4))).reshape(-1, 2, 2)    # (256, 2, 2)
    x = windows.reshape(16, 16, 2, 2).transpose(0, 2, 1, 3).reshape(1, 1, 32, 32)
    assert np.array_equal(maxpool(x, pad=0).ravel(), windows.reshape(256, 4).max(axis=1))
    run_signed_pool(1, 32, 32, 1, 2, 0, 0.3, seed=3, x=np.concatenate([x, -1 - x]))


def test_signed_padded_reference_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).integers(-8, 8, size=(2, 3, 7, 6))
    x[:, :, 0, :] = -8                      # a negative border row: zero padding would be wrong
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x).float(), 2, 2, padding=1).numpy()
    np.testing.assert_array_equal(maxpool(x, pad=1), want.astype(np.int64))
