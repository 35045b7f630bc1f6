"""A stream FIFO of a given depth, for any payload shape.

- ``depth == 0``: a pass-through (wires only).
- ``depth == 1``: a pipeline register; full throughput, but ``i.ready`` follows
  ``o.ready`` combinationally.
- ``depth == 2``: a skid buffer; full throughput with registered ``i.ready`` and
  ``o.valid``, so it cuts every combinational path between the two sides.
- ``depth >= 3``: ``amaranth.lib.fifo.SyncFIFOBuffered`` (a ``lib.memory`` of
  ``depth - 1`` words plus an output register, BRAM/LUTRAM-mappable); full
  throughput, registered ready.  (``SyncFIFOBuffered`` of depth 1 or 2 passes
  only every other beat, hence the register versions for those depths.)

Every version holds exactly ``depth`` beats when its output is stalled.
"""

from __future__ import annotations

import math
from typing import Self

from amaranth import Module, Shape, Signal, Value, unsigned
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost
from ._checks import layer_label
from .spec import LayerSpec, SpecComponent

__all__ = ["StreamFIFO", "StreamFIFOSpec", "fifo_cost"]


def fifo_cost(depth: int, width: int) -> Resources:
    """Estimate of a :class:`StreamFIFO` of ``depth`` beats of ``width`` bits: storage (registers up to depth 2,
    else memory_cost of depth - 1 words plus a register) and counters."""
    if depth == 0:
        return Resources()
    if depth <= 2:
        return Resources(lut=width * (depth - 1) + 3, ff=width * depth + depth)
    counter = max(1, math.ceil(math.log2(depth)))
    return memory_cost(depth - 1, width) + Resources(lut=4 * counter + 6, ff=width + 3 * counter + 2)


class StreamFIFOSpec(LayerSpec):
    """FIFO of ``depth`` beats of ``shape`` between stream ports ``i`` and ``o``.

    ``beats_per_frame`` (beats per frame) only feeds :meth:`cycles_per_frame`; :meth:`pixels`
    builds one for the pixel-stream convention.
    """

    def __init__(self, shape, depth: int, *, beats_per_frame: int = 0, name: str = "",
                 src_loc_at: int = 0):
        where = layer_label(name, "StreamFIFO")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, not {depth!r} {where}")
        if not isinstance(beats_per_frame, int) or isinstance(beats_per_frame, bool) or beats_per_frame < 0:
            raise ValueError(f"beats_per_frame must be a non-negative integer, not {beats_per_frame!r} {where}")
        try:
            width = Shape.cast(shape).width
        except TypeError as exc:
            raise ValueError(f"shape {shape!r} is not an Amaranth shape {where}: {exc}") from exc
        if width < 1:
            raise ValueError(f"shape {shape!r} has no bits {where}")
        self.shape, self.depth, self.beats_per_frame, self.name = shape, depth, beats_per_frame, name
        self.payload_width = width
        self.declare_ports({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @classmethod
    def pixels(cls, channels: int, height: int, width: int, lanes: int, bits: int, depth: int, *,
               name: str = "") -> Self:
        """A FIFO for a (C, H, W) pixel stream at ``lanes`` codes of ``bits`` per beat."""
        where = layer_label(name, "StreamFIFO")
        for key, value in (("channels", channels), ("height", height), ("width", width), ("lanes", lanes),
                           ("bits", bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        return cls(data.ArrayLayout(unsigned(bits), lanes), depth,
                   beats_per_frame=height * width * channels // lanes, name=name, src_loc_at=1)

    def cycles_per_frame(self) -> int:
        """One beat per cycle: the frame's beat count (0 if unknown)."""
        return self.beats_per_frame

    def estimate(self) -> Resources:
        """See :func:`fifo_cost`."""
        return fifo_cost(self.depth, self.payload_width)


class StreamFIFO(StreamFIFOSpec, SpecComponent):
    """The hardware of :class:`StreamFIFOSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i, self.o
        if self.depth == 0:
            m.d.comb += [o.valid.eq(i.valid), o.payload.eq(i.payload), i.ready.eq(o.ready)]
        elif self.depth == 1:
            m.d.comb += i.ready.eq(~o.valid | o.ready)
            with m.If(i.valid & i.ready):
                m.d.sync += [o.valid.eq(1), o.payload.eq(i.payload)]
            with m.Elif(o.ready):
                m.d.sync += o.valid.eq(0)
        elif self.depth == 2:
            self._skid_buffer(m)
        else:
            m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.payload_width, depth=self.depth)
            m.d.comb += [
                fifo.w_data.eq(Value.cast(i.payload)),
                fifo.w_en.eq(i.valid),
                i.ready.eq(fifo.w_rdy),
                o.payload.eq(fifo.r_data),
                o.valid.eq(fifo.r_rdy),
                fifo.r_en.eq(o.ready),
            ]
        return m

    def _skid_buffer(self, m: Module) -> None:
        """Output register plus one spare register that catches the beat arriving as ``o`` stalls."""
        i, o = self.i, self.o
        spare = Signal(self.shape)
        spare_full = Signal()
        m.d.comb += i.ready.eq(~spare_full)
        with m.If(~o.valid | o.ready):
            # The output register is free this cycle: refill it from the spare, else from the input.
            with m.If(spare_full):
                m.d.sync += [o.payload.eq(spare), o.valid.eq(1), spare_full.eq(0)]
            with m.Else():
                m.d.sync += [o.payload.eq(i.payload), o.valid.eq(i.valid)]
        with m.Elif(i.valid & ~spare_full):
            m.d.sync += [spare.eq(i.payload), spare_full.eq(1)]


StreamFIFOSpec.component_class = StreamFIFO
