"""The timing estimate: logic levels between registers, exact on designs whose depth is known."""

import json

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.timing import SPEED_GRADES, component_depth, netlist_depth

M1 = SPEED_GRADES["-1"]


def _cell(kind, inputs, outputs, **params):
    dirs = {**{p: "input" for p in inputs}, **{p: "output" for p in outputs}}
    return {"type": kind, "parameters": params, "port_directions": dirs, "connections": {**inputs, **outputs}}


def _chain_netlist(luts: int, *, carries: int = 0, dsp_params=None) -> dict:
    """FF -> ``luts`` LUT6s in series -> ``carries`` CARRY4s -> FF, plus a side path FF -> LUT -> FF and an
    optional DSP48E2 (a register boundary) with ``dsp_params``."""
    cells = {"q0": _cell("FDRE", {"D": [2], "C": [1]}, {"Q": [10]})}
    net = 10
    for i in range(luts):
        cells[f"l{i}"] = _cell("LUT6", {"I0": [net], "I1": ["1"], "I2": ["0"]}, {"O": [net + 1]})
        net += 1
    for i in range(carries):
        cells[f"c{i}"] = _cell("CARRY4", {"CI": [net], "S": [4, 4, 4, 4]}, {"CO": [net + 1]})
        net += 1
    cells["q1"] = _cell("FDRE", {"D": [net], "C": [1]}, {"Q": [5]})
    cells["side"] = _cell("LUT2", {"I0": [5], "I1": [3]}, {"O": [6]})
    cells["q2"] = _cell("FDRE", {"D": [6], "C": [1]}, {"Q": [7]})
    if dsp_params is not None:
        cells["dsp"] = _cell("DSP48E2", {"A": [7], "CLK": [1]}, {"P": [8]}, **dsp_params)
    ports = {"clk": {"direction": "input", "bits": [1]}, "a": {"direction": "input", "bits": [2, 3, 4]},
             "y": {"direction": "output", "bits": [7]}}
    return {"modules": {"top": {"ports": ports, "cells": cells}}}


@pytest.mark.parametrize("luts,carries", [(1, 0), (3, 0), (7, 0), (2, 5)])
def test_depth_of_a_hand_built_chain(luts, carries):
    depth = netlist_depth(_chain_netlist(luts, carries=carries), "top", M1)
    assert (depth["lut_levels"], depth["carry_levels"], depth["mux_levels"]) == (luts, carries, 0)
    assert depth["levels"] == luts + carries and (depth["start"], depth["end"]) == ("FDRE", "FDRE")
    expected = M1.ff_clk_to_q + luts * (M1.lut + M1.route) + carries * M1.carry + M1.setup
    assert depth["delay_ns"] == pytest.approx(expected, abs=1e-3)
    assert depth["fmax_mhz"] == pytest.approx(1000 / expected, abs=0.1) and depth["limited_by"] == "logic"


def test_dsp_fmax_caps_a_shallow_stage_and_grades_differ():
    full = netlist_depth(_chain_netlist(1, dsp_params={"MREG": "1", "PREG": "1"}), "top", M1)
    assert (full["fmax_mhz"], full["limited_by"]) == (645.0, "DSP48E2")
    no_m = netlist_depth(_chain_netlist(1, dsp_params={"MREG": "0", "PREG": "1"}), "top", M1)
    assert no_m["fmax_mhz"] == 456.0
    deep = netlist_depth(_chain_netlist(7, dsp_params={"MREG": "1", "PREG": "1"}), "top", M1)
    assert deep["limited_by"] == "logic" and deep["fmax_mhz"] < 645
    assert netlist_depth(_chain_netlist(7), "top", SPEED_GRADES["-2"])["fmax_mhz"] > deep["fmax_mhz"]


class AndTree(wiring.Component):
    """Registered inputs, a ``n``-input AND, a registered output: ceil(log6 n) LUT levels when n = 6^k."""

    def __init__(self, n: int):
        self.n = n
        super().__init__({"a": In(n), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        held = Signal(self.n)
        m.d.sync += [held.eq(self.a), self.y.eq(held.all())]
        return m


def test_yosys_depth_of_an_and_tree_is_exact(tmp_path, monkeypatch):
    """216 = 6^3 registered bits into one AND: exactly three LUT levels between the registers (yosys' xcup
    mapping may fold a level's LUT6 pairs into MUXF7/MUXF8, counted apart), FF to FF."""
    monkeypatch.setenv("MIXQ_CACHE", str(tmp_path))
    depth = component_depth(AndTree(216), "and216", cache=True)
    assert depth["lut_levels"] == 3 and not depth["cached"]
    assert depth["carry_levels"] == 0 and (depth["start"], depth["end"]) == ("FDRE", "FDRE")
    assert depth["levels"] == 3 + depth["mux_levels"]
    assert depth["cells"]["FDRE"] == 217
    again = component_depth(AndTree(216), "and216", cache=True)
    assert again["cached"] and again["lut_levels"] == 3


def test_build_reports_the_estimate_and_names_deep_stages(tmp_path, monkeypatch, capsys):
    """The build's --timing plumbing, with the per-stage synthesis replaced by fixed depths (one stage too deep)."""
    from networks import small_graph

    import mixq_hw.timing as timing
    from mixq_hw.build import main

    def fake(component, top="stage", *, grade="-1", cache=True):
        deep = type(component).__name__ == "SlidingWindow" or "Window" in type(component).__name__
        levels = 9 if deep else 2
        delay = M1.ff_clk_to_q + levels * (M1.lut + M1.route) + M1.setup
        return {"levels": levels, "lut_levels": levels, "carry_levels": 0, "mux_levels": 0, "delay_ns": delay,
                "fmax_mhz": round(1000 / delay, 1), "limited_by": "logic", "start": "FDRE", "end": "FDRE",
                "cells": {}, "cached": True}

    monkeypatch.setattr(timing, "component_depth", fake)
    path = tmp_path / "small.npz"
    small_graph().save(path)
    assert main([str(path), "--out", str(tmp_path / "out"), "--timing", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    t = report["timing"]
    windows = [r["stage"] for r in t["stages"] if r["levels"] == 9]
    assert windows and t["too_deep"] == windows and not t["meets_clock"]
    assert t["fmax_mhz"] == min(r["fmax_mhz"] for r in t["stages"]) < 300 and t["speed_grade"] == "-1"
    assert f"too deep: {', '.join(windows)}" in capsys.readouterr().err
    assert "## Timing estimate" in (tmp_path / "out" / "report.md").read_text()
