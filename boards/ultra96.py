"""Avnet Ultra96-V2: Zynq UltraScale+ ZU3EG (xczu3eg-sbva484-1-i).

The PL has 360 DSP48E2, 70,560 LUTs, 141,120 flip-flops and 216 BRAM36 (no
UltraRAM); its clocks come from the processing system (``pl_clk0..3``), not
from an oscillator of its own, so Amaranth sees the part only for elaboration
(:class:`Ultra96V2Part`) and the bitstream comes from the Vivado block design
that :func:`write_project` writes.  The two PL-driven LEDs are the
radio status LEDs (RADIO_LED0/1 on pins A9/B9, bank 26 at 1.8 V); the four
"user" LEDs are on PS MIO and not reachable from the PL.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.build import Attrs
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import LEDResources

from . import Board, Budget, tcl_word, template_dir
from .shell import ZYNQMP_AXIS_DMA_SHELL, shell_total

__all__ = ["Ultra96V2Part", "Ultra96V2Platform", "BOARD", "write_project", "dma_memory_widths"]


class Ultra96V2Part(XilinxPlatform):
    """The Ultra96-V2's PL as an Amaranth target for *elaboration*: the part (xczu3eg-sbva484-1-i) and its
    two PL LEDs, nothing more.

    Passing it to ``elaborate``/``emit_verilog`` makes the packed cores DSP48E2 primitive instances.  It is not
    a platform that ``build()`` can run: the PL has no oscillator (its clocks are the PS's ``pl_clk0..3``, set
    up by the block design in ``build_vivado.tcl``), and the design reaches the PS only through the AXI DMA of
    that block design, so Vivado's block-design flow, not Amaranth's, makes the bitstream.  ``build()`` raises
    a ValueError saying so.
    """

    device = "xczu3eg"
    package = "sbva484"
    speed = "1-i"
    default_clk = None
    resources = [
        *LEDResources(pins="A9 B9", attrs=Attrs(IOSTANDARD="LVCMOS18")),
    ]
    connectors: list = []

    def build(self, *args, **kwargs):
        raise ValueError("Ultra96V2Part describes the part for elaboration only: the Ultra96-V2 PL has no "
                         "clock of its own (pl_clk0 comes from the PS), so the bitstream comes from the Vivado "
                         "block design (python -m mixq_hw.build, then vivado -mode batch -source "
                         "build_vivado.tcl)")


#: The earlier name of :class:`Ultra96V2Part`.
Ultra96V2Platform = Ultra96V2Part

#: The versions the generated script was written for: Vivado 2022.1 builds the Avnet Ultra96-V2 PYNQ 3.0.1
#: image (github.com/Avnet/Ultra96-PYNQ), whose PS configuration the overlay runs under.
VIVADO_VERSION = "2022.1"
PYNQ_VERSION = "3.0.1"
BOARD_PART = "avnet.com:ultra96v2:part0:1.2"
#: The HP ports' data width as the PYNQ image configures them.
HP_PORT_BITS = 128
#: AXI DMA (PG021) memory-map data widths: 32..1024 bits; a stream may not be wider than its memory map.
DMA_MAX_MM_BITS = 1024


def dma_memory_widths(in_width: int, out_width: int) -> tuple[int, int]:
    """The AXI DMA's MM2S and S2MM memory-map data widths for these stream widths.

    Each is the HP port's 128 bits, or the stream's width when that is wider (the IP allows up to 1024; the
    SmartConnect converts down to the 128-bit HP port).  A stream wider than 1024 bits is a ValueError
    naming it."""
    for what, port, width in (("input", "s_axis", in_width), ("output", "m_axis", out_width)):
        if width > DMA_MAX_MM_BITS:
            raise ValueError(f"the accelerator's {what} stream ({port}) is {width} bits wide; the AXI DMA takes "
                             f"streams up to its widest memory map, {DMA_MAX_MM_BITS} bits (fold the "
                             f"{'first' if what == 'input' else 'last'} layer with fewer lanes)")
    return max(HP_PORT_BITS, in_width), max(HP_PORT_BITS, out_width)


def write_project(out_dir: Path, verilog: Path, top: str, clock_mhz: float, in_width: int,
                  out_width: int, *, part: str = "xczu3eg-sbva484-1-i") -> list[Path]:
    """Write the Vivado project script and constraints for the accelerator in ``verilog`` (inside ``out_dir``).

    The script builds a block design: Zynq UltraScale+ PS (HPM0 for control,
    HP0 for data), an AXI DMA whose MM2S stream feeds the accelerator's
    ``s_axis`` and whose S2MM stream takes ``m_axis``, the PL clock at
    ``clock_mhz``; then implementation, reports, a timing check, the bitstream,
    the ``.hwh`` that PYNQ's Overlay reads and the ``.xsa``.  Every path in it
    is relative to the script's own folder, so the folder can move.
    ``in_width``/``out_width`` are the AXI-Stream data widths in bits (powers
    of two, 8..1024, as the DMA requires).
    """
    for what, width in (("input", in_width), ("output", out_width)):
        if width < 8 or width > 1024 or width & (width - 1):
            raise ValueError(f"AXI DMA {what} stream width {width} must be a power of two in 8..1024")
    mm_in, mm_out = dma_memory_widths(in_width, out_width)
    if not 10 <= clock_mhz <= 400:
        raise ValueError(f"PL clock {clock_mhz} MHz outside 10..400 MHz")
    if not top.isidentifier():
        raise ValueError(f"top module name {top!r} is not an identifier")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        rel_verilog = Path(verilog).resolve().relative_to(out_dir.resolve())
    except ValueError:
        raise ValueError(f"{verilog}: the Verilog must be inside the build folder {out_dir}, so the "
                         "folder can move") from None
    xdc = out_dir / "mixq_ultra96.xdc"
    xdc.write_text(
        "# Ultra96-V2 constraints for the mixq accelerator.\n"
        "# The accelerator's clock is pl_clk0 of the PS, constrained by the block design itself;\n"
        "# no PL pins are used by the accelerator (data moves through the AXI DMA).\n"
        "set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]\n")
    body = (template_dir() / "zynqmp_axis_dma.tcl").read_text()
    verilog_parts = " ".join(tcl_word(p) for p in rel_verilog.parts)
    script = out_dir / "build_vivado.tcl"
    script.write_text(
        "# Generated by mixq: creates, implements and writes the bitstream of the Ultra96-V2 project.\n"
        f"# Written for Vivado {VIVADO_VERSION} and the Ultra96-V2 PYNQ {PYNQ_VERSION} image (board files\n"
        f"# {BOARD_PART}; without them the PS keeps its defaults and PYNQ's boot configuration applies).\n"
        "# Run from anywhere: vivado -mode batch -source build_vivado.tcl\n"
        "# Every path is relative to this script's folder, so the folder can be moved or copied.\n"
        "set mixq_out_dir [file dirname [file normalize [info script]]]\n"
        f"set mixq_part {tcl_word(part)}\n"
        f"set mixq_top {tcl_word(top)}\n"
        f"set mixq_verilog [list [file join $mixq_out_dir {verilog_parts}]]\n"
        f"set mixq_xdc [file join $mixq_out_dir {tcl_word(xdc.name)}]\n"
        f"set mixq_clock_mhz {float(clock_mhz):g}\n"
        f"set mixq_in_width {int(in_width)}\n"
        f"set mixq_out_width {int(out_width)}\n"
        f"set mixq_mm_in_width {mm_in}\n"
        f"set mixq_mm_out_width {mm_out}\n"
        f"set mixq_board_part {tcl_word(BOARD_PART)}\n"
        + body)
    return [script, xdc]


BOARD = Board(
    name="ultra96",
    description="Avnet Ultra96-V2 (Zynq UltraScale+ ZU3EG, xczu3eg-sbva484-1-i)",
    part="xczu3eg-sbva484-1-i",
    budget=Budget(dsp=360, lut=70_560, ff=141_120, bram36=216),
    default_clock_mhz=300.0,
    # 300 MHz is the demonstrated ceiling for fully pipelined UltraNet/SkyNet designs on
    # this part (DAC-SDC entries, see shared/REFERENCE.md); the DSP48E2 alone reaches 645 MHz.
    max_clock_mhz=333.0,
    platform=Ultra96V2Part,
    write_project=write_project,
    check_streams=dma_memory_widths,
    vivado_version=VIVADO_VERSION,
    pynq_image=PYNQ_VERSION,
    memory_port_bits=HP_PORT_BITS,
    shell=shell_total(ZYNQMP_AXIS_DMA_SHELL),
    shell_parts=ZYNQMP_AXIS_DMA_SHELL,
    notes=("PL clocks come from the PS (pl_clk0); PYNQ sets the frequency from the .hwh.",
           "Ultra96 v1 boards use the -1-e grade of the same die."),
)
