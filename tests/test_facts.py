"""One home per fact: the bit-width rules (mixq_hw.packing.bits) and the DSP geometry (mixq_hw.packing.geometry)
are defined once, and the graph's validation accepts exactly the widths the conv engine builds."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from mixq_hw.graph import Graph, GraphError
from mixq_hw.layers.conv_weights import check_conv_config, choose_plan
from mixq_hw.packing.bits import ACT_BITS, INPUT_BITS, PACKED_BITS, WEIGHT_BITS, weight_range

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mixq_hw", "mixq_nn", "sim", "boards")
HOMES = {"mixq_hw/packing/bits.py", "mixq_hw/packing/geometry.py"}

#: Code (strings and comments removed) that would define a fact of bits.py / geometry.py a second time.
REDEFINITIONS = {
    "OUTPUT_BITS assigned": re.compile(r"^\s*OUTPUT_BITS\s*="),
    "a literal bit-width range": re.compile(r"\brange\(\s*[12]\s*,\s*(9|17)\s*\)"),
    "a literal bit-width bound": re.compile(r"\b[12]\s*<=\s*[\w.\[\]]+\s*<=\s*(8|16)\b"),
    "the narrow weight maximum": re.compile(r"(1\s*<<\s*\(\s*w\w*\s*-\s*1\s*\)\s*\)\s*-\s*1"
                                            r"|2\s*\*\*\s*\(\s*w\w*\s*-\s*1\s*\)\s*-\s*1)"),
    "a DSP port width": re.compile(r"^\s*\w*(BITS|WIDTH)\w*\s*=\s*(18|27|30|45|48)\b"),
    "a signed-width helper": re.compile(r"^\s*def\s+\w*signed_(width|bits)\b"),
}


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, code)`` of ``path`` with every string and comment token blanked."""
    text = path.read_text()
    lines = text.splitlines()
    blank = [list(line) for line in lines]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            (r0, c0), (r1, c1) = tok.start, tok.end
            for r in range(r0, r1 + 1):
                row = blank[r - 1]
                lo = c0 if r == r0 else 0
                hi = c1 if r == r1 else len(row)
                row[lo:hi] = " " * (hi - lo)
    return [(i + 1, "".join(row)) for i, row in enumerate(blank)]


def test_finder_sees_a_redefinition(tmp_path):
    src = tmp_path / "x.py"
    src.write_text('OUTPUT_BITS = 32\nB_BITS = 18\nok = "range(2, 9)"  # range(1, 9)\nhi = (1 << (w_bits - 1)) - 1\n')
    found = {what for _, code in _code_lines(src) for what, rx in REDEFINITIONS.items() if rx.search(code)}
    assert found == {"OUTPUT_BITS assigned", "a DSP port width", "the narrow weight maximum"}


def test_facts_are_defined_once():
    """No module outside bits.py / geometry.py defines a legal width range, the narrow weight maximum, a DSP
    port width, OUTPUT_BITS or a signed-width helper of its own: they import the one home."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in HOMES:
                continue
            for number, code in _code_lines(path):
                found += [f"{rel}:{number}: {what}: {code.strip()}" for what, rx in REDEFINITIONS.items()
                          if rx.search(code)]
    assert not found, "\n".join(found)


def _graph_accepts(w: int, a: int) -> bool:
    g = Graph("widths", (4, 6, 6))
    weight = np.full((4, 4, 3, 3), weight_range(max(w, 2))[1] if w >= 2 else 0, dtype=np.int64)
    try:
        x = g.add_input(a)
        g.add_conv("c", x, weight, w_bits=w)
    except GraphError:
        return False
    return True


def _engine_accepts(w: int, a: int, k: int = 3):
    weight = np.full((4, 4, k, k), weight_range(max(w, 2))[1] if w >= 2 else 0, dtype=np.int64)
    try:
        return check_conv_config(weight, w_bits=w, a_bits=a, in_ch=4, out_ch=4, k=k, groups=1, simd=2, pe=2,
                                 pixels=4, name="c")
    except ValueError:
        return None


@pytest.mark.parametrize("w", range(0, 11))
def test_graph_accepts_exactly_what_the_engine_builds(w):
    """Every (w, a) the graph accepts, the conv engine accepts and plans (on DSPs where the packing planner
    covers the activation width, on LUT cores always); every one it refuses, the engine refuses too."""
    for a in range(0, 11):
        legal = w in WEIGHT_BITS and a in ACT_BITS and a in INPUT_BITS
        assert _graph_accepts(w, a) == legal, (w, a)
        if a in INPUT_BITS:             # the graph's conv sees the input's codes; a is the conv's a_bits
            assert (_engine_accepts(w, a) is not None) == (w in WEIGHT_BITS and a in ACT_BITS), (w, a)
        if not legal:
            continue
        for k in (1, 3):
            geo = _engine_accepts(w, a, k)
            assert choose_plan(geo, w, a, "c", multiplier="lut").w_bits == w
            if a in PACKED_BITS:
                assert choose_plan(geo, w, a, "c").macs_per_dsp > 0, (w, a, k)
            else:
                with pytest.raises(ValueError):
                    choose_plan(geo, w, a, "c")


def test_calibration_constants_cover_their_data_points():
    """Every measured point of a calibration constant lies within what the constant lets the estimate reach
    (a LUT core's adder factor with its LUT_PER_CORE on top), and the modules use the table's values."""
    from mixq_hw.estimate import LUTRAM_MAX_BITS
    from mixq_hw.packing import calibration as cal
    from mixq_hw.packing import lut_core

    assert lut_core.LUT_PER_ADDER_BIT is cal.LUT_PER_ADDER_BIT and LUTRAM_MAX_BITS == cal.LUTRAM_MAX_BITS
    assert len({c.name for c in cal.TABLE}) == len(cal.TABLE) and all(c.source for c in cal.TABLE)
    for c in cal.TABLE:
        extra = cal.LUT_PER_CORE if c.name.startswith("LUT_PER_ADDER_BIT") else 0
        for p in c.points:
            assert p.measured <= c.value * p.model + extra, (c.name, p)


def test_grouped_beats_invert_to_the_tensor():
    """sim.formats' inverse of the grouped (engine output) format, which the conv tests read results with:
    exact on ragged groups, and a non-zero slot past the last column is named."""
    from sim.formats import grouped, raster

    rng = np.random.default_rng(3)
    for shape, pe, pixels in [((4, 3, 5), 2, 2), ((6, 2, 4), 3, 4), ((2, 1, 1), 1, 3)]:
        x = rng.integers(-50, 50, (2, *shape))
        fmt = grouped(pe, pixels)
        np.testing.assert_array_equal(fmt.to_tensor(fmt.beats(x), shape, dont_care_zero=True), x)
        np.testing.assert_array_equal(raster(1).to_tensor(raster(1).beats(x), shape), x)
    beats = grouped(2, 2).to_array(np.ones((1, 2, 1, 3)))
    beats[-1, 1, 0] = 7                                  # the ragged group's second pixel slot (column 3 of 3)
    with pytest.raises(ValueError, match="holds 7, not 0"):
        grouped(2, 2).to_tensor(beats, (2, 1, 3), dont_care_zero=True)
    with pytest.raises(ValueError, match="not whole frames"):
        grouped(2, 2).to_tensor(beats[:-1], (2, 1, 3))
    np.testing.assert_array_equal(grouped(2, 2).to_frame(grouped(2, 2).beats(np.ones((2, 1, 3))), (2, 1, 3)),
                                  np.ones((2, 1, 3)))
    with pytest.raises(ValueError, match="are 2 frames of shape"):
        grouped(2, 2).to_frame(grouped(2, 2).beats(np.ones((2, 2, 1, 3))), (2, 1, 3))
