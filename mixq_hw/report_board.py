"""The report's board sections: the PL's fill with the shell, the timing estimate, the pipeline's fill latency.

Each function takes the report dict and returns markdown lines (empty when the report lacks the section),
so :func:`mixq_hw.report.markdown` stays one list of sections.
"""

from __future__ import annotations

__all__ = ["utilization_lines", "timing_lines"]

_NAMES = {"dsp": "DSP", "lut": "LUT", "ff": "FF", "bram36": "BRAM36"}


def utilization_lines(report: dict) -> list[str]:
    """The accelerator, the shell and their total against the device and the utilisation target."""
    fill = report.get("utilization_with_shell")
    if not fill:
        return []
    parts = report.get("shell", {}).get("parts", [])
    what = ", ".join(p["what"].split(",")[0] for p in parts) or "the shell"
    lines = ["", f"PL use with the shell ({what}; estimates): the folding aims at {100 * fill['target']:g} % of "
                 f"every resource, shell included; above {100 * fill['warn_above']:g} % is a warning.", "",
             "| resource | accelerator | shell | with the shell | device | % of the device |", "|---|---|---|---|---|---|"]
    for key, row in fill["resources"].items():
        share = f"{100 * row['share']:.1f}" if row["share"] is not None else "-"
        flag = " **(above the warning line)**" if row["share"] is not None and row["share"] > fill["warn_above"] else ""
        lines.append(f"| {_NAMES[key]} | {row['accelerator']:,g} | {row['shell']:,g} | {row['total']:,g} | "
                     f"{row['device']:,g} | {share}{flag} |")
    lines += ["", *(f"- warning: {w}" for w in fill["warnings"])] if fill["warnings"] else []
    return lines


def timing_lines(report: dict) -> list[str]:
    """The per-stage logic depth and the Fmax estimate (see :mod:`mixq_hw.timing`)."""
    timing = report.get("timing")
    if not timing:
        return []
    if timing.get("skipped"):
        return ["", f"Timing estimate: {timing['skipped']}"]
    lines = ["", f"## Timing estimate ({timing['speed_grade']} speed grade; an estimate, not Vivado's)", "",
             f"Fmax about **{timing['fmax_mhz']:g} MHz** (slowest stage `{timing['critical_stage']}`, "
             f"{timing['critical_levels']} logic levels); requested {timing['clock_mhz']:g} MHz: "
             + ("met." if timing["meets_clock"] else "**not met**: " + ", ".join(f"`{s}`" for s in timing["too_deep"])
                + " too deep.")
             + f" Model: {timing['model']}", "",
             "| stage | kind | logic levels | LUT / carry / mux levels | path estimate (ns) | Fmax (MHz) | limited by |",
             "|---|---|---|---|---|---|---|"]
    for row in timing["stages"]:
        lines.append(f"| {row['stage']} | {row['kind']} | {row['levels']} | {row['lut_levels']} / "
                     f"{row['carry_levels']} / {row['mux_levels']} | {row['delay_ns']:.2f} | {row['fmax_mhz']:g} | "
                     f"{row['limited_by']} |")
    return lines
