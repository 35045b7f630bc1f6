"""The README's main job as a new user runs it, timed from a cold compile cache.

    python benchmarks/mainjob.py [--verify 4] [--work build/mainjob]

Runs ``python -m mixq_hw.build --board ultra96 --verify N --json`` in a subprocess with an empty
``MIXQ_CACHE``, records the wall and CPU time, the time of every progress line the build prints, and the
report; writes ``benchmarks/results/mainjob.json`` (the README's results block reads it) and
``benchmarks/results/mainjob.md``, a table of where the time went, generated from the JSON
(``--table`` regenerates it from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
_STAGE = re.compile(r"^\[build\s+([0-9.]+)s\]\s*(.*)$")


def stage_seconds(lines: list[str], total: float) -> dict[str, float]:
    """Seconds between consecutive ``[build  t s] message`` lines, keyed by the message's first words."""
    marks = [(float(m.group(1)), m.group(2)) for m in map(_STAGE.match, lines) if m]
    out: dict[str, float] = {}
    for (t0, message), (t1, _) in zip(marks, [*marks[1:], (total, "")]):
        key = " ".join(message.split()[:2]) or "start"
        out[key] = out.get(key, 0.0) + max(0.0, t1 - t0)
    return out


def table(result: dict) -> str:
    """Where the main job's time went, as markdown: wall seconds per phase, CPU seconds where measured."""
    t = result["seconds"]
    ver = result["report"].get("verify", {})
    layers, whole = ver.get("layers", {}), ver.get("whole", {})
    build = whole.get("build", {})
    folding = t.get("trying target", 0) + sum(v for k, v in t.items() if k.startswith(("layer ", "T=", "chose")))
    rows = [("total", f"{t['total']:.0f}", f"{result['cpu_seconds']:.0f} (process tree)"),
            ("folding search", f"{folding:.0f}", ""),
            ("elaborating and emitting the build's Verilog", f"{t.get('elaborating the', 0):.0f}", ""),
            ("verification", f"{t.get('verifying ' + str(ver.get('images', '')), 0):.0f}", ""),
            (f"- layer by layer: {len(layers.get('stages', []))} stages, {layers.get('designs', 0)} designs, "
             f"{ver.get('backend', '?')}", f"{layers.get('seconds', 0):.0f}",
             "(their runs: the stage bank compiled beside the whole design)" if ver.get("one_build") else
             "(one build of all stages, beside the build's elaboration and the whole design)"
             if layers.get("designs") == 1 else
             f"{sum(s.get('seconds', 0) for s in layers.get('stages', [])):.0f} (sum of the stages' wall times)"),
            ("- whole design: elaborating and writing the simulation Verilog"
             + (" (the build's own elaboration, reused)" if build.get("verilog_seconds", 1) < 0.5 else ""),
             f"{build.get('verilog_seconds', 0):.0f}", ""),
            (f"- whole design: verilate ({build.get('verilog_bytes', 0) / 1e6:.1f} MB of Verilog) and "
             f"{Path(build.get('cxx', 'g++').split(':')[0]).name} {build.get('cflags', '')}"
             + (f" on {build.get('jobs', 1)} of the cores (the stage bank compiles beside it)"
                if ver.get("one_build") else ""),
             f"{build.get('verilate_seconds', 0) + build.get('cxx_seconds', 0):.0f}",
             f"{build.get('build_cpu_seconds', 0):.0f}"),
            (f"- whole design: {whole.get('cycles_total', 0):,} cycles at {whole.get('cycles_per_second', 0):,.0f}"
             " cycles/s", f"{whole.get('sim_seconds', 0):.1f}", f"{whole.get('sim_cpu_seconds', 0):.1f}")]
    load = result["machine"].get("load_average_at_start", [0])[0]
    lines = [f"Main job `{result['command']}`, cold compile cache, {result['machine'].get('cpus', '?')} cores, "
             f"load {load:.1f} at start, {result['machine'].get('date', '')[:10]}.", "",
             "| phase | wall s | CPU s |", "|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in rows]) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", type=int, default=4, help="images to verify (default 4, as in the README)")
    parser.add_argument("--work", type=Path, default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--table", action="store_true", help="only regenerate mainjob.md from mainjob.json")
    args = parser.parse_args(argv)
    if args.table:
        _write(RESULTS / "mainjob.md", table(json.loads((RESULTS / "mainjob.json").read_text())))
        return 0
    context = machine()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as scratch:
        out = args.work or Path(scratch) / "vggtiny_digits"
        env = {**os.environ, "MIXQ_CACHE": cache}
        command = [sys.executable, "-m", "mixq_hw.build", "--board", "ultra96", "--verify", str(args.verify),
                   "--out", str(out), "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        print(f"error: the main job failed with exit code {proc.returncode}", file=sys.stderr)
        return 1
    lines = proc.stderr.splitlines()
    result = {"command": "python -m mixq_hw.build --board ultra96 --verify " + str(args.verify),
              "machine": context, "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
              "seconds": {"total": wall, **stage_seconds(lines, wall)}, "log": lines,
              "report": json.loads(proc.stdout)}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "mainjob.json"
    _write(path, json.dumps(result, indent=2) + "\n")
    _write(RESULTS / "mainjob.md", table(result))
    print(f"main job: {wall:.0f} s wall, {result['cpu_seconds']:.0f} CPU-s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
