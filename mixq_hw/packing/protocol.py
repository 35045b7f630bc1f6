"""The packing-plan contract: what every plan kind answers, whatever its multipliers.

A packing plan says what one packed multiply (or a group of DSPs working as one) computes: several
products of signed weight codes and activation codes, summed into result *fields*.  Every kind
implements :class:`PackingPlan`:

- ``"layout"``: one DSP48E2 multiply (:class:`~mixq_hw.packing.layout.Plan`);
- ``"lut"``: the same data run on fabric shift-and-add products (a Plan with ``multiplier == "lut"``,
  :func:`~mixq_hw.packing.lut_layout.lut_plan`);
- ``"split"``: one operand cut into two digits, each on its own DSP48E2
  (:class:`~mixq_hw.packing.split.SplitPlan`);
- ``"mixed"``: a mixed-rate weight split, a signed high digit on several DSP48E2s and an unsigned low
  digit on one (:class:`~mixq_hw.packing.mixed.MixedSplitPlan`).

Callers dispatch on these methods and figures, never on the plan's type.  :func:`plan_from_dict`
rebuilds any kind from its :meth:`PackingPlan.to_dict` (so a folding can record and pin a plan).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

__all__ = ["Field", "PackingPlan", "PlanFunctions", "FunctionPlan", "PLAN_TYPES", "plan_from_dict", "fields_to_list", "fields_from_list"]

#: Plan kinds and the module that defines each one's class (imported on demand by :func:`plan_from_dict`).
PLAN_TYPES = {"layout": ("mixq_hw.packing.layout", "Plan"), "lut": ("mixq_hw.packing.layout", "Plan"),
              "split": ("mixq_hw.packing.split", "SplitPlan"), "mixed": ("mixq_hw.packing.mixed", "MixedSplitPlan")}


@dataclass(frozen=True)
class Field:
    """One result field: a sum of products at a fixed bit offset (of P, for a DSP plan).

    ``terms`` lists ``(weight slot, activation slot)`` pairs whose products add
    into this field on every multiply; ``width`` is the signed width the
    accumulated value may use.
    """

    offset: int
    width: int
    terms: tuple[tuple[int, int], ...]


def fields_to_list(fields: tuple[Field, ...]) -> list[dict]:
    """JSON-ready fields."""
    return [{"offset": f.offset, "width": f.width, "terms": [list(t) for t in f.terms]} for f in fields]


def fields_from_list(items: list[dict]) -> tuple[Field, ...]:
    """:func:`fields_to_list` inverted."""
    return tuple(Field(int(f["offset"]), int(f["width"]), tuple((int(t[0]), int(t[1])) for t in f["terms"]))
                 for f in items)


class PackingPlan(ABC):
    """What every packing plan answers.

    Figures (attributes or properties of every kind): ``w_bits``, ``a_bits``, ``k``, ``kind`` (the slot
    meaning: ``"kernel"``, ``"filter"``, ``"filter_bank"``, ``"dot"``), ``depth`` (multiplies per
    accumulation), ``macs_per_dsp`` (useful MACs per DSP per cycle; 0 for LUT plans), ``fields``,
    ``n_weights`` / ``n_acts`` (slots of one core), ``multiplier`` (``"dsp"`` or ``"lut"``), ``name``,
    :attr:`plan_type`, :attr:`dsps` (DSPs one core takes), :attr:`lanes`, :attr:`w_unsigned`, :attr:`signed_act`.
    """

    w_bits: int
    a_bits: int
    k: int
    kind: str
    depth: int
    macs_per_dsp: float
    fields: tuple[Field, ...]
    multiplier: str
    #: Unsigned weight codes at the core's ports (only a mixed split's low digit layout); False otherwise.
    w_unsigned: bool = False

    @property
    @abstractmethod
    def plan_type(self) -> str:
        """The plan kind: a key of :data:`PLAN_TYPES`."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short human name for messages."""

    @property
    @abstractmethod
    def dsps(self) -> int:
        """DSP48E2s one core running this plan takes (0 for LUT plans)."""

    @property
    @abstractmethod
    def n_weights(self) -> int:
        """Weight slots of one core."""

    @property
    @abstractmethod
    def n_acts(self) -> int:
        """Activation slots of one core."""

    @property
    def signed_act(self) -> bool:
        """Signed two's-complement activation codes at the core's ports (``bits.signed_act_range``); False:
        unsigned (a layout's dataclass field; a split's, its digit plans')."""
        return False

    @property
    def lanes(self) -> int:
        """Input lanes a field sums over (a LUT ``"dot"`` plan's terms per field), else 1."""
        return 1

    @abstractmethod
    def check(self) -> None:
        """Raise ``ValueError`` naming the plan unless it is exact at its ``depth``."""

    @abstractmethod
    def expected_fields(self, weights: Any, acts: Any) -> np.ndarray:
        """The arithmetic the plan promises: per field, the sum of its terms' ``w * a`` over the multiplies
        (``weights`` ``(..., depth, n_weights)``, ``acts`` ``(..., depth, n_acts)``)."""

    @abstractmethod
    def emulate(self, weights: Any, acts: Any) -> list[int]:
        """The fields of one accumulation computed the way the hardware does (Python integers)."""

    @abstractmethod
    def emulate_batch(self, weights: Any, acts: Any, *, repeat: int = 1) -> np.ndarray:
        """:meth:`emulate` over a batch, as int64 arrays (``repeat``: the rows run that many times)."""

    @abstractmethod
    def with_depth(self, depth: int) -> "PackingPlan":
        """The same plan used with a shallower accumulation."""

    @abstractmethod
    def make_core(self, depth: int) -> Any:
        """The Amaranth core (a ``wiring.Component`` with PackedMAC's ports) that runs this plan ``depth``
        multiplies deep."""

    @abstractmethod
    def fabric_cost(self, depth: int) -> tuple[int, int]:
        """Estimated ``(LUT, FF)`` of one core's fabric (a DSP48E2's own registers not counted)."""

    @abstractmethod
    def explain(self) -> str:
        """A readable account: bit maps of the ports and fields, depth, correction, digits."""

    @abstractmethod
    def to_dict(self) -> dict:
        """JSON-ready form; :func:`plan_from_dict` rebuilds the plan from it."""

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict) -> "PackingPlan":
        """The plan of a :meth:`to_dict` (checked)."""

    def core_names(self) -> tuple[str, ...]:
        """Paths of the PackedMAC cores inside :meth:`make_core`'s component (``""``: the component itself)."""
        return ("",)

    def split_figures(self) -> dict:
        """The density table's split columns: ``split`` (the split operand), ``dsps``, ``mixed``, ``copies``,
        ``shift``, ``rounding``, ``digit_bits`` (None / :attr:`dsps` / False for a plan that splits nothing)."""
        return {"split": None, "dsps": self.dsps, "mixed": False, "copies": None, "shift": None, "rounding": None,
                "digit_bits": None}


@dataclass(frozen=True)
class PlanFunctions:
    """A plan kind's arithmetic as its module's functions, each taking the plan first."""

    check: Callable[[Any], None]
    expected_fields: Callable[[Any, Any, Any], np.ndarray]
    emulate: Callable[[Any, Any, Any], list[int]]
    emulate_batch: Callable[..., np.ndarray]


class FunctionPlan(PackingPlan):
    """A :class:`PackingPlan` whose ``check``, ``expected_fields``, ``emulate`` and ``emulate_batch`` are its
    module's functions: the module sets ``functions`` on the class once they are defined."""

    functions: ClassVar[PlanFunctions]

    def check(self) -> None:
        type(self).functions.check(self)

    def expected_fields(self, weights: Any, acts: Any) -> np.ndarray:
        return type(self).functions.expected_fields(self, weights, acts)

    def emulate(self, weights: Any, acts: Any) -> list[int]:
        return type(self).functions.emulate(self, weights, acts)

    def emulate_batch(self, weights: Any, acts: Any, *, repeat: int = 1) -> np.ndarray:
        return type(self).functions.emulate_batch(self, weights, acts, repeat=repeat)


def plan_from_dict(d: dict) -> PackingPlan:
    """Any plan kind from its :meth:`PackingPlan.to_dict` (ValueError names an unknown or bad record)."""
    if not isinstance(d, dict):
        raise ValueError(f"a packing plan record is a JSON object, not {type(d).__name__}")
    kind = d.get("plan_type", "layout")
    if kind not in PLAN_TYPES:
        raise ValueError(f"plan_type {kind!r} is not one of {sorted(PLAN_TYPES)}")
    module, cls = PLAN_TYPES[kind]
    return getattr(importlib.import_module(module), cls).from_dict(d)
