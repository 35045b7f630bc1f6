"""Stream drivers for Amaranth's simulator: send and receive with random stalls.

Every hardware test in mixq drives its streams through these two coroutines,
so that "random valid/ready stalls on every stream" is one argument, not a
pattern re-written per test.  :func:`run_streams` wires them to a component,
adds a watchdog (a testbench waiting forever would otherwise hang
``sim.run()``) and counts cycles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import gc

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from .stall_rng import StallRng, input_seed, output_seed

__all__ = ["send", "receive", "to_python", "stream_port", "StreamRun", "run_streams", "SimulationTimeout"]


class SimulationTimeout(RuntimeError):
    """A simulation ran past its cycle budget: a deadlock, a lost beat, or too small a budget."""


def to_python(value: Any) -> Any:
    """Turn a sampled payload into plain Python: ints, lists for arrays, dicts for structs."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_python(v) for v in value]
        if isinstance(layout, data.StructLayout):
            return {name: to_python(value[name]) for name, _ in layout}
        return int(value.as_value().value)
    return int(value)


def stream_port(dut, name: str):
    """The stream interface ``dut.<name>``, or a ValueError that lists the ports the design has."""
    members = dut.signature.members
    if name not in members or not members[name].is_signature or \
            not {"valid", "ready", "payload"} <= set(members[name].signature.members.keys()):
        ports = [n for n, m in members.items() if m.is_signature]
        raise ValueError(f"{type(dut).__name__} has no stream port {name!r} (its interfaces: {', '.join(ports)})")
    return getattr(dut, name)


async def send(ctx, port, beats: Iterable[Any], *, stall: float = 0.0,
               rng: random.Random | StallRng | None = None) -> None:
    """Drive ``beats`` into a stream ``port`` (valid/ready/payload), one per accepted transfer.

    Before each beat, valid stays low for a random number of cycles (each
    cycle with probability ``stall``).  Payload and valid are held until ready.
    ``rng``: anything with ``random()`` (default: the stall generator of input stream 0, seed 0).
    """
    rng = rng or StallRng(input_seed(0, 0))
    for beat in beats:
        while stall and rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.payload, beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def receive(ctx, port, count: int, *, stall: float = 0.0,
                  rng: random.Random | StallRng | None = None, on_beat=None) -> list[Any]:
    """Collect ``count`` beats from a stream ``port``; ready drops with probability ``stall`` each cycle.

    ``on_beat(beat)``, if given, is called as each beat is accepted (e.g. to time it).
    ``rng``: anything with ``random()`` (default: the stall generator of output stream 0, seed 0).
    """
    rng = rng or StallRng(output_seed(0, 0))
    beats: list[Any] = []
    while len(beats) < count:
        ready = not (stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        if ready and valid:
            beats.append(to_python(payload))
            if on_beat is not None:
                on_beat(beats[-1])
    ctx.set(port.ready, 0)
    return beats


class _Clocked(Elaboratable):
    """Gives the design under test a ``sync`` domain, so purely combinational designs simulate too."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain()
        m.submodules.dut = self.dut
        return m


@dataclass
class StreamRun:
    """What :func:`run_streams` measured: the received beats per output port and the cycle counts."""

    #: per port, the list of beats (an int64 array, beats first, from a compiled backend asked for arrays)
    outputs: dict[str, Any]
    cycles: int
    #: cycle (counted from the start) at which each output beat was accepted
    beat_cycles: dict[str, list[int]] = field(default_factory=dict)

    def frame_interval(self, port: str, per_frame: int, frame: int = 1) -> int:
        """Cycles between the last beat of frame ``frame - 1`` and the last beat of frame ``frame`` on ``port``
        (frames of ``per_frame`` beats, counted from 0): the measured steady-state interval."""
        cycles = self.beat_cycles[port]
        return cycles[(frame + 1) * per_frame - 1] - cycles[frame * per_frame - 1]


def run_streams(dut, inputs: Mapping[str, Iterable[Any]], outputs: Mapping[str, int], *,
                stall: float = 0.0, seed: int = 0, max_cycles: int = 100_000,
                vcd: str | None = None) -> StreamRun:
    """Simulate ``dut`` with its input streams fed and output streams drained under random stalls.

    ``inputs`` maps a port name to the beats to send; ``outputs`` maps a port
    name to how many beats to collect.  Every stream gets its own stall
    generator (:mod:`sim.stall_rng`, seeded from ``seed`` and the stream's
    place), the same as the compiled backends', so runs are repeatable and
    agree with them cycle for cycle.  Raises
    :class:`SimulationTimeout` if the outputs are not all received within
    ``max_cycles``.
    """
    for name in [*inputs, *outputs]:
        stream_port(dut, name)
    sim = Simulator(_Clocked(dut))
    sim.add_clock(1e-8)
    received: dict[str, list[Any]] = {}
    beat_cycles: dict[str, list[int]] = {name: [] for name in outputs}
    state = {"cycle": 0, "done": 0, "sent": 0}

    def _sender(name: str, beats: list[Any], index: int):
        async def proc(ctx):
            await send(ctx, stream_port(dut, name), beats, stall=stall, rng=StallRng(input_seed(seed, index)))
            state["sent"] += 1
        return proc

    def _receiver(name: str, count: int, index: int):
        async def proc(ctx):
            received[name] = await receive(
                ctx, stream_port(dut, name), count, stall=stall, rng=StallRng(output_seed(seed, index)),
                on_beat=lambda _beat: beat_cycles[name].append(state["cycle"]))
            state["done"] += 1
        return proc

    async def watchdog(ctx):
        # Done when every output arrived and every input beat was accepted: a design that leaves
        # input unread (or a test that sends too much) times out instead of passing.
        while state["done"] < len(outputs) or state["sent"] < len(inputs):
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] > max_cycles:
                got = {name: len(beat_cycles[name]) for name in outputs}
                waiting = "" if state["sent"] == len(inputs) else ", some input beats never accepted"
                raise SimulationTimeout(
                    f"{type(dut).__name__}: no completion after {max_cycles} cycles "
                    f"(received {got} of {dict(outputs)}{waiting})")

    for index, (name, beats) in enumerate(inputs.items()):
        sim.add_testbench(_sender(name, list(beats), index))
    for index, (name, count) in enumerate(outputs.items()):
        sim.add_testbench(_receiver(name, count, index))
    sim.add_testbench(watchdog)
    timeout: SimulationTimeout | None
    try:
        if vcd:
            with sim.write_vcd(vcd):
                sim.run()
        else:
            sim.run()
    except SimulationTimeout as exc:
        timeout = exc
    else:
        timeout = None
    if timeout is not None:
        # Finalise the abandoned testbench coroutines now, not at some later arbitrary point.
        del sim
        gc.collect()
        raise timeout
    return StreamRun(outputs=received, cycles=state["cycle"], beat_cycles=beat_cycles)
