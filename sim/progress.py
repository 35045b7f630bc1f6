"""Progress of simulation work: bars with an ETA for compiles, simulated cycles and layer-by-layer stages.

Built on :mod:`mixq_hw.progress` (tqdm on stderr; plain lines off a terminal).  A :class:`LiveBar` is
refreshed by a thread, so its elapsed time and ETA stay current while the work it watches reports
nothing (a compiler run, a simulation in a child process): off a terminal it prints a line every
:data:`~mixq_hw.progress.PLAIN_EVERY` seconds, so no log has a long silent stretch.

A compile has no count of its own: its bar counts seconds against an estimate from the design's size
(:func:`compile_estimate`), set once the size is known.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from tqdm import tqdm

from mixq_hw.progress import PLAIN_EVERY, TICK_EVERY, bar, is_interactive, line

__all__ = ["LiveBar", "COMPILE_SECONDS", "compile_estimate", "compile_bar"]

#: Compile seconds ~ fixed + per_kib * KiB, by backend (the KiB of Verilog for Verilator, of generated C++
#: for CXXRTL), from measured builds on the 2-core machine (benchmarks/results/):
#: verilator (clang++ -Os, the `opt; opt_clean -purge` text; verilated + compiled, 2026-12-06): 3,845 KiB in
#: 38.2 s, 4,541 KiB in 35.7 s, 5,177 KiB in 45.1 s (fullsize/ultranet_bjut, _bypass, _mixq.json) and 6,336
#: KiB in 60.5 s (mainjob.json); with g++ -O1 builds take about a third longer; cxxrtl: 4,035 KiB of C++
#: through g++ in 79.9 s (verilator.json).
COMPILE_SECONDS = {"verilator": (8.0, 0.0082), "cxxrtl": (5.0, 0.0198)}


def compile_estimate(backend: str, size_bytes: int) -> float:
    """Expected seconds to compile a design of ``size_bytes`` on ``backend`` (see :data:`COMPILE_SECONDS`)."""
    fixed, per_kib = COMPILE_SECONDS[backend]
    return fixed + per_kib * size_bytes / 1024


class LiveBar:
    """A progress bar (``with LiveBar(...) as b``) that a thread refreshes while the body runs.

    ``poll()`` (optional) returns the current count, read on every refresh; ``postfix()`` a short status
    text.  ``set(n)`` and ``set_total(t)`` may be called from the body too.  Totals are estimates: a count
    past the total stretches it, and a body that ends normally ends the bar at 100 %.
    """

    def __init__(self, desc: str, *, total: float | None = None, unit: str = "it", quiet: bool = False,
                 poll: Callable[[], float] | None = None, postfix: Callable[[], str] | None = None,
                 unit_scale: bool = False, every: float | None = None, bar_format: str | None = None) -> None:
        self.desc, self.total, self.unit, self.quiet = desc, total, unit, quiet
        self.bar_format = bar_format   # tqdm's, once a total is known (None: tqdm's default)
        self.poll, self.postfix, self.unit_scale = poll, postfix, unit_scale
        self.every = every if every is not None else (TICK_EVERY if is_interactive() else PLAIN_EVERY)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.bar: tqdm | None = None           # made by __enter__
        self.started = time.perf_counter()

    def __enter__(self) -> "LiveBar":
        self.started = time.perf_counter()
        self.bar = bar(total=self.total, desc=self.desc, unit=self.unit, quiet=self.quiet,
                       unit_scale=self.unit_scale, bar_format=self.bar_format if self.total is not None
                       or self.poll is None else "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]")
        if not self.quiet:
            self.thread = threading.Thread(target=self._run, name="mixq-sim-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        if self.poll is not None and not self.quiet:
            self.set(self.poll())
        assert self.bar is not None, "__exit__ follows __enter__, which makes the bar"
        with self.lock:
            if kind is None and self.bar.total is not None:   # finished: the count reached is the whole
                self.bar.total = self.bar.n = self.bar.n or 0.1
            if self.postfix is not None and not self.quiet:
                self.bar.set_postfix_str(self.postfix(), refresh=False)
        self.bar.close()                                       # draws the final state

    @property
    def elapsed(self) -> float:
        """Seconds since the bar started."""
        return time.perf_counter() - self.started

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self.refresh()

    def set(self, n: float) -> None:
        """Move the bar to ``n``; past the total (an estimate that was low) the total grows by a quarter."""
        assert self.bar is not None, "set() is for the with body (and refresh), after __enter__"
        with self.lock:
            if self.bar.total is not None and n > self.bar.total:
                self.bar.total = int(n * 1.25) + 1
            self.bar.n = n

    def set_total(self, total: float) -> None:
        """A new total (an estimate, once known); the ETA follows from it."""
        assert self.bar is not None, "set_total() is for the with body, after __enter__"
        with self.lock:
            self.bar.total = max(total, self.bar.n)
            self.bar.bar_format = self.bar_format

    def write(self, text: str) -> None:
        """Print one line above the bar (nothing when quiet)."""
        if self.quiet:
            return
        if is_interactive():
            assert self.bar is not None, "write() is for the with body, after __enter__"
            with self.lock:
                self.bar.write(text, file=sys.stderr)
        else:
            line(text)

    def refresh(self) -> None:
        """Read ``poll``/``postfix`` and redraw (a plain line off a terminal)."""
        if self.bar is None or self.quiet:
            return
        if self.poll is not None:
            self.set(self.poll())
        with self.lock:
            if self.postfix is not None:
                self.bar.set_postfix_str(self.postfix(), refresh=False)
            self.bar.refresh()


def compile_bar(backend: str, *, quiet: bool = False) -> LiveBar:
    """A bar of a ``backend`` compile counting seconds; call ``estimate(size_bytes)`` once the size is known."""
    live = LiveBar(f"[sim {backend}] compile", unit="s", quiet=quiet,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f} of ~{total:.0f} s [ETA {remaining}]")
    live.poll = lambda: round(live.elapsed, 1)
    return live
