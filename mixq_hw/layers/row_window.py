"""Row window (line buffer): a raster pixel stream -> the kernel-row beats a filter-packing ConvEngine reads.

Output format (stride 1): for each output row ``y``, for each group ``g`` of
``pixels`` adjacent output columns, for ``ky`` in ``0..k-1``, for each channel
chunk, one beat of ``span = pixels + k - 1`` pixels with
``beat[j][s] = x[chunk*lanes + s][y + ky - pad][g*pixels + j - pad]`` (zero
outside the image): the input pixels that the group's outputs read in kernel
row ``ky``.  ``k*C/lanes`` beats per group (a SlidingWindow sends
``k*k*C/lanes`` beats of ``pixels`` pixels for the same group).  ``pixels``
need not divide the output width: a row has ``ceil(out_w / pixels)`` groups;
the beat positions of the last group that no real output reads lie past the
right padding and are zero (the engine's outputs for the columns past
``out_w`` are computed but dropped downstream, see GroupToRaster).

Storage: ``R >= k + 1`` input rows (``k`` read for the current output row while
the next one is written; more for an unpadded window, see
:func:`~mixq_hw.layers.line_buffer.frame_overlap_rows`) in ``B = pixels * ceil(span / pixels)``
column-interleaved banks of ``lib.memory``, ``lanes*bits`` wide.  Columns are
stored at padded positions ``c' = c + pad``, column ``c'`` in bank ``c' % B``
at word ``(c' // B) * chunks + chunk`` of its row slot.  A beat reads the
``span`` consecutive padded columns ``g*pixels .. g*pixels + span - 1``: since
``span <= B`` they sit in distinct banks and are read in one cycle.  Because
``B`` is a multiple of ``pixels``, a group's first column sits in one of only
``B / pixels`` banks, so each output slot picks its bank from
``ceil(span / pixels)`` choices (a small mux, not a ``B``-way crossbar).

Flow control is by whole rows, as in the SlidingWindow: a counter ``filled``
of complete buffered rows; the writer may start a row while ``filled < R``;
the reader starts an output row when the rows it needs are complete and
releases the rows the next output row no longer needs when it issues its last
beat: the handshake of :class:`~mixq_hw.layers.line_buffer.LineBufferSchedule`, whose
model row by row gives :meth:`RowWindowSpec.cycles_per_frame`.
"""

from __future__ import annotations

import math

from amaranth import Array, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ._checks import check_int, layer_label
from ._mux import sync_lookup
from ..packing.calibration import WINDOW_LOGIC_MARGIN
from .line_buffer import LineBufferSchedule, frame_overlap_rows
from .spec import LayerSpec, SpecComponent

__all__ = ["RowWindow", "RowWindowSpec"]


class RowWindowSpec(LayerSpec):
    """Kernel-row beats of a (C, H, W) code stream for ``pixels`` output pixels per group, stride 1, zero padded.

    Ports: ``i``: ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (raster pixels);
    ``o``: ``stream.Signature(ArrayLayout(ArrayLayout(unsigned(bits), lanes), pixels + k - 1))``.
    ``pad`` is an int (0 <= pad < k) or ``"same"`` (= k // 2).  ``signed``: the elements are ``signed(bits)``
    (two's-complement codes; the zero padding is the code 0 either way).
    """

    def __init__(self, channels: int, height: int, width: int, k: int, pad: int | str = "same",
                 lanes: int = 1, pixels: int = 1, bits: int = 8, *, signed: bool = False, name: str = ""):
        where = layer_label(name, "RowWindow")
        check_int(where, 1, channels=channels, height=height, width=width, k=k, lanes=lanes, pixels=pixels,
                  bits=bits)
        if pad == "same":
            pad = k // 2
        if not isinstance(pad, int) or isinstance(pad, bool) or not 0 <= pad < k:
            raise ValueError(f"pad must be an integer 0..{k - 1} (smaller than the kernel) or 'same', "
                             f"not {pad!r} {where}")
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if height + 2 * pad < k or width + 2 * pad < k:
            raise ValueError(f"input {height}x{width} with pad {pad} is smaller than the kernel {k} {where}")
        self.channels, self.height, self.width, self.k, self.pad = channels, height, width, k, pad
        self.lanes, self.pixels, self.bits, self.name = lanes, pixels, bits, name
        self.out_height = height + 2 * pad - k + 1
        self.out_width = width + 2 * pad - k + 1
        if pixels > self.out_width:
            raise ValueError(f"pixels {pixels} exceeds the output width {self.out_width} (pixels may be "
                             f"1..{self.out_width}) {where}")
        self.chunks = channels // lanes
        #: pixel groups per output row (the last one may hold fewer than ``pixels`` real columns)
        self.groups = -(-self.out_width // pixels)
        #: input pixels per output beat
        self.span = pixels + k - 1
        #: input rows the line buffer holds: ``k + 1``, more when an unpadded window would wait at frame boundaries
        self.rows = frame_overlap_rows(height, self.out_height, k, 1, pad)
        #: column-interleaved banks (padded column c' in bank c' % banks)
        self.banks = pixels * math.ceil(self.span / pixels)
        # every bank's read address stays inside the row, even for the columns past the span no slot uses
        self.words_per_row = math.ceil(((self.groups - 1) * pixels + self.banks) / self.banks) * self.chunks
        self.bank_depth = self.rows * self.words_per_row
        #: the row handshake the hardware implements and the cycle model evaluates
        self.schedule = LineBufferSchedule(
            height=height, out_height=self.out_height, k=k, stride=1, pad=pad, row_in=width * self.chunks,
            row_out=self.groups * k * self.chunks, rows=self.rows)
        if not isinstance(signed, bool):
            raise ValueError(f"signed must be True or False, not {signed!r} {where}")
        self.signed = signed
        self.lane_layout = data.ArrayLayout(Shape(bits, signed=signed), lanes)
        self.out_layout = data.ArrayLayout(self.lane_layout, self.span)
        self.declare_ports({"i": In(stream.Signature(self.lane_layout)),
                          "o": Out(stream.Signature(self.out_layout))})

    # -- schedule facts shared by the hardware and the cycle model -------------------------------

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, out_height, out_width) of the convolution this window feeds."""
        return self.channels, self.out_height, self.out_width

    @property
    def in_beats(self) -> int:
        """Input beats per frame."""
        return self.height * self.width * self.chunks

    @property
    def out_beats(self) -> int:
        """Output beats per frame: ``k*C/lanes`` per group of ``pixels`` output pixels."""
        return self.out_height * self.groups * self.k * self.chunks

    def cycles_per_frame(self) -> int:
        """Steady-state cycles per frame with frames back to back and no stalls (row-level model,
        :class:`~mixq_hw.layers.line_buffer.LineBufferSchedule`)."""
        return self.schedule.cycles_per_frame()

    def estimate(self) -> Resources:
        """Line-buffer banks (``memory_cost``) plus counters, address adders and the output bank muxes."""
        mem = memory_cost(self.bank_depth, self.lanes * self.bits) * self.banks
        addr = max(1, (self.bank_depth - 1).bit_length())
        counters = sum(max(1, (n - 1).bit_length()) for n in (
            self.height, self.width, self.chunks, self.out_height, self.groups, self.k, self.chunks,
            self.banks, self.rows + 1)) + 4 * addr
        choices = self.banks // self.pixels
        crossbar = self.span * self.lanes * self.bits * max(1, math.ceil(choices / 4))
        control = 30    # row handshake: need/release arithmetic, filled counter and compares
        # a bank's read address is the row word or the next one, by which of the B/pixels blocks it sits in
        # against the rotation: one address adder per block, shared by its banks
        # x WINDOW_LOGIC_MARGIN, as the SlidingWindow's
        lut = math.ceil(WINDOW_LOGIC_MARGIN * (2 * counters + min(self.banks, choices + 1) * (addr + 1) * 2
                                        + crossbar + control))
        ff = counters + self.span + 2 * max(1, (choices - 1).bit_length()) + control // 2
        return mem + Resources(lut=lut, ff=ff)

    # -- hardware --------------------------------------------------------------------------------


class RowWindow(RowWindowSpec, SpecComponent):
    """The hardware of :class:`RowWindowSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        k, pad, X, B = self.k, self.pad, self.pixels, self.banks
        H, W, CL, R = self.height, self.width, self.chunks, self.rows
        span, rowdepth, depth = self.span, self.words_per_row, self.bank_depth
        word = unsigned(self.lanes * self.bits)

        ports = []
        for b in range(B):
            mem = styled_memory(shape=word, depth=depth, init=[])
            m.submodules[f"bank{b}"] = mem
            ports.append((mem.write_port(), mem.read_port()))

        filled = Signal(range(R + 1))
        row_done = Signal()                 # the writer completes a row this cycle
        release = Signal(range(R + 1))      # rows the reader releases this cycle

        # ---- writer: raster beats into bank (c' % B), word (c' // B)*CL + chunk of the current row slot
        w_col = Signal(range(W))
        w_bank = Signal(range(B), init=pad % B)
        w_word = Signal(range(rowdepth), init=(pad // B) * CL)
        w_chunk = Signal(range(CL))
        w_slot = Signal(range(depth))       # slot * rowdepth
        m.d.comb += self.i.ready.eq(filled < R)
        accept = self.i.valid & self.i.ready
        w_end_col = w_chunk == CL - 1
        w_end_row = w_end_col & (w_col == W - 1)
        for b, (wp, _) in enumerate(ports):
            m.d.comb += [wp.addr.eq(w_slot + w_word + w_chunk), wp.data.eq(self.i.payload.as_value()),
                         wp.en.eq(accept & (w_bank == b))]
        m.d.comb += row_done.eq(accept & w_end_row)
        with m.If(accept):
            m.d.sync += w_chunk.eq(Mux(w_end_col, 0, w_chunk + 1))
            with m.If(w_end_row):
                m.d.sync += [w_col.eq(0), w_bank.eq(pad % B), w_word.eq((pad // B) * CL),
                             w_slot.eq(Mux(w_slot == depth - rowdepth, 0, w_slot + rowdepth))]
            with m.Elif(w_end_col):
                m.d.sync += w_col.eq(w_col + 1)
                with m.If(w_bank == B - 1):
                    m.d.sync += [w_bank.eq(0), w_word.eq(w_word + CL)]
                with m.Else():
                    m.d.sync += w_bank.eq(w_bank + 1)

        # ---- reader: counters over (y, g, ky, chunk)
        y = Signal(range(self.out_height))
        top = Signal(range(-pad, self.out_height - pad + 1), init=-pad)     # y - pad
        g = Signal(range(self.groups))
        g_col = Signal(range(self.groups * X))          # g*X: the group's first padded column
        rot = Signal(range(B // X))                     # (g*X % B) / X: bank of the group's first column
        g_word = Signal(range(max(rowdepth, 1)))        # (g*X // B) * CL
        ky = Signal(range(k))
        chunk = Signal(range(CL))
        base_slot = Signal(range(depth))                # slot of the oldest unreleased row, * rowdepth
        ky_slot = Signal(range(depth))                  # slot of row top+ky, * rowdepth

        # the current output row's need and release, registered (loaded from the schedule's tables when a row
        # ends), so the issue decision compares two registers instead of deriving them from ``top``
        need_of = [self.schedule.need(r) for r in range(self.out_height)]
        release_of = [self.schedule.release(r) for r in range(self.out_height)]
        need = Signal(range(R + 1), init=need_of[0])
        rel = Signal(range(R + 1), init=release_of[0])

        o_valid = Signal()
        advance = ~o_valid | self.o.ready
        issue = advance & (filled >= need)
        end_group = (chunk == CL - 1) & (ky == k - 1)
        end_row = end_group & (g == self.groups - 1)
        last_y = y == self.out_height - 1
        row_ends = issue & end_row
        m.d.comb += release.eq(Mux(row_ends, rel, 0))
        with m.If(row_ends):
            sync_lookup(m, y, [need_of[(r + 1) % self.out_height] for r in range(self.out_height)], need)
            sync_lookup(m, y, [release_of[(r + 1) % self.out_height] for r in range(self.out_height)], rel)
        m.d.sync += filled.eq(filled + row_done - release)

        # bank b holds the beat's column g*X + ((b - g*X) mod B): word g_word, or the next one below the rotation
        start_bank = rot * X
        for b, (_, rp) in enumerate(ports):
            wrapped = Mux(b < start_bank, CL, 0)
            m.d.comb += [rp.en.eq(advance), rp.addr.eq(ky_slot + g_word + wrapped + chunk)]

        row = top + ky
        row_ok = (row >= 0) & (row < H)
        sel_rot = Signal.like(rot)
        mask = [Signal(name=f"mask{j}") for j in range(span)]
        with m.If(advance):
            m.d.sync += [o_valid.eq(filled >= need), sel_rot.eq(rot)]
            for j in range(span):
                m.d.sync += mask[j].eq(row_ok & (g_col + j >= pad) & (g_col + j < W + pad))
        m.d.comb += self.o.valid.eq(o_valid)
        bank_data = [rp.data for _, rp in ports]
        for j in range(span):
            if B // X > 1:
                chosen = Array(bank_data[(r * X + j) % B] for r in range(B // X))[sel_rot]
            else:
                chosen = bank_data[j]
            m.d.comb += self.o.payload[j].eq(Mux(mask[j], chosen, 0))

        def slot_plus(addr, n):
            total = addr + n * rowdepth
            return Mux(total >= depth, total - depth, total)

        # the oldest row's slot after this row's release, from registers only (off the issue path)
        released_base = Signal.like(base_slot)
        m.d.comb += released_base.eq(base_slot)
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
                m.d.sync += ky.eq(Mux(ky == k - 1, 0, ky + 1))
                with m.If(ky == k - 1):
                    m.d.sync += ky_slot.eq(new_base)
                with m.Elif(row >= 0):
                    m.d.sync += ky_slot.eq(slot_plus(ky_slot, 1))
            with m.If(end_group):
                with m.If(g == self.groups - 1):
                    m.d.sync += [g.eq(0), g_col.eq(0), rot.eq(0), g_word.eq(0)]
                with m.Else():
                    m.d.sync += [g.eq(g + 1), g_col.eq(g_col + X)]
                    if B // X > 1:
                        with m.If(rot == B // X - 1):
                            m.d.sync += [rot.eq(0), g_word.eq(g_word + CL)]
                        with m.Else():
                            m.d.sync += rot.eq(rot + 1)
                    else:
                        m.d.sync += g_word.eq(g_word + CL)
            with m.If(end_row):
                with m.If(last_y):
                    m.d.sync += [y.eq(0), top.eq(-pad)]
                with m.Else():
                    m.d.sync += [y.eq(y + 1), top.eq(top + 1)]
        return m


RowWindowSpec.component_class = RowWindow
