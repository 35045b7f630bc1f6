"""AdderTree: registered pairwise sums of bounded signed leaves, one tree per output, all outputs equally deep.

The tree's shape -- how many levels, which nodes each level has and how wide
each node is -- comes from one function, :meth:`AdderTreeSpec.level_bounds`,
which both :class:`AdderTree` (the hardware) and :meth:`AdderTreeSpec.estimate`
(its LUT/FF cost) read.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from amaranth import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources
from ..packing.bits import signed_bits

__all__ = ["AdderTree", "AdderTreeSpec"]


@functools.lru_cache(maxsize=1 << 14)
def tree_levels(bounds: tuple[int, ...], levels: int) -> tuple[tuple[int, ...], ...]:
    """The node bounds of each of ``levels`` registered levels of one output's tree over leaves of magnitude
    ``bounds`` (level 0 first): a node adds leaves ``2n`` and ``2n+1`` (or passes an odd last one), its bound
    the sum of theirs.  The one model of the tree that its hardware and its estimate read."""
    out, items = [], tuple(bounds)
    for _ in range(levels):
        items = tuple(sum(items[n:n + 2]) for n in range(0, len(items), 2))
        out.append(items)
    return tuple(out)


@functools.lru_cache(maxsize=1 << 14)
def tree_cost(bounds: tuple[int, ...], levels: int) -> tuple[int, int]:
    """(LUT, FF) of one output's tree (:func:`tree_levels`): a two-input node is one carry-chain adder
    (~1 LUT per bit), a passed-through node wiring; every node registered (its valid bits not counted)."""
    lut = ff = 0
    width = len(bounds)
    for merged in tree_levels(bounds, levels):
        ff += sum(signed_bits(b) for b in merged)
        lut += sum(signed_bits(b) for b in merged[:width // 2])
        width = len(merged)
    return lut, ff


@dataclass(frozen=True)
class AdderTreeSpec:
    """Per output ``(name, leaf bounds)``: the output is the sum of its leaves, leaf ``n`` a signed value in
    ``-bound[n] .. bound[n]`` (held in :func:`~mixq_hw.packing.bits.signed_bits` of its bound).

    Every output passes through :attr:`levels` registered levels, enough to sum the largest leaf set
    pairwise; a level adds leaves ``2n`` and ``2n+1`` and passes an odd last one through a register.
    """

    outputs: tuple[tuple[str, tuple[int, ...]], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.outputs]
        if not names or len(set(names)) != len(names) or not all(bounds for _, bounds in self.outputs):
            raise ValueError(f"adder tree outputs {names} must be distinct names with at least one leaf each")

    @cached_property
    def levels(self) -> int:
        """Registered levels (the latency in enabled cycles): ``ceil(log2(most leaves))``; computed once (the
        folding search estimates thousands of trees, each reading it once per output)."""
        most = max(len(bounds) for _, bounds in self.outputs)
        return math.ceil(math.log2(most)) if most > 1 else 0

    @property
    def latency(self) -> int:
        """Enabled cycles from leaves to sums."""
        return self.levels

    def level_bounds(self, bounds: tuple[int, ...]) -> list[list[int]]:
        """The node bounds of each level of one output's tree (level 0 first; :func:`tree_levels`)."""
        return [list(level) for level in tree_levels(tuple(bounds), self.levels)]

    def sum_bound(self, name: str) -> int:
        """Largest magnitude of output ``name``."""
        return sum(dict(self.outputs)[name])

    @property
    def leaf_layout(self) -> data.StructLayout:
        """The leaves, field ``f"{name}_{n}"`` for leaf ``n`` of output ``name``."""
        return data.StructLayout({f"{name}_{n}": signed(signed_bits(bound))
                                  for name, bounds in self.outputs for n, bound in enumerate(bounds)})

    @property
    def sum_layout(self) -> data.StructLayout:
        """The sums, field ``name`` per output (as wide as the last level's node, or its only leaf)."""
        return data.StructLayout({name: signed(signed_bits(sum(bounds))) for name, bounds in self.outputs})

    def estimate(self) -> Resources:
        """A registered node per level; a two-input node is one carry-chain adder (~1 LUT per bit), a
        pass-through is wiring; one valid bit per level.  Outputs with the same leaf bounds cost the same,
        so each distinct bound set is costed once (an engine's outputs mostly share one)."""
        lut = ff = 0
        for bounds, count in Counter(bounds for _, bounds in self.outputs).items():
            tree_lut, tree_ff = tree_cost(bounds, self.levels)
            lut += count * tree_lut
            ff += count * tree_ff
        return Resources(lut=lut, ff=ff + self.levels)

    def build(self) -> "AdderTree":
        """The tree's Component."""
        return AdderTree(self)


class AdderTree(wiring.Component):
    """The hardware of an :class:`AdderTreeSpec`; latency :attr:`AdderTreeSpec.levels` enabled cycles.

    Ports: ``en`` (clock enable: low holds every level), ``i_valid``/``leaves`` in, ``o_valid``/``sums`` out
    (``leaves`` of level 0 reach ``sums`` ``levels`` enabled cycles later; with 0 levels they pass straight
    through).
    """

    def __init__(self, spec: AdderTreeSpec) -> None:
        self.spec = spec
        super().__init__({"en": In(1, init=1), "i_valid": In(1), "leaves": In(spec.leaf_layout),
                          "o_valid": Out(1), "sums": Out(spec.sum_layout)})

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self.spec
        valid = self.i_valid
        for level in range(spec.levels):
            next_valid = Signal(name=f"tree{level}_valid")
            with m.If(self.en):
                m.d.sync += next_valid.eq(valid)
            valid = next_valid
        m.d.comb += self.o_valid.eq(valid)
        for name, bounds in spec.outputs:
            items = [self.leaves[f"{name}_{n}"] for n in range(len(bounds))]
            for level, merged in enumerate(spec.level_bounds(bounds)):
                nodes = []
                for n, bound in enumerate(merged):
                    node = Signal(signed(signed_bits(bound)), name=f"tree{level}_{name}_{n}")
                    with m.If(self.en):
                        m.d.sync += node.eq(sum(items[2 * n:2 * n + 2]))
                    nodes.append(node)
                items = nodes
            (total,) = items
            m.d.comb += self.sums[name].eq(total)
        return m
