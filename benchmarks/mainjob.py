"""The README's main job as a new user runs it, timed from a cold compile cache.

    python benchmarks/mainjob.py [--verify 4] [--work build/mainjob]

Runs ``python -m mixq_hw.build --board ultra96 --verify N --json`` in a subprocess with an empty
``MIXQ_CACHE``, records the wall and CPU time, the time of every progress line the build prints, and the
report; writes ``benchmarks/results/mainjob.json`` (the README's results block reads it).
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", type=int, default=4, help="images to verify (default 4, as in the README)")
    parser.add_argument("--work", type=Path, default=None, help="build folder (default: a temporary one)")
    args = parser.parse_args(argv)
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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    print(f"main job: {wall:.0f} s wall, {result['cpu_seconds']:.0f} CPU-s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
