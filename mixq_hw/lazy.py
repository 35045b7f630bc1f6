"""Package namespaces that load their public names on first use (PEP 562), so that importing a package
stays light (``import mixq_hw`` never imports torch or elaborates anything)."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str | tuple[str, str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names ``exports`` maps to the module (relative
    to ``package``) that defines each, or to ``(module, name there)`` for a name exported under another;
    a loaded name is cached in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> Any:
        entry = exports.get(name)
        if entry is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = (entry, name) if isinstance(entry, str) else entry
        value = getattr(importlib.import_module(module, package), attribute)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
