"""``PackedMAC`` inside your own Amaranth design: a streaming packed dot product, simulated against numpy.

    python examples/packed_mac.py                 # w4a4, 3-tap plan, 200 random accumulations
    python examples/packed_mac.py --w 2 --a 2 --k 1 --verilog packed_dot.v

The packing planner (:func:`mixq_hw.plan`) lays several low-bit products into one DSP48E2
multiply; :class:`mixq_hw.PackedMAC` runs that plan (packing, 48-bit accumulation, exact field
extraction).  Here it sits in a small :class:`PackedDot` component of our own, fed by a stream with
random gaps, and every result is compared with the plan's promised arithmetic
(:func:`mixq_hw.packing.expected_fields`).
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

import mixq_hw
from mixq_hw.packing import expected_fields


class PackedDot(wiring.Component):
    """Accumulates ``depth`` packed multiplies per result: each ``i`` beat is one multiply's weights and
    activations, every ``depth``-th beat closes a result, which leaves on ``o`` (the plan's fields)
    ``PackedMAC.LATENCY`` cycles later.  Both streams are always ready: the design never stalls."""

    def __init__(self, plan, depth: int) -> None:
        self.mac = mixq_hw.PackedMAC(plan, depth=depth)
        self.depth = depth
        sig = self.mac.signature.members
        beat = data.StructLayout({"weights": sig["weights"].shape, "acts": sig["acts"].shape})
        super().__init__({
            "i": In(stream.Signature(beat, always_ready=True)),
            "o": Out(stream.Signature(sig["fields"].shape, always_ready=True)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mac = mac = self.mac
        count = Signal(range(self.depth))
        m.d.comb += [
            mac.i_valid.eq(self.i.valid),
            mac.weights.eq(self.i.payload.weights),
            mac.acts.eq(self.i.payload.acts),
            mac.i_first.eq(count == 0),
            mac.i_last.eq(count == self.depth - 1),
            self.o.valid.eq(mac.o_valid),
            self.o.payload.eq(mac.fields),
        ]
        with m.If(self.i.valid):
            m.d.sync += count.eq(0 if self.depth == 1 else (count + 1) % self.depth)
        return m


def run(plan, depth: int, results: int, seed: int = 0) -> int:
    """Simulate ``results`` accumulations of random codes with random input gaps; returns how many matched."""
    rng = np.random.default_rng(seed)
    lo = 0 if plan.w_unsigned else -(2 ** (plan.w_bits - 1) - 1)
    weights = rng.integers(lo, 2 ** (plan.w_bits - 1), (results, depth, plan.n_weights))
    acts = rng.integers(0, 2 ** plan.a_bits, (results, depth, plan.n_acts))
    expected = expected_fields(plan, weights, acts)           # (results, n_fields)
    dut = PackedDot(plan, depth)
    got: list[list[int]] = []
    gaps = random.Random(seed)

    async def source(ctx):
        for r in range(results):
            for d in range(depth):
                while gaps.random() < 0.3:                       # a cycle without input
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.payload, {"weights": list(weights[r, d]), "acts": list(acts[r, d])})
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        while len(got) < results:
            await ctx.tick()
            if ctx.get(dut.o.valid):
                got.append([int(v) for v in ctx.get(dut.o.payload)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink, background=True)
    sim.run_until(1e-8 * (results * depth * 4 + 100))
    return int(sum(np.array_equal(g, e) for g, e in zip(got, expected)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--w", type=int, default=4, help="weight bits (default 4)")
    parser.add_argument("--a", type=int, default=4, help="activation bits (default 4)")
    parser.add_argument("--k", type=int, default=3, help="kernel size the plan is for: 1, 3 or 5 (default 3)")
    parser.add_argument("--results", type=int, default=200, help="accumulations to simulate (default 200)")
    parser.add_argument("--verilog", default=None, help="also write the component's Verilog here")
    args = parser.parse_args(argv)

    plan = mixq_hw.plan(args.w, args.a, args.k)
    depth = min(plan.depth, 9)
    print(f"plan w{args.w}a{args.a} k{args.k}: {plan.macs_per_dsp} MACs per DSP48E2 per cycle, "
          f"{len(plan.fields)} fields, accumulations of up to {plan.depth} multiplies (using {depth})")
    matched = run(plan, depth, args.results)
    print(f"{matched}/{args.results} accumulations equal the plan's arithmetic")
    if args.verilog:
        with open(args.verilog, "w") as f:
            dut = PackedDot(plan, depth)
            ports = [dut.i.valid, dut.i.payload.as_value(), dut.o.valid, dut.o.payload.as_value()]
            f.write(verilog.convert(dut, name="packed_dot", ports=ports))   # always-ready: no ready ports
        print(f"wrote {args.verilog} (a behavioural DSP48E2; elaborated for an UltraScale+ platform "
              f"the slice is the DSP48E2 primitive)")
    return 0 if matched == args.results else 1


if __name__ == "__main__":
    sys.exit(main())
