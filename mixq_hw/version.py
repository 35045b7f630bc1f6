"""The installed mixq version, shared by every mixq package as ``__version__``.

Read from the installed distribution's metadata; in a source tree that is not
installed, from the ``pyproject.toml`` next to the packages.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["__version__", "distribution_version"]


def distribution_version() -> str:
    """mixq's version: the installed distribution's, else the source tree's pyproject, else ``"0+unknown"``."""
    try:
        return version("mixq")
    except PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        with pyproject.open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"


__version__ = distribution_version()
