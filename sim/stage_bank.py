"""Many independent stages in one compiled design: every stage simulated on its own, at the cost of one compile.

:class:`StageBank` instantiates a list of Components side by side, each with its
own top-level ports (``s<k>_<port>``), nothing connected between them.  The
Verilator testbench drives every input stream of the bank and drains every
output stream, each with its own seeded random valid/ready stalls (the stream
loop gives port ``j`` of the flattened list its own generator), so each stage
sees exactly what it would see simulated alone: its own beats, its own stall
pattern, its cycles counted from reset.  :func:`run_bank` runs the bank once and
splits the result back per stage.  Layer-by-layer verification
(:mod:`sim.layerwise`) uses it to check every stage with one Verilator build
instead of one per stage design.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring

from .streams import StreamRun

__all__ = ["StageBank", "bank_port", "run_bank"]


def bank_port(index: int, port: str) -> str:
    """The bank's top-level name of port ``port`` of member ``index``."""
    return f"s{index}_{port}"


class StageBank(wiring.Component):
    """``members`` side by side, member ``k``'s port ``p`` exposed as ``s<k>_<p>``, plus one register so
    that the design has a clock even when every member is combinational."""

    def __init__(self, members: Sequence[wiring.Component]):
        self.members = list(members)
        if not self.members:
            raise ValueError("a stage bank needs at least one member")
        ports = {bank_port(k, name): member for k, dut in enumerate(self.members)
                 for name, member in dut.signature.members.items()}
        super().__init__(wiring.Signature(ports))

    def elaborate(self, platform) -> Module:
        m = Module()
        for k, dut in enumerate(self.members):
            m.submodules[f"s{k}"] = dut
            for name, member in dut.signature.members.items():
                outer = getattr(self, bank_port(k, name))
                if member.flow == wiring.In:
                    wiring.connect(m, wiring.flipped(outer), getattr(dut, name))
                else:
                    wiring.connect(m, getattr(dut, name), wiring.flipped(outer))
        tick = Signal()
        m.d.sync += tick.eq(~tick)
        return m


def run_bank(bank: wiring.Component, program: Path, inputs: Sequence[Mapping[str, Sequence[Any]]],
             outputs: Sequence[Mapping[str, int]], *, stall: float, seed: int, max_cycles: int) -> list[StreamRun]:
    """Run ``bank`` (built into ``program`` by :func:`sim.verilator.compile_verilator`) once: member ``k`` gets
    ``inputs[k]`` (port -> beats) and must deliver ``outputs[k]`` (port -> beat count).  Returns one
    :class:`~sim.streams.StreamRun` per member (its beats, int64 arrays for integer payloads, and their cycles;
    ``cycles``: one past its last output beat).  A timeout or crash of any member raises for the whole bank.
    ``bank`` may be any design with its members' ports named by :func:`bank_port` (e.g.
    :class:`sim.board_text.BoardBankPorts`)."""
    from .verilator import run_streams_verilator

    members = len(bank.members) if isinstance(bank, StageBank) else len(inputs)
    if len(inputs) != members or len(outputs) != members:
        raise ValueError(f"a bank of {members} members needs as many input and output maps")
    flat_in = {bank_port(k, p): beats for k, ports in enumerate(inputs) for p, beats in ports.items()}
    flat_out = {bank_port(k, p): n for k, ports in enumerate(outputs) for p, n in ports.items()}
    run = run_streams_verilator(bank, flat_in, flat_out, stall=stall, seed=seed, max_cycles=max_cycles,
                                program=program, arrays=True)
    runs = []
    for k, ports in enumerate(outputs):
        got = {p: run.outputs[bank_port(k, p)] for p in ports}
        stamps = {p: run.beat_cycles[bank_port(k, p)] for p in ports}
        last = max((c[-1] for c in stamps.values() if c), default=-1)
        runs.append(StreamRun(outputs=got, cycles=last + 1, beat_cycles=stamps))
    return runs
