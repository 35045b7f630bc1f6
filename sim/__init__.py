"""sim: simulate a mixq accelerator bit-exactly against its integer Graph.

:func:`simulate` (from :mod:`sim.network`) runs images through the design of a Graph under a
folding on Amaranth's simulator (``"pysim"``) or compiled CXXRTL (``"cxxrtl"``) and returns a
:class:`NetworkRun` (outputs, reference, bit-exact count, cycles).  ``python -m sim`` is its
command line.  Names are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixq_hw.lazy import lazy_exports
from mixq_hw.version import __version__

if TYPE_CHECKING:
    from .network import BACKENDS, NetworkRun, simulate

_EXPORTS = {"simulate": ".network", "NetworkRun": ".network", "BACKENDS": ".network"}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
