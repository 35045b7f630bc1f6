# amaranth: UnusedElaboratable=no
"""PackedMAC taking its packed weight word from a shared WeightWord (``shared_word=True``), as the conv
engine wires cores that read the same weights: bit-exact against the plan's arithmetic with the same
two-phase simulation as tests/test_packing_cores.py (every code pair in every slot, random ``en`` drops,
bubbles and junk inputs), on every plan kind that makes a weight word in fabric (weights on B, the
activation sign bit on either port); and the estimate of the shared cores is below the unshared one.
"""

from __future__ import annotations

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring

from mixq_hw.packing import plan as planner_plan
from mixq_hw.packing.cores import PackedMAC, mac_signature, packed_core_cost, shares_weight_word
from mixq_hw.packing.weight_word import WeightWord, weight_word_cost
from test_packing_cores import HALVES, SMALL, VARIANTS, hand_plan, planner_sign_bit_plans, run_plan, sign_hand_plan


class SharedWordCore(wiring.Component):
    """A WeightWord and a PackedMAC with ``shared_word=True`` behind the shared core port contract."""

    def __init__(self, plan, depth=None) -> None:
        self.core = PackedMAC(plan, depth=depth, shared_word=True)
        self.plan, self.depth, self.latency = plan, self.core.depth, self.core.latency
        self.field_width = self.core.field_width
        super().__init__(mac_signature(plan, self.field_width))

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.word = word = WeightWord(self.plan)
        m.submodules.core = core = self.core
        m.d.comb += [word.en.eq(self.en), word.weights.eq(self.weights),
                     core.word1.eq(word.word1), core.word2.eq(word.word2),
                     core.en.eq(self.en), core.i_valid.eq(self.i_valid), core.i_first.eq(self.i_first),
                     core.i_last.eq(self.i_last), core.weights.eq(self.weights), core.acts.eq(self.acts),
                     self.o_valid.eq(core.o_valid), self.fields.eq(core.fields)]
        return m


def _b_variants() -> list[tuple[str, bool, str]]:
    return [v for v in VARIANTS if v[0] == "B"]


@pytest.mark.parametrize("index", range(len(SMALL)))
def test_shared_word_small_exhaustive(index):
    """w, a in 2..4, k in {1, 3}: the sign-bit plans on both ports and the plans with weights on B."""
    w, a, k = SMALL[index]
    for v in HALVES[(index // 2 + index // 6) % 2]:
        port, overlap, correction = VARIANTS[v]
        plan = sign_hand_plan(w, a, k, port, overlap, correction)
        assert shares_weight_word(plan)
        run_plan(plan, seed=900 + 100 * index + v, exhaustive=True, make=SharedWordCore)
    for n, (port, overlap, correction) in enumerate(_b_variants()):
        plan = hand_plan(w, a, k, port, overlap, correction)
        assert shares_weight_word(plan) and not plan.act_sign_bit
        run_plan(plan, seed=5000 + 10 * index + n, exhaustive=True, make=SharedWordCore)


@pytest.mark.parametrize("part", range(2))
def test_shared_word_planner_sign_bit_plans(part):
    """The planner's sign-bit plans (k = 5 and deeper accumulations), as tests/test_packing_cores.py runs them."""
    found = planner_sign_bit_plans()
    for n, p in enumerate(found[part::4]):
        run_plan(p, seed=7000 + 2 * n + part, exhaustive=max(p.w_bits, p.a_bits) <= 4, make=SharedWordCore)


@pytest.mark.parametrize("w, a, k", [(3, 3, 3), (5, 7, 3), (2, 2, 3), (7, 5, 3)])
def test_shared_word_ultranet_mixq_plans(w, a, k):
    """The plans of UltraNet MixQ's dense layers (w3a3 filter on B with the sign bit, w5a7 kernel on AD with
    it) and the fabric's costliest mixes, random codes."""
    plan = planner_plan(w, a, k)
    if not shares_weight_word(plan):
        pytest.skip(f"w{w}a{a}k{k}'s plan makes no weight word in fabric")
    run_plan(plan, seed=w * 100 + a * 10 + k, exhaustive=False, make=SharedWordCore)


def test_shared_word_estimate_and_refusals():
    plan = planner_plan(3, 3, 3)
    lut, ff = packed_core_cost(plan)
    shared_lut, shared_ff = packed_core_cost(plan, shared_word=True)
    word_lut, word_ff = weight_word_cost(plan)
    assert shared_lut < lut and shared_ff < ff
    assert shared_lut + word_lut >= lut - 6 and shared_ff + word_ff <= ff + plan.weight_port_bits
    # weights on A:D with the sign bit: the core's own gated D - A and its registers are saved (yosys: 47 -> 41 LUTs)
    ad_sign = planner_plan(5, 7, 3)
    assert ad_sign.weight_port == "AD" and ad_sign.act_sign_bit
    assert packed_core_cost(ad_sign, shared_word=True)[0] < packed_core_cost(ad_sign)[0]
    assert packed_core_cost(ad_sign, shared_word=True)[1] < packed_core_cost(ad_sign)[1]
    plain = planner_plan(4, 4, 3)
    assert not shares_weight_word(plain)
    with pytest.raises(ValueError, match="no weight word in fabric"):
        PackedMAC(plain, shared_word=True)
    assert "module" in rtlil.convert(SharedWordCore(plan))
