"""DiracDeltaNet's shift on a raster pixel stream: each channel moves by one of five offsets, no multiplier.

Channel ``c`` of output pixel (y, x) is input channel ``c`` at (y + dy, x + dx), with (dy, dx) =
:data:`~mixq_hw.layers.reference.SHIFT_OFFSETS` ``[c % 5]`` (up, left, centre, right, down) and 0 outside
the image; :func:`~mixq_hw.layers.reference.shift` is the reference.

Storage: a ring of ``D = 2 * W * C/lanes + 2`` beats (two rows and two beats), one ``lib.memory`` per lane
(``bits`` wide), written at the input's beat index.  Output beat ``m`` (same indexing: output and input
have the same shape) reads lane ``l`` from beat ``m + offset``, offset one of -row, -chunks, 0, +chunks,
+row (row = W * chunks), through that lane's own read port, and zeroes it when the source lies outside
the image.  A counter ``ahead`` (input beats written beyond the next output beat) gates both sides: an
output beat waits until its furthest in-image source is written (the pixel below, or on the last row the
pixel to the right), and an input beat waits until the slot it overwrites is no longer read.  The last
row needs nothing from the next frame, so a final frame drains on its own.
"""

from __future__ import annotations

import math

from amaranth.hdl import C, Module, Mux, Shape, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, mux_luts, styled_memory
from ._checks import check_positive, layer_label
from .reference import SHIFT_OFFSETS
from .spec import LayerSpec, SpecComponent

__all__ = ["Shift", "ShiftSpec", "shift_ring_depth", "shift_cycles", "shift_cost"]


def shift_ring_depth(channels: int, width: int, lanes: int) -> int:
    """Beats the ring holds: two rows plus two beats (so input and output both run at one beat per cycle)."""
    return 2 * width * (channels // lanes) + 2


def shift_cycles(channels: int, height: int, width: int, lanes: int) -> int:
    """Steady-state cycles per frame: one beat per cycle, H * W * C / lanes."""
    return height * width * (channels // lanes)


def shift_cost(channels: int, height: int, width: int, lanes: int, bits: int) -> Resources:
    """Estimate of a :class:`Shift`: ``lanes`` ring memories of ``bits`` x D, five ring addresses, a 5:1
    address mux and a zero mask per lane, the position counters."""
    depth = shift_ring_depth(channels, width, lanes)
    abits = max(1, math.ceil(math.log2(depth)))
    chunks = channels // lanes
    counters = sum(max(1, math.ceil(math.log2(n + 1))) for n in (chunks, width, height, depth, depth, 5))
    logic = Resources(lut=5 * 2 * abits + lanes * (abits * mux_luts(5) + bits + 1) + 2 * counters + abits,
                      ff=lanes * (bits + 1) + counters + 1)
    return logic + memory_cost(depth, bits) * lanes


class ShiftSpec(LayerSpec):
    """Shift of a (C, H, W) stream (see the module docstring), same shape, lanes and bits.

    Ports: ``i`` and ``o``, ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with
    ``signed=True``; the fill is 0 either way).  Throughput one beat per cycle; latency: output beat 0 of a
    frame leaves 2 cycles after input beat ``W * C/lanes`` (the first pixel of the second row) enters.
    """

    kind = "Shift"

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *, signed: bool = False,
                 name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.signed, self.name = lanes, bits, bool(signed), name
        self.element = Shape(bits, signed=bool(signed))
        self.layout = data.ArrayLayout(self.element, lanes)
        self.declare_ports({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor (the input's)."""
        return self.channels, self.height, self.width

    @property
    def chunks(self) -> int:
        """Beats per pixel."""
        return self.channels // self.lanes

    def cycles_per_frame(self) -> int:
        """See :func:`shift_cycles`."""
        return shift_cycles(self.channels, self.height, self.width, self.lanes)

    def estimate(self) -> Resources:
        """See :func:`shift_cost`."""
        return shift_cost(self.channels, self.height, self.width, self.lanes, self.bits)


class Shift(ShiftSpec, SpecComponent):
    """The hardware of :class:`ShiftSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        chunks, width, height, lanes = self.chunks, self.width, self.height, self.lanes
        row = width * chunks
        depth = shift_ring_depth(self.channels, width, lanes)

        ahead = Signal(range(depth + 1))        # input beats written beyond the next output beat
        in_addr = Signal(range(depth))
        out_addr = Signal(range(depth))
        chunk = Signal(range(chunks))           # output position
        x = Signal(range(width))
        y = Signal(range(height))
        phase = Signal(range(5))                # (chunk * lanes) % 5: the shift kind of lane 0

        # Ring address of each kind's source, and whether that source lies inside the image.
        sources = []
        for dy, dx in SHIFT_OFFSETS:
            offset = dy * row + dx * chunks
            addr = Signal(range(depth), name=f"src_{dy + 1}{dx + 1}")
            if offset >= 0:
                m.d.comb += addr.eq(Mux(out_addr >= depth - offset, out_addr - (depth - offset), out_addr + offset))
            else:
                m.d.comb += addr.eq(Mux(out_addr >= -offset, out_addr + offset, out_addr + (depth + offset)))
            inside = C(1)
            if dy < 0:
                inside = y != 0
            elif dy > 0:
                inside = y != height - 1
            elif dx < 0:
                inside = x != 0
            elif dx > 0:
                inside = x != width - 1
            sources.append((addr, inside))

        # The furthest in-image source of the next output beat must be written before it is read.
        needed = Signal(range(row + 1))
        m.d.comb += needed.eq(Mux(y != height - 1, row, Mux(x != width - 1, chunks, 0)))

        s1_valid = Signal()
        s1_keep = Signal(lanes)                 # per lane: the source is inside the image
        fire = (ahead > needed) & (~s1_valid | self.o.ready)
        accept = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(ahead + row < depth)

        payload = Signal(self.layout)
        for lane in range(lanes):
            mem = styled_memory(shape=self.element, depth=depth, init=[])
            m.submodules[f"ring{lane}"] = mem
            wr, rd = mem.write_port(), mem.read_port(transparent_for=())
            m.d.comb += [wr.addr.eq(in_addr), wr.data.eq(self.i.payload[lane]), wr.en.eq(accept), rd.en.eq(fire)]
            keep = Signal(name=f"keep{lane}")
            with m.Switch(phase):
                for p in range(5):
                    with m.Case(p):
                        addr, inside = sources[(p + lane) % 5]
                        m.d.comb += [rd.addr.eq(addr), keep.eq(inside)]
            with m.If(fire):
                m.d.sync += s1_keep[lane].eq(keep)
            m.d.comb += payload[lane].eq(Mux(s1_keep[lane], rd.data, 0))
        m.d.comb += [self.o.payload.eq(payload), self.o.valid.eq(s1_valid)]

        m.d.sync += ahead.eq(ahead + accept - fire)
        with m.If(accept):
            m.d.sync += in_addr.eq(Mux(in_addr == depth - 1, 0, in_addr + 1))
        with m.If(fire):
            m.d.sync += [s1_valid.eq(1), out_addr.eq(Mux(out_addr == depth - 1, 0, out_addr + 1))]
            with m.If(chunk == chunks - 1):
                m.d.sync += [chunk.eq(0), phase.eq(0)]
                with m.If(x == width - 1):
                    m.d.sync += [x.eq(0), y.eq(Mux(y == height - 1, 0, y + 1))]
                with m.Else():
                    m.d.sync += x.eq(x + 1)
            with m.Else():
                step = phase + lanes % 5
                m.d.sync += [chunk.eq(chunk + 1), phase.eq(Mux(step >= 5, step - 5, step))]
        with m.Elif(self.o.ready):
            m.d.sync += s1_valid.eq(0)
        return m


ShiftSpec.component_class = Shift
