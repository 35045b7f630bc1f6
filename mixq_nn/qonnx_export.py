"""Write mixq's integer Graph as a QONNX model that Netron, qonnx and FINN's tools read.

The model computes the Graph's integers exactly under ``qonnx.core.onnx_exec.execute_onnx``:

- its input is the image's 8-bit pixels (0..255, float32, batch 1); an input ``Quant`` (FLOOR) keeps
  the top ``bits`` bits;
- every activation tensor holds the Graph's codes (a ``Quant`` of scale 1: integers in float32), every
  weight is a ``Quant`` of its integer codes (signed, narrow range), Conv/MatMul accumulate them in
  float32, exact while an accumulator stays below 2**24 (checked here; a wider MatMul runs in double,
  a wider Conv is refused: onnxruntime has no double Conv);
- a requant is ``Cast`` to double, ``Mul`` by ``inc / 2**T``, ``Add`` ``(bias + 2**(T-1)) / 2**T``, a
  ``Quant`` of scale 1 with FLOOR rounding and ``out_bits`` unsigned bits (float32 codes out): every
  step is exact in double (the products fit 48 bits);
- the output is ``acc + bias`` (double); the real value is ``output * scale`` with the per-channel
  ``scale`` stored in the model's metadata (``mixq.output_scale``), as are each requant's ``out_step``.

    python -m mixq_nn.export weights.pt --qonnx model.onnx
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

import numpy as np

from mixq_hw.graph import Graph, fan_in
from mixq_hw.graph.ops import acc_bound

__all__ = ["to_qonnx", "save_qonnx", "QonnxExportError", "FLOAT32_EXACT"]

#: float32 holds every integer of magnitude up to 2**24 exactly.
FLOAT32_EXACT = 2 ** 24
_DOMAIN = "qonnx.custom_op.general"
_OPSET = 13


class QonnxExportError(ValueError):
    """The Graph cannot be written as an exact QONNX model; the message names the node and the value."""


class _Writer:
    def __init__(self, graph: Graph) -> None:
        from onnx import TensorProto, helper, numpy_helper

        self.graph, self.helper, self.nh, self.tp = graph, helper, numpy_helper, TensorProto
        self.nodes: list = []
        self.inits: list = []
        self.vinfo: list = []
        self.consts: dict[tuple, str] = {}
        self.infos = graph.value_infos()
        self.rank: dict[str, int] = {}   # tensor -> 2 (flattened by a linear) or 4

    def const(self, value: np.ndarray | float, name: str, dtype=np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self.consts:
            self.consts[key] = name
            self.inits.append(self.nh.from_array(arr, name))
        return self.consts[key]

    def value(self, name: str, shape: tuple, double: bool = False) -> str:
        self.vinfo.append(self.helper.make_tensor_value_info(
            name, self.tp.DOUBLE if double else self.tp.FLOAT, list(shape)))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, shape: tuple, *, double: bool = False,
           domain: str = "", **attrs) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attrs))
        return self.value(output, shape, double)

    def quant(self, x: str, out: str, shape: tuple, bits: int, *, signed: bool, narrow: bool,
              rounding: str) -> str:
        """A QONNX Quant of scale 1 and zero point 0: integer codes (computed in the input's precision,
        returned as float32 by qonnx's executor)."""
        return self.op("Quant", [x, self.const(1.0, "one"), self.const(0.0, "zero"),
                                 self.const(float(bits), f"bits{bits}")],
                       out, shape, domain=_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def channel_shape(self, tensor: str, c: int) -> tuple:
        return (c,) if self.rank[tensor] == 2 else (1, c, 1, 1)

    def shape_of(self, node: str, rank: int) -> tuple:
        c, h, w = self.infos[node].shape
        return (1, c) if rank == 2 else (1, c, h, w)

    # -- the Graph's ops --------------------------------------------------------------------------
    def run(self) -> object:
        g, helper = self.graph, self.helper
        c, h, w = g.input_shape
        inp = helper.make_tensor_value_info("pixels", self.tp.FLOAT, [1, c, h, w])
        for node in g.nodes:
            write = getattr(self, f"_{node.op}", None)
            if write is None:
                raise QonnxExportError(f"node {node.name!r} ({node.op}): no QONNX form for this op yet")
            write(node)
        out = g.output_node
        out_shape = list(self.shape_of(out.name, self.rank[out.name]))
        outputs = [helper.make_tensor_value_info(out.name, self.tp.DOUBLE, out_shape)]
        self.vinfo = [v for v in self.vinfo if v.name != out.name]
        model_graph = helper.make_graph(self.nodes, g.name or "mixq", [inp], outputs, self.inits,
                                        value_info=self.vinfo)
        model = helper.make_model(model_graph, producer_name="mixq",
                                  opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_DOMAIN, 1)])
        meta = {"mixq.output_scale": json.dumps([float(v) for v in out.tensors["scale"]]),
                "mixq.input": "8-bit pixels 0..255 (float32); real image = pixels / 256",
                "mixq.out_steps": json.dumps({n.name: n.attrs.get("out_step") for n in g.nodes
                                              if n.op == "requant"})}
        helper.set_model_props(model, meta)
        return model

    def _input(self, node) -> None:
        k = 8 - node.attrs["bits"]
        shape = self.shape_of(node.name, 4)
        x = "pixels"
        if k:
            x = self.op("Mul", [x, self.const(2.0 ** -k, f"pow2m{k}")], f"{node.name}.scaled", shape)
        self.quant(x, node.name, shape, node.attrs["bits"], signed=False, narrow=False, rounding="FLOOR")
        self.rank[node.name] = 4

    def _weight(self, node, w: np.ndarray) -> str:
        bits = node.attrs["w_bits"]
        src = self.const(w, f"{node.name}.weight_codes")
        return self.quant(src, f"{node.name}.weight", w.shape, bits, signed=True, narrow=True, rounding="ROUND")

    def _float32_exact(self, node) -> bool:
        return acc_bound(fan_in(node), node.attrs["w_bits"], node.attrs["a_bits"]) < FLOAT32_EXACT

    def _check_acc(self, node) -> None:
        if not self._float32_exact(node):
            bound = acc_bound(fan_in(node), node.attrs["w_bits"], node.attrs["a_bits"])
            raise QonnxExportError(f"node {node.name!r} ({node.op}): accumulator bound {bound:,} is above 2**24, "
                                   f"so a float32 Conv in QONNX would not be exact (onnxruntime has no double "
                                   f"Conv)")

    def _conv(self, node) -> None:
        self._check_acc(node)
        a = node.attrs
        p = a["pad"]
        wq = self._weight(node, node.tensors["weight"])
        self.op("Conv", [node.inputs[0], wq], node.name, self.shape_of(node.name, 4), kernel_shape=[a["k"]] * 2,
                strides=[a["stride"]] * 2, pads=[p] * 4, group=a["groups"], dilations=[1, 1])
        self.rank[node.name] = 4

    def _linear(self, node) -> None:
        src = node.inputs[0]
        c, h, w = self.infos[src].shape
        wt = node.tensors["weight"]
        # the Graph's columns are in (H, W, C) order; ONNX's Flatten gives (C, H, W)
        w_chw = wt.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(wt.shape[0], -1)
        x = src
        if self.rank[src] == 4:
            x = self.op("Flatten", [src], f"{node.name}.flat", (1, c * h * w), axis=1)
        wq = self._weight(node, w_chw.T)
        double = not self._float32_exact(node)
        if double:          # a wide accumulator: MatMul in double (exact up to 2**53)
            x = self.op("Cast", [x], f"{node.name}.in_double", (1, c * h * w), double=True, to=self.tp.DOUBLE)
            wq = self.op("Cast", [wq], f"{node.name}.weight_double", w_chw.T.shape, double=True, to=self.tp.DOUBLE)
        self.op("MatMul", [x, wq], node.name, self.shape_of(node.name, 2), double=double)
        self.rank[node.name] = 2

    def _requant(self, node) -> None:
        a, t = node.attrs, node.tensors
        if a.get("signed_out") or "neg_shift" in a:
            raise QonnxExportError(f"node {node.name!r} ({node.op}): signed codes"
                                   f"{' with a LeakyReLU' if 'neg_shift' in a else ''} have no QONNX form yet")
        src, shift = node.inputs[0], a["shift"]
        rank = self.rank[src]
        shape = self.shape_of(node.name, rank)
        cs = self.channel_shape(src, shape[1])
        d = self.op("Cast", [src], f"{node.name}.double", shape, double=True, to=self.tp.DOUBLE)
        mult = np.broadcast_to(t["inc"].astype(np.float64) / 2.0 ** shift, (shape[1],)).reshape(cs)
        add = np.broadcast_to((t["bias"].astype(np.float64) + 2.0 ** (shift - 1)) / 2.0 ** shift,
                              (shape[1],)).reshape(cs)
        m = self.op("Mul", [d, self.const(mult, f"{node.name}.inc", np.float64)], f"{node.name}.mul", shape,
                    double=True)
        s = self.op("Add", [m, self.const(add, f"{node.name}.bias", np.float64)], f"{node.name}.add", shape,
                    double=True)
        self.quant(s, node.name, shape, a["out_bits"], signed=False, narrow=False, rounding="FLOOR")
        self.rank[node.name] = rank

    def _maxpool(self, node) -> None:
        self.op("MaxPool", [node.inputs[0]], node.name, self.shape_of(node.name, 4), kernel_shape=[2, 2],
                strides=[2, 2])
        self.rank[node.name] = 4

    def _reorg(self, node) -> None:
        src = node.inputs[0]
        c, h, w = self.infos[src].shape
        six = self.op("Reshape", [src, self.const(np.array([1, c, h // 2, 2, w // 2, 2]), f"{node.name}.s6",
                                                   np.int64)], f"{node.name}.r6", (1, c, h // 2, 2, w // 2, 2))
        tr = self.op("Transpose", [six], f"{node.name}.t", (1, c, 2, 2, h // 2, w // 2), perm=[0, 1, 3, 5, 2, 4])
        self.op("Reshape", [tr, self.const(np.array([1, 4 * c, h // 2, w // 2]), f"{node.name}.s4", np.int64)],
                node.name, self.shape_of(node.name, 4))
        self.rank[node.name] = 4

    def _concat(self, node) -> None:
        self.op("Concat", list(node.inputs), node.name, self.shape_of(node.name, 4), axis=1)
        self.rank[node.name] = 4

    def _output(self, node) -> None:
        src = node.inputs[0]
        rank = self.rank[src]
        shape = self.shape_of(node.name, rank)
        d = self.op("Cast", [src], f"{node.name}.double", shape, double=True, to=self.tp.DOUBLE)
        bias = node.tensors["bias"].astype(np.float64).reshape(self.channel_shape(src, shape[1]))
        self.op("Add", [d, self.const(bias, f"{node.name}.bias", np.float64)], node.name, shape, double=True)
        self.rank[node.name] = rank


def to_qonnx(graph: Graph):
    """The ``onnx.ModelProto`` of ``graph`` (see the module docstring for its exact integer contract)."""
    graph.validate()
    return _Writer(graph).run()


def save_qonnx(graph: Graph, path: str | PathLike) -> Path:
    """Write ``graph`` as a QONNX ``.onnx`` file atomically; returns the path."""
    from mixq_hw.atomic import atomic_write_bytes

    return atomic_write_bytes(path, to_qonnx(graph).SerializeToString())
