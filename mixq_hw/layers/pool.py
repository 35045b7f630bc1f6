"""2x2 max pooling, stride 2 (optionally padded by 1), on a raster pixel stream of codes.

One line buffer (``lib.memory``) holds the running maxima of the current row
pair: ``W_out`` pooled pixels of ``channels / lanes`` words, ``lanes * bits``
wide.  Every input beat reads its partial maximum (a synchronous read; write-first
when a pixel is one beat, so a partial written in the same cycle is seen), takes
the lane-wise maximum with the beat and writes it back; the beat at the bottom-right of each
window emits the result instead.  Without padding the output is ``H // 2`` by ``W // 2``: an odd
height or width pools as PyTorch's floor mode, its last row or column read and dropped (DiracDeltaNet's
57x57 map at 224x224, 9x9 at 32x32).  With ``pad=1`` (DiracDeltaNet's stem) the output is
``H // 2 + 1`` by ``W // 2 + 1``: border windows just see fewer codes, as with PyTorch's -inf padding
(every window holds a real code), so the pool is exact for unsigned and signed (``signed=True``) codes.  :func:`elaborate_window_pool` is the same machine for any non-overlapping window and any
lane-wise reduction (:mod:`~mixq_hw.layers.avgpool` sums with it).
"""

from __future__ import annotations

import math
from typing import Callable

from amaranth.hdl import C, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ..packing.calibration import POOL_LUT_PER_WORD_BIT
from ._checks import layer_label, check_positive
from .spec import LayerSpec, SpecComponent

__all__ = ["MaxPool2x2", "MaxPool2x2Spec", "maxpool_out_size", "maxpool_cost", "elaborate_window_pool"]


def maxpool_out_size(size: int, pad: int) -> int:
    """Output rows (or columns) of a 2x2/2 pool with ``pad`` on both sides (PyTorch's floor mode)."""
    return (size + 2 * pad - 2) // 2 + 1


def maxpool_cost(channels: int, height: int, width: int, lanes: int, bits: int, pad: int = 0) -> Resources:
    """Line buffer of W_out * C/lanes words plus lane comparators, a stage register and counters (estimate)."""
    word = lanes * bits
    chunks = channels // lanes
    depth = maxpool_out_size(width, pad) * chunks
    counters = sum(max(1, math.ceil(math.log2(n))) for n in (chunks, width, height, depth + 1))
    # LUTs per word bit for the two max stages' compare and select (calibrated: mixq_hw.packing.calibration)
    logic = Resources(lut=POOL_LUT_PER_WORD_BIT * word + 2 * counters, ff=word + 2 * counters + 4)
    return logic + memory_cost(depth, word)


def elaborate_window_pool(m: Module, i, o, *, chunks: int, height: int, width: int, kernel: tuple[int, int],
                          pad: int, partial_layout: data.ArrayLayout, lanes: int,
                          combine: Callable[[Value, Value, Value], Value], result: str) -> None:
    """Pool a raster stream ``i`` over non-overlapping ``kernel`` windows (stride = kernel, ``pad`` 0 or 1 for
    2-wide windows) into ``o``, lane by lane: ``combine(first, new, partial)`` gives the new partial of a
    lane (``first``: the window's first code, ignore ``partial``); the window's last code emits it.
    One input beat per cycle, one register stage (the line buffer's synchronous read)."""
    kh, kw = kernel
    out_width = (width + 2 * pad - kw) // kw + 1
    depth = out_width * chunks

    m.submodules.line = line = styled_memory(shape=partial_layout, depth=depth, init=[])
    wr = line.write_port()
    # A beat reads its partial in the cycle the beat ahead of it writes; the address can only be
    # the same (write-first forwarding needed) when a pixel is a single beat.
    rd = line.read_port(transparent_for=(wr,) if chunks == 1 else ())

    # Position of the next input beat.
    chunk = Signal(range(chunks))
    x = Signal(range(width))
    y = Signal(range(height))
    col_base = Signal(range(depth))       # (index of the window column) * chunks
    # Position inside the window, counted where the window is over 2 wide and not the whole axis.
    xr = Signal(range(kw), name="x_in_window") if 2 < kw < width else None
    yr = Signal(range(kh), name="y_in_window") if 2 < kh < height else None
    first_col, last_col = _edges(x, xr, width, kw, pad)
    first_row, last_row = _edges(y, yr, height, kh, pad)
    # Floor mode: an odd axis of unpadded 2-wide windows ends in a row / column that no window covers.
    odd_cols, odd_rows = (kw, pad) == (2, 0) and width % 2, (kh, pad) == (2, 0) and height % 2
    emits, keeps = last_col & last_row, ~(last_col & last_row)
    if odd_cols or odd_rows:
        dropped = Signal()
        m.d.comb += dropped.eq((x == width - 1 if odd_cols else C(0)) | (y == height - 1 if odd_rows else C(0)))
        emits, keeps = emits & ~dropped, keeps & ~dropped

    # Stage 1: the accepted beat, waiting for its partial from the line buffer.
    s1_valid = Signal()
    s1_beat = Signal(i.payload.shape())
    s1_first = Signal()     # first code of its window: ignore the stale partial
    s1_write = Signal()     # store the new partial
    s1_emit = Signal()      # last code of its window: output the result
    s1_addr = Signal(range(depth))

    s1_fire = s1_valid & (~s1_emit | o.ready)
    accept = i.valid & i.ready
    m.d.comb += [
        i.ready.eq(~s1_valid | s1_fire),
        rd.addr.eq(col_base + chunk),
        rd.en.eq(i.ready),
    ]

    combined = Signal(partial_layout, name=result)
    for lane in range(lanes):
        m.d.comb += combined[lane].eq(combine(s1_first, s1_beat[lane], rd.data[lane]))
    m.d.comb += [
        wr.addr.eq(s1_addr),
        wr.data.eq(combined),
        wr.en.eq(s1_fire & s1_write),
        o.payload.eq(combined),
        o.valid.eq(s1_valid & s1_emit),
    ]

    with m.If(accept):
        m.d.sync += [
            s1_valid.eq(1),
            s1_beat.eq(i.payload),
            s1_first.eq(first_col & first_row),
            s1_write.eq(keeps),
            s1_emit.eq(emits),
            s1_addr.eq(col_base + chunk),
        ]
        # Advance the raster position.
        with m.If(chunk == chunks - 1):
            m.d.sync += chunk.eq(0)
            with m.If(x == width - 1):
                m.d.sync += [x.eq(0), col_base.eq(0)]
                m.d.sync += y.eq(Mux(y == height - 1, 0, y + 1))
                if xr is not None:
                    m.d.sync += xr.eq(0)
                if yr is not None:
                    m.d.sync += yr.eq(Mux(last_row, 0, yr + 1))
            with m.Else():
                m.d.sync += x.eq(x + 1)
                if xr is not None:
                    m.d.sync += xr.eq(Mux(last_col, 0, xr + 1))
                # (not past the last window: the dropped column keeps the line buffer's range)
                with m.If(last_col & (x != width - 2) if odd_cols else last_col):
                    m.d.sync += col_base.eq(col_base + chunks)
        with m.Else():
            m.d.sync += chunk.eq(chunk + 1)
    with m.Elif(s1_fire):
        m.d.sync += s1_valid.eq(0)


def _edges(pos: Value, offset: Value | None, size: int, kernel: int, pad: int) -> tuple[Value, Value]:
    """(first, last): whether ``pos`` (along an axis of ``size``) is the first / last real code of its window
    (windows of ``kernel``, stride ``kernel``, ``pad`` padding cells before the first; ``offset`` is the
    position inside the window where a counter keeps it)."""
    if kernel == 1 or size == 1:
        return C(1), C(1)
    if (kernel, pad) == (2, 0):
        return ~pos[0], pos[0]
    if (kernel, pad) == (2, 1):
        return pos[0] | (pos == 0), ~pos[0] | (pos == size - 1)
    if kernel == size:
        return pos == 0, pos == size - 1
    return offset == 0, offset == kernel - 1


class MaxPool2x2Spec(LayerSpec):
    """Lane-wise 2x2/2 max pooling of a (C, H, W) stream into (C, H_out, W_out), same lanes and bits.

    ``pad=0``: H, W >= 2, H_out = H // 2 (an odd last row / column is dropped).  ``pad=1``: any H, W; H_out =
    H//2 + 1 (a border window takes the maximum of its real codes).  Ports: ``i`` and ``o``,
    ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with ``signed``: two's-complement
    codes, compared signed).
    Throughput: one input beat per cycle; latency: a window's result leaves the cycle after its last beat.
    """

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *, pad: int = 0,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, "MaxPool2x2")
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        if pad not in (0, 1) or isinstance(pad, bool):
            raise ValueError(f"pad must be 0 or 1, not {pad!r} {where}")
        if not pad and (height < 2 or width < 2):
            raise ValueError(f"an unpadded 2x2/2 pool needs at least 2x2 codes, got {height}x{width} {where}")
        self.channels, self.height, self.width = channels, height, width
        if not isinstance(signed, bool):
            raise ValueError(f"signed must be True or False, not {signed!r} {where}")
        self.lanes, self.bits, self.pad, self.signed, self.name = lanes, bits, pad, signed, name
        self.layout = data.ArrayLayout(Shape(bits, signed=signed), lanes)
        self.declare_ports({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return self.channels, maxpool_out_size(self.height, self.pad), maxpool_out_size(self.width, self.pad)

    @property
    def chunks(self) -> int:
        """Beats per pixel."""
        return self.channels // self.lanes

    def cycles_per_frame(self) -> int:
        """One input beat per cycle: H * W * C / lanes."""
        return self.height * self.width * self.chunks

    def estimate(self) -> Resources:
        """See :func:`maxpool_cost`."""
        return maxpool_cost(self.channels, self.height, self.width, self.lanes, self.bits, self.pad)


class MaxPool2x2(MaxPool2x2Spec, SpecComponent):
    """The hardware of :class:`MaxPool2x2Spec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        elaborate_window_pool(m, self.i, self.o, chunks=self.chunks, height=self.height, width=self.width,
                              kernel=(2, 2), pad=self.pad, partial_layout=self.layout, lanes=self.lanes,
                              combine=lambda first, new, old: Mux(first | (new > old), new, old), result="maximum")
        return m


MaxPool2x2Spec.component_class = MaxPool2x2
