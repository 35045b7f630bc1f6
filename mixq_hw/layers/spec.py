"""Layer specs: a pipeline stage as data, separate from the Component that implements it.

Every streaming layer ``X`` is two classes: ``XSpec`` (a :class:`LayerSpec`: the constructor's checks, the
derived sizes, ``cycles_per_frame()``, ``resources()`` and the port signature) and the Component
``X(XSpec, SpecComponent)``, which adds only ``elaborate``.  The Component inherits its figures, so a
spec and the hardware it builds never disagree (there is no second formula), and the folding and the report
reason about a design from specs without creating a Component; :meth:`LayerSpec.build` creates the
Component only to be elaborated.  A spec is frozen: once its constructor returns, assigning or deleting
any of its attributes raises :class:`FrozenSpecError`.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from amaranth.lib import wiring

from ..estimate import Resources

__all__ = ["FrozenSpecError", "LayerSpec", "SpecComponent"]


class FrozenSpecError(AttributeError):
    """An attribute of a constructed (frozen) :class:`LayerSpec` was assigned or deleted."""


class LayerSpec:
    """A stage's figures and ports without its hardware; :meth:`build` makes the Component.

    A subclass's ``__init__`` checks and stores its parameters and declares its ports with
    :meth:`declare_ports` (its :class:`SpecComponent` creates them); it defines ``cycles_per_frame()`` and
    ``estimate()``; its Component class is set as ``component_class``.  When the outermost constructor
    returns, the spec is frozen: its attributes can no longer be assigned or deleted, and a spec that is
    not a Component takes no new attribute.
    """

    #: the Component class :meth:`build` creates (the subclass of this spec that adds ``elaborate``)
    component_class: ClassVar[type]
    #: the stage's name (every spec's constructor sets it)
    name: str
    #: the outermost spec constructor's ``(args, kwargs)``, recorded for :meth:`build`
    _spec_arguments: tuple[tuple[Any, ...], dict[str, Any]]
    #: the ports :meth:`declare_ports` declared
    _port_members: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "records_arguments", False):
            return

        @functools.wraps(init)
        def recording(self, *args: Any, **kw: Any) -> None:
            outermost = "_spec_arguments" not in self.__dict__
            if outermost:                       # the outermost spec constructor's arguments
                self._spec_arguments = (args, kw)
            init(self, *args, **kw)
            if outermost:
                if isinstance(self, SpecComponent):
                    wiring.Component.__init__(self, self.ports(), src_loc_at=kw.get("src_loc_at", 0))
                self._frozen_fields = frozenset(self.__dict__) - {"_MustUse__used"}

        recording.records_arguments = True        # type: ignore[attr-defined]
        cls.__init__ = recording                  # type: ignore[method-assign]

    def __setattr__(self, name: str, value: Any) -> None:
        self._check_mutable(name)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        self._check_mutable(name)
        super().__delattr__(name)

    def _check_mutable(self, name: str) -> None:
        """Refuse to change ``name`` on a frozen spec (a Component may add attributes of its own)."""
        fields = self.__dict__.get("_frozen_fields")
        if fields is None or name == "_MustUse__used":      # under construction; Amaranth's elaboration mark
            return
        if name in fields or name == "_frozen_fields" or not isinstance(self, SpecComponent):
            raise FrozenSpecError(f"{type(self).__name__} {self.__dict__.get('name', '')!r} is a frozen spec: "
                                  f"its attribute {name!r} cannot be changed")

    def declare_ports(self, members: dict) -> None:
        """The stage's ports: ``{name: In(...) | Out(...)}``, as for ``wiring.Component.__init__``."""
        self._port_members = dict(members)

    def ports(self) -> wiring.Signature:
        """The Component's signature (a fresh Signature object; a spec creates no Component for it)."""
        return wiring.Signature(self._port_members)

    def payload_shape(self, port: str) -> Any:
        """The payload layout of stream port ``port``."""
        return self._port_members[port].signature.members["payload"].shape

    def cycles_per_frame(self) -> int:
        """Cycles the stage needs per frame at full throughput."""
        raise NotImplementedError

    def estimate(self) -> Resources:
        """Estimated DSP48E2s, LUTs, FFs and BRAM36 of the stage."""
        raise NotImplementedError

    def resources(self) -> Resources:
        """The stage's resource estimate (:meth:`estimate`)."""
        return self.estimate()

    def build(self) -> wiring.Component:
        """The Component of this spec, to be elaborated."""
        args, kw = self._spec_arguments
        return self.component_class(*args, **kw)


class SpecComponent(wiring.Component):
    """The Component of a :class:`LayerSpec`: ``class X(XSpec, SpecComponent)`` takes the spec's arguments.

    It defines only ``elaborate``: the spec's outermost constructor creates the ports it declared
    (``wiring.Component.__init__`` with :meth:`LayerSpec.ports`, and the ``src_loc_at`` argument if the spec
    takes one) and then freezes the spec's attributes.
    """
