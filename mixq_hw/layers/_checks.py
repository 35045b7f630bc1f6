"""Argument checks shared by the layers, so every constructor error reads the same way."""

from __future__ import annotations

__all__ = ["layer_label", "check_int", "check_positive"]


def layer_label(name: str, kind: str) -> str:
    """The "in layer 'conv3'" suffix of an error message (the class name when the layer is unnamed)."""
    return f"in layer {name!r}" if name else f"in {kind}"


def check_int(where: str, lo: int, **values: object) -> None:
    """Every value must be an integer (not a bool) of at least ``lo``."""
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(f"{key} must be an integer >= {lo}, not {value!r} {where}")


def check_positive(where: str, **values: int) -> None:
    """Every value must be a positive integer."""
    for key, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
