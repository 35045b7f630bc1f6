"""Verilog text of an Amaranth design that simulates the same under Verilog-2005 and SystemVerilog semantics.

Amaranth's ``verilog.convert`` keeps every process as a yosys process
(``proc -nomux``), which ``write_verilog`` prints as an ``always @*`` block
started by a ``reg ... = 0`` initialiser meant to raise one event at time 0.
Under SystemVerilog semantics (Icarus ``-g2012``, cocotb's Icarus flow,
Questa/xsim in SV mode) a declaration initialiser raises no event, so a block
whose inputs never change keeps X, and that X circulates through enables and
valid registers.  :func:`convert` lowers every process to cells before
``write_verilog`` (yosys ``proc`` with its multiplexer pass): the text holds
only continuous assignments (``assign``), clocked blocks
(``always @(posedge ...)``), register initial values and ``initial`` blocks
filling memories, which every simulator evaluates the same way at time 0.
The logic is the same; yosys' ``synth_xilinx`` maps the lowered multiplexers
to within a few LUTs of what it maps from the process text.

:func:`simulation_text` writes the same lowered logic for a simulator to
compile: no attributes (source locations make about half of Amaranth's text)
and no wire that nothing reads (Amaranth adds one for every field of every
structured signal, for waveforms).  Verilator takes about a seventh of the CPU
time on it that it takes on ``amaranth.back.verilog``'s text of the same design.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from . import stage_ports
from .packing.synth import run_yosys_script

__all__ = ["convert", "convert_with_simulation", "texts_from_rtlil", "simulation_text", "VerilogError", "SCRIPT", "SIM_SCRIPT",
           "BOTH_SCRIPT", "SIM_OPT", "SIM_PASSES", "OPT_PASSES", "check_passes"]

#: The yosys script: every process becomes multiplexers and flip-flops (the lowering ``synth_xilinx``
#: starts with; a switch over constants stays a multiplexer, as Amaranth writes it); ``$pmux`` cells, which
#: ``write_verilog`` prints as functions named after the cell, get plain names (Icarus reads a call to
#: ``\$procmux...`` as a system function); memories are collected into one cell each (a ``reg`` array) and
#: names are kept (``-norename``).
SCRIPT = """\
read_rtlil design.il
proc -norom
rename -enumerate -pattern mixq_pmux_% t:$pmux
memory_collect
write_verilog -norename design.v
"""

#: The optimisation of the simulation text, names kept: yosys' ``opt`` (constants folded, identical cells merged,
#: a feedback multiplexer folded into its flip-flop as a clock enable and a synchronous reset multiplexer as a
#: reset, a flip-flop that never leaves its initial value replaced by that constant; no wire removed, so every
#: signal the emitted text names is still there to compare: tests/test_sim_hdl.py proves this text equivalent to
#: the emitted one, module by module, with induction for the constant flip-flops).
SIM_OPT = "opt"
#: The optimisation passes of the simulation text (:data:`SIM_SCRIPT`: :data:`SCRIPT`'s lowering, these passes,
#: ``write_verilog -noattr``): :data:`SIM_OPT`, then every wire nothing reads removed (``opt_clean -purge``; ports
#: stay; the test proves this step apart, on :data:`SIM_OPT`'s text) and the text written without attributes
#: (``-noattr``; register initial values are still written, as declaration initialisers).  Full-size UltraNet
#: BJUT simulates about a fifth faster per CPU-second on it than on ``opt -purge -nodffe``'s text (feedback
#: multiplexers, no folded flip-flop), and compiles in a fifth less CPU time
#: (benchmarks/results/verilator_fullsize.md).
SIM_PASSES = SIM_OPT + "; opt_clean -purge"
#: The lowering every text starts with (:data:`SCRIPT` without its ``write_verilog``).
_LOWERING = SCRIPT[:SCRIPT.index("write_verilog")]
#: :data:`SIM_PASSES` one per line, as yosys reads them in a script.
_SIM_LINES = "\n".join(step.strip() for step in SIM_PASSES.split(";"))
SIM_SCRIPT = _LOWERING + _SIM_LINES + "\nwrite_verilog -norename -noattr design.v\n"
#: One yosys pass as :func:`simulation_text` accepts it: a name and plain options (no file, no selection).
_PASS = re.compile(r"([a-z][a-z0-9_]*)( -[a-z][a-z0-9_-]*)*")
#: The passes :func:`simulation_text` may run: logic optimisations that read and write nothing else.
OPT_PASSES = frozenset({"opt", "opt_expr", "opt_merge", "opt_muxtree", "opt_reduce", "opt_dff", "opt_clean",
                        "opt_share", "opt_mem", "wreduce", "peepopt", "share", "muxpack", "pmuxtree", "clean"})

#: :data:`SCRIPT` (its ``design.v`` byte for byte), then the simulation text of the same lowering in
#: ``sim.v`` (as :data:`SIM_SCRIPT` writes it).
BOTH_SCRIPT = SCRIPT + _SIM_LINES + "\nwrite_verilog -norename -noattr sim.v\n"

#: Seconds one yosys run may take (wasm yosys on a loaded machine, a network-sized design).
TIMEOUT = 900


class VerilogError(RuntimeError):
    """yosys failed to write the Verilog; the message carries the end of its log."""


def convert(elaboratable, name: str, platform=None, *, timeout: float = TIMEOUT) -> str:
    """Verilog text of ``elaboratable`` (a Component: its signature gives the ports) as module ``name``,
    elaborated for ``platform``, with no process left as ``always @*`` (see the module docstring)."""
    if not name.isidentifier():
        raise ValueError(f"Verilog module name {name!r} is not an identifier")
    return _write(stage_ports.rtlil_text(elaboratable, name, platform), name, SCRIPT, timeout)


def convert_with_simulation(elaboratable, name: str, platform=None, *,
                            timeout: float = TIMEOUT) -> tuple[str, str]:
    """(:func:`convert`'s text, the simulation text of the same elaboration) from one elaboration and one
    yosys run; the simulation text has :func:`simulation_text`'s form (no attributes, no unread wire)."""
    if not name.isidentifier():
        raise ValueError(f"Verilog module name {name!r} is not an identifier")
    return texts_from_rtlil(stage_ports.rtlil_text(elaboratable, name, platform), name, timeout=timeout)


def texts_from_rtlil(rtlil_text: str, name: str, *, timeout: float = TIMEOUT) -> tuple[str, str]:
    """:func:`convert_with_simulation`'s two texts from ``rtlil_text`` (``rtlil.convert``'s output, top
    module ``name``, no source locations)."""
    if not name.isidentifier():
        raise ValueError(f"Verilog module name {name!r} is not an identifier")
    texts = _run(rtlil_text, name, BOTH_SCRIPT, timeout, ("design.v", "sim.v"))
    return texts["design.v"], texts["sim.v"]


def check_passes(passes: str) -> list[str]:
    """The yosys passes of ``passes`` (separated by ``;``), each a pass name with plain options; a ValueError
    naming the first one that is not."""
    steps = [step.strip() for step in passes.split(";")]
    for step in steps:
        match = _PASS.fullmatch(step)
        if match is None or match.group(1) not in OPT_PASSES:
            raise ValueError(f"simulation passes {passes!r}: {step!r} is not one of yosys' optimisation passes "
                             f"({', '.join(sorted(OPT_PASSES))}) with plain options (like 'opt -purge')")
    return steps


def simulation_text(rtlil_text: str, name: str, *, timeout: float = TIMEOUT, passes: str = SIM_PASSES) -> str:
    """Verilog for a simulator from ``rtlil_text`` (``amaranth.back.rtlil.convert``'s output, top module
    ``name``): :data:`SIM_SCRIPT`'s lowering, the same logic as :func:`convert`'s with no attribute and no
    unread wire.  ``passes``: the optimisation passes instead of :data:`SIM_PASSES` (``;``-separated, for
    benchmarks; only the default is proven equivalent, tests/test_sim_hdl.py)."""
    if not name.isidentifier():
        raise ValueError(f"Verilog module name {name!r} is not an identifier")
    script = SIM_SCRIPT if passes == SIM_PASSES else \
        _LOWERING + "\n".join(check_passes(passes)) + "\nwrite_verilog -norename -noattr design.v\n"
    return _write(rtlil_text, name, script, timeout)


def _write(rtlil_text: str, name: str, script: str, timeout: float) -> str:
    """Run yosys ``script`` on ``rtlil_text``; the Verilog it writes, or a :class:`VerilogError`."""
    return _run(rtlil_text, name, script, timeout, ("design.v",))["design.v"]


def _run(rtlil_text: str, name: str, script: str, timeout: float, outputs: tuple[str, ...]) -> dict[str, str]:
    """Run yosys ``script`` on ``rtlil_text`` (as ``design.il``); the files ``outputs`` it writes, by name,
    or a :class:`VerilogError`."""
    with tempfile.TemporaryDirectory(prefix="mixq-verilog-") as tmp:
        work = Path(tmp)
        (work / "design.il").write_text(rtlil_text)
        (work / "convert.ys").write_text(script)
        try:
            failure = run_yosys_script(work, "convert.ys", timeout)
        except subprocess.TimeoutExpired as err:
            raise VerilogError(f"yosys writing {name} did not finish within {timeout} s") from err
        missing = [out for out in outputs if not (work / out).exists()]
        if failure is not None or missing:
            raise VerilogError(f"yosys writing {name} failed {failure or f'(no {missing[0]} written)'}")
        return {out: (work / out).read_text() for out in outputs}
