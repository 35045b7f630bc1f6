"""Multiplexers written the way LUT mapping handles best."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.hdl import Value

__all__ = ["mux_tree", "sync_lookup"]


def mux_tree(values: list, select: Value) -> Value:
    """``values[select]`` as a tree of 2:1 multiplexers on ``select``'s bits: synthesis maps each two levels
    to a LUT6 (cf. :func:`mixq_hw.estimate.mux_luts`), where a decoded one-hot select (``Switch``) costs
    more.  Equal neighbours need no multiplexer; indices past the end read the last value."""
    level, bit = list(values), 0
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [level[n] if level[n] is level[n + 1] else Mux(select[bit], level[n + 1], level[n])
                 for n in range(0, len(level), 2)]
        bit += 1
    return level[0]


def sync_lookup(m: Module, index: Value, values: list[int], target: Signal) -> None:
    """``target.eq(values[index])`` in ``m``'s sync domain (under the caller's conditions): a switch over only
    the entries that differ from the most common value."""
    common = max(set(values), key=values.count)
    m.d.sync += target.eq(common)
    with m.Switch(index):
        for at, value in enumerate(values):
            if value != common:
                with m.Case(at):
                    m.d.sync += target.eq(value)
