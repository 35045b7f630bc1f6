"""Group-to-raster reorder: grouped channel-fold beats -> the raster pixel stream of the layer convention.

Input (the Requant / AccBias format): per group of ``pixels`` adjacent pixels,
per channel fold ``f`` in ``0..C/pe-1``, one beat ``beat[j][p]`` = channel
``f*pe + p`` of pixel ``j``.  Output: the same pixels in raster order, each
pixel ``C/lanes_out`` beats of ``lanes_out`` channels.

Storage: two buffers (ping-pong) of one group, ``pixels*C`` values, in
``pixels * nb`` banks of ``lib.memory``, each ``u = min(pe, lanes_out)``
values wide, with ``nb = max(pe, lanes_out) / u`` (one of ``pe`` and
``lanes_out`` must divide the other).  Channel unit ``m`` (channels
``m*u .. m*u+u-1``) of pixel ``j`` lives in bank ``(j, m % nb)`` at word
``m // nb``: a write beat fills ``pe/u`` banks per pixel and a read beat takes
``lanes_out/u`` banks of one pixel, each bank at most once.  One group is
written while the other is read, so the layer runs at
``max(C/pe, pixels*C/lanes_out)`` cycles per group.

Ragged groups: when ``pixels`` does not divide the map's ``width``, each row
has ``ceil(width / pixels)`` groups and the last one holds only
``width - (groups - 1) * pixels`` real pixels; the slots past them are
written like the others but never read, so the output is exactly the raster
of the ``width`` real columns.
"""

from __future__ import annotations

from typing import Any, Callable

from amaranth import Array, Cat, Module, Mux, Shape, Signal, Value, unsigned
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
        if channels % pe:
            raise ValueError(f"channels {channels} not divisible by pe {pe} {where}")
        if channels % lanes_out:
            raise ValueError(f"channels {channels} not divisible by lanes_out {lanes_out} {where}")
        if pe % lanes_out and lanes_out % pe:
            raise ValueError(f"pe {pe} and lanes_out {lanes_out}: one must divide the other {where}")
        if pixels > width:
            raise ValueError(f"pixels {pixels} exceeds the width {width} (pixels may be 1..{width}) {where}")
        self.channels, self.pe, self.pixels, self.lanes_out, self.bits = channels, pe, pixels, lanes_out, bits
        self.height, self.width, self.signed, self.name = height, width, bool(signed), name
        self.unit = min(pe, lanes_out)
        self.banks_per_pixel = max(pe, lanes_out) // self.unit
        #: words of one group in one bank; each bank holds two groups
        self.half = channels // max(pe, lanes_out)
        self.folds = channels // pe
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
        read_regs = 0 if bank.bram36 else nbanks * self.unit * self.bits
        return bank * nbanks + Resources(lut=mux + 2 * counters,
                                         ff=counters + max(1, (nbanks - 1).bit_length()) + 1 + read_regs)


class GroupToRaster(GroupToRasterSpec, SpecComponent):
    """The hardware of :class:`GroupToRasterSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        u, nb, half, P = self.unit, self.banks_per_pixel, self.half, self.pixels
        word = unsigned(u * self.bits)
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

        # ---- writer: fold f of the group into buffer w_buf
        w_buf = Signal()
        fold = Signal(range(self.folds))
        m.d.comb += self.i.ready.eq(~full.bit_select(w_buf, 1))
        accept = self.i.valid & self.i.ready
        with m.If(accept):
            m.d.sync += fold.eq(Mux(fold == self.folds - 1, 0, fold + 1))
            with m.If(fold == self.folds - 1):
                m.d.sync += w_buf.eq(~w_buf)
                m.d.comb += set_full.bit_select(w_buf, 1).eq(1)
        w_unit: list[Callable[[int], Value]]
        if self.pe >= self.lanes_out:
            # beat f holds units f*nb .. f*nb+nb-1: unit i of pixel j -> bank (j, i), word f
            w_addr = w_buf * half + fold
            w_enable = [accept] * nb
            w_unit = [lambda j, i=i: self.i.payload[j].as_value()[i * u * self.bits:(i + 1) * u * self.bits]  # type: ignore[misc]
                      for i in range(nb)]
        else:
            # beat f is unit f: bank (j, f % nb), word f // nb
            w_bank = Signal(range(nb))
            w_word = Signal(range(half))
            with m.If(accept):
                m.d.sync += w_bank.eq(Mux(w_bank == nb - 1, 0, w_bank + 1))
                with m.If(fold == self.folds - 1):
                    m.d.sync += w_word.eq(0)
                with m.Elif(w_bank == nb - 1):
                    m.d.sync += w_word.eq(w_word + 1)
            w_addr = w_buf * half + w_word
            w_enable = [accept & (w_bank == i) for i in range(nb)]
            w_unit = [lambda j: self.i.payload[j].as_value()] * nb
        for j in range(P):
            for i in range(nb):
                wp = banks[j][i][0]
                m.d.comb += [wp.addr.eq(w_addr), wp.en.eq(w_enable[i]), wp.data.eq(w_unit[i](j))]

        # ---- reader: pixel j, chunk c of buffer r_buf
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
        sel_pixel = Signal(range(P))
        if self.pe >= self.lanes_out:
            # chunk c is unit c: bank (j, c % nb), word c // nb
            r_bank = Signal(range(nb))
            r_word = Signal(range(half))
            with m.If(issue):
                m.d.sync += r_bank.eq(Mux(r_bank == nb - 1, 0, r_bank + 1))
                with m.If(last_chunk):
                    m.d.sync += r_word.eq(0)
                with m.Elif(r_bank == nb - 1):
                    m.d.sync += r_word.eq(r_word + 1)
            r_addr = r_buf * half + r_word
            sel_bank = Signal(range(nb))
            with m.If(advance):
                m.d.sync += [sel_pixel.eq(pixel), sel_bank.eq(r_bank)]
            flat = Array(Array(rp.data for _, rp in row) for row in banks)
            m.d.comb += self.o.payload.eq(flat[sel_pixel][sel_bank])
        else:
            # chunk c is units c*nb .. c*nb+nb-1: banks (j, 0..nb-1), word c
            r_addr = r_buf * half + chunk
            with m.If(advance):
                m.d.sync += sel_pixel.eq(pixel)
            rows = Array(Cat(rp.data for _, rp in row) for row in banks)
            m.d.comb += self.o.payload.eq(rows[sel_pixel])
        for row in banks:
            for _, rp in row:
                m.d.comb += [rp.addr.eq(r_addr), rp.en.eq(advance)]
        return m


GroupToRasterSpec.component_class = GroupToRaster
