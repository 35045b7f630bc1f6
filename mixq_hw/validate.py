"""Checks every command runs on its options and inputs before it does any work or touches any output.

One place for the limits (:data:`LIMITS`) and for the checks the commands share: numbers in range and
finite, output files and folders that can be written, input files that exist and are files, graph
archives whose uncompressed size is bounded (read from the zip headers, before anything is inflated),
shapes within bounds, and names safe to write into Verilog, C++, Tcl or Python.  Every failure is an
:class:`InputError` whose message names the option or file and the value; :func:`run_cli` turns it
(and the other user-error types a command names) into ``error: ...`` on stderr and exit status 2
(130 after Ctrl-C, with no traceback).
"""

from __future__ import annotations

import math
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["InputError", "LIMITS", "UTILIZATION_RANGE", "EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "number", "integer", "output_file",
           "output_dir", "input_file", "npz_size", "shape", "identifier", "is_identifier", "run_cli", "unused_options"]

#: Exit status of every command for bad input, and after an interrupt (128 + SIGINT).
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

#: Sane limits, the same for every command.  ``graph_bytes``: total uncompressed size of a graph
#: archive's members; ``side``: input height and width; ``channels``: channels or features of any
#: layer; ``classes``: outputs of a checkpoint's model; ``image_bytes``: pixels a command allocates
#: for its images at once; ``name_chars``: length of a layer or graph name.
LIMITS = {
    "graph_bytes": 512 * 2**20,
    "side": 4096,
    "channels": 65_536,
    "classes": 65_536,
    "image_bytes": 2**30,
    "name_chars": 128,
}

#: ``--utilization``: the share of each PL resource a design (shell included) may use, lowest and highest.
UTILIZATION_RANGE = (0.1, 1.0)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\Z")


class InputError(ValueError):
    """Bad input: the message names the option or file, and the value."""


def number(value: float | int | None, option: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, allow_none: bool = False) -> float | int | None:
    """``value`` if it is a finite number within ``lo``..``hi`` (``lo`` excluded with ``lo_open``)."""
    if value is None:
        if allow_none:
            return None
        raise InputError(f"{option} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{option} {value!r}: expected a finite number")
    shown = str(value) if isinstance(value, int) else f"{value:g}"
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise InputError(f"{option} {shown}: must be {'above' if lo_open else 'at least'} {lo:g}"
                         + (f" (and at most {hi:g})" if hi is not None else ""))
    if hi is not None and value > hi:
        raise InputError(f"{option} {shown}: must be at most {hi:g}")
    return value


def integer(value: int | None, option: str, *, lo: int | None = None, hi: int | None = None,
            allow_none: bool = False) -> int | None:
    """``value`` if it is an integer within ``lo``..``hi``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{option} {value!r}: expected an integer")
    number(value, option, lo=lo, hi=hi)
    return value


def _writable_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` is a folder this process can create entries in."""
    parent = path.absolute().parent
    while not parent.exists():
        if parent.is_symlink():
            raise InputError(f"{option} {path}: {parent} is a dangling symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: cannot write in {parent} (permission denied)")


def _path(path: str | os.PathLike, option: str) -> Path:
    text = os.fspath(path)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"{option} {text!r}: not a usable path (empty, or control characters such as a "
                         f"newline or NUL)")
    return Path(text)


def output_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a file to (re)write: not a folder, its folder exists or can be made, and is writable."""
    path = _path(path, option)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
    if path.name in ("", ".", ".."):
        raise InputError(f"{option} {path}: not a file name")
    if path.exists() and not os.access(path.parent if str(path.parent) else ".", os.W_OK):
        raise InputError(f"{option} {path}: cannot replace it (folder {path.parent} is not writable)")
    _writable_parent(path, option)
    return path


def output_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder to (re)create: not an existing file, and its parent writable."""
    path = _path(path, option)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is a file, not a folder")
    if path.absolute().name in ("", ".", ".."):
        raise InputError(f"{option} {path}: give a folder name (not '.', '..' or '/')")
    _writable_parent(path, option)
    return path


def input_file(path: str | os.PathLike, option: str, *, suffixes: Sequence[str] = ()) -> Path:
    """``path`` if it is an existing, non-empty, readable file (with one of ``suffixes`` when given)."""
    path = _path(path, option)
    if not path.exists():
        raise InputError(f"{option} {path}: no such file")
    if not path.is_file():
        raise InputError(f"{option} {path}: is a folder, not a file")
    if suffixes and path.suffix not in suffixes:
        raise InputError(f"{option} {path}: expected a {' or '.join(suffixes)} file")
    if path.stat().st_size == 0:
        raise InputError(f"{option} {path}: empty file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{option} {path}: cannot read it (permission denied)")
    return path


def npz_size(path: str | os.PathLike, limit: int | None = None) -> int:
    """Total uncompressed size of the members of zip archive ``path``, from its headers, refused above
    ``limit`` (default ``LIMITS["graph_bytes"]``) before anything is decompressed."""
    limit = LIMITS["graph_bytes"] if limit is None else limit
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"graph file {os.fspath(path)!r}: not a zip archive (.npz) ({exc})") from None
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise InputError(f"graph file {os.fspath(path)!r}: its {len(infos)} members inflate to "
                         f"{total:,} bytes, above the {limit:,}-byte limit (refused before decompression)")
    return total


def shape(values: Sequence[int], what: str) -> tuple[int, int, int]:
    """(C, H, W) within the limits: C up to ``channels``, H and W up to ``side``."""
    vals = tuple(values)
    if len(vals) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in vals):
        raise InputError(f"{what} {vals!r}: expected three positive integers (C, H, W)")
    c, h, w = vals
    if c > LIMITS["channels"] or h > LIMITS["side"] or w > LIMITS["side"]:
        raise InputError(f"{what} {c}x{h}x{w}: above the limits (channels up to {LIMITS['channels']:,}, "
                         f"height and width up to {LIMITS['side']:,})")
    return c, h, w


def is_identifier(name: object) -> bool:
    """True for ASCII names made of ``[A-Za-z0-9_]`` parts joined by dots, starting with a letter or ``_``."""
    return isinstance(name, str) and len(name) <= LIMITS["name_chars"] and bool(_IDENTIFIER.match(name))


def identifier(name: object, what: str) -> str:
    """``name`` if :func:`is_identifier`; else an InputError naming ``what`` and the value."""
    if not is_identifier(name):
        raise InputError(f"{what} {name!r} is not a safe name: use ASCII letters, digits and '_' in parts "
                         f"joined by '.', starting with a letter or '_', at most {LIMITS['name_chars']} "
                         f"characters")
    return name  # type: ignore[return-value]


def unused_options(given: dict[str, bool], why: str) -> None:
    """Refuse options that were given (``{"--k": True}``) but do not apply; ``why`` says to what."""
    named = [option for option, present in given.items() if present]
    if named:
        raise InputError(f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply {why}")


def run_cli(body: Callable[[], int], errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's ``body``; InputError and ``errors`` become ``error: ...`` on stderr and status 2."""
    caught: tuple[type[BaseException], ...] = (InputError, *errors)
    try:
        return body()
    except caught as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted; earlier outputs are unchanged", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
