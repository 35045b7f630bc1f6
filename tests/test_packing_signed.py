# amaranth: UnusedElaboratable=no
"""Signed activation codes (two's complement, ``bits.signed_act_range``) x signed narrow-range weights.

The planner's signed-activation layouts are exact: numpy emulation of the DSP48E2 against the plain sums,
exhaustively (every code combination in every slot) for w, a <= 4 and randomly (with the extremes at full
depth) up to 8 bits; check() rejects what cannot hold them, and its bound is tight.  The cores take the
flag: PackedMAC (both ports, overlap, both corrections), SplitMAC, MixedSplitMAC and LutMAC in the Amaranth
simulator with en/valid gaps, every code pair in every slot for the small widths.
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest
from amaranth import signed
from amaranth.back import rtlil
from test_packing_cores import (
    HALVES,
    VARIANTS,
    extreme_accumulations,
    hand_plan,
    random_accumulation,
    run_plan,
    simulate,
)
from test_packing_layout import kernel_plan
from test_packing_lut import run_lut

from mixq_hw.packing import planner
from mixq_hw.packing.__main__ import main as packing_main
from mixq_hw.packing.bits import act_codes, act_magnitude, signed_act_range
from mixq_hw.packing.cores import PackedMAC, packed_core_cost
from mixq_hw.packing.layout import Plan, check, emulate, emulate_batch, expected_fields, max_depth, weight_range
from mixq_hw.packing.lut_core import LutMAC, lut_core_estimate
from mixq_hw.packing.lut_layout import lut_plan
from mixq_hw.packing.mixed import MixedSplitMAC, mixed_split_plans
from mixq_hw.packing.protocol import plan_from_dict
from mixq_hw.packing.split import SplitPlan, check_split, make_split, split_plans
from mixq_hw.packing.split_core import SplitMAC

EXHAUSTIVE_MAX = 400_000
SMALL = [(w, a, k) for w in range(2, 5) for a in range(2, 5) for k in (1, 3)]


def grid(p, w_lo: int, w_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Every combination of weight codes ``w_lo..w_hi`` and signed activation codes over the plan's slots."""
    a_lo, a_hi = signed_act_range(p.a_bits)
    axes = [np.arange(w_lo, w_hi + 1)] * p.n_weights + [np.arange(a_lo, a_hi + 1)] * p.n_acts
    g = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 1, len(axes))
    return g[..., :p.n_weights], g[..., p.n_weights:]


def assert_exact(p, rng: np.random.Generator, *, exhaustive: bool) -> None:
    """emulate_batch == expected_fields: every code combination (or 4000 random rows) at depth 1, the four
    all-extreme rows repeated to the plan's full depth, and one row through the scalar emulate."""
    lo_w, hi_w = weight_range(p.w_bits)
    lo_a, hi_a = signed_act_range(p.a_bits)
    size = (hi_w - lo_w + 1) ** p.n_weights * (hi_a - lo_a + 1) ** p.n_acts
    if exhaustive and size <= EXHAUSTIVE_MAX:
        w, a = grid(p, lo_w, hi_w)
    else:
        w = rng.integers(lo_w, hi_w + 1, (4000, 1, p.n_weights))
        a = rng.integers(lo_a, hi_a + 1, (4000, 1, p.n_acts))
    np.testing.assert_array_equal(p.emulate_batch(w, a), p.expected_fields(w, a))
    ext_w = np.array([lo_w, hi_w, lo_w, hi_w])[:, None, None].repeat(p.n_weights, axis=2)
    ext_a = np.array([lo_a, lo_a, hi_a, hi_a])[:, None, None].repeat(p.n_acts, axis=2)
    np.testing.assert_array_equal(p.emulate_batch(ext_w, ext_a, repeat=p.depth),
                                  p.depth * p.expected_fields(ext_w, ext_a))
    assert p.emulate(w[0].tolist(), a[0].tolist()) == p.expected_fields(w[:1], a[:1])[0].tolist()


# -- the plans ---------------------------------------------------------------------------------------

def test_signed_code_ranges():
    assert act_codes(4, True) == signed_act_range(4) == (-8, 7) and act_codes(4) == (0, 15)
    assert act_magnitude(4, True) == 8 and act_magnitude(4) == 15 and act_magnitude(1, True) == 1


@pytest.mark.parametrize("w,a,k", SMALL)
def test_signed_layouts_exact_exhaustively(w, a, k):
    """w, a in 2..4: the planner's best signed layout and its next candidates, every code combination."""
    rng = np.random.default_rng(w * 100 + a * 10 + k)
    found = planner.plans(w, a, k, signed_act=True)
    assert found[0] == planner.plan(w, a, k, signed_act=True)
    for p in found[:4]:
        assert p.signed_act and not p.act_sign_bit and p.correction in ("borrow", "offset")
        assert p.depth == min(max_depth(p), p.depth)
        assert_exact(p, rng, exhaustive=True)


@pytest.mark.parametrize("k", (1, 3, 5))
def test_signed_table_exact_random(k):
    """Every (w, a) in 2..8: the table's plan (a layout or a weight digit split) and the best single layout."""
    rng = np.random.default_rng(k)
    for w in planner.BIT_WIDTHS:
        for a in planner.BIT_WIDTHS:
            best, single = planner.best_plan(w, a, k, signed_act=True), planner.plan(w, a, k, signed_act=True)
            assert best.signed_act and single.signed_act and best.macs_per_dsp >= single.macs_per_dsp
            for p in {best, single}:
                assert_exact(p, rng, exhaustive=False)


def test_signed_products_need_less_room():
    """|w * a| <= 3 * 2 for w3 x signed a2 against 3 * 3 unsigned: the narrower fields hold one more product per
    3-bit-stride kernel layout, and one bit narrower is rejected and really wrong."""
    p = dataclasses.replace(kernel_plan(3, 2, (0, 8), (0, 4), 4, correction="offset"), signed_act=True)
    check(p)
    assert max_depth(p) == 1 and max_depth(dataclasses.replace(p, signed_act=False)) == 0
    narrow = dataclasses.replace(kernel_plan(3, 2, (0, 6), (0, 3), 3, correction="offset"), signed_act=True)
    with pytest.raises(ValueError, match="plan w3a2k1 signed-act: field .* may reach"):
        check(narrow)
    w, a = grid(narrow, -3, 3)
    assert (emulate_batch(narrow, w, a) != expected_fields(narrow, w, a)).any()
    w, a = grid(p, -3, 3)
    np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))


def test_check_guards_signed_activations():
    p = planner.plan(4, 4, 3, signed_act=True)
    with pytest.raises(ValueError, match="act_sign_bit corrects an unsigned activation word"):
        check(dataclasses.replace(p, act_sign_bit=True))
    with pytest.raises(ValueError, match="correction 'none' .* unsigned activations"):
        check(dataclasses.replace(p, correction="none", w_unsigned=True))
    wide = dataclasses.replace(p, act_offsets=(0, p.act_port_bits - p.a_bits + 1))
    with pytest.raises(ValueError, match="packed signed activations span .* over the 18-bit signed port"):
        check(wide)
    # The most negative word alone overflows: -8 - (8 << 14) is under B's -2**17, while 7 + (7 << 14) fits.
    top = dataclasses.replace(kernel_plan(2, 4, (0,), (0, 13), 13), signed_act=True)
    check(top)
    with pytest.raises(ValueError, match=r"span \[-131080, 114695\]"):
        check(dataclasses.replace(top, act_offsets=(0, 14)))


def test_signed_plan_records():
    p = planner.plan(3, 3, 3, signed_act=True)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["signed_act"] is True and plan_from_dict(d) == p
    assert "signed_act" not in planner.plan(3, 3, 3).to_dict()          # unsigned records read as before
    s = planner.best_plan(8, 2, 3, signed_act=True)
    assert isinstance(s, SplitPlan) and s.operand == "weight" and s.signed_act
    assert plan_from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(ValueError, match="signed_act=1 must be True or False"):
        planner.plan(3, 3, 3, signed_act=1)


def test_signed_activation_splits():
    """A signed activation a = (a >> s) * 2**s + (a mod 2**s): the high digit signed, the low one unsigned, on one
    unsigned layout (the high digit's copy with signed_act); every code of every slot exact, and check() refuses
    a signed low digit."""
    found = [sp for sp in split_plans(4, 4, 3, signed_act=True) if sp.operand == "act"]
    assert found and all(sp.hi.signed_act and not sp.lo.signed_act and not sp.lo.act_sign_bit for sp in found)
    sp = found[0]
    assert sp.signed_act and planner.best_plan(4, 4, 3, signed_act=True) == sp and sp.macs_per_dsp == 7.5
    assert_exact(sp, np.random.default_rng(2), exhaustive=False)
    a = np.arange(-8, 8)[:, None, None].repeat(sp.n_acts, axis=2)       # every code in every slot, both digits
    w = np.random.default_rng(3).integers(-7, 8, (len(a), 1, sp.n_weights))
    np.testing.assert_array_equal(sp.emulate_batch(w, a), sp.expected_fields(w, a))
    with pytest.raises(ValueError, match="the low digit of a signed activation .* is unsigned"):
        check_split(dataclasses.replace(sp, lo=dataclasses.replace(sp.lo, signed_act=True)))
    with pytest.raises(ValueError, match="a signed activation split runs its unsigned low digit"):
        make_split(4, 4, 3, "act", sp.shift, "floor", sp.hi, signed_act=True)


def test_signed_mixed_splits_exact():
    """Mixed-rate weight splits with signed activations: the unsigned low digit's fields are signed, so they
    take borrow/offset correction; digits through their DSP48E2 emulations == the plain sums."""
    rng = np.random.default_rng(11)
    found = mixed_split_plans(8, 2, 3, signed_act=True) + mixed_split_plans(6, 3, 3, signed_act=True)
    assert found
    for mp in found:
        assert mp.signed_act and mp.lo.w_unsigned and mp.lo.correction != "none"
        lo_w, hi_w = weight_range(mp.w_bits)
        lo_a, hi_a = signed_act_range(mp.a_bits)
        w = np.concatenate([rng.integers(lo_w, hi_w + 1, (20_000, 1, mp.n_weights)),
                            np.array([lo_w, hi_w])[:, None, None].repeat(mp.n_weights, axis=2)])
        a = np.concatenate([rng.integers(lo_a, hi_a + 1, (20_000, 1, mp.n_acts)),
                            np.full((2, 1, mp.n_acts), lo_a)])
        np.testing.assert_array_equal(mp.emulate_batch(w, a), mp.expected_fields(w, a))


def test_signed_density_table_and_command_line(capsys):
    rows = planner.density_table((1, 3), signed_act=True)
    assert len(rows) == 2 * 49 and all(r["signed_act"] for r in rows)
    assert all("signed_act" not in r for r in planner.density_table((1,)))
    by = {(r["w"], r["a"], r["k"]): r["macs_per_dsp"] for r in rows}
    assert by[(2, 2, 3)] == 27 and by[(4, 4, 3)] == 7.5
    assert packing_main(["--table", "--signed", "--k", "1"]) == 0
    out = capsys.readouterr().out
    assert "signed activation codes" in out and "k=1" in out
    assert packing_main(["--plan", "4", "4", "3", "--signed", "--single", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signed_act"] is True
    assert packing_main(["--plan", "4", "4", "3", "--signed"]) == 0
    assert "signed" in capsys.readouterr().out


# -- the cores in simulation -------------------------------------------------------------------------

def signed_hand_plan(w: int, a: int, k: int, port: str, overlap: bool, correction: str) -> Plan:
    """A hand-made layout of this variant (tests/test_packing_cores.py) taking signed activations, at its
    deepest exact accumulation (capped at 12)."""
    p = dataclasses.replace(hand_plan(w, a, k, port, overlap, correction), signed_act=True)
    return dataclasses.replace(p, depth=min(max_depth(p), 12))


#: Entries of the hand-made signed grid: every w and a in 2..4, both kernel sizes, each with one orthogonal half
#: of the (port, overlap, correction) variants (alternating, so each half meets both kernel sizes).
SIGNED_HAND = [(2, 2, 1), (2, 3, 3), (3, 4, 1), (3, 2, 3), (4, 4, 1), (4, 3, 3), (2, 4, 3), (4, 2, 1)]


@pytest.mark.parametrize("index", range(len(SIGNED_HAND)))
def test_signed_hand_plans_exhaustive(index):
    """Both ports, overlap and both corrections (one orthogonal half per entry): every code pair in every
    slot, full-depth extremes, en/valid gaps."""
    w, a, k = SIGNED_HAND[index]
    for v in HALVES[index % 2]:
        run_plan(signed_hand_plan(w, a, k, *VARIANTS[v]), seed=900 + 10 * index + v, exhaustive=True)


def test_signed_hand_plans_cover_every_feature():
    seen = set()
    for index, (w, a, k) in enumerate(SIGNED_HAND):
        for v in HALVES[index % 2]:
            p = signed_hand_plan(w, a, k, *VARIANTS[v])
            seen.update({p.kind, p.weight_port, ("overlap", p.overlap), p.correction, ("deep", p.depth > 1)})
    assert seen >= {"kernel", "filter", "AD", "B", ("overlap", True), ("overlap", False), "borrow", "offset",
                    ("deep", True)}


@pytest.mark.parametrize("w", range(2, 5))
def test_signed_planner_plans_exhaustive(w):
    """The planner's signed layouts for w, a in 2..4, k in {1, 3}: every code pair in every slot."""
    for a in range(2, 5):
        for k in (1, 3):
            run_plan(planner.plan(w, a, k, signed_act=True), seed=1000 + 10 * w + a + k, exhaustive=True)


@pytest.mark.parametrize("index", range(3))
def test_signed_planner_plans_wide_random(index):
    """A fixed-seed sample of the wider entries (and the k = 5 table): random codes, extremes at full depth."""
    rng = random.Random(77 + index)
    for _ in range(3):
        w, a, k = rng.randint(2, 8), rng.randint(5, 8), rng.choice((1, 3, 5))
        if rng.random() < 0.5:
            w, a = a, w
        run_plan(planner.plan(w, a, k, signed_act=True), seed=rng.randrange(1 << 16), exhaustive=False)


def test_signed_plans_use_both_ports():
    ports = {planner.plan(w, a, k, signed_act=True).weight_port for w in range(2, 9) for a in range(2, 9)
             for k in (1, 3)}
    assert ports == {"AD", "B"}


def run_multi(core, seed: int) -> None:
    """Random and all-extreme accumulations through a multi-core plan, at full rate then with gaps."""
    plan = core.plan
    nrng = np.random.default_rng(seed)
    first = [random_accumulation(plan, 1, nrng) for _ in range(150)] + extreme_accumulations(plan, core.depth)
    second = [random_accumulation(plan, core.depth, nrng) for _ in range(20)] + extreme_accumulations(plan,
                                                                                                       core.depth)
    got, lags = simulate(core, [(first, 0.0, 0.0), (second, 0.3, 0.2)], seed)
    for n, ((wts, acts), g) in enumerate(zip(first + second, got)):
        assert g == plan.expected_fields(wts[None], acts[None])[0].tolist(), f"{plan.name}: accumulation {n}"
    assert set(lags) == {core.latency}


@pytest.mark.parametrize("entry", [(8, 2, 3), (7, 6, 3), (4, 4, 3), (2, 8, 5)])
def test_signed_split_mac(entry):
    """Weight splits (w8a2, w7a6) and activation splits (w4a4, w2a8) of signed codes."""
    sp = planner.best_plan(*entry, signed_act=True)
    assert isinstance(sp, SplitPlan) and sp.signed_act
    core = SplitMAC(sp)
    assert core.acts.shape().elem_shape == signed(sp.a_bits)
    run_multi(core, seed=sum(entry))


def test_signed_mixed_split_mac():
    mp = mixed_split_plans(8, 2, 3, signed_act=True)[0]
    run_multi(MixedSplitMAC(mp), seed=5)


@pytest.mark.parametrize("w,a", [(w, a) for w in range(2, 5) for a in range(1, 5)])
def test_signed_lut_core_exhaustive(w, a):
    """LutMAC with signed activations: rows over the activation bits (a <= w, the sign bit's row subtracted)
    and over the weight bits (a > w, rows of signed activations): every code pair in every slot."""
    p = lut_plan(w, a, 1 + (w + a) % 3, 1 + (w * a) % 2, 3 + (w + 2 * a) % 7, signed_act=True)
    assert p.signed_act and "signed" in p.note
    run_lut(p, seed=40 + 10 * w + a, exhaustive=True)


def test_signed_lut_dot_core_and_estimate():
    p = lut_plan(3, 4, 2, 1, 9, lanes=3, signed_act=True)
    run_lut(p, seed=3, exhaustive=True)
    unsigned_p = lut_plan(3, 4, 2, 1, 9, lanes=3)
    assert p.fields[0].width == unsigned_p.fields[0].width - 1          # |a| <= 8 instead of 15
    assert 0 < lut_core_estimate(p, 9)[0] <= lut_core_estimate(unsigned_p, 9)[0]
    run_lut(lut_plan(8, 7, 2, 2, 144, signed_act=True), seed=4, exhaustive=False)


def test_signed_cores_ports_and_lint():
    for port in ("AD", "B"):
        p = next(planner.plan(w, a, k, signed_act=True) for w in range(2, 9) for a in range(2, 9) for k in (1, 3)
                 if planner.plan(w, a, k, signed_act=True).weight_port == port)
        core = PackedMAC(p)
        assert core.acts.shape().elem_shape == signed(p.a_bits)
        assert "module" in rtlil.convert(core)
        unsigned_cost = packed_core_cost(dataclasses.replace(p, signed_act=False))
        assert packed_core_cost(p)[0] > unsigned_cost[0] and packed_core_cost(p)[1] > unsigned_cost[1]
    assert LutMAC(lut_plan(4, 4, 1, 1, 4, signed_act=True)).acts.shape().elem_shape == signed(4)


def test_unsigned_plans_emulate_as_before():
    """The flag changes nothing for unsigned plans: same layouts and figures as the table's, emulate agrees."""
    p = planner.plan(4, 4, 3)
    assert not p.signed_act and p.act_min == 0 and p.act_max == 15
    assert emulate(p, [[1] * p.n_weights], [[15] * p.n_acts]) == \
        expected_fields(p, [[[1] * p.n_weights]], [[[15] * p.n_acts]])[0].tolist()


def test_signed_activation_split_with_a_narrow_high_digit():
    """a4 at shift 3: the signed high digit a >> 3 is one bit (-1 or 0) on a 3-bit slot, so the core must
    sign-extend it; numpy and SplitMAC against the plain sums."""
    layout = next(p for p in planner.PLANNER.search.layouts(3, 3, 3, ("kernel", "filter"), 27, 1)
                  if not p.act_sign_bit)
    sp = make_split(3, 4, 3, "act", 3, "floor", planner.PLANNER.search.checked(layout), signed_act=True)
    assert sp.signed_act and sp.hi.a_bits == 3
    assert_exact(sp, np.random.default_rng(4), exhaustive=True)
    run_multi(SplitMAC(sp), seed=12)
