"""Files that ship inside the mixq packages, read through :mod:`importlib.resources`.

The embedded default network lives in ``mixq_hw/default/`` so that an installed
wheel builds it as well as a source checkout does.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["DEFAULT_CHECKPOINT_NAME", "default_checkpoint"]

#: File name of the embedded default: a VGG-tiny trained on the scikit-learn digits.
DEFAULT_CHECKPOINT_NAME = "vggtiny_digits.pt"

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def default_checkpoint() -> Path:
    """Path of the embedded default checkpoint (a real file, extracted if the package is zipped)."""
    return _extracted.enter_context(as_file(files("mixq_hw") / "default" / DEFAULT_CHECKPOINT_NAME))
