"""Group-to-raster reorder: grouped channel-fold beats -> the raster pixel stream of the layer convention.

Input (the Requant / AccBias format): per group of ``pixels`` adjacent pixels,
per channel fold ``f`` in ``0..ceil(C/pe)-1``, one beat ``beat[j][p]`` = channel
``f*pe + p`` of pixel ``j``; when ``pe`` does not divide ``C`` the last fold's
lanes past channel ``C-1`` are padding (a ConvEngine's zero filters) and are
dropped here.  Output: the same pixels in raster order, each pixel
``C/lanes_out`` beats of ``lanes_out`` channels.

Storage: two buffers (ping-pong) of one group in ``pixels * nb`` banks of
``lib.memory``, each ``u = gcd(pe, lanes_out)`` values wide, with
``nb = max(pe, lanes_out) / u``.  Channel unit ``m`` (channels
``m*u .. m*u+u-1``) of pixel ``j`` lives in bank ``(j, m % nb)`` at word
``m // nb``.  A write beat fills ``pe/u`` consecutive units per pixel and a
read beat takes ``lanes_out/u`` consecutive units of one pixel, so each touches
a bank at most once; the side whose units number ``nb`` is aligned (bank ``i``
holds its unit ``i``), the other starts at a rotating bank and wraps to the
next word (one of ``pe`` and ``lanes_out`` dividing the other and ``pe``
dividing ``C`` make both aligned).  One group is written while the other is
read, so the layer runs at ``max(ceil(C/pe), pixels*C/lanes_out)`` cycles per
group.

Ragged groups: when ``pixels`` does not divide the map's ``width``, each row
has ``ceil(width / pixels)`` groups and the last one holds only
``width - (groups - 1) * pixels`` real pixels; the slots past them are
written like the others but never read, so the output is exactly the raster
of the ``width`` real columns.
"""

from __future__ import annotations

import math
from typing import Any

from amaranth import Array, Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ._checks import layer_label
from .spec import LayerSpec, SpecComponent

__all__ = ["GroupToRaster", "GroupToRasterSpec"]



class GroupToRasterSpec(LayerSpec):
    """Reorders grouped beats ``[pixels][pe]`` into raster pixels of ``lanes_out`` channels per beat.

    Ports: ``i``: ``ArrayLayout(ArrayLayout(shape, pe), pixels)``;
    ``o``: ``ArrayLayout(shape, lanes_out)``, with ``shape = signed(bits)`` if
    ``signed`` else ``unsigned(bits)``.  ``height``/``width`` (the map) only set
    ``cycles_per_frame``.
    """

    def __init__(self, channels: int, pe: int, pixels: int, lanes_out: int, bits: int, *,
                 height: int = 1, width: int | None = None, signed: bool = False, name: str = ""):
        where = layer_label(name, "GroupToRaster")
        width = pixels if width is None else width
        for key, value in dict(channels=channels, pe=pe, pixels=pixels, lanes_out=lanes_out, bits=bits,
                               height=height, width=width).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
        if pe > channels:
            raise ValueError(f"pe {pe} exceeds the channels {channels} {where}")
        if channels % lanes_out:
            raise ValueError(f"channels {channels} not divisible by lanes_out {lanes_out} {where}")
        if pixels > width:
            raise ValueError(f"pixels {pixels} exceeds the width {width} (pixels may be 1..{width}) {where}")
        self.channels, self.pe, self.pixels, self.lanes_out, self.bits = channels, pe, pixels, lanes_out, bits
        self.height, self.width, self.signed, self.name = height, width, bool(signed), name
        self.unit = math.gcd(pe, lanes_out)
        self.banks_per_pixel = max(pe, lanes_out) // self.unit
        #: input beats per group: ``ceil(C/pe)``, the last one padded when ``pe`` does not divide ``C``
        self.folds = -(-channels // pe)
        #: words of one group in one bank (the padded channels included); each bank holds two groups
        self.half = -(-self.folds * pe // (self.unit * self.banks_per_pixel))
        self.chunks = channels // lanes_out
        #: groups per row; the last one holds ``last_pixels`` real pixels
        self.groups = -(-width // pixels)
        self.last_pixels = width - (self.groups - 1) * pixels
        value = Shape(bits, self.signed)
        self.in_layout = data.ArrayLayout(data.ArrayLayout(value, pe), pixels)
        self.out_layout = data.ArrayLayout(value, lanes_out)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)),
                          "o": Out(stream.Signature(self.out_layout))})

    def cycles_per_frame(self) -> int:
        """``max(C/pe, pixels*C/lanes_out)`` cycles per group, ``ceil(W/pixels)`` groups per row (the last
        one reads only its real pixels), ``H`` rows per frame."""
        full = (self.groups - 1) * max(self.folds, self.pixels * self.chunks)
        return self.height * (full + max(self.folds, self.last_pixels * self.chunks))

    def estimate(self) -> Resources:
        """Ping-pong bank memories plus the output multiplexer and counters.

        LUTRAM banks read through fabric registers (one per data bit); BRAM has its own.
        """
        nbanks = self.pixels * self.banks_per_pixel
        bank = memory_cost(2 * self.half, self.unit * self.bits)
        counters = sum(max(1, (n - 1).bit_length()) for n in (self.folds, self.pixels, self.chunks)) + 4
        if self.last_pixels < self.pixels:     # the reader's group counter and short last group
            counters += max(1, (self.groups - 1).bit_length()) + 2
        mux = self.lanes_out * self.bits * max(1, -(-nbanks // 4))
        per_write, per_read = self.pe // self.unit, self.lanes_out // self.unit
        if per_write < self.banks_per_pixel:
            # rotated writes: each bank picks one of the beat's units (no choice with one unit per beat), and
            # its word may wrap
            pick = nbanks * self.unit * self.bits * -(-per_write // 4) if per_write > 1 else 0
            mux += pick + self.banks_per_pixel * 4
        if per_read < self.banks_per_pixel:
            mux += self.banks_per_pixel * 4     # rotated reads: per-bank word addresses
        read_regs = 0 if bank.bram36 else nbanks * self.unit * self.bits
        return bank * nbanks + Resources(lut=mux + 2 * counters,
                                         ff=counters + max(1, (nbanks - 1).bit_length()) + 1 + read_regs)


class GroupToRaster(GroupToRasterSpec, SpecComponent):
    """The hardware of :class:`GroupToRasterSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        u, nb, half, P = self.unit, self.banks_per_pixel, self.half, self.pixels
        per_write, per_read = self.pe // u, self.lanes_out // u
        ubits = u * self.bits
        word = unsigned(ubits)
        banks: list[list[Any]] = [[None] * nb for _ in range(P)]
        for j in range(P):
            for b in range(nb):
                mem = styled_memory(shape=word, depth=2 * half, init=[])
                m.submodules[f"bank{j}_{b}"] = mem
                banks[j][b] = (mem.write_port(), mem.read_port())

        full = Signal(2)
        set_full = Signal(2)
        clear_full = Signal(2)
        m.d.sync += full.eq((full | set_full) & ~clear_full)

        # ---- writer: fold f of the group into buffer w_buf; its units start at bank w_start, word w_word
        w_buf = Signal()
        fold = Signal(range(self.folds))
        m.d.comb += self.i.ready.eq(~full.bit_select(w_buf, 1))
        accept = self.i.valid & self.i.ready
        last_fold = fold == self.folds - 1
        with m.If(accept):
            m.d.sync += fold.eq(Mux(last_fold, 0, fold + 1))
            with m.If(last_fold):
                m.d.sync += w_buf.eq(~w_buf)
                m.d.comb += set_full.bit_select(w_buf, 1).eq(1)
        w_start, w_word = self._rotation(m, accept, last_fold, per_write, "w")
        for j in range(P):
            units = [self.i.payload[j].as_value()[i * ubits:(i + 1) * ubits] for i in range(per_write)]
            for b in range(nb):
                wp = banks[j][b][0]
                if per_write == nb:
                    m.d.comb += [wp.addr.eq(w_buf * half + w_word), wp.en.eq(accept), wp.data.eq(units[b])]
                    continue
                # bank b takes unit (b - w_start) mod nb of the beat, if the beat has that many
                offset = Signal(range(nb), name=f"w_off{j}_{b}")
                m.d.comb += offset.eq(Mux(w_start <= b, b - w_start, b + nb - w_start))
                m.d.comb += [wp.addr.eq(w_buf * half + w_word + (w_start > b)),
                             wp.en.eq(accept & (offset < per_write)),
                             wp.data.eq(Array(units)[offset] if per_write > 1 else units[0])]

        # ---- reader: pixel j, chunk c of buffer r_buf; its units start at bank r_start, word r_word
        r_buf = Signal()
        pixel = Signal(range(P))
        chunk = Signal(range(self.chunks))
        o_valid = Signal()
        advance = ~o_valid | self.o.ready
        issue = advance & full.bit_select(r_buf, 1)
        last_chunk = chunk == self.chunks - 1
        if self.last_pixels < P:
            # the last group of a row: only its real pixels are read, the rest of the buffer is dropped
            r_group = Signal(range(self.groups))
            last_pixel = Mux(r_group == self.groups - 1, pixel == self.last_pixels - 1, pixel == P - 1)
            with m.If(issue & last_chunk & last_pixel):
                m.d.sync += r_group.eq(Mux(r_group == self.groups - 1, 0, r_group + 1))
        else:
            last_pixel = pixel == P - 1
        with m.If(issue):
            m.d.sync += chunk.eq(Mux(last_chunk, 0, chunk + 1))
            with m.If(last_chunk):
                m.d.sync += pixel.eq(Mux(last_pixel, 0, pixel + 1))
                with m.If(last_pixel):
                    m.d.sync += r_buf.eq(~r_buf)
                    m.d.comb += clear_full.bit_select(r_buf, 1).eq(1)
        with m.If(advance):
            m.d.sync += o_valid.eq(full.bit_select(r_buf, 1))
        m.d.comb += self.o.valid.eq(o_valid)
        r_start, r_word = self._rotation(m, issue, last_chunk, per_read, "r")
        for row in banks:
            for b, (_, rp) in enumerate(row):
                bump = (r_start > b) if per_read < nb else 0
                m.d.comb += [rp.addr.eq(r_buf * half + r_word + bump), rp.en.eq(advance)]
        # output unit i of the beat is bank (r_start + i) mod nb of the pixel read
        sel_pixel = Signal(range(P))
        sel_start = Signal(range(nb))
        with m.If(advance):
            m.d.sync += [sel_pixel.eq(pixel), sel_start.eq(r_start)]
        flat = Array(Array(rp.data for _, rp in row) for row in banks)
        picked = []
        for i in range(per_read):
            if per_read == nb:
                picked.append(flat[sel_pixel][i])
                continue
            bank = Signal(range(nb), name=f"r_bank{i}")
            m.d.comb += bank.eq(Mux(sel_start + i < nb, sel_start + i, sel_start + i - nb))
            picked.append(flat[sel_pixel][bank])
        m.d.comb += self.o.payload.eq(Cat(*picked))
        return m

    def _rotation(self, m: Module, step: Value, wrap: Value, units: int, prefix: str) -> tuple[Value, Value]:
        """``(start bank, word)`` of a side that takes ``units`` consecutive units per beat: both advance by
        ``units`` on ``step`` and return to 0 on ``step & wrap`` (the group's last beat); constants 0 and a
        beat counter when ``units`` fills every bank."""
        nb = self.banks_per_pixel
        word = Signal(range(self.half), name=f"{prefix}_word")
        if units == nb:
            with m.If(step):
                m.d.sync += word.eq(Mux(wrap, 0, word + 1))
            return Const(0, 1), word
        start = Signal(range(nb), name=f"{prefix}_start")
        with m.If(step):
            with m.If(wrap):
                m.d.sync += [start.eq(0), word.eq(0)]
            with m.Elif(start + units >= nb):
                m.d.sync += [start.eq(start + units - nb), word.eq(word + 1)]
            with m.Else():
                m.d.sync += start.eq(start + units)
        return start, word


GroupToRasterSpec.component_class = GroupToRaster
