# amaranth: UnusedElaboratable=no
"""PackedMAC in the Amaranth simulator against the plan's arithmetic (``expected_fields`` and ``emulate``).

Every plan runs one simulation with two phases: a full-throughput phase
(``en`` high, a multiply every cycle, accumulations back to back) holding
every (weight code, activation code) pair in every slot at depth 1 plus random
and all-extreme accumulations at the plan's depth; then a phase with ``en``
dropped at random, bubbles inside and between accumulations, and junk on the
inputs whenever they must be ignored.  Plans come from small hand-made
builders (kernel and filter packing, both ports, with and without overlap,
both corrections, with and without the activation word in the port's sign
bit) and from the planner (every plan of its w, a in 2..8, k in {1, 3} table,
and its sign-bit plans at k = 5 and when asked for deeper accumulations).
Every run holds accumulations of one multiply and of the core's full depth.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from mixq_hw.packing import plan as planner_plan
from mixq_hw.packing.bits import act_codes
from mixq_hw.packing.cores import PackedMAC, field_width
from mixq_hw.packing.layout import (
    AD_BITS,
    B_BITS,
    P_BITS,
    Field,
    Plan,
    check,
    emulate,
    expected_fields,
    max_depth,
    weight_range,
)

VARIANTS = list(itertools.product(("AD", "B"), (False, True), ("borrow", "offset")))
# Two orthogonal halves of VARIANTS: each holds every pair of (port, overlap, correction) values once.
_PARITY = [(port == "B") ^ overlap ^ (correction == "offset") for port, overlap, correction in VARIANTS]
HALVES = ([v for v in range(8) if not _PARITY[v]], [v for v in range(8) if _PARITY[v]])
MAX_TEST_DEPTH = 12


# -- hand-made plans ----------------------------------------------------------------------------

def _fields_at(positions: dict[int, list[tuple[int, int]]], spacing: int, overlap: bool) -> tuple[Field, ...]:
    width = spacing + 1 if overlap else spacing
    return tuple(Field(offset=p * spacing, width=width, terms=tuple(sorted(positions[p])))
                 for p in sorted(positions))


def kernel_layout(w: int, a: int, n_w: int, n_a: int, spacing: int, port: str, overlap: bool,
                  correction: str) -> Plan:
    """Kernel packing: weight i at ``i*n_a*spacing``, act j at ``j*spacing``, one product per field."""
    positions = {i * n_a + j: [(i, j)] for i in range(n_w) for j in range(n_a)}
    return Plan(w, a, 1, "kernel", port, tuple(i * n_a * spacing for i in range(n_w)),
                tuple(j * spacing for j in range(n_a)), _fields_at(positions, spacing, overlap),
                overlap, correction, 1, float(n_w * n_a))


def filter_layout(w: int, a: int, k: int, taps: int, n_a: int, spacing: int, port: str, overlap: bool,
                  correction: str) -> Plan:
    """Filter packing: tap i at ``(taps-1-i)*spacing``, pixel j at ``j*spacing``; a field per output position."""
    positions: dict[int, list[tuple[int, int]]] = {}
    for i in range(taps):
        for j in range(n_a):
            positions.setdefault(taps - 1 - i + j, []).append((i, j))
    return Plan(w, a, k, "filter", port, tuple((taps - 1 - i) * spacing for i in range(taps)),
                tuple(j * spacing for j in range(n_a)), _fields_at(positions, spacing, overlap),
                overlap, correction, 1, float(taps * n_a))


@functools.lru_cache(maxsize=None)
def hand_plan(w: int, a: int, k: int, port: str, overlap: bool, correction: str) -> Plan:
    """The densest hand-made layout of this variant, at the widest spacing whose max_depth is <= 12.

    Filter layouts (k > 1) come before kernel layouts; the plan's depth is its layout's max_depth, so
    the all-extreme accumulations hit the guard bits' limit exactly.
    """
    by_size = lambda shape: -shape[1] * shape[2]  # noqa: E731
    shapes = sorted((("filter", t, n) for t in range(2, k + 1) for n in range(2, 5)), key=by_size) + \
        sorted((("kernel", nw, na) for nw in range(1, 5) for na in range(1, 5)), key=by_size)
    for kind, x, y in shapes:
        found = None
        for spacing in range(2, 25):
            layout = (filter_layout(w, a, k, x, y, spacing, port, overlap, correction) if kind == "filter"
                      else kernel_layout(w, a, x, y, spacing, port, overlap, correction))
            depth = max_depth(layout, limit=MAX_TEST_DEPTH + 1)
            if depth > MAX_TEST_DEPTH:
                break
            if depth < 1:
                continue
            candidate = dataclasses.replace(layout, depth=depth)
            try:
                check(candidate)
            except ValueError:
                if found is not None:
                    break               # wider spacings only overflow the ports / P further
                continue
            found = candidate
        if found is not None:
            return found
    raise AssertionError(f"no hand-made layout for w{w}a{a}k{k} {port} {overlap} {correction}")


MAX_SIGN_DEPTH = 16


@functools.lru_cache(maxsize=None)
def sign_hand_plan(w: int, a: int, k: int, port: str, overlap: bool, correction: str) -> Plan:
    """A hand-made ``act_sign_bit`` layout of this variant: the top activation slot ends at the port's top bit.

    Activations sit ``spacing`` apart with ``(n_acts - 1) * spacing + a`` equal to the port width, so the
    spacing follows from the slot count.  Preferred: a layout whose max_depth is 2..16 (all-extreme
    accumulations then hit the guard bits' limit exactly), then filter before kernel, then the densest;
    the plan's depth is its max_depth capped at 16.
    """
    n = B_BITS if port == "AD" else AD_BITS
    shapes = [("filter", t, n_a) for t in range(2, k + 1) for n_a in range(2, 10)] + \
        [("kernel", n_w, n_a) for n_w in range(1, 5) for n_a in range(2, 10)]
    best = None
    for kind, x, n_a in shapes:
        spacing, rest = divmod(n - a, n_a - 1)
        if rest or spacing < max(a, w):
            continue
        layout = (filter_layout(w, a, k, x, n_a, spacing, port, overlap, correction) if kind == "filter"
                  else kernel_layout(w, a, x, n_a, spacing, port, overlap, correction))
        top = layout.fields[-1]
        if top.offset + 2 > P_BITS:
            continue
        layout = dataclasses.replace(layout, act_sign_bit=True, fields=layout.fields[:-1] + (
            dataclasses.replace(top, width=min(top.width, P_BITS - top.offset)),))
        depth = max_depth(layout, limit=1 << 12)
        if depth < 1:
            continue
        candidate = dataclasses.replace(layout, depth=min(depth, MAX_SIGN_DEPTH))
        try:
            check(candidate)
        except ValueError:
            continue
        key = (1 < depth <= MAX_SIGN_DEPTH, kind == "filter", candidate.macs_per_dsp, -depth)
        if best is None or key > best[0]:
            best = (key, candidate)
    if best is None:
        raise AssertionError(f"no hand-made sign-bit layout for w{w}a{a}k{k} {port} {overlap} {correction}")
    return best[1]


# -- stimulus -----------------------------------------------------------------------------------

Accumulation = tuple[np.ndarray, np.ndarray]   # (multiplies, n_weights), (multiplies, n_acts)


def exhaustive_pairs(plan: Plan, rng: random.Random) -> list[Accumulation]:
    """Depth-1 multiplies in which every (weight code, act code) pair meets in every slot pair.

    Weight slot i takes code ``W[(m + r_i) % nW]`` and act slot j ``A[(m // nW + t_j) % nA]`` with
    random rotations, so for any (i, j) the ``nW * nA`` multiplies hit every code pair once.
    """
    lo_w, hi_w = weight_range(plan.w_bits)
    lo_a, hi_a = act_codes(plan.a_bits, plan.signed_act)
    n_wc, n_ac = hi_w - lo_w + 1, hi_a - lo_a + 1
    rot_w = [rng.randrange(n_wc) for _ in range(plan.n_weights)]
    rot_a = [rng.randrange(n_ac) for _ in range(plan.n_acts)]
    out = []
    for m in range(n_wc * n_ac):
        wrow = [lo_w + (m + r) % n_wc for r in rot_w]
        arow = [lo_a + (m // n_wc + t) % n_ac for t in rot_a]
        out.append((np.array([wrow]), np.array([arow])))
    return out


def random_accumulation(plan: Plan, length: int, rng: np.random.Generator) -> Accumulation:
    lo_w, hi_w = weight_range(plan.w_bits)
    lo_a, hi_a = act_codes(plan.a_bits, plan.signed_act)
    return (rng.integers(lo_w, hi_w + 1, (length, plan.n_weights)),
            rng.integers(lo_a, hi_a + 1, (length, plan.n_acts)))


def extreme_accumulations(plan: Plan, depth: int) -> list[Accumulation]:
    """All-max weights x all-max acts and all-min weights x all-max acts, ``depth`` multiplies each (signed
    activations: also both with all-min acts, the largest magnitudes)."""
    lo_w, hi_w = weight_range(plan.w_bits)
    lo_a, hi_a = act_codes(plan.a_bits, plan.signed_act)
    return [(np.full((depth, plan.n_weights), wv), np.full((depth, plan.n_acts), av))
            for av in ((hi_a, lo_a) if plan.signed_act else (hi_a,)) for wv in (hi_w, lo_w)]


def reference(plan: Plan, accs: list[Accumulation]) -> list[list[int]]:
    """``expected_fields`` of every accumulation, checked against ``emulate`` on the way."""
    out = []
    for wts, acts in accs:
        want = [int(v) for v in expected_fields(plan, wts, acts)]
        assert emulate(plan, wts.tolist(), acts.tolist()) == want, "layout.emulate disagrees with expected_fields"
        out.append(want)
    return out


# -- simulation ---------------------------------------------------------------------------------

def _pack(values, bits: int) -> int:
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (n * bits) for n, v in enumerate(values))


def _unpack_signed(word: int, bits: int, count: int) -> list[int]:
    out = []
    for n in range(count):
        v = (word >> (n * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def simulate(core, phases: list[tuple[list[Accumulation], float, float]], seed: int
             ) -> tuple[list[list[int]], list[int]]:
    """Run the phases ``(accumulations, p(en low), p(bubble))`` through any core with the shared port
    contract (``mac_signature``: PackedMAC, SplitMAC, MixedSplitMAC, LutMAC); return the fields and their lags.

    A lag is the number of enabled cycles from an accumulation's ``i_last`` multiply to the enabled
    cycle in which its ``o_valid`` is seen; after the last result the core runs on empty to make sure
    no extra ``o_valid`` appears.
    """
    plan = core.plan
    rng = random.Random(seed)
    n_fields = len(plan.fields)
    fw = core.field_width
    total = sum(len(accs) for accs, _, _ in phases)
    results: list[list[int]] = []
    lags: list[int] = []

    async def bench(ctx):
        en_cycles = 0
        last_at: list[int] = []
        cycles = 0
        budget = 50 + 8 * sum(len(w) for accs, _, _ in phases for w, _ in accs)

        def junk(valid: int):
            ctx.set(core.weights.as_value(), rng.getrandbits(plan.w_bits * plan.n_weights))
            ctx.set(core.acts.as_value(), rng.getrandbits(plan.a_bits * plan.n_acts))
            ctx.set(core.i_first, rng.getrandbits(1))
            ctx.set(core.i_last, rng.getrandbits(1))
            ctx.set(core.i_valid, valid)

        async def step(en: int):
            nonlocal en_cycles, cycles
            ctx.set(core.en, en)
            _, _, valid, fields = await ctx.tick().sample(core.o_valid, core.fields.as_value())
            cycles += 1
            assert cycles <= budget, f"simulation of {plan} ran past {budget} cycles"
            if en:
                if valid:
                    assert len(results) < total, "o_valid without an accumulation"
                    results.append(_unpack_signed(fields, fw, n_fields))
                    lags.append(en_cycles - last_at[len(results) - 1])
                en_cycles += 1

        for accs, p_off, p_bubble in phases:
            for wts, acts in accs:
                for d in range(len(wts)):
                    while True:
                        if rng.random() < p_off:          # disabled: everything at the inputs is ignored
                            junk(rng.getrandbits(1))
                            await step(0)
                        elif rng.random() < p_bubble:     # enabled, no multiply
                            junk(0)
                            await step(1)
                        else:
                            break
                    ctx.set(core.weights.as_value(), _pack(wts[d], plan.w_bits))
                    ctx.set(core.acts.as_value(), _pack(acts[d], plan.a_bits))
                    ctx.set(core.i_valid, 1)
                    ctx.set(core.i_first, d == 0)
                    ctx.set(core.i_last, d == len(wts) - 1)
                    if d == len(wts) - 1:
                        last_at.append(en_cycles)
                    await step(1)
        for _ in range(core.latency + 3):
            junk(0)
            await step(1)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(results) == total, f"{len(results)} results for {total} accumulations"
    return results, lags


def run_plan(plan: Plan, seed: int, *, exhaustive: bool, make=PackedMAC) -> None:
    """Simulate ``plan`` through both phases and compare every accumulation with the reference.

    Phase 1 (full throughput): every code pair in every slot at depth 1 (or 48 random depth-1
    multiplies), one random and the two all-extreme accumulations at the core's full depth.
    Phase 2 (random ``en`` and bubbles): accumulations of random length up to 24 multiplies, and
    one at full depth when that is short enough to keep the run quick.  ``make(plan)`` builds the core.
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    core = make(plan)
    depth = core.depth
    if exhaustive:
        first = exhaustive_pairs(plan, rng)
    else:
        first = [random_accumulation(plan, 1, nrng) for _ in range(48)]
    first += [random_accumulation(plan, depth, nrng)] + extreme_accumulations(plan, depth)
    rng.shuffle(first)
    second = [random_accumulation(plan, rng.randint(1, min(depth, 24)), nrng) for _ in range(6)]
    if depth <= 64:
        second += [random_accumulation(plan, depth, nrng)] + extreme_accumulations(plan, depth)[1:]
    rng.shuffle(second)
    got, lags = simulate(core, [(first, 0.0, 0.0), (second, 0.3, 0.2)], seed)
    want = reference(plan, first + second)
    for n, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"{plan}: accumulation {n}: core gave {g}, expected {w}"
    assert set(lags) == {core.latency}, f"lags {sorted(set(lags))}, latency {core.latency}"


# -- the tests ----------------------------------------------------------------------------------

SMALL = [(w, a, k) for w in range(2, 5) for a in range(2, 5) for k in (1, 3)]


@pytest.mark.parametrize("index", range(len(SMALL)))
def test_hand_plans_small_exhaustive(index):
    """w, a in 2..4, k in {1, 3}: four hand-made variants each (one orthogonal half), both halves per k."""
    w, a, k = SMALL[index]
    for v in HALVES[(index // 2 + index // 6) % 2]:
        port, overlap, correction = VARIANTS[v]
        run_plan(hand_plan(w, a, k, port, overlap, correction), seed=100 * index + v, exhaustive=True)


def test_hand_plans_cover_every_feature():
    """The hand-made grid above really contains kernel/filter, AD/B, overlap and both corrections."""
    seen = set()
    for index, (w, a, k) in enumerate(SMALL):
        for v in HALVES[(index // 2 + index // 6) % 2]:
            p = hand_plan(w, a, k, *VARIANTS[v])
            seen.update({p.kind, p.weight_port, ("overlap", p.overlap), p.correction, ("deep", p.depth > 1)})
    assert seen >= {"kernel", "filter", "AD", "B", ("overlap", True), ("overlap", False), "borrow", "offset",
                    ("deep", True)}


@pytest.mark.parametrize("index", range(len(SMALL)))
def test_sign_bit_hand_plans_small_exhaustive(index):
    """The same grid with the activation word in the port's sign bit (C adds W << n where it is set)."""
    w, a, k = SMALL[index]
    for v in HALVES[(index // 2 + index // 6) % 2]:
        port, overlap, correction = VARIANTS[v]
        run_plan(sign_hand_plan(w, a, k, port, overlap, correction), seed=200 * index + v, exhaustive=True)


def test_sign_bit_hand_plans_cover_every_feature():
    """The sign-bit grid holds both ports, kernel/filter, overlap, both corrections, deep and tight plans."""
    seen = set()
    for index, (w, a, k) in enumerate(SMALL):
        for v in HALVES[(index // 2 + index // 6) % 2]:
            p = sign_hand_plan(w, a, k, *VARIANTS[v])
            assert p.act_sign_bit and max(o + p.a_bits for o in p.act_offsets) == p.act_port_bits
            seen.update({p.kind, p.weight_port, ("overlap", p.overlap), p.correction, ("deep", p.depth > 1),
                         ("tight", 1 < p.depth == max_depth(p))})
    assert seen >= {"kernel", "filter", "AD", "B", ("overlap", True), ("overlap", False), "borrow", "offset",
                    ("deep", True), ("tight", True)}


# Planner plans with the sign bit that test_planner_plans does not meet: the k = 5 table's, and the best
# plans when a deeper accumulation is asked for (min_depth), where the sign bit buys depth.
def planner_sign_bit_plans() -> list[Plan]:
    found = [planner_plan(w, a, 5) for w in range(2, 9) for a in range(2, 9)]
    for min_depth in (2, 3, 8):
        for w in range(2, 9):
            for a in range(2, 9):
                for k in (1, 3):
                    try:
                        found.append(planner_plan(w, a, k, min_depth=min_depth))
                    except ValueError:
                        pass        # no layout that deep
    return sorted({p for p in found if p.act_sign_bit}, key=lambda p: (p.k, p.w_bits, p.a_bits, p.depth))


@pytest.mark.parametrize("part", range(2))
def test_planner_sign_bit_plans(part):
    found = planner_sign_bit_plans()
    assert len(found) >= 30 and any(p.depth > 1 for p in found)
    for n, p in enumerate(found[part::2]):
        run_plan(p, seed=700 + 2 * n + part, exhaustive=max(p.w_bits, p.a_bits) <= 4)


WIDE = [(w, a, k) for w in range(2, 9) for a in range(2, 9) for k in (1, 3) if max(w, a) > 4]


@pytest.mark.parametrize("index", range(4))
def test_hand_plans_wide_random(index):
    """A fixed-seed sample of the rest of w, a in 2..8: random codes instead of every pair."""
    rng = random.Random(2024 + index)
    w, a, k = rng.choice(WIDE)
    port, overlap, correction = VARIANTS[rng.randrange(8)]
    run_plan(hand_plan(w, a, k, port, overlap, correction), seed=7 + index, exhaustive=False)


@pytest.mark.parametrize("w", range(2, 9))
def test_planner_plans(w):
    """The planner's plan for every (w, a in 2..8, k in {1, 3}): every code pair in every slot where
    w, a <= 4, random codes (and the all-extreme accumulations at full depth) above."""
    for a in range(2, 9):
        for k in (1, 3):
            run_plan(planner_plan(w, a, k), seed=300 + 10 * w + a + k, exhaustive=max(w, a) <= 4)


def test_planner_kernel_plans_with_capped_acts():
    """Kernel-only plans with at most two activation slots, as the conv engine asks for them."""
    rng = random.Random(5)
    for n, (w, a, k) in enumerate(rng.sample(SMALL + WIDE, 4)):
        run_plan(planner_plan(w, a, k, kinds=("kernel",), max_acts=2), seed=500 + n, exhaustive=max(w, a) <= 3)


def test_ports_and_attributes():
    plan = hand_plan(3, 2, 1, "AD", True, "borrow")
    core = PackedMAC(plan)
    assert core.latency == PackedMAC.LATENCY == 5
    assert core.depth == plan.depth
    assert core.field_width == field_width(plan) == max(f.width for f in plan.fields)
    assert core.fields.shape().length == len(plan.fields)
    assert core.weights.shape().length == plan.n_weights and core.acts.shape().length == plan.n_acts
    assert PackedMAC(plan, depth=1).depth == 1


def test_rejects_bad_arguments():
    plan = hand_plan(4, 4, 1, "AD", False, "borrow")
    with pytest.raises(ValueError, match=f"depth {plan.depth + 1} outside 1..{plan.depth}"):
        PackedMAC(plan, depth=plan.depth + 1)
    with pytest.raises(ValueError, match="depth 0"):
        PackedMAC(plan, depth=0)
    narrow = dataclasses.replace(plan, fields=tuple(dataclasses.replace(f, width=3) for f in plan.fields))
    with pytest.raises(ValueError, match="w4a4k1"):
        PackedMAC(narrow)
    # Overlapping weight slots pass check() only in corner cases (a 1-bit activation, 1-bit slices):
    # w2a1, weights at 0 and 1, one act; overlap fields of width 2 at 0 and 1 with offset correction.
    squeezed = Plan(2, 1, 1, "kernel", "AD", (0, 1), (0,),
                    (Field(0, 2, ((0, 0),)), Field(1, 2, ((1, 0),))), True, "offset", 1, 2.0)
    check(squeezed)
    with pytest.raises(ValueError, match="weight slots 0 and 1 are 1 bits apart"):
        PackedMAC(squeezed)


@pytest.mark.parametrize("variant", range(8))
def test_rtlil_lint(variant):
    """Conversion to RTLIL (catches combinational loops and width errors) for every variant."""
    port, overlap, correction = VARIANTS[variant]
    text = rtlil.convert(PackedMAC(hand_plan(4, 3, 3, port, overlap, correction)))
    assert "module" in text
    text = rtlil.convert(PackedMAC(sign_hand_plan(4, 3, 3, port, overlap, correction)))
    assert "module" in text
