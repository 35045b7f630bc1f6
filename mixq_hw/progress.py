"""Progress on stderr for long stages: counted bars with an ETA, and an elapsed-time ticker for uncounted work.

One helper for every mixq command, built on tqdm:

- :func:`bar` wraps a counted loop (epochs, batches, cycles against an expected
  total) in a bar with rate and ETA;
- :func:`ticker` keeps a line alive during a stretch that has no count (elaborating
  a design, emitting Verilog, a compiler run) by printing the elapsed time;
- :func:`line` prints one progress line (and clears a ticker's line first).

Everything goes to stderr and nothing is printed when ``quiet``.  When stderr is
not a terminal (CI logs, pipes) a bar prints plain lines at most every
``PLAIN_EVERY`` seconds instead of redrawing, and a ticker prints one line per
``PLAIN_EVERY`` seconds, so a log never has a silent stretch longer than that.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

__all__ = ["PLAIN_EVERY", "TICK_EVERY", "is_interactive", "bar", "ticker", "line"]

T = TypeVar("T")

#: Seconds between plain progress lines when stderr is not a terminal.
PLAIN_EVERY = 5.0
#: Seconds between redraws of a ticker on a terminal.
TICK_EVERY = 0.5


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal, where bars redraw in place."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _State:
    """When the last line went out, and whether a ticker's line is drawn on the terminal."""

    lock = threading.Lock()
    last_line = time.perf_counter()
    ticker_drawn = False
    #: ticker processes running; each hears about every line (one byte on its stdin)
    children: list[subprocess.Popen[bytes]] = []


def _forget_tickers() -> None:
    """In a process forked from this one: close its copies of the tickers' stdin pipes and forget the tickers,
    so that each ticker sees end-of-file when the process that started it closes its own copy."""
    children, _State.children = _State.children, []
    _State.lock = threading.Lock()    # another thread may have held it at the fork
    for child in children:
        try:
            if child.stdin is not None:
                child.stdin.close()
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_tickers)


def line(text: str, *, quiet: bool = False) -> None:
    """Print ``text`` as one progress line on stderr (nothing when ``quiet``); a ticker stays quiet
    for :data:`PLAIN_EVERY` seconds after it."""
    if quiet:
        return
    with _State.lock:
        if _State.ticker_drawn or (_State.children and is_interactive()):
            sys.stderr.write("\r\x1b[K")
            _State.ticker_drawn = False
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        _State.last_line = time.perf_counter()
        for child in _State.children:
            try:
                assert child.stdin is not None      # every child starts with stdin=PIPE
                child.stdin.write(b"\n")
                child.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass


class _PlainLines:
    """A file for tqdm when stderr is not a terminal: each redraw becomes one whole line."""

    def write(self, text: str) -> None:
        for piece in text.replace("\r", "\n").split("\n"):
            if piece.strip():
                line(piece.rstrip())

    def flush(self) -> None:
        sys.stderr.flush()


def bar(iterable: Iterable[T] | None = None, *, total: float | None = None, desc: str = "",
        unit: str = "it", quiet: bool = False, leave: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar on stderr for a counted loop: iterate it, or call ``.update(n)`` with ``total`` given.

    On a terminal it redraws in place with rate and ETA; otherwise it prints a plain
    line at most every :data:`PLAIN_EVERY` seconds.  ``quiet`` disables it.
    """
    options: dict[str, Any] = {"file": sys.stderr, "disable": quiet, "leave": leave, "dynamic_ncols": True}
    if not is_interactive():
        options.update(file=_PlainLines(), mininterval=PLAIN_EVERY, maxinterval=PLAIN_EVERY, ncols=100,
                       ascii=True, dynamic_ncols=False)
    options.update(kwargs)
    return tqdm(iterable, total=total, desc=desc, unit=unit, **options)


#: The ticker process: prints ``message ... N s`` whenever ``every`` seconds pass with no byte on its stdin
#: (the parent sends one per progress line), or redraws ``message  N s`` on a terminal; stops at EOF.
_TICKER_CHILD = r"""
import os, select, sys, time
message, every, interactive = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
start = last = time.monotonic()
fd = sys.stdin.fileno()
while True:
    wait = 0.5 if interactive else max(0.0, last + every - time.monotonic())
    if select.select([fd], [], [], wait)[0]:
        if not os.read(fd, 4096):
            break
        last = time.monotonic()
        continue
    now = time.monotonic()
    sys.stderr.write(f"\r{message} {now - start:5.0f} s" if interactive else f"{message} ... {now - start:.0f} s\n")
    sys.stderr.flush()
    last = now
"""


def _stderr_fd() -> int | None:
    """The OS file descriptor behind sys.stderr, if it has one (not in some notebooks and test captures)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.contextmanager
def ticker(message: str, *, quiet: bool = False, every: float | None = None) -> Iterator[None]:
    """Show ``message`` with the elapsed seconds while the ``with`` body runs (work with no count).

    On a terminal ``message  N s`` is redrawn every :data:`TICK_EVERY` s; otherwise ``message ... N s``
    is printed whenever no progress line (:func:`line`) went out for ``every`` (default
    :data:`PLAIN_EVERY`) seconds.  A small child process does the printing where stderr is a file
    descriptor (POSIX), so a body that holds the interpreter (a long C call, a big garbage collection)
    cannot silence it; elsewhere a thread does.  At the end one line with the total time.  The body
    runs in the calling thread, so exceptions pass through.
    """
    if quiet:
        yield
        return
    interactive = is_interactive()
    every = every if every is not None else PLAIN_EVERY
    start = time.perf_counter()
    fd = _stderr_fd() if os.name == "posix" else None
    child: subprocess.Popen | None = None
    thread: threading.Thread | None = None
    stop = threading.Event()
    if fd is not None:
        sys.stderr.flush()
        child = subprocess.Popen([sys.executable, "-c", _TICKER_CHILD, message, str(every), str(int(interactive))],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=fd, close_fds=True)
        with _State.lock:
            _State.children.append(child)
    else:
        def run() -> None:
            while not stop.wait(TICK_EVERY if interactive else 0.25):
                now = time.perf_counter()
                with _State.lock:
                    if interactive:
                        sys.stderr.write(f"\r{message} {now - start:5.0f} s")
                        _State.ticker_drawn = True
                    elif now - _State.last_line >= every:
                        sys.stderr.write(f"{message} ... {now - start:.0f} s\n")
                        _State.last_line = now
                    else:
                        continue
                    sys.stderr.flush()

        thread = threading.Thread(target=run, name="mixq-ticker", daemon=True)
        thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        if child is not None:
            with _State.lock:
                _State.children.remove(child)
            assert child.stdin is not None
            child.stdin.close()          # EOF: the child stops
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        line(f"{message} {'done' if ok else 'stopped'} in {time.perf_counter() - start:.1f} s")
