"""The op registry: one :class:`OpDef` record per Graph op, holding everything about that op.

A record answers, for a node of its op: attribute and shape checks with shape/bit inference
(:meth:`OpDef.infer`), the int64 numpy reference (:meth:`OpDef.reference`), a one-line description
(:meth:`OpDef.details`), the products summed per output (:meth:`OpDef.fan_in`, folded ops), the lowering
to pipeline stages (:meth:`OpDef.lower`), and how export recognises the op in a traced PyTorch model
(:meth:`OpDef.export_module`, :meth:`OpDef.export_function`).  The Graph, the pipeline, the folding,
export and the report dispatch through :func:`op_def`; a new op is one module in :mod:`mixq_hw.ops` that
defines a record and calls :func:`register` (see docs/architecture.md, "How to add an op").
"""

from __future__ import annotations

from fractions import Fraction

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np

from ..graph.checks import GraphError, Node, ValueInfo

if TYPE_CHECKING:
    from ..pipeline import Lowering

#: ``(a, b)`` of a row map: output row ``y`` needs input rows up to ``a*y + b`` (Fractions for upsampling).
RowMap = tuple[int | Fraction, int | Fraction]

__all__ = ["OpDef", "ExportMatch", "register", "op_def", "registered", "NoHardwareError"]


class NoHardwareError(GraphError):
    """An op that the Graph can hold and run but the pipeline cannot build."""


class ExportMatch:
    """What an export hook recognised: the traced call's arguments that are the op's inputs, and attributes.

    ``indexed``: the call returns a tuple (a split); element ``k`` is a node of the op with attributes
    ``attrs | {"index": k}``, which :meth:`OpDef.export_attrs` turns into the node's own."""

    def __init__(self, inputs: Sequence[Any], attrs: dict | None = None, *, indexed: bool = False) -> None:
        self.inputs = list(inputs)
        self.attrs = dict(attrs or {})
        self.indexed = indexed


class OpDef:
    """One Graph op.  Subclasses set :attr:`name` and override the parts their op has.

    Class attributes: ``name`` (the op's name in graphs and graph files); ``folded`` (True for ops the
    folding assigns a :class:`~mixq_hw.pipeline.LayerFold`: conv, linear); ``accumulates`` (the op's
    output is a signed accumulator, read only by ops with ``reads_accumulator``); ``moves_codes`` (export
    applies a consumer's activation quantiser before this op instead of after it: ops that only move,
    select or compare codes, so that quantising first gives the same codes).
    """

    name: ClassVar[str] = ""
    folded: ClassVar[bool] = False
    accumulates: ClassVar[bool] = False
    reads_accumulator: ClassVar[bool] = False
    moves_codes: ClassVar[bool] = False
    #: the op reads its input as the HWC flattening of the map (linear)
    flattens_input: ClassVar[bool] = False

    # ---- the Graph --------------------------------------------------------------------------------
    def infer(self, node: Node, ins: list[ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
        """Check ``node`` against the values it reads (``ins``, in input order); what it produces.

        GraphError (naming the node and the value) for any invalid attribute, tensor or input."""
        raise NotImplementedError(f"op {self.name!r} defines no shape inference")

    def reference(self, node: Node, args: list[np.ndarray], images: np.ndarray | None) -> np.ndarray:
        """The node's int64 output for its input tensors ``args`` (N, C, H, W) (``images``: the uint8 pixels)."""
        raise NotImplementedError(f"op {self.name!r} defines no reference")

    def details(self, node: Node) -> str:
        """A short description of the node's attributes for ``Graph.summary`` ("" when there is nothing)."""
        return ""

    def report_fields(self, node: Node) -> dict:
        """The node's attributes that the build report's per-layer row shows (JSON-able)."""
        return {}

    def fan_in(self, node: Node) -> int:
        """Products summed into one output value (ops with multipliers); GraphError for other ops."""
        raise GraphError(f"node {node.name!r} ({node.op}) has no fan-in")

    def engine_args(self, node: Node, graph: Any) -> dict:
        """Folded ops: the ConvEngine's view of the node (weight as (out, in/groups, k, k), in_ch, out_ch,
        k, groups, stride, pad, out_hw, depthwise, and ``widths``: for simd, pe and pixels the name and
        size each must divide, or bound for pixels).  GraphError for other ops."""
        raise GraphError(f"node {node.name!r} ({node.op}) is not a folded layer")

    def row_map(self, node: Node) -> RowMap | None:
        """``(a, b)``: the node's output row ``y`` needs its input rows up to ``a*y + b`` (``a`` may be a
        Fraction, e.g. 1/2 for an upsample; :mod:`mixq_hw.schedule`); None for an op that reads its whole input before producing a row."""
        return None

    # ---- hardware ---------------------------------------------------------------------------------
    def lower(self, node: Node, lowering: "Lowering") -> None:
        """Append the node's pipeline stages to ``lowering`` and record the stream of its value.

        NoHardwareError for an op that has no hardware (the default)."""
        raise NoHardwareError(f"node {node.name!r}: op {node.op!r} has no hardware implementation")

    # ---- export from PyTorch ----------------------------------------------------------------------
    #: True: export recognises the op in a traced model through :meth:`export_module` /
    #: :meth:`export_function`.  False: the exporter makes the op from its own context, and
    #: :attr:`export_note` says how (an op with neither is not produced by export).
    exports: ClassVar[bool] = False
    export_note: ClassVar[str] = ""

    def export_module(self, ctx: Any, module: Any, where: str) -> ExportMatch | None:
        """The match if traced ``module`` (one tensor input) is this op, else None.

        ``ctx`` gives ``ctx.torch`` (the torch package) and ``ctx.layers`` (mixq_nn.layers), so that this
        package never imports torch.  ValueError (naming ``where``) for a configuration the op cannot
        represent."""
        return None

    def export_function(self, ctx: Any, fn: Any, args: tuple, kwargs: dict, where: str) -> ExportMatch | None:
        """The match if the traced call ``fn(*args, **kwargs)`` is this op, else None (as
        :meth:`export_module`); the match's inputs are the traced arguments that are the op's inputs."""
        return None

    def export_attrs(self, attrs: dict, ins: Sequence[ValueInfo], where: str) -> dict:
        """The node's attributes from a match's ``attrs`` once its inputs' values ``ins`` are known (the
        default: ``attrs`` unchanged); ValueError naming ``where`` for attributes that do not fit them."""
        return attrs


_REGISTRY: dict[str, OpDef] = {}


def register(record: OpDef) -> OpDef:
    """Add ``record`` to the registry (ValueError if its name is empty or taken); returns it."""
    if not isinstance(record, OpDef):
        raise ValueError(f"register takes an OpDef instance, got {type(record).__name__}")
    if not record.name or not record.name.isidentifier():
        raise ValueError(f"op name {record.name!r} must be a non-empty identifier")
    if record.name in _REGISTRY:
        raise ValueError(f"op {record.name!r} is already registered ({type(_REGISTRY[record.name]).__name__})")
    _REGISTRY[record.name] = record
    return record


def op_def(name: str) -> OpDef:
    """The record of op ``name``; GraphError listing the known ops if there is none."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise GraphError(f"unknown op {name!r}; known ops: {', '.join(_REGISTRY)}") from None


def registered() -> dict[str, OpDef]:
    """Every registered op, name -> record, in registration order."""
    return dict(_REGISTRY)
