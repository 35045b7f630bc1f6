"""Read Vivado's text reports (``report_utilization``, ``report_timing_summary``, ``report_power``).

Each parser takes the report's text and returns plain numbers; :func:`read_vivado_dir`
finds the three files ``build_vivado.tcl`` writes (``vivado_utilization.txt``,
``vivado_timing_summary.txt``, ``vivado_power.txt``) and returns what it could
read.  A report that is present but unreadable is a :class:`VivadoReportError`
naming the file and what is missing.
"""

from __future__ import annotations

import re
from typing import Any
from pathlib import Path

__all__ = ["VivadoReportError", "parse_utilization", "parse_timing_summary", "parse_power", "read_vivado_dir",
           "REPORT_FILES"]

#: what build_vivado.tcl writes -> the key it gets in the result
REPORT_FILES = {"utilization": "vivado_utilization.txt", "timing": "vivado_timing_summary.txt",
                "power": "vivado_power.txt"}

#: site types of report_utilization (UltraScale+) -> mixq's resource names
_SITES = {"CLB LUTs": "lut", "CLB Registers": "ff", "Block RAM Tile": "bram36", "DSPs": "dsp", "URAM": "uram"}


class VivadoReportError(ValueError):
    """A Vivado report that cannot be read; the message names the file and what is missing."""


def _number(text: str) -> float | None:
    text = text.strip().rstrip("*")
    try:
        return float(text)
    except ValueError:
        return None


def _table_rows(text: str):
    """(cells) of every ``| a | b |`` row, with the header row of its table."""
    header = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if not line.startswith("+"):
                header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if "Site Type" in cells:
            header = cells
            continue
        yield header, cells


def parse_utilization(text: str, name: str = "report_utilization") -> dict:
    """LUTs, flip-flops, BRAM36 tiles and DSPs used and available: ``{"used": {...}, "available": {...}}``."""
    used, available = {}, {}
    for header, cells in _table_rows(text):
        if header is None or len(cells) != len(header):
            continue
        key = _SITES.get(cells[0].rstrip("*").strip())
        if key is None or key in used:
            continue
        row = dict(zip(header, cells))
        value, cap = _number(row.get("Used", "")), _number(row.get("Available", ""))
        if value is None:
            continue
        used[key] = value
        if cap is not None:
            available[key] = cap
    missing = [k for k in ("lut", "ff", "bram36", "dsp") if k not in used]
    if missing:
        raise VivadoReportError(f"{name}: no {', '.join(missing)} row (expected report_utilization's "
                                f"'Site Type | Used | ... | Available | Util%' tables)")
    return {"used": used, "available": available}


def parse_timing_summary(text: str, name: str = "report_timing_summary") -> dict:
    """WNS/TNS/WHS/THS (ns), failing endpoints, the first clock's period, and the Fmax it implies."""
    lines = text.splitlines()
    values = None
    for i, line in enumerate(lines):
        if "WNS(ns)" in line and "WHS(ns)" in line:
            for later in lines[i + 1:i + 6]:
                fields = later.split()
                if fields and not set(later.strip()) <= {"-", " "}:
                    values = fields
                    break
            break
    if not values or len(values) < 8:
        raise VivadoReportError(f"{name}: no 'Design Timing Summary' row under the WNS(ns) TNS(ns) ... header")
    wns, tns, whs, ths = (_number(values[k]) for k in (0, 1, 4, 5))
    result: dict[str, Any] = {"wns_ns": wns, "tns_ns": tns, "tns_failing_endpoints": int(_number(values[2]) or 0),
              "whs_ns": whs, "ths_ns": ths, "ths_failing_endpoints": int(_number(values[6]) or 0)}
    clocks = {}
    for i, line in enumerate(lines):
        if line.strip().startswith("Clock") and "Period(ns)" in line and "Frequency(MHz)" in line:
            for later in lines[i + 2:]:
                m = re.match(r"\s*(\S+)\s+\{[^}]*\}\s+([\d.]+)\s+([\d.]+)", later)
                if not m:
                    break
                clocks[m.group(1)] = {"period_ns": float(m.group(2)), "mhz": float(m.group(3))}
            break
    result["clocks"] = clocks
    if clocks and wns is not None:
        period = next(iter(clocks.values()))["period_ns"]
        result["fmax_mhz"] = round(1000.0 / (period - wns), 1)
    result["met"] = (wns is None or wns >= 0) and (whs is None or whs >= 0)
    return result


def parse_power(text: str, name: str = "report_power") -> dict:
    """Total, dynamic and static on-chip power (W), junction temperature (C) and the confidence level."""
    fields = {"Total On-Chip Power (W)": "total_w", "Dynamic (W)": "dynamic_w", "Device Static (W)": "static_w",
              "Junction Temperature (C)": "junction_c", "Confidence Level": "confidence"}
    result: dict = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in fields and fields[cells[0]] not in result:
            key = fields[cells[0]]
            result[key] = cells[1] if key == "confidence" else _number(cells[1])
    if result.get("total_w") is None:
        raise VivadoReportError(f"{name}: no 'Total On-Chip Power (W)' row")
    return result


_PARSERS = {"utilization": parse_utilization, "timing": parse_timing_summary, "power": parse_power}


def read_vivado_dir(folder: Path) -> dict:
    """Every report of ``REPORT_FILES`` found in ``folder``, parsed; a VivadoReportError if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VivadoReportError(f"{folder}: no such folder")
    result = {}
    for key, filename in REPORT_FILES.items():
        path = folder / filename
        if path.exists():
            result[key] = _PARSERS[key](path.read_text(errors="replace"), str(path))
    if not result:
        raise VivadoReportError(f"{folder}: none of {', '.join(REPORT_FILES.values())} (run "
                                "vivado -mode batch -source build_vivado.tcl there first)")
    return result
