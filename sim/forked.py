"""One function run in a forked process beside the caller, its result (or exception) sent back.

:func:`start` forks (the child inherits the caller's objects, nothing is pickled on the way in), the child
asks Linux to kill it when its parent dies (a SIGKILLed build leaves nothing behind), runs the function and
sends what it returned or raised; :func:`result` waits for that and re-raises an exception, :func:`stop`
kills the child.  The layer-by-layer checks beside a build (:mod:`sim.verify`) and the second elaboration of a
big design (:func:`sim.board_text.emit_for_verification`) run this way.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Forked", "die_with_parent", "start", "result", "stop"]


@dataclass
class Forked:
    """A function running in a forked process: the process, the end of the pipe its result comes on, and
    what it does (for the message when it dies)."""

    process: Any
    receiver: Any
    what: str
    #: ``(result,)`` once :meth:`__call__` has it
    kept: tuple = ()

    def __call__(self) -> Any:
        """:func:`result` of this process, waited for once and kept."""
        if not self.kept:
            self.kept = (result(self),)
        return self.kept[0]


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed build leaves no child behind)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):   # not Linux: the parent's interrupt handler still stops the child
        return
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(1)


def _child(conn: Any, target: Callable[..., Any], args: tuple, kwargs: dict, parent: int) -> None:
    """In the forked process: ``target(*args, **kwargs)``, its result (or its exception) sent to ``conn``."""
    die_with_parent(parent)
    try:
        conn.send(("ok", target(*args, **kwargs)))
    except BaseException as exc:   # noqa: BLE001 - the parent re-raises it
        try:
            conn.send(("error", exc))
        except Exception:   # noqa: BLE001 - an exception that does not pickle, or a parent that stopped reading
            try:
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
            except Exception:   # noqa: BLE001 - nobody reads any more: just end
                pass
    finally:
        conn.close()


def start(target: Callable[..., Any], *args: Any, what: str, name: str = "mixq-forked",
          **kwargs: Any) -> Forked:
    """Run ``target(*args, **kwargs)`` in a forked process named ``name``; ``what`` says what it does."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, target, args, kwargs, os.getpid()), name=name)
    process.start()
    sender.close()
    return Forked(process, receiver, what)


def result(handle: Forked) -> Any:
    """What the process of ``handle`` returned (its exception re-raised); an interrupted wait ends it."""
    try:
        kind, value = handle.receiver.recv()
    except EOFError:
        handle.process.join()
        raise RuntimeError(f"{handle.what} died (exit code {handle.process.exitcode})") from None
    except BaseException:
        stop(handle)
        raise
    finally:
        handle.receiver.close()
    handle.process.join()
    if kind == "error":
        raise value
    return value


def stop(handle: Forked) -> None:
    """Kill the process of ``handle`` and wait for it."""
    handle.process.kill()
    handle.process.join()
    handle.receiver.close()
