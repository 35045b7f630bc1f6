"""sim: simulate a mixq accelerator bit-exactly against its integer Graph.

:func:`simulate` (from :mod:`sim.network`) runs images through the design of a Graph under a
folding on Amaranth's simulator (``"pysim"``) or compiled CXXRTL (``"cxxrtl"``) and returns a
:class:`NetworkRun` (outputs, reference, bit-exact count, cycles).  ``python -m sim`` is its
command line.  Names are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mixq_hw.version import __version__

if TYPE_CHECKING:
    from .network import BACKENDS, NetworkRun, simulate

_EXPORTS = {"simulate": ".network", "NetworkRun": ".network", "BACKENDS": ".network"}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
