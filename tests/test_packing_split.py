# amaranth: UnusedElaboratable=no
"""Digit-split plans: the digit arithmetic, every split plan exact (numpy, exhaustive where small), SplitMAC in the
Amaranth simulator against the unsplit arithmetic (every code pair at w, a <= 4, full depth, extreme and digit-extreme
codes, en/valid gaps), the density floor against DeepBurning-MixQ, and one synthesis run (two DSP48E2s)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import rtlil
from test_packing_cores import Accumulation, simulate

from mixq_hw.packing import planner
from mixq_hw.packing.layout import Plan, act_range, weight_range
from mixq_hw.packing.mixed import MixedSplitPlan
from mixq_hw.packing.planner import BIT_WIDTHS, KERNEL_SIZES, MIXQ_PUBLISHED, best_plan, macs_per_dsp, plan
from mixq_hw.packing.split import (
    ROUNDINGS,
    SplitPlan,
    check_split,
    digits,
    emulate,
    emulate_batch,
    expected_fields,
    make_split,
    split_acts,
    split_plans,
    split_weights,
    weight_digit_ranges,
)
from mixq_hw.packing.split_core import SplitMAC

EXHAUSTIVE_MAX = 200_000
ENTRIES = [(w, a, k) for k in KERNEL_SIZES for w in BIT_WIDTHS for a in BIT_WIDTHS]


def table_splits() -> list[SplitPlan]:
    return [p for p in (best_plan(*e) for e in ENTRIES) if isinstance(p, SplitPlan)]


def small_splits() -> list[SplitPlan]:
    """Every split candidate of every (w, a) in 2..4 and k in 1, 3, 5, and at k = 3 those 8 deep or more."""
    return list(dict.fromkeys(
        [sp for k in KERNEL_SIZES for w in range(2, 5) for a in range(2, 5) for sp in split_plans(w, a, k)]
        + [sp for w in range(2, 5) for a in range(2, 5) for sp in split_plans(w, a, 3, min_depth=8)]))


# -- digits ------------------------------------------------------------------------------------------

def test_weight_digits_recombine_and_stay_in_range():
    """Every code of every width: hi * 2**shift + lo == w; trunc keeps both digits inside the narrow range of
    ceil((w+1)/2) bits, floor does not at w = 2b - 1 (its high digit reaches -2**(b-1))."""
    for w_bits in BIT_WIDTHS:
        lo, hi = weight_range(w_bits)
        codes = np.arange(lo, hi + 1)
        for shift in range(1, w_bits):
            for rounding in ROUNDINGS:
                d_hi, d_lo = split_weights(codes, shift, rounding)
                np.testing.assert_array_equal(d_hi * (1 << shift) + d_lo, codes)
                (h0, h1), (l0, l1) = weight_digit_ranges(w_bits, shift, rounding)
                assert (h0, h1, l0, l1) == (d_hi.min(), d_hi.max(), d_lo.min(), d_lo.max())
        b = -(-(w_bits + 1) // 2)
        if b < w_bits:
            narrow = weight_range(b)[1]
            (h0, h1), (l0, l1) = weight_digit_ranges(w_bits, b - 1, "trunc")
            assert max(-h0, h1, -l0, l1) <= narrow, w_bits
            (h0, h1), (l0, l1) = weight_digit_ranges(w_bits, b - 1, "floor")
            assert (h0 < -narrow) == (w_bits == 2 * b - 1) and l0 == 0, w_bits


def test_act_digits_recombine():
    for a_bits in BIT_WIDTHS:
        codes = np.arange(act_range(a_bits)[1] + 1)
        for shift in range(1, a_bits):
            d_hi, d_lo = split_acts(codes, shift)
            np.testing.assert_array_equal(d_hi * (1 << shift) + d_lo, codes)
            assert d_lo.max() == (1 << shift) - 1 and d_hi.max() == (1 << (a_bits - shift)) - 1


# -- numpy exactness ---------------------------------------------------------------------------------

def every_code(sp: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = weight_range(sp.w_bits)
    ranges = [np.arange(lo, hi + 1)] * sp.n_weights + [np.arange(act_range(sp.a_bits)[1] + 1)] * sp.n_acts
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 1, len(ranges))
    return grid[..., :sp.n_weights], grid[..., sp.n_weights:]


def combos(sp: SplitPlan) -> int:
    return (2 * weight_range(sp.w_bits)[1] + 1) ** sp.n_weights * (act_range(sp.a_bits)[1] + 1) ** sp.n_acts


def extreme_weights(sp: SplitPlan) -> list[int]:
    """Full-code extremes, and for a weight split one code at each end of either digit's range."""
    lo, hi = weight_range(sp.w_bits)
    out = {lo, hi}
    if sp.operand == "weight":
        codes = np.arange(lo, hi + 1)
        for d in split_weights(codes, sp.shift, sp.rounding):
            out |= {int(codes[np.argmin(d)]), int(codes[np.argmax(d)])}
    return sorted(out)


def extreme_rows(sp: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
    """One multiply per (extreme weight code in every slot, every act at max), and mixed-sign variants."""
    a_max = act_range(sp.a_bits)[1]
    ws = extreme_weights(sp)
    w = [[c] * sp.n_weights for c in ws] + [[ws[(i + n) % len(ws)] for i in range(sp.n_weights)] for n in
                                           range(len(ws))]
    w = np.array(w)[:, None, :]
    return w, np.full((len(w), 1, sp.n_acts), a_max)


def assert_exact(sp: SplitPlan, rng: np.random.Generator, samples: int = 3000) -> None:
    """emulate_batch == expected_fields at depth 1 (every code or random) and at full depth (extremes, random)."""
    check_split(sp)
    lo, hi = weight_range(sp.w_bits)
    a_max = act_range(sp.a_bits)[1]
    if combos(sp) <= EXHAUSTIVE_MAX:
        w, a = every_code(sp)
    else:       # every (weight, act) code pair in every slot pair, and random multiplies
        pairs = pair_cover(sp, random.Random(samples))
        w = np.concatenate([rng.integers(lo, hi + 1, size=(samples, 1, sp.n_weights))] + [x[None] for x, _ in pairs])
        a = np.concatenate([rng.integers(0, a_max + 1, size=(samples, 1, sp.n_acts))] + [y[None] for _, y in pairs])
    np.testing.assert_array_equal(emulate_batch(sp, w, a), expected_fields(sp, w, a))
    ew, ea = extreme_rows(sp)
    np.testing.assert_array_equal(emulate_batch(sp, ew, ea, repeat=sp.depth), sp.depth * expected_fields(sp, ew, ea))
    rows = max(d for d in range(1, 7) if sp.depth % d == 0)
    w = rng.integers(lo, hi + 1, size=(200, rows, sp.n_weights))
    a = rng.integers(0, a_max + 1, size=(200, rows, sp.n_acts))
    np.testing.assert_array_equal(emulate_batch(sp, w, a, repeat=sp.depth // rows),
                                  sp.depth // rows * expected_fields(sp, w, a))
    assert emulate(sp, w[0].tolist(), a[0].tolist()) == expected_fields(sp, w[:1], a[:1])[0].tolist()
    # The recombined fields hold the extreme sums with no bit to spare beyond the sign.
    ext = np.abs(sp.depth * expected_fields(sp, ew, ea)).max(axis=0)
    assert all(int(x) < 1 << (f.width - 1) for x, f in zip(ext, sp.fields))


@pytest.mark.parametrize("index", range(3))
def test_table_split_plans_are_exact(index):
    found = table_splits()
    assert len(found) >= 30
    for n, sp in enumerate(found[index::3]):
        assert sp.macs_per_dsp > macs_per_dsp(sp.w_bits, sp.a_bits, sp.k), sp
        assert sp.dsps == 2 and sp.macs_per_dsp == sp.hi.macs_per_dsp / 2
        assert_exact(sp, np.random.default_rng(100 + n))


def test_every_small_split_candidate_is_exact():
    """w, a in 2..4: every split candidate, every code combination (or every code pair in every slot pair)."""
    found = small_splits()
    assert {sp.operand for sp in found} == {"weight", "act"} and len({sp.rounding for sp in found}) == 3
    for n, sp in enumerate(found):
        assert_exact(sp, np.random.default_rng(n))


def test_digit_caps_and_depth():
    """The digit plans hold exactly their digits; the split's depth is the digit plans' or the 48-bit limit."""
    sp = best_plan(8, 7, 3)
    assert isinstance(sp, SplitPlan) and (sp.operand, sp.shift, sp.rounding) == ("weight", 4, "round")
    assert sp.hi.w_bits == 5 and sp.hi.weight_max == sp.lo.weight_max == 8 < weight_range(5)[1]
    deep = split_plans(4, 3, 3, min_depth=8)[1]         # floor: lo digits 0..3, hi -2..1: two depths
    assert (deep.rounding, deep.hi.weight_max, deep.lo.weight_max) == ("floor", 2, 3)
    assert deep.hi.depth > deep.lo.depth == deep.depth >= 8
    for sp in table_splits() + small_splits():
        assert sp.depth == min(sp.hi.depth, sp.lo.depth, ((1 << 47) - 1) // (
            max(len(f.terms) for f in sp.fields) * weight_range(sp.w_bits)[1] * act_range(sp.a_bits)[1]))
        assert max(f.width for f in sp.fields) <= 48


def test_best_plan_and_plan():
    """plan() keeps returning one layout; best_plan is a split (or a mixed-rate split) only where strictly denser."""
    seen = 0
    for w, a, k in ENTRIES:
        single, best = plan(w, a, k), best_plan(w, a, k)
        assert isinstance(single, Plan) and macs_per_dsp(w, a, k) == single.macs_per_dsp
        if isinstance(best, SplitPlan):
            seen += 1
            assert best.macs_per_dsp > single.macs_per_dsp
        elif isinstance(best, MixedSplitPlan):     # tests/test_packing_unsigned.py checks these
            assert best.macs_per_dsp > max([single.macs_per_dsp] + [sp.macs_per_dsp for sp in split_plans(w, a, k)])
        else:
            assert best == single
            assert all(sp.macs_per_dsp <= single.macs_per_dsp for sp in split_plans(w, a, k))
    assert seen >= 30


# -- the density floor -------------------------------------------------------------------------------

def test_density_at_least_mixq_published_with_splits():
    below = [(w, a, k, best_plan(w, a, k).macs_per_dsp, pub) for k, t in MIXQ_PUBLISHED.items()
             for w, row in t.items() for a, pub in row.items() if best_plan(w, a, k).macs_per_dsp < pub]
    assert below == [], below


def test_w8a2_3x3_is_out_of_reach_of_same_layout_splits():
    """MixQ's 6 is its w4a2 12 over two DSPs: an 8-bit weight in two 4-bit digits.  Exact digits of the 255
    narrow codes cannot both be 4-bit narrow (two sets of <= 15 values make <= 225 sums, at any radix), so some
    digit reaches magnitude 8 (the planner's splits: exactly 8 at best); no layout of such digits at a2 3x3
    reaches 12 MACs per multiply (9 in 5-bit slots, 9 in 4-bit slots holding -8..7), 1-bit activation
    digits reach 6, narrow 4-bit digits would reach 15.  A single layout gets 4.5; only the mixed-rate split
    (tests/test_packing_unsigned.py: unsigned low digit, its layout twice as dense) reaches 6."""
    digit = np.arange(-7, 8)
    for radix in range(1, 256):
        assert len(set((digit[:, None] * radix + digit).ravel().tolist()) & set(range(-127, 128))) < 255
    caps = []
    for shift in range(1, 8):
        for rounding in ROUNDINGS:
            (h0, h1), (l0, l1) = weight_digit_ranges(8, shift, rounding)
            caps.append(max(-h0, h1, -l0, l1))
    assert min(caps) == 8
    kinds = ("kernel", "filter", "filter_bank")
    assert planner.PLANNER.search.layouts(5, 2, 3, kinds, 27, 1, 8)[0].macs_per_dsp == 9
    assert planner.PLANNER.search.layouts(4, 2, 3, kinds, 27, 1)[0].macs_per_dsp == 15     # narrow 4-bit digits (impossible)
    assert planner.PLANNER.search.layouts(8, 1, 3, kinds, 27, 1)[0].macs_per_dsp == 6      # activation bits as digits
    assert planner.PLANNER.search.layouts(4, 2, 3, kinds, 27, 1, 8)[0].macs_per_dsp == 9   # 4-bit slots, -8 included
    assert max(sp.macs_per_dsp for sp in split_plans(8, 2, 3)) <= plan(8, 2, 3).macs_per_dsp == 4.5
    assert isinstance(best_plan(8, 2, 3), MixedSplitPlan) and best_plan(8, 2, 3).macs_per_dsp == 6


# -- bad input ---------------------------------------------------------------------------------------

def test_bad_codes_and_plans_raise_value_error():
    sp = best_plan(8, 7, 3)
    w = np.zeros((1, 1, sp.n_weights), dtype=np.int64)
    a = np.zeros((1, 1, sp.n_acts), dtype=np.int64)
    with pytest.raises(ValueError, match="weight code -128 outside"):
        digits(sp, w - 128, a)
    with pytest.raises(ValueError, match="activation code 128 outside"):
        expected_fields(sp, w, a + 128)
    with pytest.raises(ValueError, match=r"need 1\.\.1 multiplies"):
        emulate_batch(sp, w, a, repeat=2)
    with pytest.raises(ValueError, match="w8a7k3.*depth 2 outside"):
        check_split(dataclasses.replace(sp, depth=2))
    with pytest.raises(ValueError, match="hi weight digits span"):
        check_split(dataclasses.replace(sp, hi=dataclasses.replace(sp.hi, w_max=7)))
    with pytest.raises(ValueError, match="different layouts"):
        check_split(dataclasses.replace(sp, lo=dataclasses.replace(sp.lo, correction="borrow")))
    with pytest.raises(ValueError, match="recombined field 0 .10 bits. must hold"):
        check_split(dataclasses.replace(sp, fields=tuple(dataclasses.replace(f, width=10) for f in sp.fields)))
    with pytest.raises(ValueError, match="shift 8 outside"):
        check_split(dataclasses.replace(sp, shift=8))
    with pytest.raises(ValueError, match="reach 15, over the 4-bit digit codes"):
        make_split(8, 7, 3, "weight", 4, "floor", plan(4, 7, 3))
    with pytest.raises(ValueError, match="depth 2 outside 1..1"):
        SplitMAC(sp, depth=2)
    with pytest.raises(ValueError, match="w_bits=9 outside"):
        best_plan(9, 4, 3)
    with pytest.raises(ValueError, match="no exact layout for w8a8"):
        best_plan(8, 8, 3, kinds=("filter",), min_depth=1 << 20)


# -- the core in simulation (the shared driver: test_packing_cores.simulate) -------------------------

def pair_cover(sp: SplitPlan, rng: random.Random) -> list[Accumulation]:
    """Depth-1 multiplies in which every (weight code, act code) pair meets in every (weight, act) slot pair:
    weight slot i takes code ``m + r_i`` and act slot j ``m // nW + t_j`` (mod the code counts)."""
    lo, hi = weight_range(sp.w_bits)
    n_wc, n_ac = hi - lo + 1, act_range(sp.a_bits)[1] + 1
    rot_w = [rng.randrange(n_wc) for _ in range(sp.n_weights)]
    rot_a = [rng.randrange(n_ac) for _ in range(sp.n_acts)]
    return [(np.array([[lo + (m + r) % n_wc for r in rot_w]]), np.array([[(m // n_wc + t) % n_ac for t in rot_a]]))
            for m in range(n_wc * n_ac)]


def stimulus(sp: SplitPlan, seed: int, exhaustive: bool) -> tuple[list[Accumulation], list[Accumulation]]:
    """Phase 1: every (weight, act) code pair in every slot pair at depth 1 (or random), extreme and digit-extreme
    accumulations at full depth, one random full-depth one; phase 2: random lengths, extremes again."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    lo, hi = weight_range(sp.w_bits)
    a_max = act_range(sp.a_bits)[1]
    first: list[Accumulation] = []
    if exhaustive:
        first += pair_cover(sp, rng)
    else:
        first += [(nrng.integers(lo, hi + 1, (1, sp.n_weights)), nrng.integers(0, a_max + 1, (1, sp.n_acts)))
                  for _ in range(40)]
    ew, ea = extreme_rows(sp)
    extremes = [(np.repeat(ew[i], sp.depth, axis=0), np.repeat(ea[i], sp.depth, axis=0)) for i in range(len(ew))]
    first += extremes + [(nrng.integers(lo, hi + 1, (sp.depth, sp.n_weights)),
                          nrng.integers(0, a_max + 1, (sp.depth, sp.n_acts)))]
    rng.shuffle(first)
    second = [(nrng.integers(lo, hi + 1, (n, sp.n_weights)), nrng.integers(0, a_max + 1, (n, sp.n_acts)))
              for n in (rng.randint(1, min(sp.depth, 8)) for _ in range(6))] + extremes[:3]
    rng.shuffle(second)
    return first, second


def run_split(sp: SplitPlan, seed: int, *, exhaustive: bool) -> None:
    first, second = stimulus(sp, seed, exhaustive)
    core = SplitMAC(sp)
    got, lags = simulate(core, [(first, 0.0, 0.0), (second, 0.3, 0.2)], seed)
    for n, ((wts, acts), g) in enumerate(zip(first + second, got)):
        want = expected_fields(sp, wts, acts).tolist()
        assert emulate(sp, wts.tolist(), acts.tolist()) == want
        assert g == want, f"{sp.name}: accumulation {n}: core gave {g}, expected {want}"
    assert set(lags) == {SplitMAC.LATENCY}, lags


def small_sim_splits() -> list[SplitPlan]:
    """w, a in 2..4: the table's splits (any k) and, at k = 3, the best weight and the best act split."""
    found = [sp for sp in table_splits() if max(sp.w_bits, sp.a_bits) <= 4]
    for w in range(2, 5):
        for a in range(2, 5):
            for operand in ("weight", "act"):
                found += [sp for sp in split_plans(w, a, 3) if sp.operand == operand][:1]
    # Deep accumulations: the extreme codes reach the digit plans' guard limits (tight at depths 12 and 97).
    found += [split_plans(3, 3, 3, min_depth=8)[0], split_plans(4, 3, 3, min_depth=8)[1],
              split_plans(3, 4, 3, min_depth=8)[0]]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("part", range(2))
def test_splitmac_small_exhaustive(part):
    found = small_sim_splits()
    assert {(sp.operand, sp.rounding) for sp in found} >= {("act", "floor"), ("weight", "trunc"), ("weight", "floor")}
    for n, sp in enumerate(found[part::2]):
        run_split(sp, seed=10 * n + part, exhaustive=True)


@pytest.mark.parametrize("part", range(2))
def test_splitmac_table_wide_random(part):
    """The table's splits with w or a above 4 (k = 1, 3), random codes plus extremes at full depth."""
    found = [sp for sp in table_splits() if max(sp.w_bits, sp.a_bits) > 4 and sp.k in (1, 3)]
    assert {sp.rounding for sp in found} == set(ROUNDINGS)
    for n, sp in enumerate(found[part::2]):
        run_split(sp, seed=500 + 10 * n + part, exhaustive=False)


def test_ports_match_packed_mac():
    from mixq_hw.packing.cores import PackedMAC

    sp = best_plan(4, 4, 3)
    core, single = SplitMAC(sp), PackedMAC(plan(4, 4, 3))
    assert SplitMAC.LATENCY == PackedMAC.LATENCY == core.latency
    assert list(core.signature.members.keys()) == list(single.signature.members.keys())
    assert core.weights.shape() == single.weights.shape() or core.weights.shape().length == sp.n_weights
    assert core.fields.shape().length == len(sp.fields) and core.field_width == max(f.width for f in sp.fields)
    for variant in ((8, 7, 3), (7, 6, 3), (7, 2, 3), (4, 4, 3)):    # round, floor, trunc weights; act digits
        assert "module" in rtlil.convert(SplitMAC(best_plan(*variant)))


def test_split_core_takes_two_dsp48e2():
    from mixq_hw.packing.synth import synth_core

    sp = best_plan(4, 3, 3)
    result = synth_core(4, 3, 3, plan=sp)
    assert result["dsp48e2"] == 2 and result["cells"].get("DSP48E2") == 2, result
    assert result["macs_per_dsp"] == sp.macs_per_dsp
    assert result["recombine_lut"] > 0 and result["extract_ff"] > 0, result
