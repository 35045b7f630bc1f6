# amaranth: UnusedElaboratable=no
"""Unsigned weight digits and mixed-rate weight splits: unsigned layouts exact (numpy, exhaustive for w8a2's low
digit), the w8a2 3x3 mixed split (6 MACs per DSP48E2) equal to the plain arithmetic for all 255 weight codes, the
checks that guard both, MixedSplitMAC in the Amaranth simulator with en/valid gaps, and one synthesis run (3 DSPs)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import rtlil
from amaranth.lib import data
from test_packing_cores import simulate

from mixq_hw.packing import planner, search
from mixq_hw.packing.cores import PackedMAC, field_width
from mixq_hw.packing.geometry import DSP48E2_GEOMETRY
from mixq_hw.packing.layout import Plan, check, emulate, emulate_batch, expected_fields, max_depth, weight_range
from mixq_hw.packing.mixed import (
    MixedSplitMAC,
    MixedSplitPlan,
    check_mixed,
    combination,
    digits,
    make_mixed,
    mixed_digits,
    mixed_split_plans,
)
from mixq_hw.packing.mixed import emulate as mixed_emulate
from mixq_hw.packing.mixed import emulate_batch as mixed_emulate_batch
from mixq_hw.packing.mixed import expected_fields as mixed_expected
from mixq_hw.packing.planner import BIT_WIDTHS, KERNEL_SIZES, MIXQ_PUBLISHED, best_plan, explain, plan
from mixq_hw.packing.split import SplitPlan, split_plans

KINDS = ("kernel", "filter")
EXHAUSTIVE_MAX = 300_000


def w8a2() -> MixedSplitPlan:
    p = best_plan(8, 2, 3)
    assert isinstance(p, MixedSplitPlan)
    return p


def grid(w_codes: np.ndarray, n_w: int, a_codes: np.ndarray, n_a: int) -> tuple[np.ndarray, np.ndarray]:
    """Every combination of the codes over ``n_w`` weight and ``n_a`` act slots, as depth-1 rows."""
    g = np.stack(np.meshgrid(*([w_codes] * n_w + [a_codes] * n_a), indexing="ij"), axis=-1).reshape(-1, 1, n_w + n_a)
    return g[..., :n_w], g[..., n_w:]


def w_codes(p: Plan) -> np.ndarray:
    """Every weight code a digit plan holds: unsigned 0..max, or the signed codes of its slots up to its w_max."""
    if p.w_unsigned:
        return np.arange(p.weight_max + 1)
    return np.arange(max(-p.weight_max, -(1 << (p.w_bits - 1))), min(p.weight_max, (1 << (p.w_bits - 1)) - 1) + 1)


def assert_plan_exact(p: Plan, rng: np.random.Generator) -> None:
    """Exhaustive at depth 1 where the codes allow, else random and extreme codes; extremes at full depth."""
    wc, ac = w_codes(p), np.arange((1 << p.a_bits))
    if len(wc) ** p.n_weights * len(ac) ** p.n_acts <= EXHAUSTIVE_MAX:
        w, a = grid(wc, p.n_weights, ac, p.n_acts)
    else:
        w = rng.choice(wc, size=(20_000, 1, p.n_weights))
        a = rng.choice(ac, size=(20_000, 1, p.n_acts))
    np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))
    ext_w = np.array([[[wc.min()] * p.n_weights], [[wc.max()] * p.n_weights]])
    ext_a = np.full((2, 1, p.n_acts), ac.max())
    np.testing.assert_array_equal(emulate_batch(p, ext_w, ext_a, repeat=p.depth),
                                  p.depth * expected_fields(p, ext_w, ext_a))
    assert emulate(p, w[0].tolist(), a[0].tolist()) == expected_fields(p, w[:1], a[:1])[0].tolist()


# -- unsigned layouts --------------------------------------------------------------------------------

def test_w8a2_digit_plans_exact_exhaustively():
    """Low digit: every 0..7 weight triple x every 0..3 activation 6-tuple (2M multiplies); high digit: every
    -16..15 triple x every activation triple -- DSP48E2 emulation == plain sums."""
    mp = w8a2()
    for p, codes in ((mp.lo, np.arange(8)), (mp.hi, np.arange(-16, 16))):
        for chunk in np.array_split(codes, 4):       # the first slot in chunks: bounded memory
            w, a = grid(codes, p.n_weights, np.arange(4), p.n_acts)
            keep = np.isin(w[:, 0, 0], chunk)
            w, a = w[keep], a[keep]
            np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))
    assert (mp.lo.kind, mp.lo.n_weights, mp.lo.n_acts, mp.lo.correction, mp.lo.w_unsigned) == ("filter", 3, 6, "none",
                                                                                                True)
    assert (mp.hi.kind, mp.hi.n_weights, mp.hi.n_acts, mp.hi.w_bits, mp.hi.weight_max) == ("filter", 3, 3, 5, 16)
    assert mp.lo.macs_per_dsp == 18 and mp.hi.macs_per_dsp == 9 and mp.lo.depth == mp.hi.depth == 1


@pytest.mark.parametrize("k", (1, 3))
def test_unsigned_layouts_exact(k):
    """The planner's unsigned-weight layouts (1..4-bit codes, a2..a4), best and a few more each."""
    rng = np.random.default_rng(k)
    for w in range(1, 5):
        for a in range(2, 5):
            found = planner.PLANNER.search.layouts(w, a, k, KINDS, 27, 1, w_unsigned=True)
            assert found and all(p.w_unsigned and p.correction == "none" for p in found)
            for p in found[:3]:
                planner.PLANNER.search.checked(p)
                assert_plan_exact(p, rng)


def test_unsigned_fields_pack_denser_than_signed():
    """Non-negative fields need no sign room: 3-bit unsigned w x a2 at 3x3 takes 18 MACs, where signed 4-bit
    codes (which hold 0..7 too) take 15 -- and the 3-term sums (<= 63) sit in 5-bit strides with the overlap."""
    lo = planner.PLANNER.search.layouts(3, 2, 3, KINDS, 27, 1, w_unsigned=True)[0]
    assert lo.macs_per_dsp == 18 > planner.PLANNER.search.layouts(4, 2, 3, KINDS, 27, 1)[0].macs_per_dsp == 15
    assert lo.fields[1].offset - lo.fields[0].offset == 5 and lo.overlap and lo.offset_constant() == 0


def test_check_guards_unsigned_and_full_range_codes():
    mp = w8a2()
    lo, hi = mp.lo, mp.hi
    check(dataclasses.replace(hi, w_max=16))                      # -16 fits a 5-bit slot: the two's-complement minimum
    with pytest.raises(ValueError, match="w_max 17 outside 0..16"):
        check(dataclasses.replace(hi, w_max=17))
    with pytest.raises(ValueError, match="w_max 8 outside 0..7 .0 = every unsigned 3-bit code"):
        check(dataclasses.replace(lo, w_max=8))
    with pytest.raises(ValueError, match="correction 'none' .* needs unsigned weights"):
        check(dataclasses.replace(lo, w_unsigned=False, w_bits=4))
    with pytest.raises(ValueError, match="correction 'odd'"):
        check(dataclasses.replace(lo, correction="odd"))
    # One bit narrower really overflows: a 4-bit stride holds sums up to 31 only (2 * 15 + parity).
    narrow = search._build(DSP48E2_GEOMETRY, search._Geometry("filter", lo.weight_port, (0, 1, 2), tuple(range(6)),
                                              tuple((p, tuple((i, p - i) for i in range(3) if 0 <= p - i < 6))
                                                    for p in range(8)), 18.0, ""),
                            4, True, "none", False, 3, 2, 3, 1, w_unsigned=True)
    assert max_depth(narrow) == 0
    with pytest.raises(ValueError, match=r"field 1 may reach \+-42 after 1 multiplies, over its 5-bit width"):
        check(narrow)
    w, a = np.full((1, 1, 3), 7), np.full((1, 1, 6), 3)
    assert (emulate_batch(narrow, w, a) != expected_fields(narrow, w, a)).any()
    # The unsigned core needs its extra zero bit above each raw slice (a 6-bit field holds 0..63).
    assert field_width(lo) == max(f.width for f in lo.fields) + 1


# -- the mixed split ---------------------------------------------------------------------------------

def test_mixed_digits_recombine():
    codes = np.arange(-127, 128)
    for shift in range(1, 7):
        hi, lo = mixed_digits(codes, shift)
        np.testing.assert_array_equal((hi << shift) + lo, codes)
        assert lo.min() == 0 and lo.max() == (1 << shift) - 1
        assert (hi.min(), hi.max()) == (-(1 << (7 - shift)), (1 << (7 - shift)) - 1)


def test_w8a2_reaches_mixq():
    mp = w8a2()
    assert (mp.macs_per_dsp, mp.dsps, mp.copies, mp.shift, mp.depth) == (6, 3, 2, 3, 1)
    assert mp.macs_per_dsp == MIXQ_PUBLISHED[3][8][2] > plan(8, 2, 3).macs_per_dsp == 4.5
    # Field p sums the taps meeting at output pixel p; the two high copies' partial end fields add at 3 and 4.
    assert mp.combine[3] == ((0, 3), (1, 0)) and mp.combine[4] == ((0, 4), (1, 1)) and mp.combine[2] == ((0, 2),)
    assert mp.to_dict()["dsps"] == 3 and "mixed-rate" in explain(mp) and "(hi0 field 3 + hi1 field 0) << 3" in \
        explain(mp)


def test_w8a2_mixed_split_exact_for_every_weight_code():
    """Every one of the 255 codes in every weight slot (the others random or extreme), acts all-max, random or
    zero; plus 50,000 random multiplies: the digits' DSP48E2 emulations, combined and recombined, == the sums."""
    mp = w8a2()
    rng = np.random.default_rng(8)
    codes = np.arange(-127, 128)
    ws, acts = [], []
    for slot in range(mp.n_weights):
        for others in ("random", "min", "max", "zero"):
            w = {"random": rng.integers(-127, 128, (255, 1, 3)), "min": np.full((255, 1, 3), -127),
                 "max": np.full((255, 1, 3), 127), "zero": np.zeros((255, 1, 3), dtype=np.int64)}[others]
            w[:, 0, slot] = codes
            for a in (np.full((255, 1, 6), 3), rng.integers(0, 4, (255, 1, 6))):
                ws.append(w)
                acts.append(a)
    ws.append(rng.integers(-127, 128, (50_000, 1, 3)))
    acts.append(rng.integers(0, 4, (50_000, 1, 6)))
    w, a = np.concatenate(ws), np.concatenate(acts)
    want = mixed_expected(mp, w, a)
    np.testing.assert_array_equal(mixed_emulate_batch(mp, w, a), want)
    for n in rng.choice(len(w), 40, replace=False).tolist() + [0, 254]:
        assert mixed_emulate(mp, w[n].tolist(), a[n].tolist()) == want[n].tolist()
    # The recombined fields hold the extreme sums (+-127 * 3 per term).
    ext = np.abs(mixed_expected(mp, np.array([[[-127] * 3], [[127] * 3]]), np.full((2, 1, 6), 3))).max(axis=0)
    assert all(int(x) < 1 << (f.width - 1) for x, f in zip(ext, mp.fields))


def test_other_mixed_splits_exact():
    """Every shift's best mixed split of some entries (1x1 and 3x3), random and extreme codes."""
    rng = np.random.default_rng(3)
    seen = 0
    for w_bits, a_bits, k in ((8, 2, 3), (8, 4, 3), (6, 2, 3), (5, 3, 3), (8, 2, 1), (4, 2, 3)):
        for mp in mixed_split_plans(w_bits, a_bits, k):
            seen += 1
            lo_w, hi_w = weight_range(w_bits)
            w = np.concatenate([rng.integers(lo_w, hi_w + 1, (5000, 1, mp.n_weights)),
                                np.full((1, 1, mp.n_weights), lo_w), np.full((1, 1, mp.n_weights), hi_w)])
            a = np.concatenate([rng.integers(0, 1 << a_bits, (5000, 1, mp.n_acts)),
                                np.full((2, 1, mp.n_acts), (1 << a_bits) - 1)])
            np.testing.assert_array_equal(mixed_emulate_batch(mp, w, a), mixed_expected(mp, w, a))
            ew, ea = np.repeat(w[-2:], mp.depth, axis=1), np.repeat(a[-2:], mp.depth, axis=1)
            np.testing.assert_array_equal(mixed_emulate_batch(mp, ew, ea), mixed_expected(mp, ew, ea))
            assert mp.macs_per_dsp == mp.lo.macs_per_dsp / (mp.copies + 1)
    assert seen >= 10


def test_best_plan_offers_mixed_splits_engine_does_not_get_them():
    """best_plan / all_splits(mixed=True) include mixed splits where denser; split_plans' default (what the conv
    engine asks for) keeps offering SplitPlans only."""
    assert all(isinstance(sp, SplitPlan) for sp in split_plans(8, 2, 3))
    with_mixed = planner.all_splits(8, 2, 3, mixed=True)
    assert isinstance(with_mixed[0], MixedSplitPlan) and with_mixed[0] == w8a2()
    for k in KERNEL_SIZES:
        for w in BIT_WIDTHS:
            for a in BIT_WIDTHS:
                best = best_plan(w, a, k)
                if isinstance(best, MixedSplitPlan):
                    others = [plan(w, a, k)] + split_plans(w, a, k)
                    assert best.macs_per_dsp > max(p.macs_per_dsp for p in others), (w, a, k)


def test_bad_mixed_plans_raise_value_error():
    mp = w8a2()
    with pytest.raises(ValueError, match="combine .* is not the hi copies' fields"):
        check_mixed(dataclasses.replace(mp, combine=((mp.combine[0],) + ((((0, 3),),) + mp.combine[2:]))))
    wrong = tuple(((0, 3),) if f == 3 else pairs for f, pairs in enumerate(mp.combine))
    with pytest.raises(ValueError, match="combine"):
        check_mixed(dataclasses.replace(mp, combine=wrong))
    with pytest.raises(ValueError, match="hi digits span \\[-16, 15\\].*magnitude 15"):
        check_mixed(dataclasses.replace(mp, hi=dataclasses.replace(mp.hi, w_max=15)))
    with pytest.raises(ValueError, match="lo digits span \\[0, 7\\]"):
        check_mixed(dataclasses.replace(mp, lo=dataclasses.replace(mp.lo, w_max=6)))
    with pytest.raises(ValueError, match="shift 7 outside 1..6"):
        check_mixed(dataclasses.replace(mp, shift=7))
    with pytest.raises(ValueError, match="1 copies of 3 hi activation slots"):
        check_mixed(dataclasses.replace(mp, copies=1))
    with pytest.raises(ValueError, match="depth 2 outside 1..1"):
        check_mixed(dataclasses.replace(mp, depth=2))
    with pytest.raises(ValueError, match="recombined field 2 .11 bits. must hold"):
        check_mixed(dataclasses.replace(mp, fields=tuple(dataclasses.replace(f, width=11) for f in mp.fields)))
    with pytest.raises(ValueError, match="no multiple"):
        make_mixed(8, 2, 3, 3, planner.PLANNER.search.layouts(5, 2, 3, KINDS, 27, 1, 16)[0],
                   planner.PLANNER.search.layouts(3, 2, 3, KINDS, 27, 1, w_unsigned=True)[1])      # 5 lo slots, 3 hi slots
    assert combination(mp.hi, mp.lo, 3) is None
    with pytest.raises(ValueError, match="weight code -128 outside"):
        digits(mp, np.full((1, 1, 3), -128), np.zeros((1, 1, 6), dtype=np.int64))
    with pytest.raises(ValueError, match="need 1..1 multiplies"):
        mixed_emulate_batch(mp, np.zeros((1, 1, 3), dtype=np.int64), np.zeros((1, 1, 6), dtype=np.int64), repeat=2)
    with pytest.raises(ValueError, match="depth 2 outside 1..1"):
        MixedSplitMAC(mp, depth=2)


# -- the core in simulation --------------------------------------------------------------------------

def mixed_stimulus(mp: MixedSplitPlan, seed: int) -> tuple[list, list]:
    """Phase 1: all 255 codes in every weight slot (others and acts random, every 8th all-max acts), extreme
    rows; phase 2: random codes and extremes again (run with en and valid gaps)."""
    rng = np.random.default_rng(seed)
    lo_w, hi_w = weight_range(mp.w_bits)
    a_max = (1 << mp.a_bits) - 1
    first = []
    for slot in range(mp.n_weights):
        for code in range(lo_w, hi_w + 1):
            w = rng.integers(lo_w, hi_w + 1, (1, mp.n_weights))
            w[0, slot] = code
            a = np.full((1, mp.n_acts), a_max) if code % 8 == 0 else rng.integers(0, a_max + 1, (1, mp.n_acts))
            first.append((w, a))
    extremes = [(np.full((mp.depth, mp.n_weights), c), np.full((mp.depth, mp.n_acts), a_max))
                for c in (lo_w, hi_w, -1, 1 << mp.shift, -(1 << mp.shift), (1 << mp.shift) - 1)]
    first += extremes
    second = [(rng.integers(lo_w, hi_w + 1, (1, mp.n_weights)), rng.integers(0, a_max + 1, (1, mp.n_acts)))
              for _ in range(60)] + extremes
    random.Random(seed).shuffle(second)
    return first, second


@pytest.mark.parametrize("entry", [(8, 2, 3), (8, 4, 3)])
def test_mixed_split_mac_in_simulation(entry):
    """The table's mixed splits (w8a2 and w8a4 3x3) against the plain sums, with en/valid gaps and junk inputs."""
    mp = best_plan(*entry)
    assert isinstance(mp, MixedSplitPlan)
    first, second = mixed_stimulus(mp, seed=6)
    core = MixedSplitMAC(mp)
    got, lags = simulate(core, [(first, 0.0, 0.0), (second, 0.3, 0.2)], seed=6)
    for n, ((wts, acts), g) in enumerate(zip(first + second, got)):
        want = mixed_expected(mp, wts[None], acts[None])[0].tolist()
        assert g == want, f"{mp.name}: accumulation {n}: core gave {g}, expected {want}"
    assert set(lags) == {MixedSplitMAC.LATENCY}, lags


def test_mixed_split_mac_ports_match_packed_mac():
    mp = w8a2()
    core, single = MixedSplitMAC(mp), PackedMAC(plan(8, 2, 3))
    assert MixedSplitMAC.LATENCY == PackedMAC.LATENCY == core.latency
    assert list(core.signature.members.keys()) == list(single.signature.members.keys())
    assert core.weights.shape() == data.ArrayLayout(signed(8), mp.n_weights)
    assert core.acts.shape() == data.ArrayLayout(unsigned(2), mp.n_acts)
    assert core.fields.shape().length == len(mp.fields) and core.field_width == max(f.width for f in mp.fields)
    assert "module" in rtlil.convert(core)
    unsigned_core = PackedMAC(mp.lo)
    assert not unsigned_core.weights.shape().elem_shape.signed


def test_mixed_core_takes_three_dsp48e2():
    from mixq_hw.packing.synth import synth_core

    mp = w8a2()
    result = synth_core(8, 2, 3, plan=mp)
    assert result["dsp48e2"] == 3 and result["cells"].get("DSP48E2") == 3, result
    assert result["macs_per_dsp"] == 6
    assert result["recombine_lut"] > 0 and result["extract_ff"] > 0, result
