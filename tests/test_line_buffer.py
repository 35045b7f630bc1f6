# amaranth: UnusedElaboratable=no
"""LineBufferSchedule: the one row-schedule model of both line buffers, against the hardware cycle by cycle."""

from __future__ import annotations

import numpy as np
import pytest

from mixq_hw.layers.line_buffer import LineBufferSchedule
from mixq_hw.layers.row_window import RowWindow, RowWindowSpec
from mixq_hw.layers.window import SlidingWindow, SlidingWindowSpec
from sim.streams import run_streams
from sim.tensors import tensor_to_beats

FRAMES = 4

# (channels, height, width, k, stride, pad, lanes, pixels): pad=0 waits at frame boundaries, k < stride skips rows
SLIDING = [(2, 5, 6, 3, 1, 1, 1, 2), (2, 5, 6, 3, 1, 0, 2, 1), (1, 6, 5, 3, 2, 0, 1, 1), (2, 5, 4, 1, 2, 0, 1, 2),
           (1, 6, 6, 5, 2, 2, 1, 1), (3, 6, 7, 5, 1, 0, 1, 3)]
# (channels, height, width, k, pad, lanes, pixels)
ROWS = [(4, 4, 6, 3, 1, 2, 2), (2, 5, 6, 3, 0, 1, 4), (3, 4, 6, 5, 2, 3, 3), (1, 6, 7, 3, 0, 1, 3)]


def _measured_frame_gaps(dut, lanes: int, height: int, width: int, channels: int) -> list[int]:
    """Cycles between the last output beats of consecutive frames, fed back to back without stalls."""
    images = np.random.default_rng(0).integers(0, 8, (FRAMES, channels, height, width))
    run = run_streams(dut, {"i": tensor_to_beats(images, lanes)}, {"o": FRAMES * dut.out_beats},
                      max_cycles=50 * FRAMES * dut.out_beats + 2000)
    ends = run.beat_cycles["o"][dut.out_beats - 1::dut.out_beats]
    return list(np.diff(ends))


@pytest.mark.parametrize("case", SLIDING)
def test_sliding_window_runs_its_schedule_exactly(case):
    """Unstalled, every frame of a SlidingWindow ends exactly when its LineBufferSchedule says."""
    channels, height, width, k, stride, pad, lanes, pixels = case
    dut = SlidingWindow(channels, height, width, k, stride, pad, lanes, pixels, bits=3)
    model = list(np.diff(dut.schedule.frame_ends(FRAMES)))
    assert _measured_frame_gaps(dut, lanes, height, width, channels) == model
    assert model[-1] == dut.cycles_per_frame()


@pytest.mark.parametrize("case", ROWS)
def test_row_window_runs_its_schedule_exactly(case):
    """Unstalled, every frame of a RowWindow ends exactly when its LineBufferSchedule says."""
    channels, height, width, k, pad, lanes, pixels = case
    dut = RowWindow(channels, height, width, k, pad, lanes=lanes, pixels=pixels, bits=3)
    model = list(np.diff(dut.schedule.frame_ends(FRAMES)))
    assert _measured_frame_gaps(dut, lanes, height, width, channels) == model
    assert model[-1] == dut.cycles_per_frame()


def test_both_windows_share_one_schedule():
    """A RowWindow's schedule is the stride-1 line buffer with its own row costs: the same class, same rows."""
    row = RowWindowSpec(4, 9, 12, 3, 1, lanes=2, pixels=4, bits=3)
    sliding = SlidingWindowSpec(4, 9, 12, 3, 1, 1, lanes=2, pixels=4, bits=3)
    assert type(row.schedule) is type(sliding.schedule) is LineBufferSchedule
    assert [row.schedule.need(y) for y in range(9)] == [sliding.schedule.need(y) for y in range(9)]
    assert row.schedule.rows == sliding.schedule.rows == 4
    assert row.schedule.row_out * 3 == sliding.schedule.row_out     # k x k tap beats against k row beats


@pytest.mark.parametrize("height, k, stride, pad", [(7, 3, 1, 1), (7, 3, 1, 0), (8, 3, 2, 1), (8, 1, 2, 0),
                                                   (9, 5, 2, 2), (6, 5, 1, 0), (5, 2, 2, 0)])
def test_schedule_bookkeeping(height, k, stride, pad):
    """Per frame the releases free exactly the stored rows, no output row needs more rows than the buffer
    holds, and the interval is at least the longer of the two row streams."""
    out_height = (height + 2 * pad - k) // stride + 1
    rows = k + (stride if k >= stride else 1)
    sched = LineBufferSchedule(height=height, out_height=out_height, k=k, stride=stride, pad=pad, row_in=10,
                               row_out=7, rows=rows)
    assert sum(sched.release(y) for y in range(out_height)) == sum(map(sched.stored, range(height)))
    assert all(1 <= sched.need(y) <= k for y in range(out_height))
    assert sched.cycles_per_frame() >= max(10 * height, 7 * out_height)
    assert sched.stored(sched.last_stored_row) and not any(sched.stored(r) for r in range(sched.last_stored_row + 1,
                                                                                           height))
