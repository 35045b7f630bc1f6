"""The plan contract: check() rejects broken layouts, the numpy emulations agree, and check()'s bounds are tight."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mixq_hw.packing.layout import (
    Field,
    Plan,
    act_range,
    check,
    emulate,
    emulate_batch,
    expected_fields,
    max_depth,
    weight_range,
)


def kernel_plan(w_bits: int, a_bits: int, w_offsets, a_offsets, stride: int, *, overlap=False,
                correction="borrow", weight_port="AD", depth=1, top_width=None) -> Plan:
    """A hand-made kernel plan: product (i, j) at w_offsets[i] + a_offsets[j], fields ``stride`` apart."""
    pos = sorted((wo + ao, (i, j)) for i, wo in enumerate(w_offsets) for j, ao in enumerate(a_offsets))
    width = stride + int(overlap)
    fields = [Field(p, width, (t,)) for p, t in pos]
    if top_width is not None:
        fields[-1] = dataclasses.replace(fields[-1], width=top_width)
    return Plan(w_bits=w_bits, a_bits=a_bits, k=1, kind="kernel", weight_port=weight_port,
                weight_offsets=tuple(w_offsets), act_offsets=tuple(a_offsets), fields=tuple(fields),
                overlap=overlap, correction=correction, depth=depth, macs_per_dsp=float(len(fields)))


def all_codes(p: Plan, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Every combination of codes over ``depth`` multiplies: weights (n, depth, n_w), acts (n, depth, n_a)."""
    lo, hi = weight_range(p.w_bits)
    _, ha = act_range(p.a_bits)
    ranges = [np.arange(lo, hi + 1)] * (p.n_weights * depth) + [np.arange(0, ha + 1)] * (p.n_acts * depth)
    grid = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, len(ranges))
    nw = p.n_weights * depth
    return grid[:, :nw].reshape(-1, depth, p.n_weights), grid[:, nw:].reshape(-1, depth, p.n_acts)


def random_codes(p: Plan, rng: np.random.Generator, n: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = weight_range(p.w_bits)
    _, ha = act_range(p.a_bits)
    return (rng.integers(lo, hi + 1, size=(n, depth, p.n_weights)),
            rng.integers(0, ha + 1, size=(n, depth, p.n_acts)))


# w2a2, two weights x two activations, one product per field.  A product is in [-3, 3]; a borrow
# field must hold [-4, 3] per multiply: 3 bits at depth 1, 4 bits at depth 2.
TINY = kernel_plan(2, 2, (0, 6), (0, 3), 3)
TINY_DEEP = kernel_plan(2, 2, (0, 8), (0, 4), 4, depth=2)
VARIANTS = {
    "borrow": TINY,
    "borrow depth 2": TINY_DEEP,
    "offset depth 2": dataclasses.replace(TINY_DEEP, correction="offset"),
    "overlap offset": kernel_plan(2, 2, (0, 6), (0, 3), 3, overlap=True, correction="offset", depth=2),
    "overlap borrow": kernel_plan(2, 2, (0, 6), (0, 3), 3, overlap=True, correction="borrow", depth=2),
    "weights on B": kernel_plan(2, 2, (0, 6), (0, 3), 3, weight_port="B"),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_tiny_plans_exact_exhaustively(name):
    p = VARIANTS[name]
    check(p)
    assert max_depth(p) == p.depth
    for depth in range(1, p.depth + 1):
        w, a = all_codes(p, depth)
        assert len(w) <= 2e5
        np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))


@pytest.mark.parametrize("name", VARIANTS)
def test_one_bit_narrower_is_rejected_and_really_inexact(name):
    """check()'s width bound is tight: shave one bit off every field and some input goes wrong."""
    p = VARIANTS[name]
    stride = p.fields[1].offset - p.fields[0].offset
    narrow = kernel_plan(p.w_bits, p.a_bits, [o // stride * (stride - 1) for o in p.weight_offsets],
                         [o // stride * (stride - 1) for o in p.act_offsets], stride - 1, overlap=p.overlap,
                         correction=p.correction, weight_port=p.weight_port, depth=p.depth)
    with pytest.raises(ValueError, match="may reach"):
        check(narrow)
    w, a = all_codes(narrow, narrow.depth)
    assert (emulate_batch(narrow, w, a) != expected_fields(narrow, w, a)).any()


def test_int8_two_products_per_dsp():
    """Xilinx WP486's INT8 pair (two weights sharing an activation), as a plan: random and extreme codes."""
    p = kernel_plan(8, 8, (0, 18), (0,), 18, depth=4, top_width=18)
    check(p)
    assert max_depth(p) == 4            # 4 * 127 * 255 fits 18 signed bits with a borrow, 5 * ... does not
    rng = np.random.default_rng(1)
    w, a = random_codes(p, rng, 4000, 4)
    np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))
    ext_w = np.array([[[-127, -127]], [[-127, 127]], [[127, -127]], [[127, 127]], [[0, -127]]])
    ext_a = np.full((5, 1, 1), 255)
    np.testing.assert_array_equal(emulate_batch(p, ext_w, ext_a, repeat=4), 4 * expected_fields(p, ext_w, ext_a))


@pytest.mark.parametrize("name", VARIANTS)
def test_batch_matches_scalar_emulation(name):
    p = VARIANTS[name]
    rng = np.random.default_rng(2)
    w, a = random_codes(p, rng, 40, p.depth)
    batch = emulate_batch(p, w, a)
    for n in range(len(w)):
        assert emulate(p, w[n].tolist(), a[n].tolist()) == batch[n].tolist()
    # repeat=r is the same as r copies of every row
    w1, a1 = w[:, :1], a[:, :1]
    rep = emulate_batch(p, w1, a1, repeat=p.depth)
    for n in range(len(w)):
        assert emulate(p, w1[n].tolist() * p.depth, a1[n].tolist() * p.depth) == rep[n].tolist()


def test_emulate_batch_rejects_bad_shapes():
    w = np.zeros((3, 1, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="need weights"):
        emulate_batch(TINY, w, np.zeros((3, 1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="multiplies"):
        emulate_batch(TINY, np.zeros((3, 2, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="multiplies"):
        emulate_batch(TINY_DEEP, w, np.zeros((3, 1, 2)), repeat=3)


BROKEN = {
    "weight port overflow": (dict(weight_offsets=(0, 26)), "over the 27-bit signed port"),
    "weights overflow B": (dict(weight_port="B", weight_offsets=(0, 17)), "over the 18-bit signed port"),
    "activation sign bit": (dict(act_offsets=(0, 16)), "over the 18-bit signed port"),
    "overlapping act slots": (dict(act_offsets=(0, 1)), "overlap"),
    "field too narrow": (dict(depth=2), "may reach"),
    "depth zero": (dict(depth=0), "depth 0"),
    "gap between fields": (dict(fields=(Field(0, 3, ((0, 0),)), Field(4, 3, ((0, 1),)),
                                        Field(6, 3, ((1, 0),)), Field(9, 3, ((1, 1),)))), "does not follow"),
    "term listed twice": (dict(fields=(Field(0, 3, ((0, 0),)), Field(3, 3, ((0, 0),)),
                                       Field(6, 3, ((1, 0),)), Field(9, 3, ((1, 1),)))), "listed in fields"),
    "product in no field": (dict(fields=(Field(0, 6, ((0, 0),)), Field(6, 3, ((1, 0),)),
                                         Field(9, 3, ((1, 1),)))), "lands in no listed field"),
    "field outside P": (dict(fields=(Field(0, 3, ((0, 0),)), Field(3, 3, ((0, 1),)), Field(6, 3, ((1, 0),)),
                                     Field(9, 40, ((1, 1),)))), "outside P"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_check_rejects_broken_layouts_with_a_message(name):
    change, message = BROKEN[name]
    broken = dataclasses.replace(TINY, **change)
    with pytest.raises(ValueError, match=message) as err:
        check(broken)
    assert "plan w2a2k1" in str(err.value)


def test_plan_to_dict_is_json():
    d = json.loads(json.dumps(TINY.to_dict()))
    assert d["fields"][1] == {"offset": 3, "width": 3, "terms": [[0, 1]]}
    assert d["weight_offsets"] == [0, 6] and d["depth"] == 1


# --- activation words in the port's sign bit, corrected through C ------------------------------------

def sign_plan(p: Plan) -> Plan:
    """``p`` with ``act_sign_bit`` set, at its deepest exact accumulation."""
    p = dataclasses.replace(p, act_sign_bit=True)
    return dataclasses.replace(p, depth=max_depth(p))


# The top activation slot ends at the port's top bit (B: bit 17; A:D: bit 26), one variant per port,
# overlap and correction value.  Without the flag these words overflow the signed port.
SIGN_VARIANTS = {
    "AD borrow": sign_plan(kernel_plan(2, 2, (0, 4, 8, 12), (0, 16), 4)),
    "AD overlap offset": sign_plan(kernel_plan(2, 2, (0, 4, 8, 12), (0, 16), 4, overlap=True, correction="offset")),
    "B offset": sign_plan(kernel_plan(2, 3, (0, 8, 16), (0, 24), 8, weight_port="B", correction="offset")),
    "B overlap borrow": sign_plan(kernel_plan(2, 3, (0, 8, 16), (0, 24), 8, weight_port="B", overlap=True,
                                              top_width=8)),
}


def sign_bit_set(p: Plan, a: np.ndarray) -> np.ndarray:
    """Per multiply row: whether the packed activation word has the port's top bit set."""
    word = (a << np.asarray(p.act_offsets, dtype=np.int64)).sum(axis=-1)
    return (word >> (p.act_port_bits - 1)) & 1 == 1


@pytest.mark.parametrize("name", SIGN_VARIANTS)
def test_sign_bit_plans_exact(name):
    """Every code at depth 1; random, extreme and sign-bit-heavy accumulations at the full depth."""
    p = SIGN_VARIANTS[name]
    check(p)
    assert p.depth > 1 and max(o + p.a_bits for o in p.act_offsets) == p.act_port_bits
    w, a = all_codes(p, 1)
    assert 0 < sign_bit_set(p, a).mean() < 1
    np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))
    rng = np.random.default_rng(4)
    lo, hi = weight_range(p.w_bits)
    _, ha = act_range(p.a_bits)
    for rows in range(1, p.depth + 1):
        w, a = random_codes(p, rng, 2000, rows)
        w[:500], a[:500] = np.where(w[:500] < 0, lo, hi), ha                 # extremes: every word's sign set
        np.testing.assert_array_equal(emulate_batch(p, w, a), expected_fields(p, w, a))
    ext_w = np.array([[[lo] * p.n_weights], [[hi] * p.n_weights], [[lo, hi] * (p.n_weights // 2) + [lo] *
                                                                    (p.n_weights % 2)]])
    ext_a = np.full((3, 1, p.n_acts), ha)
    np.testing.assert_array_equal(emulate_batch(p, ext_w, ext_a, repeat=p.depth),
                                  p.depth * expected_fields(p, ext_w, ext_a))


@pytest.mark.parametrize("name", SIGN_VARIANTS)
def test_sign_bit_correction_is_what_makes_it_exact(name):
    """Without the flag check() rejects the layout, and its uncorrected arithmetic is wrong exactly on the
    multiplies whose activation word has the top bit set (with a nonzero weight word)."""
    p = SIGN_VARIANTS[name]
    plain = dataclasses.replace(p, act_sign_bit=False, depth=1)
    with pytest.raises(ValueError, match=r"packed activations reach .* \(set act_sign_bit"):
        check(plain)
    w, a = all_codes(p, 1)
    wrong = (emulate_batch(plain, w, a) != expected_fields(plain, w, a)).any(axis=-1)
    wword = (w[:, 0] << np.asarray(p.weight_offsets, dtype=np.int64)).sum(axis=-1)
    np.testing.assert_array_equal(wrong, sign_bit_set(p, a)[:, 0] & (wword != 0))


@pytest.mark.parametrize("name", SIGN_VARIANTS)
def test_sign_bit_batch_matches_scalar_emulation(name):
    p = SIGN_VARIANTS[name]
    rng = np.random.default_rng(5)
    w, a = random_codes(p, rng, 60, p.depth)
    batch = emulate_batch(p, w, a)
    for n in range(len(w)):
        assert emulate(p, w[n].tolist(), a[n].tolist()) == batch[n].tolist()


def test_sign_correction_value():
    p = SIGN_VARIANTS["AD borrow"]
    assert p.act_word_limit == (1 << 18) - 1
    assert dataclasses.replace(p, act_sign_bit=False).act_word_limit == (1 << 17) - 1
    assert p.sign_correction(-5, 1 << 17) == -5 << 18
    assert p.sign_correction(-5, (1 << 17) - 1) == 0
    assert dataclasses.replace(p, act_sign_bit=False).sign_correction(-5, 1 << 17) == 0
    q = SIGN_VARIANTS["B offset"]
    assert q.sign_correction(7, (1 << 27) - 1) == 7 << 27


def test_check_rejects_misused_sign_bit():
    with pytest.raises(ValueError, match="plan w2a2k1: act_sign_bit set, but the packed activations .* never"):
        check(dataclasses.replace(TINY, act_sign_bit=True))
    over = dataclasses.replace(SIGN_VARIANTS["AD borrow"], act_offsets=(0, 17))
    with pytest.raises(ValueError, match="over the 18-bit port even with its sign bit"):
        check(over)


def test_sign_bit_plan_to_dict():
    d = json.loads(json.dumps(SIGN_VARIANTS["B offset"].to_dict()))
    assert d["act_sign_bit"] is True and TINY.to_dict()["act_sign_bit"] is False
