"""Board support: one module per board, each a platform, a resource budget and a Vivado flow.

``get_board(name)`` is the only lookup the rest of mixq uses; adding a board is
one new module plus one line in ``_KNOWN``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mixq_hw.version import __version__

__all__ = ["__version__", "Budget", "Board", "get_board", "board_names", "tcl_word"]


@dataclass(frozen=True)
class Budget:
    """The programmable-logic resources a design may use (the folding budget)."""

    dsp: int
    lut: int
    ff: int
    bram36: float

    def to_dict(self) -> dict[str, float]:
        return {"dsp": self.dsp, "lut": self.lut, "ff": self.ff, "bram36": self.bram36}


@dataclass(frozen=True)
class Board:
    """What mixq needs to know of a board: part, budget, clocks, and how to make its project."""

    name: str
    description: str
    part: str
    budget: Budget
    default_clock_mhz: float
    max_clock_mhz: float
    #: ``platform()`` returns an Amaranth platform instance for the board
    platform: Callable[[], object]
    #: ``write_project(out_dir, verilog_path, top, clock_mhz, in_width, out_width) -> list[Path]``
    write_project: Callable[..., list[Path]]
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: ``check_streams(in_width, out_width) -> (mm2s, s2mm)``: the DMA's memory-map widths for these stream
    #: widths; a ValueError naming the stream when the board's DMA cannot carry it
    check_streams: Callable[[int, int], object] | None = None
    #: the Vivado release the board's script was written for, and the PYNQ image the driver runs on
    vivado_version: str = ""
    pynq_image: str = ""
    #: data width in bits of the PS port the DMA reaches memory through (its bandwidth bound)
    memory_port_bits: int = 0
    #: the PL resources the block design's shell (DMA, interconnect, resets) takes: reserved by the folding
    shell: Budget = Budget(dsp=0, lut=0, ff=0, bram36=0)
    #: the shell's parts (``boards.shell.ShellPart``), for the report
    shell_parts: tuple = ()


# board name -> module under boards/ that defines ``BOARD``
_KNOWN = {
    "ultra96": "ultra96",
}


def board_names() -> list[str]:
    """Names accepted by ``--board``."""
    return sorted(_KNOWN)


def get_board(name: str) -> Board:
    """The board called ``name``; a ValueError listing the known boards otherwise."""
    key = name.lower().replace("-", "").replace("_", "")
    for known, module in _KNOWN.items():
        if key in (known, known.replace("_", "")) or key == f"{known}v2":
            return importlib.import_module(f"boards.{module}").BOARD
    raise ValueError(f"unknown board {name!r}; known boards: {', '.join(board_names())}")


def tcl_word(value: object) -> str:
    """``value`` as one Tcl word that reads back verbatim: no substitution ($, [ ]) or word break can happen.

    Every character but letters, digits and ``_ . / : - +`` is backslash-escaped (a backslash before
    punctuation is always that character in Tcl); control characters have no safe escape here and are refused.
    """
    text = str(value)
    bad = [c for c in text if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ValueError(f"{text!r}: control character {bad[0]!r} cannot be written into a Tcl script")
    if not text:
        return "{}"
    return "".join(c if c.isascii() and (c.isalnum() or c in "_./:-+") else "\\" + c for c in text)


def template_dir() -> Path:
    """Folder of the Tcl and driver templates shared by the boards."""
    return Path(__file__).parent / "vivado"
