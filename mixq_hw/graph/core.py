"""The integer Graph: nodes in topological order, validation, int64 reference execution.

A Graph is what export produces and what the hardware builds: a list of
``Node``s (op, inputs by name, JSON-able attrs, numpy tensors) plus a name
and the per-frame input shape (C, H, W).  ``reference`` runs it in int64
numpy with the functions of :mod:`mixq_hw.graph.ops` -- the golden model
that every hardware simulation is compared against bit for bit.
"""

from __future__ import annotations

import contextlib
import json
from os import PathLike
from typing import Iterator, Literal, Sequence, overload

import numpy as np

from ..validate import LIMITS, is_identifier
from . import ops
from ..ops.registry import op_def, registered
from .checks import GraphError, Node, ValueInfo, fail, requant_fits_dsp48
from .fileio import load_graph, save_graph

__all__ = ["Graph"]


def _int_tensor(value: object, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise GraphError(f"{what}: expected integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


class Graph:
    """An integer network: ``nodes`` in topological order, ``name`` and ``input_shape`` (C, H, W)."""

    #: the value infos while :meth:`frozen` is active (None otherwise)
    _frozen_infos: dict[str, ValueInfo] | None = None

    def __init__(self, name: str = "", input_shape: Sequence[int] = (3, 32, 32),
                 nodes: Sequence[Node] = ()) -> None:
        self.name = str(name)
        shape = tuple(int(v) for v in input_shape)
        if self.name and not is_identifier(self.name.replace("-", "_")):
            raise GraphError(f"graph name {self.name!r} is not a safe name: use ASCII letters, digits, '_' "
                             f"and '-' in parts joined by '.', starting with a letter or '_'")
        if len(shape) != 3 or min(shape) < 1:
            raise GraphError(f"graph {self.name!r}: input_shape must be three positive ints (C, H, W), "
                             f"got {tuple(input_shape)}")
        c, h, w = shape
        self.input_shape: tuple[int, int, int] = (c, h, w)
        if c > LIMITS["channels"] or h > LIMITS["side"] or w > LIMITS["side"]:
            raise GraphError(f"graph {self.name!r}: input_shape {c}x{h}x{w} is above the limits (channels up "
                             f"to {LIMITS['channels']:,}, height and width up to {LIMITS['side']:,})")
        self.nodes: list[Node] = list(nodes)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Inside, the graph is checked once and every :meth:`value_info` reads that result (a folding search
        asks thousands of times); the caller must not change the nodes meanwhile (:meth:`add` refuses)."""
        if self._frozen_infos is not None:     # already frozen by an outer block
            yield
            return
        self._frozen_infos = self._infer()
        try:
            yield
        finally:
            self._frozen_infos = None

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, input_shape={self.input_shape}, {len(self.nodes)} nodes)"

    def node(self, name: str) -> Node:
        """The node called ``name`` (GraphError if there is none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"graph {self.name!r} has no node {name!r}")

    def __contains__(self, name: object) -> bool:
        return any(n.name == name for n in self.nodes)

    def unique_name(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3`` ...: the first of them that names no node yet."""
        name, i = base, 2
        while name in self:
            name, i = f"{base}_{i}", i + 1
        return name

    def consumers(self, name: str) -> list[Node]:
        """Nodes that read ``name``, in graph order."""
        return [n for n in self.nodes if name in n.inputs]

    @property
    def input_node(self) -> Node:
        """The single ``input`` node."""
        return self._only("input")

    @property
    def output_node(self) -> Node:
        """The single ``output`` node."""
        return self._only("output")

    def _only(self, op: str) -> Node:
        found = [n for n in self.nodes if n.op == op]
        if len(found) != 1:
            raise GraphError(f"graph {self.name!r} needs exactly one {op!r} node, has {len(found)}")
        return found[0]

    # ---- construction -------------------------------------------------------------------
    def add(self, op: str, name: str, inputs: Sequence[str] = (), attrs: dict | None = None,
            tensors: dict | None = None) -> str:
        """Append a node after checking it against the nodes before it; returns its name."""
        _check_name(self.name, name)
        if self._frozen_infos is not None:
            raise GraphError(f"graph {self.name!r} is frozen (Graph.frozen): node {name!r} cannot be added")
        if name in self:
            raise GraphError(f"graph {self.name!r}: duplicate node name {name!r}")
        node = Node(name, op, list(inputs), dict(attrs or {}), dict(tensors or {}))
        self.nodes.append(node)
        try:
            self._infer(upto=name)
            if op_def(op).reads_accumulator:
                self._check_acc_source(node)
        except GraphError:
            self.nodes.pop()
            raise
        return name

    def add_input(self, bits: int, name: str = "input") -> str:
        """The input node: codes = pixel >> (8 - bits)."""
        return self.add("input", name, (), {"bits": int(bits)})

    def add_conv(self, name: str, src: str, weight: object, *, w_bits: int, stride: int = 1,
                 pad: int | None = None, groups: int = 1, **attrs: object) -> str:
        """A convolution of ``src``'s codes; channel counts, k and a_bits come from the tensors."""
        w = _int_tensor(weight, f"conv {name!r} weight")
        if w.ndim != 4:
            raise GraphError(f"conv {name!r}: weight must be (out, in/groups, k, k), got shape {w.shape}")
        k = w.shape[2]
        x = self.value_info(src)
        a = dict(in_ch=x.shape[0], out_ch=w.shape[0], k=k, stride=int(stride),
                 pad=k // 2 if pad is None else int(pad), groups=int(groups),
                 w_bits=int(w_bits), a_bits=x.bits)
        return self.add("conv", name, [src], {**a, **attrs}, {"weight": w})

    def add_linear(self, name: str, src: str, weight: object, *, w_bits: int, **attrs: object) -> str:
        """A fully connected layer on the HWC flattening of ``src``'s codes."""
        w = _int_tensor(weight, f"linear {name!r} weight")
        if w.ndim != 2:
            raise GraphError(f"linear {name!r}: weight must be (out, in), got shape {w.shape}")
        x = self.value_info(src)
        a = dict(in_features=w.shape[1], out_features=w.shape[0], w_bits=int(w_bits), a_bits=x.bits)
        return self.add("linear", name, [src], {**a, **attrs}, {"weight": w})

    def add_requant(self, name: str, src: str, inc: object, bias: object, *, shift: int,
                    out_bits: int, **attrs: object) -> str:
        """Requantize accumulator ``src``; acc_bits, inc_bits and fits_dsp48 are derived."""
        inc = _int_tensor(inc, f"requant {name!r} inc").reshape(-1)
        bias = _int_tensor(bias, f"requant {name!r} bias").reshape(-1)
        acc_bits = self.value_info(src).bits
        a = dict(out_bits=int(out_bits), shift=int(shift), acc_bits=acc_bits,
                 inc_bits=ops.signed_width(int(inc.min()), int(inc.max())) if inc.size else 1,
                 fits_dsp48=requant_fits_dsp48(acc_bits, inc, bias, int(shift)) if inc.size else False)
        return self.add("requant", name, [src], {**a, **attrs}, {"inc": inc, "bias": bias})

    def add_maxpool(self, name: str, src: str, **attrs: object) -> str:
        """2x2 stride-2 max pooling of codes."""
        return self.add("maxpool", name, [src], attrs)

    def add_reorg(self, name: str, src: str, **attrs: object) -> str:
        """Space-to-depth by 2 (channel c*4 + dy*2 + dx)."""
        return self.add("reorg", name, [src], attrs)

    def add_concat(self, name: str, srcs: Sequence[str], **attrs: object) -> str:
        """Channel concatenation of codes with equal bits."""
        return self.add("concat", name, list(srcs), attrs)

    def add_output(self, name: str, src: str, bias: object, scale: object, **attrs: object) -> str:
        """The network output: acc + bias (int32), real value = (acc + bias) * scale."""
        b = _int_tensor(bias, f"output {name!r} bias").reshape(-1)
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
        return self.add("output", name, [src], attrs, {"bias": b, "scale": s})

    # ---- checking -----------------------------------------------------------------------
    def _infer(self, upto: str | None = None) -> dict[str, ValueInfo]:
        infos: dict[str, ValueInfo] = {}
        for node in self.nodes:
            _check_name(self.name, node.name)
            if node.name in infos:
                raise GraphError(f"graph {self.name!r}: duplicate node name {node.name!r}")
            infos[node.name] = infer(node, infos, self.input_shape)
            if node.name == upto:
                break
        return infos

    def _check_acc_source(self, node: Node) -> None:
        src = self.node(node.inputs[0])
        if not op_def(src.op).accumulates:
            raise GraphError(f"node {node.name!r} ({node.op}): input {src.name!r} is an {src.op!r} node, "
                             f"not a conv/linear accumulator")

    def value_info(self, name: str) -> ValueInfo:
        """Shape (C, H, W), bits and signedness of what node ``name`` produces."""
        infos = self._frozen_infos if self._frozen_infos is not None else self._infer(upto=name)
        if name not in infos:
            raise GraphError(f"graph {self.name!r} has no node {name!r}")
        return infos[name]

    def value_infos(self) -> dict[str, ValueInfo]:
        """ValueInfo of every node, in graph order."""
        return dict(self._frozen_infos) if self._frozen_infos is not None else self._infer()

    def validate(self) -> None:
        """Check the whole graph; raises GraphError naming the node and the value."""
        if not self.nodes:
            raise GraphError(f"graph {self.name!r} is empty")
        self._infer()
        inp, out = self.input_node, self.output_node
        if self.nodes[0] is not inp:
            raise GraphError(f"graph {self.name!r}: the input node {inp.name!r} must come first")
        if self.nodes[-1] is not out:
            raise GraphError(f"graph {self.name!r}: the output node {out.name!r} must come last")
        used = {src for n in self.nodes for src in n.inputs}
        for node in self.nodes:
            if op_def(node.op).reads_accumulator:
                self._check_acc_source(node)
            if node is not out and node.name not in used:
                raise GraphError(f"node {node.name!r} ({node.op}): its value is never used")

    # ---- execution ----------------------------------------------------------------------
    @overload
    def reference(self, images: object, *, keep: Literal[False] = False) -> np.ndarray: ...

    @overload
    def reference(self, images: object, *, keep: Literal[True]) -> dict[str, np.ndarray]: ...

    def reference(self, images: object, *, keep: bool = False) -> np.ndarray | dict[str, np.ndarray]:
        """Run the graph in int64 on uint8 pixels (N, C, H, W): the golden integer model.

        Returns the output node's (N, C, H, W) int64 tensor (what hls4ml calls ``predict``), or
        with ``keep=True`` a dict node name -> tensor for every node, in graph order (hls4ml's
        ``trace``: the values a layer-by-layer hardware check compares against).
        """
        self.validate()
        x = np.asarray(images)
        if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
            raise GraphError(f"graph {self.name!r}: reference expects 8-bit pixel values 0..255 "
                             f"(uint8), got dtype {x.dtype} (float images are pixel/256: pass pixels)")
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            raise GraphError(f"graph {self.name!r}: images must be (N, {', '.join(map(str, self.input_shape))})"
                             f", got shape {x.shape}")
        last_use = {src: i for i, n in enumerate(self.nodes) for src in n.inputs}
        vals: dict[str, np.ndarray] = {}
        for i, node in enumerate(self.nodes):
            args = [vals[src] for src in node.inputs]
            vals[node.name] = op_def(node.op).reference(node, args, x)
            if not keep:
                for src in set(node.inputs):
                    if last_use[src] == i:
                        del vals[src]
        return vals if keep else vals[self.output_node.name]

    def run_node(self, name: str, inputs: Sequence[np.ndarray], images: np.ndarray | None = None) -> np.ndarray:
        """Execute one node on given input tensors (``images``: uint8 pixels, for the input node).

        Lets a test feed a node inputs of its own (e.g. a hardware layer's or a float model's codes).
        """
        node = self.node(name)
        if len(inputs) != len(node.inputs):
            raise GraphError(f"node {name!r} ({node.op}) takes {len(node.inputs)} inputs, got {len(inputs)}")
        return op_def(node.op).reference(node, list(inputs), images)

    # ---- reporting ----------------------------------------------------------------------
    def node_macs(self, name: str) -> int:
        """Multiply-accumulates per frame of one node (0 for ops without multipliers)."""
        node = self.node(name)
        if not op_def(node.op).folded:
            return 0
        c, h, w = self.value_info(name).shape
        return c * h * w * fan_in(node)

    def macs(self) -> int:
        """Multiply-accumulates per frame of the whole graph."""
        return sum(self.node_macs(n.name) for n in self.nodes)

    def summary(self) -> str:
        """A text table: node, op, inputs, output shape and bits, MACs, op details."""
        infos = self.value_infos()
        rows = [("node", "op", "inputs", "shape", "bits", "MACs", "details")]
        for node in self.nodes:
            info = infos[node.name]
            c, h, w = info.shape
            rows.append((node.name, node.op, ",".join(node.inputs) or "-", f"{c}x{h}x{w}",
                         f"{'s' if info.signed else 'i' if info.signed_codes else 'u'}{info.bits}",
                         f"{self.node_macs(node.name):,}" if op_def(node.op).folded else "",
                         op_def(node.op).details(node)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"graph {self.name!r}: input {'x'.join(map(str, self.input_shape))}, "
                 f"{len(self.nodes)} nodes, {self.macs():,} MACs/frame"]
        for j, r in enumerate(rows):
            lines.append("  ".join(v.ljust(wd) for v, wd in zip(r, widths)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * wd for wd in widths))
        return "\n".join(lines)

    # ---- files --------------------------------------------------------------------------
    def save(self, path: str | PathLike) -> None:
        """Write the graph as ``.npz``: its arrays plus one JSON metadata entry (no pickle)."""
        save_graph(self, path)

    @classmethod
    def load(cls, path: str | PathLike) -> "Graph":
        """Read a graph written by ``save``; GraphError naming the file if missing/corrupt/foreign."""
        return load_graph(path, cls)


def _check_name(graph: str, name: object) -> None:
    """Node names reach Verilog, C++ and Python: only safe identifiers (``features.0.0``) pass."""
    if not isinstance(name, str) or not name:
        raise GraphError(f"graph {graph!r}: node names must be non-empty strings, got {name!r}")
    if not is_identifier(name):
        raise GraphError(f"graph {graph!r}: layer name {name!r} is not a safe name: use ASCII letters, "
                         f"digits and '_' in parts joined by '.', starting with a letter or '_', at most "
                         f"{LIMITS['name_chars']} characters")


def infer(node: Node, infos: dict[str, ValueInfo], input_shape: tuple[int, int, int]) -> ValueInfo:
    """Check ``node`` (its inputs must already be in ``infos``) and return its ValueInfo (its op's record
    checks the attributes and tensors)."""
    if not isinstance(node.op, str) or node.op not in registered():
        raise fail(node, f"unknown op; known ops: {', '.join(registered())}")
    if not isinstance(node.attrs, dict):
        raise fail(node, f"attrs must be a dict, got {type(node.attrs).__name__}")
    try:
        json.dumps(node.attrs, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise fail(node, f"attrs are not JSON-able: {e}") from None
    if not isinstance(node.tensors, dict) or not all(isinstance(k, str) for k in node.tensors):
        raise fail(node, "tensors must be a dict with string keys")
    for src in node.inputs:
        if src not in infos:
            raise fail(node, f"input {src!r} is not an earlier node (graph must be in topological order)")
    ins = [infos[src] for src in node.inputs]
    return op_def(node.op).infer(node, ins, input_shape)


def fan_in(node: Node) -> int:
    """Products summed into one accumulator of a conv/linear node."""
    return op_def(node.op).fan_in(node)
