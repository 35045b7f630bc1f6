# amaranth: UnusedElaboratable=no
"""CascadeMAC (DSP48E2s summing over the P cascade) in the Amaranth simulator against the plan's arithmetic.

Every run feeds each (weight code, activation code) pair into every slot of every lane at once, the
all-extreme multiplies (every field at its largest and smallest sum), and random multiplies, first at full
throughput and then with ``en`` dropped at random, bubbles between multiplies and junk on the inputs of
invalid cycles; every output is checked against ``expected_fields`` (the lanes as the accumulation's
multiplies) and ``emulate`` (the DSP48E2 arithmetic of one P accumulating them).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from mixq_hw.packing import plans
from mixq_hw.packing.bits import act_codes
from mixq_hw.packing.cascade import CascadeMAC, cascade_core_cost, cascade_supported
from mixq_hw.packing.cores import packed_core_cost
from mixq_hw.packing.dsp48e2 import DSP48E2, opmode
from mixq_hw.packing.layout import Field, Plan, emulate, expected_fields, max_depth


def _cascade_plans() -> dict[str, object]:
    """Planner plans the cascade takes, covering overlap / no overlap and both slot kinds, small codes."""
    found: dict[str, object] = {}
    for w, a, k in ((2, 2, 1), (3, 2, 3), (4, 4, 3), (4, 4, 1), (2, 3, 3), (3, 3, 1)):
        for plan in plans(w, a, k):
            key = f"w{w}a{a}k{k}-{plan.kind}-{'overlap' if plan.overlap else 'plain'}-{plan.correction}"
            if key not in found and not cascade_supported(plan, 2):
                found[key] = plan
    return found


def _borrow_plan(overlap: bool):
    """A hand-made kernel layout (2 weights x 2 pixels on A:D, 10-bit fields) with borrow correction."""
    spacing, n_w, n_a = 10, 2, 2
    width = spacing + 1 if overlap else spacing
    fields = tuple(Field(offset=(i * n_a + j) * spacing, width=width, terms=((i, j),))
                   for i in range(n_w) for j in range(n_a))
    plan = Plan(3, 3, 1, "kernel", "AD", tuple(i * n_a * spacing for i in range(n_w)),
                tuple(j * spacing for j in range(n_a)), fields, overlap, "borrow", 1, 4.0)
    return dataclasses.replace(plan, depth=max_depth(plan))


PLANS = {**_cascade_plans(), "hand-w3a3-kernel-plain-borrow": _borrow_plan(False),
         "hand-w3a3-kernel-overlap-borrow": _borrow_plan(True)}


def _codes(plan) -> tuple[list[int], list[int]]:
    w_lo = 0 if plan.w_unsigned else -plan.weight_max
    lo, hi = act_codes(plan.a_bits, plan.signed_act)
    return list(range(w_lo, plan.weight_max + 1)), list(range(lo, hi + 1))


def _multiplies(plan, lanes: int, rng: random.Random) -> list[tuple[list[list[int]], list[list[int]]]]:
    """Every code pair in every slot of every lane, the all-extreme multiplies, and random ones."""
    ws, acts = _codes(plan)
    out = []
    for w in ws:
        for a in acts:
            out.append(([[w] * plan.n_weights for _ in range(lanes)], [[a] * plan.n_acts for _ in range(lanes)]))
    for w in (ws[0], ws[-1]):
        out.append(([[w] * plan.n_weights] * lanes, [[acts[-1]] * plan.n_acts] * lanes))
    for _ in range(200):
        out.append(([[rng.choice(ws) for _ in range(plan.n_weights)] for _ in range(lanes)],
                    [[rng.choice(acts) for _ in range(plan.n_acts)] for _ in range(lanes)]))
    return out


def _run(plan, lanes: int, seed: int) -> None:
    rng = random.Random(seed)
    core = CascadeMAC(plan, lanes)
    items = _multiplies(plan, lanes, rng)
    expect = [list(expected_fields(plan, np.array(w), np.array(a))) for w, a in items]
    for (w, a), exp in zip(items[:50], expect):
        assert emulate(plan, w, a) == exp          # the plan is exact at this many lanes
    got: list[list[int]] = []
    ws, acts = _codes(plan)

    async def bench(ctx):
        for phase in ("full", "stalls"):
            queue = list(items)
            idle = 0
            while queue or idle < core.latency + 4:
                en = phase == "full" or rng.random() < 0.7
                send = bool(queue) and (phase == "full" or rng.random() < 0.6)
                if send:
                    w, a = queue[0]
                else:
                    w = [[rng.choice(ws) for _ in range(plan.n_weights)] for _ in range(lanes)]
                    a = [[rng.choice(acts) for _ in range(plan.n_acts)] for _ in range(lanes)]
                ctx.set(core.en, en)
                ctx.set(core.i_valid, send)
                for k in range(lanes):
                    for i, v in enumerate(w[k]):
                        ctx.set(core.weights[k][i], v)
                    for j, v in enumerate(a[k]):
                        ctx.set(core.acts[k][j], v)
                if en and ctx.get(core.o_valid):
                    got.append([ctx.get(core.fields[f]) for f in range(len(plan.fields))])
                await ctx.tick()
                if en and send:
                    queue.pop(0)
                if not queue:
                    idle += en
        ctx.set(core.en, 1)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(1e-6 * 40 * len(items) + 1e-3)    # watchdog: far beyond both phases
    assert got == expect + expect


@pytest.mark.parametrize("name", sorted(PLANS))
def test_cascade_is_exact(name):
    plan = PLANS[name]
    lanes = min(plan.depth, 3 if plan.w_bits * plan.a_bits > 9 else 4)
    _run(plan, lanes, seed=len(name))


def test_plans_cover_overlap_and_plain_layouts():
    kinds = {(p.overlap, p.kind, p.correction) for p in PLANS.values()}
    assert {(True, "kernel", "offset"), (False, "kernel", "offset"), (True, "filter", "offset"),
            (False, "kernel", "borrow"), (True, "kernel", "borrow")} <= kinds
    assert all(p.depth >= 2 for p in PLANS.values())


def test_cascade_of_eight_w4a4_lanes():
    """The BJUT w4a4 layout (two weights x two pixels on A:D, depth 19) over eight simd lanes."""
    plan = next(p for p in plans(4, 4, 3) if p.kind == "kernel" and p.weight_port == "AD" and p.depth >= 8
                and p.n_weights == 2 and p.n_acts == 2)
    _run(plan, 8, seed=8)


def test_refuses_what_it_cannot_cascade():
    w4a4 = plans(4, 4, 3)
    deep = next(p for p in w4a4 if p.weight_port == "AD" and p.depth >= 2 and not p.act_sign_bit)
    with pytest.raises(ValueError, match="accumulation depth"):
        CascadeMAC(deep, deep.depth + 1)
    with pytest.raises(ValueError, match="at least 2 lanes"):
        CascadeMAC(deep, 1)
    on_b = next(p for p in w4a4 if p.weight_port == "B")
    with pytest.raises(ValueError, match="weights on B"):
        CascadeMAC(on_b, 2)
    with pytest.raises(ValueError, match="pcin=True"):
        DSP48E2(areg=1, breg=1, opmodes=(opmode(w="C", xy="M", z="PCIN"),))


def test_cost_shares_the_extraction():
    plan = next(p for p in plans(4, 4, 3) if p.kind == "kernel" and p.weight_port == "AD" and p.depth >= 8)
    lut, _ = cascade_core_cost(plan, 8)
    assert lut < 8 * packed_core_cost(plan)[0]
    assert cascade_core_cost(plan, 2)[0] < cascade_core_cost(plan, 8)[0]


def test_rtlil_lint():
    plan = next(iter(PLANS.values()))
    rtlil.convert(CascadeMAC(plan, 2), ports=None)


# -- in the conv engine -------------------------------------------------------------------------


def _deep_w4a4_kernel():
    return next(p for p in plans(4, 4, 3) if p.kind == "kernel" and p.weight_port == "AD" and p.depth >= 8
                and p.n_weights == 2 and p.n_acts == 2)


@pytest.mark.parametrize("cascade,stall", [(2, 0.0), (4, 0.3), (4, 0.7)])
def test_engine_with_cascade_matches_reference(cascade, stall):
    from test_layers_conv import run_conv     # noqa: PLC0415 -- the engine test's harness

    dut, _ = run_conv(in_ch=8, out_ch=4, hw=(3, 4), k=3, stride=1, pad=1, groups=1, w_bits=4, a_bits=4, simd=4,
                      pe=4, pixels=2, stall=stall, plan=_deep_w4a4_kernel(), cascade=cascade, seed=cascade)
    assert dut.mac_array.cascade == cascade and len(dut.mac_array.groups) == len(dut.mac_array.wirings) // cascade


def test_engine_with_cascade_extreme_codes():
    from test_layers_conv import run_conv     # noqa: PLC0415

    run_conv(in_ch=8, out_ch=4, hw=(3, 4), k=3, stride=1, pad=1, groups=1, w_bits=4, a_bits=4, simd=8, pe=2,
             pixels=2, stall=0.3, plan=_deep_w4a4_kernel(), cascade=8, extreme=True)


def test_engine_cascade_estimate_and_refusals():
    from mixq_hw.layers.conv import ConvEngineSpec

    rng = np.random.default_rng(0)
    weight = rng.integers(-7, 8, size=(32, 16, 3, 3))
    args = dict(w_bits=4, a_bits=4, in_ch=16, out_ch=32, k=3, simd=8, pe=32, pixels=2, out_size=(80, 160),
                plan=_deep_w4a4_kernel(), name="conv1.0")
    plain, cascaded = ConvEngineSpec(weight, **args), ConvEngineSpec(weight, **args, cascade=8)
    assert cascaded.n_dsps == plain.n_dsps and cascaded.cycles_per_frame() == plain.cycles_per_frame()
    assert cascaded.estimate().lut < plain.estimate().lut / 2
    assert cascaded.pipeline_latency == plain.pipeline_latency - 3 + 7     # 3 tree levels gone, 7 lanes added
    with pytest.raises(ValueError, match="conv1.0.*simd 8 is not a multiple"):
        ConvEngineSpec(weight, **args, cascade=3)
    with pytest.raises(ValueError, match="conv1.0.*accumulation depth"):
        ConvEngineSpec(weight, **{**args, "plan": next(p for p in plans(4, 4, 3) if p.kind == "kernel"
                                                     and p.weight_port == "AD" and p.depth == 1
                                                     and p.n_acts <= 2 and not p.act_sign_bit)}, cascade=2)


def test_engine_multiplier_cascade_matches_reference():
    from test_layers_conv import run_conv     # noqa: PLC0415

    dut, _ = run_conv(in_ch=8, out_ch=4, hw=(3, 4), k=3, stride=1, pad=1, groups=1, w_bits=4, a_bits=4, simd=4,
                      pe=4, pixels=2, stall=0.3, multiplier="cascade", seed=5)
    assert dut.multiplier == "cascade" and dut.cascade == 4 and dut.plan.depth >= 4


def test_choose_cascade_for_bjut_conv1_and_refusals():
    from mixq_hw.layers.conv import ConvEngineSpec

    rng = np.random.default_rng(1)
    weight = rng.integers(-7, 8, size=(32, 16, 3, 3))
    args = dict(w_bits=4, a_bits=4, in_ch=16, out_ch=32, k=3, pe=32, pixels=2, out_size=(80, 160), name="conv1.0")
    spec = ConvEngineSpec(weight, simd=8, multiplier="cascade", **args)
    assert (spec.cascade, spec.plan.macs_per_dsp, spec.n_dsps) == (8, 4.0, 128)
    with pytest.raises(ValueError, match="conv1.0.*simd >= 2"):
        ConvEngineSpec(weight, simd=1, multiplier="cascade", **args)
    with pytest.raises(ValueError, match="chooses the cascade length.*conv1.0"):
        ConvEngineSpec(weight, simd=8, multiplier="cascade", cascade=2, **args)


@pytest.mark.parametrize("simulator", ["icarus-2012", "verilator"])
def test_cascaded_network_in_third_party_simulators_with_the_verilog_model(simulator, tmp_path):
    """The board Verilog (DSP48E2 primitives, PCOUT -> PCIN) with the Verilog model, against the reference."""
    from networks import plain_net                      # noqa: PLC0415

    from boards.ultra96 import Ultra96V2Platform        # noqa: PLC0415
    from mixq_hw.packing.dsp48e2 import VERILOG_MODEL   # noqa: PLC0415
    from mixq_hw.pipeline import Accelerator, LayerFold  # noqa: PLC0415
    from mixq_hw.top import AxiStreamTop, emit_verilog  # noqa: PLC0415
    from sim.hdl import simulate_verilog                # noqa: PLC0415

    graph = plain_net(np.random.default_rng(4))
    fold = {"c1": LayerFold(3, 2, 2, "cascade"), "c2": LayerFold(4, 3, 2, "cascade"), "d3": LayerFold(2, 2, 1),
            "c4": LayerFold(6, 2, 2, "cascade")}
    top = AxiStreamTop(Accelerator(graph, fold))
    engines = [s.spec for s in top.accelerator.plan.stages if s.kind == "conv" and s.spec.multiplier == "cascade"]
    assert [e.cascade for e in engines] == [3, 4, 6]
    path = emit_verilog(top, tmp_path / "board.v", platform=Ultra96V2Platform())
    assert ".PCIN(" in path.read_text()
    images = np.random.default_rng(1).integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    outputs, _ = simulate_verilog(path, top, images, simulator, tmp_path, stall=0.3, seed=3,
                                  extra_sources=(VERILOG_MODEL,), max_cycles=50_000)
    np.testing.assert_array_equal(outputs, graph.reference(images))


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_filter_engine_with_cascade_matches_reference(stall):
    """Filter packing (a kernel row per multiply) on cascades, fed by the RowWindow."""
    from test_layers_filter_conv import run_chain     # noqa: PLC0415

    engine, _ = run_chain(in_ch=8, out_ch=2, hw=(4, 6), k=3, pad=1, groups=1, w_bits=4, a_bits=4, simd=4, pe=2,
                          pixels=4, stall=stall, multiplier="cascade", seed=7)
    assert engine.multiplier == "cascade" and engine.cascade == 4 and engine.plan.kind == "filter"


def test_cascade_choice_weighs_filter_and_kernel_layouts():
    from mixq_hw.layers.conv import ConvEngineSpec

    weight = np.random.default_rng(2).integers(-7, 8, size=(32, 16, 3, 3))
    args = dict(w_bits=4, a_bits=4, in_ch=16, out_ch=32, k=3, simd=8, pe=32, out_size=(80, 160), name="conv1.0",
                windows=("taps", "rows"), multiplier="cascade")
    narrow, wide = ConvEngineSpec(weight, pixels=2, **args), ConvEngineSpec(weight, pixels=16, **args)
    assert narrow.plan.kind == "kernel"         # two pixels: a filter group wastes most of its fields
    assert wide.plan.kind == "filter" and wide.cascade == 8
    assert wide.macs_per_cycle / wide.n_dsps > 4.0
