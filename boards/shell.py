"""The shell: the PL logic a board's block design adds around the accelerator, reserved out of the budget.

The Ultra96-V2 block design (``boards/vivado/zynqmp_axis_dma.tcl``) puts into the PL, besides the
accelerator: one AXI DMA (direct-register mode, no scatter-gather, MM2S and S2MM, memory maps of 128
bits or the stream's width), one AXI SmartConnect (the DMA's two masters onto the 128-bit HP0 port),
one AXI Interconnect (the PS's HPM0 port onto the DMA's 32-bit AXI4-Lite registers: protocol and
width conversion) and the processor system resets.  The PS itself is hard silicon and takes no PL.

The figures below are **estimates**, not measurements.  AMD publishes these IPs' utilisation per
configuration on each product guide's "Performance and Resource Use" page (PG021 AXI DMA, PG247
SmartConnect, PG059 AXI Interconnect, PG164 Processor System Reset), and PG059 states its figures
come from post-synthesis reports and that UltraScale results are similar to 7-series ones.  The
values here are rounded up for the configuration above; ``docs/references.md`` says where each comes
from.  When a Vivado run of the design exists, ``python -m mixq_hw.report --vivado DIR`` puts
Vivado's own utilisation (shell included) next to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import Budget

__all__ = ["ShellPart", "ZYNQMP_AXIS_DMA_SHELL", "shell_total"]


@dataclass(frozen=True)
class ShellPart:
    """One IP of the shell and its estimated PL resources."""

    name: str
    what: str
    dsp: int
    lut: int
    ff: int
    bram36: float
    source: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "what": self.what, "dsp": self.dsp, "lut": self.lut, "ff": self.ff,
                "bram36": self.bram36, "source": self.source}


#: The IPs of ``zynqmp_axis_dma.tcl`` around the accelerator (estimates; see the module docstring).
ZYNQMP_AXIS_DMA_SHELL: tuple[ShellPart, ...] = (
    ShellPart("dma", "AXI DMA 7.1, direct register mode, MM2S + S2MM, 128-bit memory maps, burst 64, no DRE",
              dsp=0, lut=2_200, ff=3_400, bram36=3.0,
              source="PG021 (Performance and Resource Use); estimate rounded up for 128-bit memory maps"),
    ShellPart("axi_smc", "AXI SmartConnect 1.0, 2 slave (DMA MM2S read, S2MM write) x 1 master (HP0, 128-bit)",
              dsp=0, lut=1_600, ff=2_600, bram36=0.0,
              source="PG247 (Performance and Resource Use); estimate"),
    ShellPart("ps_axi_periph", "AXI Interconnect 2.1, HPM0 (128-bit AXI4) to the DMA's 32-bit AXI4-Lite",
              dsp=0, lut=450, ff=650, bram36=0.0,
              source="PG059 (protocol and data-width converter tables); estimate"),
    ShellPart("rst", "Processor System Reset 5.0 (two: the accelerator's and the interconnect's)",
              dsp=0, lut=50, ff=100, bram36=0.0,
              source="PG164 (Performance and Resource Use); estimate"),
)


def shell_total(parts: tuple[ShellPart, ...]) -> Budget:
    """The sum of ``parts`` as a Budget (the reserve the folding leaves free)."""
    return Budget(dsp=sum(p.dsp for p in parts), lut=sum(p.lut for p in parts), ff=sum(p.ff for p in parts),
                  bram36=sum(p.bram36 for p in parts))
