"""Outputs that are either complete or absent: atomic files, staged folders swapped into place, a build lock.

A file is written to a temporary sibling (``.<name>.tmp-XXXX``) and renamed over the target only once
complete (:func:`atomic_write_bytes`, :func:`atomic_write_text`, and :func:`atomic_path` for files a
library writes, e.g. ``torch.save``).  A folder is built in a staging sibling (``.<name>.staging-XXXX``)
and exchanged with the target when complete (:func:`staged_dir`); on an error or an interrupt the staging
folder is removed and the previous folder is untouched.  :func:`folder_lock` holds ``fcntl.flock`` on
``<name>.lock`` next to a folder so that a second writer stops at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "staged_dir", "folder_lock",
           "LockedError", "exchange", "remove_stale_staging"]

_RENAME_EXCHANGE = 2


class LockedError(RuntimeError):
    """Another process holds the lock of an output folder."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed to ``path`` on success, removed on any error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.exists():  # keep the permissions of the file replaced
            with contextlib.suppress(OSError):
                shutil.copymode(path, tmp_path)
        else:
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename); returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False when unsupported."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike, *, drop: Iterable[str] = ()) -> Iterator[Path]:
    """A fresh staging folder next to ``final``; on success it replaces ``final`` in one step.

    Entries of the previous ``final`` that the new folder does not hold are carried over (a user's own
    files, e.g. a Vivado run), except the names in ``drop``: the previous build's own outputs, dropped
    with it.  On any error or interrupt the
    staging folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    carried: list[str] = []
    try:
        yield staging
        if not final.exists():
            os.chmod(staging, 0o777 & ~_umask())
            os.rename(staging, final)
            return
        drop = set(drop)
        for entry in sorted(final.iterdir()):
            if entry.name not in drop and not (staging / entry.name).exists():
                os.rename(entry, staging / entry.name)
                carried.append(entry.name)
        os.chmod(staging, final.stat().st_mode & 0o7777)
        if exchange(staging, final):
            carried.clear()
            shutil.rmtree(staging, ignore_errors=True)  # now the previous folder
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.rename(final, old / final.name)
            os.rename(staging, final)
            carried.clear()
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        for name in carried:  # give the user's own files back to the folder they came from
            with contextlib.suppress(OSError):
                os.rename(staging / name, final / name)
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_staging(final: str | os.PathLike) -> list[Path]:
    """Remove staging and swapped-out folders a killed writer left next to ``final`` (call it only while
    holding :func:`folder_lock` of ``final``); returns what was removed."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    stale = [p for p in final.parent.iterdir()
             if p.name.startswith((f".{final.name}.staging-", f".{final.name}.old-")) and p.is_dir()
             and not p.is_symlink()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``<folder>.lock`` (created if needed); LockedError at once if held."""
    folder = Path(folder)
    lock = folder.with_name(folder.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
            raise LockedError(f"{folder}: another build is writing this folder (pid {holder} holds "
                              f"{lock}); wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield lock
    finally:
        os.close(fd)
