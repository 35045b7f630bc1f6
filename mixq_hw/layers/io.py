"""The accelerator's edges: 8-bit pixels in, input codes out (the integer contract's input quantizer)."""

from __future__ import annotations

from amaranth import Module, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ..packing.bits import INPUT_BITS
from .spec import LayerSpec, SpecComponent

__all__ = ["InputCodes", "InputCodesSpec"]


class InputCodesSpec(LayerSpec):
    """Keeps the top ``bits`` bits of every 8-bit pixel: ``code = pixel >> (8 - bits)``.

    Ports: ``i`` carries one pixel per beat (``ArrayLayout(unsigned(8), channels)``), ``o`` the
    codes of that pixel (``ArrayLayout(unsigned(bits), channels)``).  Pure wiring: no cycle of
    latency, no logic.
    """

    def __init__(self, channels: int, height: int, width: int, bits: int, *, name: str = "input"):
        if bits not in INPUT_BITS:
            raise ValueError(f"input quantizer bits {bits} outside {INPUT_BITS.start}..{INPUT_BITS.stop - 1} in "
                             f"layer {name!r}")
        self.channels, self.height, self.width, self.bits, self.name = channels, height, width, bits, name
        self.declare_ports({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(8), channels))),
            "o": Out(stream.Signature(data.ArrayLayout(unsigned(bits), channels))),
        })

    def cycles_per_frame(self) -> int:
        """One pixel per cycle."""
        return self.height * self.width

    def estimate(self) -> Resources:
        """Wires only."""
        return Resources()


class InputCodes(InputCodesSpec, SpecComponent):
    """The hardware of :class:`InputCodesSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
        for c in range(self.channels):
            m.d.comb += self.o.payload[c].eq(self.i.payload[c][8 - self.bits:])
        return m


InputCodesSpec.component_class = InputCodes
