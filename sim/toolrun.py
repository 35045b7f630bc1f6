"""Running the compilers of the compiled backends: how many at a time, and what each one cost.

Both :mod:`sim.verilator` and :mod:`sim.cxxrtl` build a model from several compiler
processes; :func:`compiler_jobs` says how many run at once (``$MIXQ_CXX_JOBS`` or the
number of CPUs) and :func:`run_counted` runs one, returning its own CPU time, so that two
builds side by side in one process (:func:`sim.verify.verify_accelerator`) each count
only their own commands.  :func:`host_march` names the instruction set a model is compiled
for on this machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

__all__ = ["compiler_jobs", "run_counted", "host_march", "X86_64_V3"]

#: The CPU features of the x86-64-v3 level, its v2 features included, as /proc/cpuinfo names them ("abm" is
#: LZCNT).
X86_64_V3 = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
                       "cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})


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


@lru_cache(maxsize=8)
def host_march(cxx: str, cpuinfo: str | None = None) -> str:
    """``-march=x86-64-v3`` if this machine's CPU has every feature of :data:`X86_64_V3` (Linux on x86-64;
    ``cpuinfo``: the text of /proc/cpuinfo, read if None) and the compiler ``cxx`` accepts the option, else
    ``""``: the flag a compiled model runs fastest with here (AVX2 and BMI2 for the wide and sign-extended
    words Verilator's code moves every cycle).  A named level, not ``-march=native``, so that the cache key
    says what a program needs."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return ""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return ""
    flags = next((line.partition(":")[2].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if not X86_64_V3 <= set(flags):
        return ""
    try:
        probe = subprocess.run([cxx, "-march=x86-64-v3", "-x", "c++", "-fsyntax-only", os.devnull],
                               capture_output=True, check=False)
    except OSError:
        return ""
    return "-march=x86-64-v3" if probe.returncode == 0 else ""
