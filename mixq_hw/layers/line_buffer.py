"""LineBufferSchedule: the row-level schedule of a line buffer, shared by SlidingWindow and RowWindow.

A line buffer holds ``rows`` input rows.  Flow control is by whole rows: a
counter of complete buffered rows; the writer may start a stored row while
fewer than ``rows`` are buffered (rows no output row reads are accepted and
dropped without waiting); the reader starts output row ``y`` when the
:meth:`~LineBufferSchedule.need` rows it reads are complete and, when it
issues the row's last beat, releases the :meth:`~LineBufferSchedule.release`
rows the next output row no longer reads (all of them after the frame's last
row).  Both windows' hardware implements exactly this handshake; this class
answers its figures without building hardware.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

__all__ = ["LineBufferSchedule", "frame_overlap_rows"]

#: back-to-back frames the schedule runs to reach its steady state (the last two frames' distance)
STEADY_FRAMES = 8


@dataclass(frozen=True)
class LineBufferSchedule:
    """Row schedule of a line buffer over a ``height``-row input, ``out_height`` output rows of a ``k``-row
    kernel at ``stride`` with ``pad`` rows of zero padding at the top.

    ``row_in``: cycles to write one input row (beats per row); ``row_out``: cycles to read the beats of
    one output row; ``rows``: input rows the buffer holds.  ``k < stride`` skips whole input rows: each
    output row then reads one stored row.
    """

    height: int
    out_height: int
    k: int
    stride: int
    pad: int
    row_in: int
    row_out: int
    rows: int

    def rows_of(self, y: int) -> tuple[int, int]:
        """First and last real input row output row ``y`` reads."""
        top = y * self.stride - self.pad
        return max(top, 0), min(top + self.k - 1, self.height - 1)

    def need(self, y: int) -> int:
        """Buffered rows output row ``y`` needs, counted from the oldest unreleased one."""
        if self.k < self.stride:
            return 1
        lo, hi = self.rows_of(y)
        return hi - lo + 1

    def release(self, y: int) -> int:
        """Rows released when output row ``y`` ends (all it holds after the frame's last row)."""
        if y == self.out_height - 1:
            return self.need(y)
        if self.k < self.stride:
            return 1
        return self.rows_of(y + 1)[0] - self.rows_of(y)[0]

    @property
    def last_stored_row(self) -> int:
        """The last input row any output row reads (rows below it are dropped)."""
        return self.rows_of(self.out_height - 1)[1]

    def stored(self, r: int) -> bool:
        """Whether input row ``r`` is kept (some output row reads it)."""
        return r <= self.last_stored_row and (self.k >= self.stride or r % self.stride == 0)

    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame with frames back to back and no stalls."""
        ends = self.frame_ends(STEADY_FRAMES)
        return ends[-1] - ends[-2]

    def frame_ends(self, frames: int) -> list[int]:
        """Cycle after the last output beat of each of ``frames`` back-to-back frames.

        Input row ``n`` (counted over all frames) takes ``row_in`` cycles once the
        previous row is written and, if stored, once fewer than ``rows`` stored rows
        are unreleased; output row ``y`` starts once its rows are complete and the
        previous output row has issued its last beat, and takes ``row_out`` cycles;
        its releases take effect the cycle after that last beat.
        """
        stored_flags = [self.stored(r) for r in range(self.height)]
        written: list[int] = []         # cycle after the last beat of each stored row
        releases: list[tuple[int, int]] = []    # (cumulative rows released, cycle it takes effect)
        writer_row, write_end = 0, 0

        def released_at(count: int) -> int:
            """Cycle at which the cumulative release first reaches ``count``."""
            index = bisect.bisect_left(releases, (count, -1))
            if index == len(releases):
                raise AssertionError("line buffer schedule: the writer waits for a release that never comes")
            return releases[index][1]

        def write_until(index: int) -> None:
            nonlocal writer_row, write_end
            while len(written) <= index:
                start = write_end
                if stored_flags[writer_row % self.height]:
                    n = len(written)
                    if n - self.rows + 1 > 0:
                        start = max(start, released_at(n - self.rows + 1))
                    written.append(start + self.row_in)
                write_end = start + self.row_in
                writer_row += 1

        ends: list[int] = []
        released, last = 0, 0
        for _ in range(frames):
            for y in range(self.out_height):
                index = released + self.need(y) - 1
                write_until(index)
                last = max(last, written[index]) + self.row_out
                released += self.release(y)
                releases.append((released, last))
            ends.append(last)
        return ends


def frame_overlap_rows(height: int, out_height: int, k: int, stride: int, pad: int) -> int:
    """Rows a line buffer holds so that it never waits at a frame boundary when its writer and its reader
    both run at one frame interval (the pipeline's bottleneck rate).

    ``k + s'`` rows overlap input and output inside a frame; an unpadded window (or a strided one whose
    last rows are dropped) also needs room for the next frame's first rows while the last output row
    reads its own, or its reader idles while they arrive (a bottleneck conv behind it loses those cycles
    every frame).  The smallest such count, from the schedule itself: writer and reader both at
    ``height * out_height`` cycles per frame.
    """
    step = stride if k >= stride else 1
    rows = k + step
    schedule = LineBufferSchedule(height=height, out_height=out_height, k=k, stride=stride, pad=pad,
                                  row_in=out_height, row_out=height, rows=rows)
    interval = height * out_height
    rows = max(rows, schedule.need(0) + schedule.need(out_height - 1))
    # the count is bounded: 2k + 2 stride rows hold two whole output rows' inputs and the rows between
    while rows < 2 * (k + step) and replace(schedule, rows=rows).cycles_per_frame() > interval:
        rows += 1
    return rows
