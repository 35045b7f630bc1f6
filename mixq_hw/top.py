"""The accelerator as a Vivado-friendly top level: flat AXI-Stream ports, a clock and an active-low reset.

:class:`AxiStreamTop` wraps an :class:`~mixq_hw.pipeline.Accelerator` with the
port names Vivado's block design infers interfaces from (``aclk``, ``aresetn``,
``s_axis_*``, ``m_axis_*``; see boards/vivado), so an AXI DMA connects to it
directly.  Input: one pixel per beat, its C 8-bit channels in the low bytes of
``tdata`` (padding bytes ignored).  Output: ``out_lanes`` int32 values per beat,
lane 0 in the low 32 bits, padding bits zero; ``m_axis_tlast`` marks the last
beat of every output frame (the DMA ends a transfer there).  :func:`emit_verilog`
writes the Verilog through yosys with every process lowered to cells (:mod:`mixq_hw.hdl_text`), so it
simulates the same under Verilog-2005 and SystemVerilog semantics.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from amaranth import ClockDomain, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import hdl_text
from .pipeline import OUTPUT_BITS, Accelerator

__all__ = ["AxiStreamTop", "emit_verilog", "emit_verilog_with_simulation", "emit_verilog_with_stages", "PORT_NAMES", "stream_width"]

#: Every port of the top level, in declaration order.
PORT_NAMES = ("aclk", "aresetn", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
              "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast")


def stream_width(bits: int) -> int:
    """The smallest power of two (at least 8) that holds ``bits``: an AXI-Stream tdata width."""
    width = 8
    while width < bits:
        width *= 2
    return width


def _check_width(what: str, width: int | None, needed: int) -> int:
    if width is None:
        return stream_width(needed)
    if isinstance(width, bool) or not isinstance(width, int) or width < 8 or width & (width - 1):
        raise ValueError(f"{what} {width!r} must be a power of two of at least 8 bits")
    if width < needed:
        raise ValueError(f"{what} {width} is too narrow: a beat needs {needed} bits")
    return width


def _top_widths(accelerator: Accelerator, in_width: int | None, out_width: int | None) -> tuple[int, int]:
    """The input and output tdata widths of a top level around ``accelerator``; ValueError for a refused one."""
    if not isinstance(accelerator, Accelerator):
        raise ValueError(f"AxiStreamTop wraps an Accelerator, got {type(accelerator).__name__}")
    plan = accelerator.plan
    return (_check_width("input tdata width", in_width, 8 * plan.in_channels),
            _check_width("output tdata width", out_width, OUTPUT_BITS * plan.out_lanes))


class AxiStreamTop(wiring.Component):
    """``accelerator`` behind flat AXI-Stream ports, clocked by ``aclk`` and reset by ``aresetn`` (active low).

    ``in_width``/``out_width``: tdata widths in bits (default: the smallest power
    of two holding ``8*C`` input bits / ``32*out_lanes`` output bits).
    ``s_axis_tlast`` is accepted and ignored (frames are counted, not marked).
    """

    def __new__(cls, accelerator: Accelerator, *, in_width: int | None = None,
                out_width: int | None = None) -> "AxiStreamTop":
        # the arguments are checked before the design exists: a refused configuration leaves no unused design
        _top_widths(accelerator, in_width, out_width)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, accelerator: Accelerator, *, in_width: int | None = None, out_width: int | None = None):
        plan = accelerator.plan
        self.accelerator = accelerator
        self.in_channels = plan.in_channels
        self.out_lanes = plan.out_lanes
        self.in_width, self.out_width = _top_widths(accelerator, in_width, out_width)
        c, h, w = plan.out_shape
        #: output beats per frame; m_axis_tlast is high on the last of them
        self.out_beats_per_frame = c * h * w // self.out_lanes
        _, ih, iw = plan.graph.input_shape
        #: input beats (pixels) per frame
        self.in_beats_per_frame = ih * iw
        super().__init__({
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tdata": In(self.in_width),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.out_width),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # The sync domain of every layer runs on aclk; AXI resets are active low.
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.aclk), sync.rst.eq(~self.aresetn)]

        m.submodules.accel = acc = self.accelerator
        m.d.comb += [
            acc.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(acc.i.ready),
            acc.i.payload.eq(self.s_axis_tdata[:8 * self.in_channels]),
            self.m_axis_tvalid.eq(acc.o.valid),
            acc.o.ready.eq(self.m_axis_tready),
            self.m_axis_tdata.eq(acc.o.payload.as_value()),   # zero-extended to out_width
        ]
        beat = Signal(range(self.out_beats_per_frame), name="out_beat")
        last = beat == self.out_beats_per_frame - 1
        m.d.comb += self.m_axis_tlast.eq(last)
        with m.If(acc.o.valid & self.m_axis_tready):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
        return m


def emit_verilog(top: AxiStreamTop, path: str | PathLike, name: str = "mixq_accel", platform=None) -> Path:
    """Write ``top`` as a Verilog module called ``name`` to ``path`` (its ports: :data:`PORT_NAMES`).

    ``platform``: the target the design is elaborated for; an UltraScale(+) platform (the board's) makes
    every packed core a DSP48E2 primitive instance (:mod:`mixq_hw.packing.dsp48e2`), ``None`` the
    behavioural model that the simulators run."""
    _check_top(top, name)
    return _write_text(path, hdl_text.convert(top, name, platform))


def emit_verilog_with_simulation(top: AxiStreamTop, path: str | PathLike, name: str = "mixq_accel",
                                 platform=None) -> tuple[Path, str]:
    """:func:`emit_verilog` (the same file, byte for byte), plus the simulation text of the same elaboration
    (:func:`mixq_hw.hdl_text.convert_with_simulation`: module ``name`` and its submodules, DSP48E2 primitive
    instances left for a model of the primitive), at the cost of one elaboration."""
    _check_top(top, name)
    text, simulation = hdl_text.convert_with_simulation(top, name, platform)
    return _write_text(path, text), simulation


def emit_verilog_with_stages(top: AxiStreamTop, path: str | PathLike, name: str = "mixq_accel",
                             platform=None) -> tuple[Path, str, dict]:
    """:func:`emit_verilog_with_simulation` (the same two texts), plus where each pipeline stage's ports went
    in them (:func:`mixq_hw.stage_ports.convert_with_stages`: stage submodule name -> StageModule, or the
    StagePortsError saying why its ports cannot be mapped), at the cost of one elaboration."""
    from .stage_ports import convert_with_stages

    _check_top(top, name)
    rtlil_text, stages = convert_with_stages(top, name, platform, ("accel",))
    text, simulation = hdl_text.texts_from_rtlil(rtlil_text, name)
    return _write_text(path, text), simulation, stages


def _check_top(top: AxiStreamTop, name: str) -> None:
    if not isinstance(top, AxiStreamTop):
        raise ValueError(f"emit_verilog writes an AxiStreamTop, got {type(top).__name__}")
    if not name.isidentifier():
        raise ValueError(f"Verilog module name {name!r} is not an identifier")


def _write_text(path: str | PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
