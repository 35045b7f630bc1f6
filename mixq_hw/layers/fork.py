"""Fork: one stream to several consumers, each with its own ready.

An eager fork: every output offers the input beat as soon as it is valid, and
a per-output ``taken`` flag remembers which consumers already accepted it; the
input beat leaves (``i.ready``) in the cycle the last consumer takes it.  No
output's valid depends on any ready, so two consumers that wait on each other
(e.g. through a concat downstream) cannot deadlock on a combinational loop, and
when every consumer is ready one beat passes per cycle.
"""

from __future__ import annotations

from typing import Self

from amaranth import Cat, Module, Shape, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ._checks import layer_label
from .spec import LayerSpec, SpecComponent

__all__ = ["Fork", "ForkSpec"]



class ForkSpec(LayerSpec):
    """Copies a stream of ``shape`` payloads to ``outputs`` consumers ``o0``, ``o1``, ...; a beat leaves when all took it.

    Payload-agnostic, so it also splits grouped accumulator streams (one conv feeding two requant
    heads).  ``beats_per_frame`` only feeds :meth:`cycles_per_frame`; :meth:`pixels` builds a fork
    for the pixel-stream convention.
    """

    def __init__(self, shape, *, outputs: int = 2, beats_per_frame: int = 0, name: str = "",
                 src_loc_at: int = 0):
        where = layer_label(name, "Fork")
        try:
            width = Shape.cast(shape).width
        except TypeError as exc:
            raise ValueError(f"shape {shape!r} is not an Amaranth shape {where}: {exc}") from exc
        if width < 1:
            raise ValueError(f"shape {shape!r} has no bits {where}")
        for key, value in (("outputs", outputs), ("beats_per_frame", beats_per_frame)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative integer, not {value!r} {where}")
        if outputs < 2:
            raise ValueError(f"a fork needs at least 2 outputs, not {outputs} {where}")
        self.shape, self.n_outputs, self.beats_per_frame, self.name = shape, outputs, beats_per_frame, name
        ports = {"i": In(stream.Signature(shape))}
        ports.update({f"o{k}": Out(stream.Signature(shape)) for k in range(outputs)})
        self.declare_ports(ports)

    @classmethod
    def pixels(cls, channels: int, height: int, width: int, lanes: int, bits: int, *, outputs: int = 2,
               name: str = "") -> Self:
        """A fork of a (C, H, W) pixel stream at ``lanes`` codes of ``bits`` per beat."""
        where = layer_label(name, "Fork")
        for key, value in (("channels", channels), ("height", height), ("width", width), ("lanes", lanes),
                           ("bits", bits)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
        if channels % lanes:
            raise ValueError(f"channels {channels} not divisible by lanes {lanes} {where}")
        return cls(data.ArrayLayout(unsigned(bits), lanes), outputs=outputs,
                   beats_per_frame=height * width * channels // lanes, name=name, src_loc_at=1)

    def cycles_per_frame(self) -> int:
        """One beat per cycle: the frame's beat count (0 if not given)."""
        return self.beats_per_frame

    def estimate(self) -> Resources:
        """One flag and a little valid/ready logic per output (estimate)."""
        return Resources(lut=2 * self.n_outputs + 1, ff=self.n_outputs)


class Fork(ForkSpec, SpecComponent):
    """The hardware of :class:`ForkSpec` (the same arguments)."""

    @property
    def outputs(self) -> list:
        """The output ports."""
        return [getattr(self, f"o{k}") for k in range(self.n_outputs)]

    def elaborate(self, platform) -> Module:
        m = Module()
        taken = Signal(self.n_outputs)
        # An output is done with the current beat if it took it earlier or takes it now.
        done = Cat(*(taken[k] | port.ready for k, port in enumerate(self.outputs)))
        m.d.comb += self.i.ready.eq(done.all())
        for k, port in enumerate(self.outputs):
            m.d.comb += [port.valid.eq(self.i.valid & ~taken[k]), port.payload.eq(self.i.payload)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += taken.eq(0)
        with m.Elif(self.i.valid):
            m.d.sync += taken.eq(taken | Cat(*(port.ready for port in self.outputs)))
        return m


ForkSpec.component_class = Fork
