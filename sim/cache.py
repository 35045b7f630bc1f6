"""The compile cache of the compiled simulators (CXXRTL libraries, Verilator testbenches).

An entry is an artifact file plus a manifest next to it that records the
artifact's sha256 and size (and what building it cost).  Every fetch checks
the artifact against its manifest before handing it out; a missing, corrupt or
truncated entry is removed and rebuilt, so a damaged cache costs one rebuild,
never a crash.  Builds run in a temporary directory inside the cache (the same
file system) and are renamed into place; the manifest is written last, so a
manifest always describes a complete artifact.  Builders of the same key take
a lock on it, so a second one waits for the first and then uses its artifact.

Layout: ``$MIXQ_CACHE/<kind>/<key><suffix>``, ``<key>.manifest.json`` and
``<key>.lock`` (default ``$MIXQ_CACHE``: ``~/.cache/mixq``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: builders of one key may both build (still atomic)
    fcntl = None  # type: ignore[assignment]

__all__ = ["CacheEntry", "cache_root", "cache_key", "design_text_key", "fetch", "lookup", "entry_paths"]

#: Bump when the manifest format changes.
MANIFEST_VERSION = 1
_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")
_KEY = re.compile(r"^[0-9a-f]{16,64}$")


@dataclass
class CacheEntry:
    """A checked artifact: its path, and what its build recorded (``info``)."""

    path: Path
    info: dict = field(default_factory=dict)
    #: True when this fetch built it (a cache miss or a rebuilt corrupt entry)
    built: bool = False


def cache_root() -> Path:
    """``$MIXQ_CACHE``, or ``~/.cache/mixq``."""
    return Path(os.environ.get("MIXQ_CACHE") or Path.home() / ".cache" / "mixq")


def cache_key(*parts: str | bytes) -> str:
    """sha256 (hex, 32 digits) of ``parts``, each length-prefixed so that no two lists of parts collide."""
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else bytes(part)
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()[:32]


_SRC_VERILOG = re.compile(r'\(\* src = "(?:[^"\\]|\\.)*" \*\)')
_SRC_RTLIL = re.compile(r'^[ \t]*attribute \\src "(?:[^"\\]|\\.)*"\n', re.MULTILINE)


def design_text_key(text: str) -> str:
    """Verilog or RTLIL text without its source-location attributes (``src``: the Python file and line that
    made each signal, which differ between two constructions of the same design and change no behaviour),
    for a cache key."""
    return _SRC_RTLIL.sub("", _SRC_VERILOG.sub("", text))


def entry_paths(kind: str, key: str, suffix: str) -> tuple[Path, Path]:
    """(artifact, manifest) paths of an entry."""
    if not _KIND.match(kind) or not _KEY.match(key) or not re.match(r"^(\.[A-Za-z0-9]+)?$", suffix):
        raise ValueError(f"bad cache entry name: kind {kind!r}, key {key!r}, suffix {suffix!r}")
    folder = cache_root() / kind
    return folder / f"{key}{suffix}", folder / f"{key}.manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(artifact: Path, manifest: Path) -> dict | None:
    """The manifest's ``info`` if the entry is complete and its artifact matches the manifest, else None."""
    try:
        record = json.loads(manifest.read_text())
        if not isinstance(record, dict) or record.get("version") != MANIFEST_VERSION:
            return None
        if artifact.stat().st_size != record["size"] or _sha256(artifact) != record["sha256"]:
            return None
        info = record.get("info", {})
        return info if isinstance(info, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def lookup(kind: str, key: str, suffix: str) -> CacheEntry | None:
    """The entry if it is there and sound; a damaged one is removed (then None)."""
    artifact, manifest = entry_paths(kind, key, suffix)
    if not artifact.exists() and not manifest.exists():
        return None
    info = _check(artifact, manifest)
    if info is None:
        _remove(manifest, artifact)
        return None
    return CacheEntry(artifact, info)


@contextlib.contextmanager
def _locked(folder: Path, key: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(folder / f"{key}.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def fetch(kind: str, key: str, suffix: str, build: Callable[[Path], tuple[Path, dict]]) -> CacheEntry:
    """The sound entry for ``key``, built first if it is missing or damaged.

    ``build(tmpdir)`` makes the artifact inside the empty directory ``tmpdir`` and returns its path and a
    JSON-able dict to record in the manifest (e.g. what the build cost).  Exceptions from ``build`` pass
    through and leave no entry behind.
    """
    entry = lookup(kind, key, suffix)
    if entry is not None:
        return entry
    artifact, manifest = entry_paths(kind, key, suffix)
    folder = artifact.parent
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder, key):
        entry = lookup(kind, key, suffix)   # another process may have built it while this one waited
        if entry is not None:
            return entry
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".build-{key}-"))
        try:
            built, info = build(tmp)
            record = {"version": MANIFEST_VERSION, "sha256": _sha256(built), "size": built.stat().st_size,
                      "info": info}
            os.replace(built, artifact)
            staged = tmp / "manifest.json"
            staged.write_text(json.dumps(record, indent=1) + "\n")
            os.replace(staged, manifest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return CacheEntry(artifact, info, built=True)
