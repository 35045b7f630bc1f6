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

from mixq_hw.packing.dsp48e2 import VERILOG_MODEL
from mixq_hw.top import AxiStreamTop

from .beats import payload_shape, payload_width
from .verilator import DESIGN_TOP

__all__ = ["board_simulation_text"]


def board_simulation_text(top: AxiStreamTop, simulation: str, name: str = "mixq_accel") -> str:
    """Verilog of module :data:`~sim.verilator.DESIGN_TOP` with ``top.accelerator``'s ports, made of
    ``simulation`` (the simulation text of ``top`` as module ``name``, from
    :func:`mixq_hw.top.emit_verilog_with_simulation`) and, when it instantiates DSP48E2 primitives, their
    behavioural model; for :func:`sim.verilator.compile_verilator`'s ``verilog_text``."""
    if not name.isidentifier() or name == DESIGN_TOP:
        raise ValueError(f"Verilog module name {name!r} is not an identifier other than {DESIGN_TOP!r}")
    if f"\nmodule {name}(" not in f"\n{simulation}":
        raise ValueError(f"the simulation text has no module {name!r}")
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
    model = VERILOG_MODEL.read_text() if "DSP48E2 #(" in simulation else ""
    return wrapper + simulation + "\n" + model
