"""Channel concatenation of two pixel streams: for each pixel, C0/lanes beats from ``i0``, then C1/lanes from ``i1``.

Both inputs have the same height, width, bits and lanes (the Graph's concat
requires equal bits).  The layer is a multiplexer steered by a beat counter:
no storage, no added latency.  Its valid/payload follow the selected input
and that input's ready follows ``o.ready`` (no ready -> valid path).  The
inputs run in lock step pixel by pixel, so a branch that arrives early must be
absorbed by a FIFO upstream, sized from the schedules.
"""

from __future__ import annotations

import math
from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ._checks import layer_label

__all__ = ["Concat"]



class Concat(wiring.Component):
    """Concatenates a (C0, H, W) and a (C1, H, W) stream along channels into (C0 + C1, H, W), same lanes.

    Ports: ``i0``, ``i1`` and ``o``, all ``stream.Signature(ArrayLayout(unsigned(bits), lanes))``.
    """

    def __init__(self, channels0: int, channels1: int, height: int, width: int, lanes: int, bits: int, *,
                 name: str = ""):
        where = layer_label(name, "Concat")
        for key, value in (("channels0", channels0), ("channels1", channels1), ("height", height),
                           ("width", width), ("lanes", lanes), ("bits", bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
        channels = (channels0, channels1)
        for k, c in enumerate(channels):
            if c % lanes:
                raise ValueError(f"channels {c} of input i{k} not divisible by lanes {lanes} {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.name = lanes, bits, name
        self.layout = data.ArrayLayout(unsigned(bits), lanes)
        super().__init__({"i0": In(stream.Signature(self.layout)), "i1": In(stream.Signature(self.layout)),
                          "o": Out(stream.Signature(self.layout))})

    @property
    def inputs(self) -> list:
        """The input ports, in channel order."""
        return [getattr(self, f"i{k}") for k in range(len(self.channels))]

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return sum(self.channels), self.height, self.width

    def cycles_per_frame(self) -> int:
        """One output beat per cycle: H * W * sum(C_k) / lanes."""
        return self.height * self.width * sum(self.channels) // self.lanes

    def estimate(self) -> Resources:
        """A 2:1 multiplexer of lanes * bits (one LUT per bit), a beat counter and a select flag (estimate)."""
        word = self.lanes * self.bits
        counter = max(1, math.ceil(math.log2(max(self.channels) // self.lanes + 1)))
        return Resources(lut=word + 2 * counter + 3, ff=counter + 1)

    def elaborate(self, platform) -> Module:
        m = Module()
        counts = [c // self.lanes for c in self.channels]
        beat = Signal(range(max(counts)))       # beat within the current input's part of the pixel
        select = Signal(range(len(counts)))
        fire = self.o.valid & self.o.ready

        with m.Switch(select):
            for k, port in enumerate(self.inputs):
                with m.Case(k):
                    m.d.comb += [
                        self.o.valid.eq(port.valid),
                        self.o.payload.eq(port.payload),
                        port.ready.eq(self.o.ready),
                    ]
                    with m.If(fire):
                        with m.If(beat == counts[k] - 1):
                            m.d.sync += [beat.eq(0), select.eq(0 if k == len(counts) - 1 else k + 1)]
                        with m.Else():
                            m.d.sync += beat.eq(beat + 1)
        return m
