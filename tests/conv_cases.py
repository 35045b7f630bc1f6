"""Helpers the conv-engine tests share: a window feeding an engine as one design, and stable seeds."""

from __future__ import annotations

import zlib

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.layers.conv import ConvEngine

STALLS = [0.0, 0.3, 0.7]


def stable_seed(*key) -> int:
    """A seed from a test's parameters that does not change between runs (``hash`` of a str does)."""
    return zlib.crc32(repr(key).encode()) % 1000


class Chain(wiring.Component):
    """window -> engine: raster codes in, accumulator groups out."""

    def __init__(self, window, engine: ConvEngine):
        self.window, self.engine = window, engine
        super().__init__({"i": In(stream.Signature(window.i.payload.shape())),
                          "o": Out(stream.Signature(engine.o.payload.shape()))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.window, m.submodules.engine = self.window, self.engine
        wiring.connect(m, wiring.flipped(self.i), self.window.i)
        wiring.connect(m, self.window.o, self.engine.i)
        wiring.connect(m, self.engine.o, wiring.flipped(self.o))
        return m
