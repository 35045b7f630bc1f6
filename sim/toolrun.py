"""Running the compilers of the compiled backends: how many at a time, and what each one cost.

Both :mod:`sim.verilator` and :mod:`sim.cxxrtl` build a model from several compiler
processes; :func:`compiler_jobs` says how many run at once (``$MIXQ_CXX_JOBS`` or the
number of CPUs) and :func:`run_counted` runs one, returning its own CPU time, so that two
builds side by side in one process (:func:`sim.verify.verify_accelerator`) each count
only their own commands.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

__all__ = ["compiler_jobs", "run_counted"]


def compiler_jobs(jobs: int | None = None) -> int:
    """Compiler processes a build runs at once: ``jobs`` if given, else ``$MIXQ_CXX_JOBS``, else the CPUs."""
    return max(1, jobs or int(os.environ.get("MIXQ_CXX_JOBS", "0")) or os.cpu_count() or 1)


def run_counted(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
                ) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``, its output captured as text; (the finished process, its CPU seconds, user and system,
    with the children it waited for: a compiler driver's)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, child.returncode, out.read(), err.read()), \
            usage.ru_utime + usage.ru_stime
