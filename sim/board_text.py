"""The build's own elaboration simulated: its board Verilog behind the accelerator's stream ports.

A build elaborates its :class:`~mixq_hw.top.AxiStreamTop` once, for the board
(packed cores as DSP48E2 primitive instances), and
:func:`mixq_hw.top.emit_verilog_with_simulation` gives the simulation text of
that elaboration next to the emitted Verilog.  :func:`board_simulation_text`
wraps it in a module :data:`~sim.verilator.DESIGN_TOP` whose ports are the
:class:`~mixq_hw.pipeline.Accelerator`'s (``clk``, ``rst``, ``i__*``, ``o__*``)
and appends the behavioural DSP48E2 model
(:data:`~mixq_hw.packing.dsp48e2.VERILOG_MODEL`, checked cycle by cycle against
the Amaranth model in tests/test_sim_hdl.py), so the Verilator testbench drives
it exactly as it drives the Accelerator elaborated alone: the AXI-Stream top
adds only wires between its ports and the Accelerator's (and a ``tlast``
counter nothing here reads), so the outputs and their cycles are the same,
without elaborating the design a second time.
"""

from __future__ import annotations

from typing import Any, Sequence

from amaranth.lib import wiring

from mixq_hw import hdl_text
from mixq_hw.packing.dsp48e2 import VERILOG_MODEL
from mixq_hw.packing.lut_core import simulation_form
from mixq_hw.stage_ports import StageModule, rtlil_text
from mixq_hw.top import AxiStreamTop

from . import forked
from .beats import payload_shape, payload_width
from .stage_bank import bank_port
from .verilator import DESIGN_TOP

__all__ = ["board_simulation_text", "board_bank_text", "BoardBankPorts", "emit_for_verification", "OWN_PROGRAM_FROM",
           "product_form_text"]


def board_simulation_text(top: AxiStreamTop, simulation: str, name: str = "mixq_accel") -> str:
    """Verilog of module :data:`~sim.verilator.DESIGN_TOP` with ``top.accelerator``'s ports, made of
    ``simulation`` (the simulation text of ``top`` as module ``name``, from
    :func:`mixq_hw.top.emit_verilog_with_simulation`) and, when it instantiates DSP48E2 primitives, their
    behavioural model; for :func:`sim.verilator.compile_verilator`'s ``verilog_text``."""
    _check_top(simulation, name)
    acc = top.accelerator
    in_bits = payload_width(payload_shape(acc, "i"))
    out_bits = payload_width(payload_shape(acc, "o"))
    if in_bits > top.in_width or out_bits > top.out_width:
        raise ValueError(f"the accelerator's payloads ({in_bits}, {out_bits} bits) do not fit the top's tdata "
                         f"({top.in_width}, {top.out_width} bits)")
    pad = top.in_width - in_bits
    tdata_in = f"{{{pad}'d0, i__payload}}" if pad else "i__payload"
    wrapper = f"""\
module {DESIGN_TOP}(clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload);
  input clk;
  input rst;
  input i__valid;
  output i__ready;
  input [{in_bits - 1}:0] i__payload;
  output o__valid;
  input o__ready;
  output [{out_bits - 1}:0] o__payload;
  wire [{top.out_width - 1}:0] tdata;
  wire tlast;
  {name} board (
    .aclk(clk), .aresetn(~rst),
    .s_axis_tdata({tdata_in}), .s_axis_tvalid(i__valid), .s_axis_tready(i__ready), .s_axis_tlast(1'b0),
    .m_axis_tdata(tdata), .m_axis_tvalid(o__valid), .m_axis_tready(o__ready), .m_axis_tlast(tlast));
  assign o__payload = tdata[{out_bits - 1}:0];
endmodule

"""
    return wrapper + _with_model(simulation)


def _check_top(simulation: str, name: str) -> None:
    """A ValueError unless ``simulation`` has a module ``name`` that is an identifier other than DESIGN_TOP."""
    if not name.isidentifier() or name == DESIGN_TOP:
        raise ValueError(f"Verilog module name {name!r} is not an identifier other than {DESIGN_TOP!r}")
    if f"\nmodule {name}(" not in f"\n{simulation}":
        raise ValueError(f"the simulation text has no module {name!r}")


def _with_model(simulation: str) -> str:
    """``simulation`` followed by the behavioural DSP48E2 model when it instantiates DSP48E2 primitives."""
    return simulation + "\n" + (VERILOG_MODEL.read_text() if "DSP48E2 #(" in simulation else "")


class BoardBankPorts:
    """The ports of :func:`board_bank_text`'s design, for the Verilator testbench (a signature and its
    interface objects, nothing to elaborate): the accelerator's ``i`` and ``o`` first, then every stage's
    stream ports as ``s<k>_<port>`` (:func:`sim.stage_bank.bank_port`); ``clocks``: each clock input and the
    output streams of what it clocks."""

    def __init__(self, members: dict[str, wiring.Member], clocks: dict[str, list[str]] | None = None):
        self._interface = wiring.Signature(members).create()
        self.signature = self._interface.signature
        #: clock input -> the output streams of what it clocks (:func:`sim.verilator.compile_verilator`: the
        #: testbench toggles a clock only while one of them has beats left to deliver)
        self.clocks: dict[str, list[str]] = dict(clocks or {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._interface, name)


def _escaped(name: str) -> str:
    if not name or any(c.isspace() for c in name) or not name.isprintable():
        raise ValueError(f"Verilog name {name!r} cannot be escaped")
    return f"\\{name} "


def _concat(bits: list[str]) -> str:
    """A Verilog concatenation of ``bits`` (least significant first), runs of one vector's bits as slices."""
    runs: list[list] = []
    for bit in bits:
        vector, _, index = bit.partition("[")
        if index and runs and runs[-1][0] == vector and runs[-1][2] + 1 == int(index[:-1]):
            runs[-1][2] += 1
        elif index:
            runs.append([vector, int(index[:-1]), int(index[:-1])])
        else:
            runs.append([bit, None, None])
    parts = [v if lo is None else (f"{v}[{lo}]" if lo == hi else f"{v}[{hi}:{lo}]") for v, lo, hi in reversed(runs)]
    return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"


def board_bank_text(top: AxiStreamTop, simulation: str, stages: Sequence[StageModule],
                    name: str = "mixq_accel", *, whole: bool = False) -> tuple[BoardBankPorts, str]:
    """A design of a second instance of each of ``stages``' modules from the build's ``simulation`` text, each
    with its stream ports on the top as ``s<k>_<port>`` and its own clock input ``s<k>_clk`` (all share
    ``rst``), so a run clocks only what it drives; returns (its ports for
    :func:`sim.verilator.compile_verilator`, the Verilog).  Every stage is then simulated on its own (layer
    by layer) from one compiled program.

    ``whole``: the accelerator too (:func:`board_simulation_text`'s design, clock ``clk``, ports ``i`` and
    ``o`` first), for one program that runs both checks.  Verilator evaluates the combinational logic fed
    by top-level inputs on every evaluation, the idle stage instances' too, so inside such a program full-size
    MixQ's whole design ran 92,190 cycles per CPU-second against 100,886 alone, at about the same compile
    cost (68 CPU-s against 42 + the stages'; benchmarks/results/verilator_fullsize.json, ``--programs``):
    big designs get a program of their own (:func:`emit_for_verification`)."""
    acc = top.accelerator
    members: dict[str, wiring.Member] = {}
    clocks: dict[str, list[str]] = {}
    if whole:
        text = board_simulation_text(top, simulation, name)
        members.update(i=acc.signature.members["i"], o=acc.signature.members["o"])
        clocks["clk"] = ["o"]
    else:
        _check_top(simulation, name)
        text = f"module {DESIGN_TOP}(rst);\n  input rst;\nendmodule\n\n" + _with_model(simulation)
    decls: list[str] = []
    body: list[str] = []
    for k, stage in enumerate(stages):
        sig = stage.component.signature
        if "clk" in sig.members:
            raise ValueError(f"stage {stage.name!r}: a stream port named 'clk' would clash with its clock input")
        clock = bank_port(k, "clk")
        clocks[clock] = []
        decls.append(f"  input {clock};")
        for port, member in sig.members.items():
            if not member.is_signature or set(member.signature.members) != {"valid", "ready", "payload"}:
                raise ValueError(f"stage {stage.name!r}: port {port!r} is not a stream")
            members[bank_port(k, port)] = member
            if member.flow == wiring.Out:
                clocks[clock].append(bank_port(k, port))
        wires = {p: bank_port(k, p) for p in [*stage.inputs, *stage.outputs]}
        for p, in_bits in stage.inputs.items():
            decls.append(f"  input {_range(len(in_bits))}{wires[p]};")
        for p, out_bits in stage.outputs.items():
            decls.append(f"  output {_range(len(out_bits))}{wires[p]};")
        driven: dict[str, list[str]] = {}
        for p, in_bits in stage.inputs.items():
            for bit, where in enumerate(in_bits):
                if where is not None:
                    driven.setdefault(where[0], ["1'b0"] * stage.ports[where[0]][1])[where[1]] = f"{wires[p]}[{bit}]"
        connections = [f".{_escaped(port)}({clock if kind == 'clk' else 'rst'})" for port, kind in stage.clock.items()]
        for port, (direction, width) in stage.ports.items():
            if port in stage.clock:
                continue
            if direction == "input":
                connections.append(f".{_escaped(port)}({_concat(driven[port])})")
            else:
                wire = f"s{k}__m{len(decls)}"
                decls.append(f"  wire {_range(width)}{wire};")
                driven[port] = [f"{wire}[{b}]" for b in range(width)]
                connections.append(f".{_escaped(port)}({wire})")
        if stage.module is not None:
            if f"\nmodule {_escaped(stage.module)}(" not in text:
                raise ValueError(f"the simulation text has no module {stage.module!r}")
            body.append(f"  {_escaped(stage.module)}s{k} (\n    " + ",\n    ".join(connections) + ");")
        for p, out_bits in stage.outputs.items():
            source = [f"1'b{b[1]}" if b[0] == "const" else driven[b[1]][b[2]] if b[0] == "port"
                      else f"{wires[b[1]]}[{b[2]}]" for b in out_bits]
            body.append(f"  assign {wires[p]} = {_concat(source)};")
    ports = BoardBankPorts(members, clocks)
    header, _, rest = text.partition(");\n")
    extra = ", ".join(bank_port(k, p) for k, s in enumerate(stages) for p in ["clk", *s.inputs, *s.outputs])
    wrapper_end = rest.index("endmodule")
    text = (f"{header}{', ' + extra if extra else ''});\n" + rest[:wrapper_end] + "\n".join(decls + body) + "\n"
            + rest[wrapper_end:])
    return ports, text


def _range(width: int) -> str:
    return f"[{width - 1}:0] "


#: Simulation texts (characters) from which :func:`emit_for_verification` puts the whole design in a program
#: of its own by default: below it, both checks run from one program (one compile, about 8 CPU-s less for a
#: test-sized design, whose whole-network run takes a second or less); above it (full-size networks and the
#: main job: 4-7 MB) the whole design runs 8-9 % faster alone and the two programs compile side by side.
OWN_PROGRAM_FROM = 2_000_000

#: Estimated LUTs plus flip-flops (the plan's, known before elaborating) from which
#: :func:`emit_for_verification` elaborates a design with LUT cores a second time for its whole-design program:
#: the designs whose simulation text passes :data:`OWN_PROGRAM_FROM` (full-size UltraNet-MixQ and the main job:
#: about 118,000 and 5-6 MB; test designs: a few thousand).
PRODUCT_FORM_FROM = 40_000


def product_form_text(top: AxiStreamTop, name: str, platform: Any) -> str:
    """:func:`board_simulation_text` of ``top`` elaborated again under
    :func:`mixq_hw.packing.lut_core.simulation_form`: the LUT cores' first tree stage written as multiplies,
    every register the same as in the emitted logic (proven per core shape in tests/test_packing_lut.py)."""
    with simulation_form():
        rtlil = rtlil_text(top, name, platform)
    return board_simulation_text(top, hdl_text.simulation_text(rtlil, name), name)


def emit_for_verification(top: AxiStreamTop, path: Any, name: str, platform: Any, *, whole: bool | None = None
                          ) -> tuple[str | forked.Forked, tuple[BoardBankPorts, str] | None, str]:
    """Emit the build's Verilog to ``path`` (:func:`mixq_hw.top.emit_verilog_with_stages`) and, from the same
    elaboration, what Verilator verifies: (the whole design's text for
    :func:`sim.verify.verify_accelerator`'s ``whole_verilog``, its ``board_bank`` (every stage of it in one
    text, :func:`board_bank_text`; with ``whole`` the whole design in it too, None: when the simulation text
    is shorter than :data:`OWN_PROGRAM_FROM`) or None when some stage's ports could not be mapped, a sentence
    saying why ('' otherwise)).

    A design with LUT cores that the plan estimates at :data:`PRODUCT_FORM_FROM` LUTs and flip-flops or more is
    elaborated a second time, in a forked process on the spare core while this one elaborates and yosys writes
    the first (:func:`product_form_text`); when it gets a program of its own (not ``whole``), the whole
    design's text is the function that waits for that text: full-size UltraNet-MixQ simulates 3-10 % faster.
    The stage bank keeps the emitted logic, so every stage is still checked as emitted."""
    from mixq_hw.top import emit_verilog_with_stages

    second: forked.Forked | None = None
    if whole is not True and any(fold.multiplier == "lut" for fold in top.accelerator.plan.folding.values()):
        estimate = top.accelerator.estimate()
        if estimate.lut + estimate.ff >= PRODUCT_FORM_FROM:
            second = forked.start(product_form_text, top, name, platform, name="mixq-product-form",
                                  what="the second elaboration (LUT cores as multiplies)")
    try:
        _, simulation, stages = emit_verilog_with_stages(top, path, name=name, platform=platform)
        if whole is None:
            whole = len(simulation) < OWN_PROGRAM_FROM
        text = board_simulation_text(top, simulation, name)
        found: list[StageModule] = []
        for stage in top.accelerator.plan.stages:
            mapped = stages.get(stage.name.replace(".", "_"))
            if not isinstance(mapped, StageModule):
                return text, None, str(mapped or f"stage {stage.name!r} has no module of its own")
            found.append(mapped)
        try:
            bank = board_bank_text(top, simulation, found, name, whole=whole)
        except ValueError as err:
            return text, None, str(err)
        if second is not None and not whole:
            made, second = second, None
            return made, bank, ""
        return text, bank, ""
    finally:
        if second is not None:
            forked.stop(second)
