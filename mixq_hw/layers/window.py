"""Sliding window (line buffer): a raster pixel stream -> the k x k windows a ConvEngine consumes.

Output format (the contract of ``mixq_hw.layers``): for each output row ``y``,
for each group ``g`` of ``pixels`` adjacent output columns, for ``ky``, ``kx``
in ``0..k-1``, for each channel chunk, one beat with
``beat[j][s] = x[chunk*lanes + s][y*stride + ky - pad][(g*pixels + j)*stride + kx - pad]``
(zero outside the image): ``k*k*C/lanes`` beats per group.  ``pixels`` need not
divide the output width: a row has ``ceil(out_w / pixels)`` groups, and the
slots of the last group past the last output column (``g*pixels + j >= out_w``)
are zero, masked like the padding (their read addresses stay inside the banks).

Storage: ``R >= k + s'`` input rows (``s' = stride``, or 1 when ``k < stride``
and whole rows are skipped; more when ``pad`` leaves the last output row
reading rows the next frame's first rows must not wait for, see
:func:`~mixq_hw.layers.line_buffer.frame_overlap_rows`) in ``B`` column-interleaved banks of
``lib.memory`` (column ``c`` lives in bank ``c % B``), ``lanes*bits`` wide.
``B = pixels`` when ``gcd(pixels, stride) == 1``, else ``pixels*stride``, so
that the ``pixels`` columns ``c0 + j*stride`` of one beat always sit in
distinct banks and are read in the same cycle: one beat per cycle, with
re-reads of overlapping columns for free.  A beat's group starts at a multiple
of ``B`` columns, so output slot ``j`` of tap ``kx`` always reads bank
``(kx - pad + j*stride) % B``: each slot picks its bank from ``k`` choices by
the tap (a ``k``:1 multiplexer), not from all ``B``.  ``k`` rows are read for the current
output row while the next ``s'`` rows are written, so input and output overlap
fully.  Rows no output row needs (the bottom rows with ``pad=0``, the odd rows
of a 1x1 stride-2 window) are accepted and dropped.

Flow control is by whole rows: a counter ``filled`` of complete buffered rows;
the writer may start a row while ``filled < R``; the reader starts an output
row when the rows it needs are all complete, and releases the rows the next
output row no longer needs when it finishes: the handshake of
:class:`~mixq_hw.layers.line_buffer.LineBufferSchedule`, whose row-by-row model
gives :meth:`SlidingWindowSpec.cycles_per_frame`.
"""

from __future__ import annotations

import math

from amaranth import Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, mux_luts, styled_memory
from ..packing.calibration import WINDOW_LOGIC_MARGIN
from ._checks import layer_label, check_int
from ._mux import mux_tree, sync_lookup
from .line_buffer import LineBufferSchedule, frame_overlap_rows
from .spec import LayerSpec, SpecComponent

__all__ = ["SlidingWindow", "SlidingWindowSpec"]



class SlidingWindowSpec(LayerSpec):
    """k x k windows of a (C, H, W) code stream, ``pixels`` output pixels per beat, zero padded.

    Ports: ``i``: ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (raster pixels);
    ``o``: ``stream.Signature(ArrayLayout(ArrayLayout(unsigned(bits), lanes), pixels))``.
    ``pad`` is an int (0 <= pad < k) or ``"same"`` (= k // 2).  ``signed``: the elements are ``signed(bits)``
    (two's-complement codes; the zero padding is the code 0 either way).
    """

    def __init__(self, channels: int, height: int, width: int, k: int, stride: int = 1,
                 pad: int | str = "same", lanes: int = 1, pixels: int = 1, bits: int = 8, *,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, "SlidingWindow")
        check_int(where, 1, channels=channels, height=height, width=width, k=k, stride=stride,
                   lanes=lanes, pixels=pixels, bits=bits)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride} {where}")
        if pad == "same":
            pad = k // 2
        check_int(where, 0, pad=pad)
        assert isinstance(pad, int)         # check_int refused anything else
        if pad >= k:
            raise ValueError(f"pad {pad} must be smaller than the kernel {k} {where}")
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if height + 2 * pad < k or width + 2 * pad < k:
            raise ValueError(f"input {height}x{width} with pad {pad} is smaller than the kernel {k} {where}")
        self.channels, self.height, self.width = channels, height, width
        self.k, self.stride, self.pad = k, stride, pad
        self.lanes, self.pixels, self.bits, self.name = lanes, pixels, bits, name
        self.out_height = (height + 2 * pad - k) // stride + 1
        self.out_width = (width + 2 * pad - k) // stride + 1
        if pixels > self.out_width:
            raise ValueError(f"pixels {pixels} exceeds the output width {self.out_width} (pixels may be "
                             f"1..{self.out_width}) {where}")
        self.chunks = channels // lanes
        #: pixel groups per output row; the last one holds ``last_pixels`` real output columns
        self.groups = -(-self.out_width // pixels)
        self.last_pixels = self.out_width - (self.groups - 1) * pixels
        #: row step between output rows in the space of stored rows (k < stride skips whole rows)
        self.row_step = stride if k >= stride else 1
        #: input rows the line buffer holds: ``k + s'``, more when an unpadded window would wait at frame boundaries
        self.rows = frame_overlap_rows(height, self.out_height, k, stride, pad)
        #: column-interleaved banks (column c in bank c % banks)
        self.banks = pixels if math.gcd(pixels, stride) == 1 else pixels * stride
        self.words_per_row = -(-width // self.banks) * self.chunks
        self.bank_depth = self.rows * self.words_per_row
        #: the row handshake the hardware implements and the cycle model evaluates
        self.schedule = LineBufferSchedule(
            height=height, out_height=self.out_height, k=k, stride=stride, pad=pad, row_in=width * self.chunks,
            row_out=self.groups * k * k * self.chunks, rows=self.rows)
        if not isinstance(signed, bool):
            raise ValueError(f"signed must be True or False, not {signed!r} {where}")
        self.signed = signed
        self.lane_layout = data.ArrayLayout(Shape(bits, signed=signed), lanes)
        self.out_layout = data.ArrayLayout(self.lane_layout, pixels)
        self.declare_ports({"i": In(stream.Signature(self.lane_layout)),
                          "o": Out(stream.Signature(self.out_layout))})

    # -- schedule facts shared by the hardware and the cycle model -------------------------------

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, out_height, out_width) of the windowed tensor."""
        return self.channels, self.out_height, self.out_width

    @property
    def in_beats(self) -> int:
        """Input beats per frame."""
        return self.height * self.width * self.chunks

    @property
    def out_beats(self) -> int:
        """Output beats per frame: ``k*k*C/lanes`` per group of ``pixels`` output pixels (``ceil(out_w/pixels)``
        groups per row)."""
        return self.out_height * self.groups * self.k * self.k * self.chunks

    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame with frames back to back and no stalls.

        The row-level schedule (:class:`~mixq_hw.layers.line_buffer.LineBufferSchedule`):
        ``max(in_beats, out_beats)`` plus the waits the row handshake adds (e.g. at frame
        boundaries with ``pad=0``).
        """
        return self.schedule.cycles_per_frame()

    def estimate(self) -> Resources:
        """Line-buffer banks (``memory_cost``) plus counters, address adders and the lane crossbar."""
        mem = memory_cost(self.bank_depth, self.lanes * self.bits) * self.banks
        addr = max(1, (self.bank_depth - 1).bit_length())
        counters = sum(max(1, (n - 1).bit_length()) for n in (
            self.height, self.width, self.chunks, self.out_height, self.groups, self.k, self.k,
            self.chunks, self.rows + 1)) + 4 * addr
        # per output pixel a k:1 multiplexer over the banks its taps read, the padding mask in the same LUT
        crossbar = self.pixels * self.lanes * self.bits * max(1, mux_luts(self.k + 1))
        control = 30    # row handshake: need/release arithmetic, filled counter and compares
        lut = math.ceil(WINDOW_LOGIC_MARGIN * (2 * counters + self.banks * addr * 3 + crossbar + control))
        ff = counters + self.pixels + max(1, (self.k - 1).bit_length()) + 1 + control // 2
        return mem + Resources(lut=lut, ff=ff)

    # -- hardware --------------------------------------------------------------------------------


class SlidingWindow(SlidingWindowSpec, SpecComponent):
    """The hardware of :class:`SlidingWindowSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        k, s, p, P, B = self.k, self.stride, self.pad, self.pixels, self.banks
        H, W, CL, R = self.height, self.width, self.chunks, self.rows
        rowdepth, depth = self.words_per_row, self.bank_depth
        word = unsigned(self.lanes * self.bits)

        ports = []
        for b in range(B):
            mem = styled_memory(shape=word, depth=depth, init=[])
            m.submodules[f"bank{b}"] = mem
            ports.append((mem.write_port(), mem.read_port()))

        filled = Signal(range(R + 1))
        row_done = Signal()     # writer completes a stored row this cycle
        release = Signal(range(R + 1))  # rows the reader releases this cycle

        # ---- writer: raster beats into bank (col % B), word (col // B) of the current row slot
        w_row = Signal(range(H))
        w_col = Signal(range(W))
        w_bank = Signal(range(B))
        w_word = Signal(range(max(rowdepth, 1)))   # (col // B) * CL
        w_chunk = Signal(range(CL))
        w_slot = Signal(range(depth))              # slot * rowdepth
        last_row = self.schedule.last_stored_row
        stored = Signal()
        keep = w_row <= last_row
        if self.k < s and H > 1:
            keep &= w_row[0] == 0
        m.d.comb += [stored.eq(keep), self.i.ready.eq(~stored | (filled < R))]
        accept = self.i.valid & self.i.ready
        w_end_col = w_chunk == CL - 1
        w_end_row = w_end_col & (w_col == W - 1)
        for b, (wp, _) in enumerate(ports):
            m.d.comb += [wp.addr.eq(w_slot + w_word + w_chunk), wp.data.eq(self.i.payload.as_value()),
                         wp.en.eq(accept & stored & (w_bank == b))]
        m.d.comb += row_done.eq(accept & stored & w_end_row)
        with m.If(accept):
            m.d.sync += w_chunk.eq(Mux(w_end_col, 0, w_chunk + 1))
            with m.If(w_end_row):
                m.d.sync += [w_col.eq(0), w_bank.eq(0), w_word.eq(0),
                             w_row.eq(Mux(w_row == H - 1, 0, w_row + 1))]
                with m.If(stored):
                    m.d.sync += w_slot.eq(Mux(w_slot >= depth - rowdepth, 0, w_slot + rowdepth))
            with m.Elif(w_end_col):
                m.d.sync += w_col.eq(w_col + 1)
                with m.If(w_bank == B - 1):
                    m.d.sync += [w_bank.eq(0), w_word.eq(w_word + CL)]
                with m.Else():
                    m.d.sync += w_bank.eq(w_bank + 1)

        # ---- reader: counters over (y, g, ky, kx, chunk)
        y = Signal(range(self.out_height))
        top = Signal(range(-p, (self.out_height - 1) * s - p + 1), init=-p)   # y*s - p
        g = Signal(range(self.groups))
        g_col = Signal(range(self.groups * P * s))                   # g*P*s, first column of the group
        gstep = P * s // B
        g_word = Signal(range(self.groups * gstep * CL))             # g*gstep*CL
        ky = Signal(range(k))
        kx = Signal(range(k))
        chunk = Signal(range(CL))
        base_slot = Signal(range(depth))    # slot of the oldest unreleased row, * rowdepth
        ky_slot = Signal(range(depth))      # slot of row top+ky, * rowdepth

        # the current output row's need and release, registered: loaded from the schedule's tables when a
        # row ends, so the issue decision compares two registers instead of deriving them from ``top``
        sched = self.schedule
        need_of = [sched.need(r) for r in range(self.out_height)]
        release_of = [sched.release(r) for r in range(self.out_height)]
        need = Signal(range(R + 1), init=need_of[0])
        rel = Signal(range(R + 1), init=release_of[0])

        o_valid = Signal()
        advance = ~o_valid | self.o.ready
        issue = advance & (filled >= need)
        end_col_step = (chunk == CL - 1) & (kx == k - 1)
        end_group = end_col_step & (ky == k - 1)
        end_row = end_group & (g == self.groups - 1)
        last_y = y == self.out_height - 1
        row_ends = issue & end_row
        m.d.comb += release.eq(Mux(row_ends, rel, 0))
        with m.If(row_ends):
            sync_lookup(m, y, [need_of[(r + 1) % self.out_height] for r in range(self.out_height)], need)
            sync_lookup(m, y, [release_of[(r + 1) % self.out_height] for r in range(self.out_height)], rel)
        m.d.sync += filled.eq(filled + row_done - release)

        # per-tap constants: lane j reads column g*P*s + kx - p + j*s = bank (q_j % B), word g*gstep + q_j // B
        col_ok = [Signal(name=f"col_ok{j}") for j in range(P)]
        offsets = [(q // B) * CL for q in range(-p, k - p + (P - 1) * s)]
        bank_off = [Signal(range(min(offsets), max(offsets) + 1), name=f"bank_off{b}") for b in range(B)]
        bank_ok = [Signal(name=f"bank_ok{b}") for b in range(B)]    # the column bank b is read for is real
        with m.Switch(kx):
            for tap in range(k):
                with m.Case(tap):
                    for j in range(P):
                        q = tap - p + j * s
                        m.d.comb += col_ok[j].eq((g_col >= -q) & (g_col < W - q))
                        m.d.comb += [bank_off[q % B].eq((q // B) * CL), bank_ok[q % B].eq(col_ok[j])]
        row = top + ky
        row_ok = (row >= 0) & (row < H)
        for b, (_, rp) in enumerate(ports):
            # ky_slot is always a row slot inside the bank, so only a column in the padding (left of column 0
            # or right of the row) reaches outside it; its data is masked, but the address must stay inside
            # the bank (a simulator asserts on an out-of-bounds read): word 0 instead, selected by the
            # column's own check rather than by comparing the sum
            addr = ky_slot + g_word + bank_off[b] + chunk
            m.d.comb += [rp.en.eq(advance), rp.addr.eq(Mux(bank_ok[b], addr, 0))]

        # the read data's tap: lane j's bank is a function of kx alone, so each lane picks among k banks
        # (a k:1 multiplexer on one shared register) rather than among all B
        tap = Signal(range(k))
        mask = [Signal(name=f"mask{j}") for j in range(P)]
        last_group = g == self.groups - 1
        with m.If(advance):
            m.d.sync += [o_valid.eq(filled >= need), tap.eq(kx)]
            for j in range(P):
                # slots past the last output column (ragged last group) are zero, like the padding
                real = 1 if j < self.last_pixels else ~last_group
                m.d.sync += mask[j].eq(row_ok & col_ok[j] & real)
        bank_data = [rp.data for _, rp in ports]
        m.d.comb += self.o.valid.eq(o_valid)
        for j in range(P):
            chosen = mux_tree([bank_data[(t - p + j * s) % B] for t in range(k)], tap)
            m.d.comb += self.o.payload[j].eq(Mux(mask[j], chosen, 0))

        def slot_plus(addr, rows):
            total = addr + rows * rowdepth
            return Mux(total >= depth, total - depth, total)

        # the oldest row's slot after this row's release, from registers only (off the issue path)
        released_base = Signal.like(base_slot)
        m.d.comb += released_base.eq(slot_plus(base_slot, 0))
        with m.Switch(rel):
            for n in range(1, R + 1):
                with m.Case(n):
                    m.d.comb += released_base.eq(slot_plus(base_slot, n))
        new_base = Mux(end_row, released_base, base_slot)
        with m.If(row_ends):
            m.d.sync += base_slot.eq(released_base)

        with m.If(issue):
            m.d.sync += chunk.eq(Mux(chunk == CL - 1, 0, chunk + 1))
            with m.If(chunk == CL - 1):
                m.d.sync += kx.eq(Mux(kx == k - 1, 0, kx + 1))
            with m.If(end_col_step):
                m.d.sync += ky.eq(Mux(ky == k - 1, 0, ky + 1))
                with m.If(ky == k - 1):
                    m.d.sync += ky_slot.eq(new_base)
                with m.Elif(row >= 0):
                    m.d.sync += ky_slot.eq(slot_plus(ky_slot, 1))
            with m.If(end_group):
                with m.If(g == self.groups - 1):
                    m.d.sync += [g.eq(0), g_col.eq(0), g_word.eq(0)]
                with m.Else():
                    m.d.sync += [g.eq(g + 1), g_col.eq(g_col + P * s), g_word.eq(g_word + gstep * CL)]
            with m.If(end_row):
                with m.If(last_y):
                    m.d.sync += [y.eq(0), top.eq(-p)]
                with m.Else():
                    m.d.sync += [y.eq(y + 1), top.eq(top + s)]
        return m


SlidingWindowSpec.component_class = SlidingWindow
