"""Import a QONNX model (as Brevitas exports it) into mixq's integer Graph.

The ONNX graph is walked symbolically, as :mod:`mixq_nn.export` walks a torch model: a Conv or
Gemm/MatMul of quantized codes by quantized weights is an exact integer accumulator ``acc`` whose real
value is ``acc * scale + offset`` per channel; BatchNormalization, bias adds and scalar Mul/Add fold into
that affine map; Relu, MaxPool and Flatten commute with the next activation ``Quant``, which becomes one
``requant`` node (:func:`mixq_nn.export.choose_requant`); the graph output becomes ``output``.

The model's input is the image ``pixel * input_scale`` (mixq's data sets feed ``pixel / 256``).  Its
first quantizer must reproduce the pixels' codes (``scale == input_scale``, or ``input_scale * 2**k`` with
``FLOOR`` rounding: the top ``8 - k`` bits), or the first Conv may read the image unquantized.

Exactness: a requant is exact when ``scale / s_out`` and ``offset / s_out`` are dyadic numbers that fit
the multiplier (power-of-two scales, integer-scaled biases) and the Quant rounds ``FLOOR``, ``CEIL``,
``HALF_UP``, ``HALF_DOWN``, ``UP`` or ``DOWN``.  ``ROUND`` (half to even, Brevitas' default) is computed
half up, so a code differs by one where the real value is exactly a tie.  Otherwise the multiplier's
relative error is below ``2**-(inc_bits - 1)``; each requant node records ``exact`` and ``inc_rel_error``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from mixq_hw.graph import Graph, GraphError, fan_in
from mixq_hw.graph import ops as gops

from .export_values import ExportError
from .requantize import choose_requant
from .qonnx_values import Affine, Codes, Const, Image, Struct, is_flat, node_where, safe_name
from .qonnx_quant import (
    ROUNDING,
    QonnxImportError,
    QWeight,
    load_onnx,
    per_channel_scale,
    weight_codes,
)

__all__ = ["QonnxImportError", "import_qonnx", "SUPPORTED_OPS"]

#: ONNX op types the importer maps onto the Graph (Quant and IntQuant are QONNX's integer quantizer).
SUPPORTED_OPS = ("Quant", "IntQuant", "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "MaxPool",
                 "Flatten", "Reshape", "Mul", "Add", "Transpose", "Cast", "Identity", "Dropout", "Constant")
_QUANT_OPS = ("Quant", "IntQuant")


class _Importer:
    def __init__(self, model: Any, where: str, name: str, input_scale: float) -> None:
        from onnx import numpy_helper

        self.model, self.file = model, where
        self.g = model.graph
        self.numpy_helper = numpy_helper
        self.vals: dict[str, object] = {}
        for init in self.g.initializer:
            self.vals[init.name] = Const(numpy_helper.to_array(init).astype(np.float64))
        inputs = [i for i in self.g.input if i.name not in self.vals]
        if len(inputs) != 1:
            raise QonnxImportError(f"{where}: the model must have exactly one input, has "
                                   f"{[i.name for i in inputs]}")
        self.input = inputs[0]
        self.input_shape = self._input_shape(self.input)
        gname = safe_name(name or Path(where).stem if where != "model" else name or "qonnx", "qonnx")
        try:
            self.graph = Graph(gname.replace(".", "_"), self.input_shape)
        except GraphError as e:
            raise QonnxImportError(f"{where}: {e}") from None
        self.vals[self.input.name] = Image(float(input_scale))
        self.input_node: str | None = None
        self.cache: dict[tuple[int, float, int], str] = {}

    def _input_shape(self, vi: Any) -> tuple[int, int, int]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        sizes = [d for d in dims[1:] if d is not None and d >= 1]
        if len(dims) != 4 or len(sizes) != 3:
            raise QonnxImportError(f"{self.file}: input {vi.name!r} must be (N, C, H, W) with fixed C, H, W; "
                                   f"got {dims}")
        c, h, w = sizes
        return int(c), int(h), int(w)

    # -- graph building ----------------------------------------------------------------------------
    def _add(self, where: str, fn, *args, **kwargs) -> str:
        try:
            return fn(*args, **kwargs)
        except (GraphError, ExportError) as e:
            raise QonnxImportError(f"{where}: {e}") from None

    # -- the walk -----------------------------------------------------------------------------------
    def run(self) -> Graph:
        unsupported = [n for n in self.g.node if n.op_type not in SUPPORTED_OPS]
        if unsupported:
            n = unsupported[0]
            raise QonnxImportError(f"{self.file}: {node_where(n)}: op {n.op_type!r} (domain {n.domain!r}) is not "
                                   f"supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        for node in self.g.node:
            outs = self._node(node)
            for name, val in zip(node.output, outs if isinstance(outs, tuple) else (outs,)):
                self.vals[name] = val
        if len(self.g.output) != 1:
            raise QonnxImportError(f"{self.file}: the model must have one output, has {len(self.g.output)}")
        self._output(self.vals[self.g.output[0].name])
        try:
            self.graph.validate()
        except GraphError as e:
            raise QonnxImportError(f"{self.file}: imported graph is invalid: {e}") from None
        return self.graph

    def _arg(self, node: Any, i: int, required: bool = True) -> object:
        if i >= len(node.input) or not node.input[i]:
            if required:
                raise QonnxImportError(f"{node_where(node)}: input {i} is missing")
            return None
        if node.input[i] not in self.vals:
            raise QonnxImportError(f"{node_where(node)}: input {node.input[i]!r} is not computed by an earlier node")
        return self.vals[node.input[i]]

    def _const(self, node: Any, i: int, what: str) -> np.ndarray:
        v = self._arg(node, i)
        if isinstance(v, QWeight):
            return v.value
        if not isinstance(v, Const):
            raise QonnxImportError(f"{node_where(node)}: {what} (input {node.input[i]!r}) must be a constant")
        return v.value

    def _attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def _node(self, node: Any) -> object:
        op, where, at = node.op_type, node_where(node), self._attrs(node)
        if op == "Constant":
            if "value" not in at:
                raise QonnxImportError(f"{where}: only a tensor 'value' attribute is supported, got {list(at)}")
            return Const(self.numpy_helper.to_array(at["value"]).astype(np.float64))
        if op in _QUANT_OPS:
            return self._quant(node, at)
        if op in ("Identity", "Dropout"):
            return self._arg(node, 0)
        if op == "Cast":
            if at.get("to") not in (1, 11):   # float, double: the values stay the same
                raise QonnxImportError(f"{where}: Cast to type {at.get('to')}; only to float or double")
            return self._arg(node, 0)
        x = self._arg(node, 0)
        if op == "Conv":
            return self._conv(node, at, x)
        if op in ("Gemm", "MatMul"):
            return self._dense(node, at, x)
        if op == "BatchNormalization":
            return self._batchnorm(node, at, x)
        if op == "Relu":
            return x if isinstance(x, Codes) else Struct("relu", self._pending(x, where), where)
        if op == "MaxPool":
            return self._maxpool(node, at, x)
        if op in ("Flatten", "Reshape"):
            return self._flatten(node, at, x)
        if op == "Transpose":
            return self._transpose(node, at, x)
        return self._scalar(node, x)  # Mul, Add

    def _pending(self, x: object, where: str) -> object:
        if isinstance(x, (Affine, Struct)):
            return x
        what = "the model input" if isinstance(x, Image) else type(x).__name__.strip("_").lower()
        raise QonnxImportError(f"{where}: applied to {what}; only to a Conv/Gemm output before its Quant")

    # -- Quant --------------------------------------------------------------------------------------
    def _quant(self, node: Any, at: dict[str, Any]) -> object:
        where = node_where(node)
        x = self._arg(node, 0)
        scale_full = self._const(node, 1, "scale")
        scale = scale_full.reshape(-1)
        zeropt = self._const(node, 2, "zero point")
        bits_arr = self._const(node, 3, "bit width")
        signed, narrow = int(at.get("signed", 1)), int(at.get("narrow", 0))
        mode = at.get("rounding_mode", b"ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
        if mode not in ROUNDING:
            raise QonnxImportError(f"{where}: rounding_mode {mode!r} is not supported "
                                   f"(one of {', '.join(ROUNDING)})")
        if bits_arr.size != 1 or bits_arr.reshape(-1)[0] != int(bits_arr.reshape(-1)[0]):
            raise QonnxImportError(f"{where}: bit width must be one integer, got {bits_arr.reshape(-1)[:4]}")
        bits = int(bits_arr.reshape(-1)[0])
        if np.any(zeropt != 0):
            raise QonnxImportError(f"{where}: zero point {float(np.abs(zeropt).max())} is not supported "
                                   f"(mixq quantizes symmetrically: zero point 0)")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise QonnxImportError(f"{where}: scale must be positive and finite, got {scale[:4]}")
        lo = (-(2 ** (bits - 1)) + narrow) if signed else 0
        hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
        if isinstance(x, Const):
            return weight_codes(where, x.value, scale_full, lo, hi, mode)
        if scale.size != 1:
            raise QonnxImportError(f"{where}: per-channel activation scale ({scale.size} values) is not "
                                   f"supported; use a per-tensor activation quantizer")
        s = float(scale[0])
        if isinstance(x, Image):
            return self._input_quant(where, x, s, hi, mode, signed)
        if isinstance(x, Codes):
            info = self.graph.value_info(x.node)
            if s == x.step and hi >= info.hi:
                return x                   # a re-quantization that leaves every code unchanged
            raise QonnxImportError(f"{where}: re-quantizes codes (step {x.step:g} -> {s:g}, up to {hi}) "
                                   f"without a Conv/Gemm between; not supported")
        relu, chain = self._unwind(x, where)
        if signed and not relu:
            raise QonnxImportError(f"{where}: a signed activation quantizer without a Relu before it; mixq "
                                   f"activations are unsigned codes (use QuantReLU or an unsigned quantizer)")
        if hi + 1 & hi:
            raise QonnxImportError(f"{where}: codes 0..{hi} (narrow={narrow}, signed={signed}, bits {bits}) "
                                   f"are not a full unsigned range 0..2**a-1")
        out_bits = hi.bit_length()
        return self._requant(chain, s, out_bits, mode, where, node.output[0])

    def _unwind(self, x: object, where: str) -> tuple[bool, list]:
        """(a Relu was seen, [the Affine, then the MaxPool/Flatten ops after it, in order])."""
        ops: list[Struct] = []
        relu = False
        while isinstance(x, Struct):
            relu |= x.op == "relu"
            if x.op != "relu":
                ops.append(x)
            x = x.src
        if not isinstance(x, Affine):
            raise QonnxImportError(f"{where}: quantizes {type(x).__name__.strip('_').lower()}, not a "
                                   f"Conv/Gemm output")
        return relu, [x] + ops[::-1]

    def _input_quant(self, where: str, x: Image, s: float, hi: int, mode: str, signed: int) -> Codes:
        ratio = s / x.scale
        k = round(np.log2(ratio)) if ratio > 0 else -1
        if ratio == 1 and hi >= 255:
            bits = 8
        elif 1 <= k <= 7 and ratio == 2.0 ** k and mode in ("FLOOR", "DOWN") and hi >= 2 ** (8 - k) - 1:
            bits = 8 - k
        else:
            raise QonnxImportError(
                f"{where}: the input quantizer (scale {s:g}, codes up to {hi}, {mode}) does not reproduce "
                f"the hardware's input codes from pixels (model input = pixel * {x.scale:g}): it needs "
                f"scale == {x.scale:g} with 8 unsigned bits, or {x.scale:g} * 2**k with FLOOR rounding "
                f"(the top 8 - k bits); pass input_scale= if the model's input is scaled differently")
        return Codes(self._input(where, bits), s)

    def _input(self, where: str, bits: int) -> str:
        if self.input_node is None:
            self.input_node = self._add(where, self.graph.add_input, bits)
            self.input_bits = bits
        elif self.input_bits != bits:
            raise QonnxImportError(f"{where}: quantizes the input to {bits} bits, another node to "
                                   f"{self.input_bits}; the graph has one input quantizer")
        return self.input_node

    def _requant(self, chain: list, s: float, out_bits: int, mode: str, where: str, tensor: str) -> Codes:
        aff: Affine = chain[0]
        acc = self.graph.node(aff.acc)
        bound = gops.acc_bound(fan_in(acc), acc.attrs["w_bits"], acc.attrs["a_bits"])
        acc_bits = self.graph.value_info(aff.acc).bits
        a, b = ROUNDING[mode]
        mult, off = aff.scale / s, aff.offset / s + a
        try:
            inc, bias, shift = choose_requant(mult, off, bound, acc_bits, out_bits, where)
        except ExportError as e:
            raise QonnxImportError(str(e)) from None
        while shift > 1 and not (np.any(inc % 2) or np.any(bias % 2)):
            inc, bias, shift = inc // 2, bias // 2, shift - 1     # the same function with a narrower inc
        bias = bias + b
        ideal = mult * 2.0 ** shift
        exact = bool(np.all(inc == ideal) and np.all(np.floor(off * 2.0 ** shift) == off * 2.0 ** shift))
        rel = float(np.max(np.abs(inc - ideal) / np.maximum(np.abs(ideal), 1e-300)))
        pools = [op for op in chain[1:] if op.op == "maxpool"]
        name = self.graph.unique_name(f"{aff.acc}.requant")
        node = self._add(where, self.graph.add_requant, name, aff.acc, inc, bias, shift=shift,
                         out_bits=out_bits, out_step=s, source=aff.layer, rounding=mode,
                         exact=exact and mode not in ("ROUND", "HALF_EVEN"), inc_rel_error=rel,
                         **({} if pools else {"qonnx_output": tensor}))
        for i, op in enumerate(pools, 1):   # the Quant's tensor is the last pool's codes
            node = self._add(op.where, self.graph.add_maxpool, self.graph.unique_name(f"{node}.pool"), node,
                             **({"qonnx_output": tensor} if i == len(pools) else {}))
        return Codes(node, s, len(pools) < len(chain) - 1)

    def _codes_in(self, x: object, where: str, flat: bool) -> Codes:
        if isinstance(x, Image):
            x = Codes(self._input(where, 8), x.scale)
        if not isinstance(x, Codes):
            raise QonnxImportError(f"{where}: its input is not quantized; put an activation Quant "
                                   f"(QuantReLU/QuantIdentity) before it")
        if x.flat != flat:
            raise QonnxImportError(f"{where}: needs a {'flattened (N, F)' if flat else '4-D (N, C, H, W)'} "
                                   f"input")
        return x

    def _weight_of(self, node: Any, i: int) -> QWeight:
        w = self._arg(node, i)
        if not isinstance(w, QWeight):
            raise QonnxImportError(f"{node_where(node)}: weight {node.input[i]!r} must come from a Quant node "
                                   f"(a quantized layer), got a {type(w).__name__.strip('_').lower()}")
        return w

    # -- layers -------------------------------------------------------------------------------------
    def _conv(self, node: Any, at: dict[str, Any], x: object) -> Affine:
        where = node_where(node)
        w = self._weight_of(node, 1)
        if w.codes.ndim != 4:
            raise QonnxImportError(f"{where}: only 2-D convolutions; weight shape {w.codes.shape}")
        k = w.codes.shape[2]
        ks, st = list(at.get("kernel_shape", w.codes.shape[2:])), list(at.get("strides", [1, 1]))
        pads, dil = list(at.get("pads", [0, 0, 0, 0])), list(at.get("dilations", [1, 1]))
        auto = at.get("auto_pad", b"NOTSET")
        if ks != [k, k] or w.codes.shape[3] != k:
            raise QonnxImportError(f"{where}: kernel_shape {ks} must be square")
        if len(set(st)) != 1 or st[0] not in (1, 2):
            raise QonnxImportError(f"{where}: strides {st} must be equal, 1 or 2")
        if len(set(pads)) != 1 or dil != [1, 1] or auto not in (b"NOTSET", "NOTSET"):
            raise QonnxImportError(f"{where}: pads {pads} must be equal on every side, dilations {dil} 1 and "
                                   f"auto_pad {auto!r} NOTSET")
        src = self._codes_in(x, where, flat=False)
        s_w = per_channel_scale(w.scale, where)
        offset = self._bias(node, 2, w.codes.shape[0])
        name = self.graph.unique_name(safe_name(node.name, "conv"))
        self._add(where, self.graph.add_conv, name, src.node, w.codes.astype(np.int64), w_bits=w.bits,
                  stride=st[0], pad=pads[0], groups=int(at.get("group", 1)), source=node.name,
                  qonnx_input=node.input[0], in_step=src.step)
        return Affine(name, s_w * src.step, offset, False, node.name)

    def _dense(self, node: Any, at: dict[str, Any], x: object) -> Affine:
        where = node_where(node)
        w = self._weight_of(node, 1)
        if node.op_type == "Gemm":
            if at.get("transA", 0) or at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
                raise QonnxImportError(f"{where}: transA={at.get('transA', 0)}, alpha={at.get('alpha', 1.0)}, "
                                       f"beta={at.get('beta', 1.0)}: only transA=0, alpha=beta=1")
            trans = bool(at.get("transB", 0))
        else:
            trans = False
        codes = w.codes if trans else w.codes.T
        scale = w.scale if trans else w.scale.T
        if codes.ndim != 2:
            raise QonnxImportError(f"{where}: weight must be 2-D, got shape {w.codes.shape}")
        src = self._codes_in(x, where, flat=True)
        c, h, wd = self.graph.value_info(src.node).shape
        if codes.shape[1] != c * h * wd:
            raise QonnxImportError(f"{where}: weight has {codes.shape[1]} inputs but its input is "
                                   f"{c}x{h}x{wd} = {c * h * wd} values")
        # ONNX flattens (C, H, W); the hardware streams (H, W, C): permute the weight columns.
        w_hwc = codes.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(codes.shape[0], -1)
        s_w = per_channel_scale(scale, where)
        offset = self._bias(node, 2, codes.shape[0]) if node.op_type == "Gemm" else np.zeros(codes.shape[0])
        name = self.graph.unique_name(safe_name(node.name, "linear"))
        self._add(where, self.graph.add_linear, name, src.node, w_hwc.astype(np.int64), w_bits=w.bits,
                  source=node.name, qonnx_input=node.input[0], in_step=src.step)
        return Affine(name, s_w * src.step, offset, True, node.name)

    def _bias(self, node: Any, i: int, out: int) -> np.ndarray:
        if self._arg(node, i, required=False) is None:
            return np.zeros(out)
        b = self._const(node, i, "bias").reshape(-1)
        if b.size not in (1, out):
            raise QonnxImportError(f"{node_where(node)}: bias has {b.size} values for {out} outputs")
        return np.broadcast_to(b, (out,)).astype(np.float64)

    def _batchnorm(self, node: Any, at: dict[str, Any], x: object) -> Affine:
        where = node_where(node)
        if not isinstance(x, Affine):
            raise QonnxImportError(f"{where}: BatchNormalization must directly follow a Conv/Gemm (before "
                                   f"Relu, MaxPool or a Quant) to be folded")
        if at.get("training_mode", 0):
            raise QonnxImportError(f"{where}: training_mode=1; export the model in eval mode")
        gamma, beta, mean, var = (self._const(node, i, n).reshape(-1)
                                  for i, n in enumerate(("scale", "B", "mean", "var"), 1))
        if gamma.size != x.scale.size:
            raise QonnxImportError(f"{where}: {gamma.size} features after {x.scale.size}-channel {x.layer!r}")
        g = gamma / np.sqrt(var + float(at.get("epsilon", 1e-5)))
        return Affine(x.acc, x.scale * g, (x.offset - mean) * g + beta, x.flat, x.layer)

    def _maxpool(self, node: Any, at: dict[str, Any], x: object) -> object:
        where = node_where(node)
        got = (list(at.get("kernel_shape", [])), list(at.get("strides", [1, 1])), list(at.get("pads", [0] * 4)),
               list(at.get("dilations", [1, 1])), int(at.get("ceil_mode", 0)))
        if got != ([2, 2], [2, 2], [0] * 4, [1, 1], 0) or len(node.output) > 1 and node.output[1]:
            raise QonnxImportError(f"{where}: only 2x2 max pooling with stride 2, no padding, dilation, "
                                   f"ceil_mode or indices; got kernel {got[0]}, strides {got[1]}, pads {got[2]}")
        if isinstance(x, Codes) and not x.flat:
            return Codes(self._add(where, self.graph.add_maxpool, self.graph.unique_name(safe_name(node.name, "pool")),
                                    x.node), x.step)
        if is_flat(x):
            raise QonnxImportError(f"{where}: max pooling of a flattened (N, F) tensor")
        return Struct("maxpool", self._pending(x, where), where)

    def _flatten(self, node: Any, at: dict[str, Any], x: object) -> object:
        where = node_where(node)
        if node.op_type == "Flatten" and int(at.get("axis", 1)) != 1:
            raise QonnxImportError(f"{where}: axis={at.get('axis')}; only Flatten(axis=1)")
        if node.op_type == "Reshape":
            shape = [int(v) for v in self._const(node, 1, "shape").reshape(-1)]
            if len(shape) != 2 or not (shape[1] == -1 or shape[0] in (0, 1, -1)):
                raise QonnxImportError(f"{where}: shape {shape}; only a reshape to (N, -1) (a flatten)")
        if isinstance(x, Codes):
            return Codes(x.node, x.step, True)
        return Struct("flatten", self._pending(x, where), where)

    def _transpose(self, node: Any, at: dict[str, Any], x: object) -> object:
        perm = at.get("perm")
        if isinstance(x, QWeight):
            return QWeight(np.transpose(x.codes, perm), np.transpose(x.scale, perm), x.bits)
        if isinstance(x, Const):
            return Const(np.transpose(x.value, perm))
        raise QonnxImportError(f"{node_where(node)}: perm {perm}: only a constant (a weight) may be transposed")

    def _scalar(self, node: Any, x: object) -> object:
        where = node_where(node)
        a, b = self._arg(node, 0), self._arg(node, 1)
        if isinstance(a, (Const, QWeight)) and not isinstance(b, (Const, QWeight)):
            a, b = b, a
        if not isinstance(b, (Const, QWeight)) or isinstance(a, (Const, QWeight)):
            raise QonnxImportError(f"{where}: only a tensor {node.op_type} a constant is supported")
        c = b.value
        if isinstance(a, Affine):
            if c.size not in (1, a.scale.size) or (c.size > 1 and c.ndim > 1 and c.shape[-1 if a.flat else 1]
                                                   != a.scale.size):
                raise QonnxImportError(f"{where}: constant of shape {c.shape} is not a scalar or per-channel")
            v = np.broadcast_to(c.reshape(-1), a.scale.shape)
            if node.op_type == "Mul":
                return Affine(a.acc, a.scale * v, a.offset * v, a.flat, a.layer)
            return Affine(a.acc, a.scale, a.offset + v, a.flat, a.layer)
        if node.op_type == "Mul" and c.size == 1 and float(c.reshape(-1)[0]) > 0:
            k = float(c.reshape(-1)[0])
            if isinstance(a, Image):
                return Image(a.scale * k)
            if isinstance(a, Codes):
                return Codes(a.node, a.step * k, a.flat)
        raise QonnxImportError(f"{where}: {node.op_type} by {c.reshape(-1)[:4]} of "
                               f"{type(a).__name__.strip('_').lower()} is not supported (only after a "
                               f"Conv/Gemm, or a positive scalar Mul of codes or of the input)")

    def _output(self, v: object) -> None:
        while isinstance(v, Struct) and v.op == "flatten":
            v = v.src
            if not (isinstance(v, Affine) and self.graph.value_info(v.acc).shape[1:] == (1, 1)):
                raise QonnxImportError(f"{self.file}: a flatten after the last layer is only supported for "
                                       f"1x1 maps")
        if not isinstance(v, Affine):
            what = "quantized codes" if isinstance(v, Codes) else type(v).__name__.strip("_").lower()
            raise QonnxImportError(f"{self.file}: the model's output must be the last Conv/Gemm (optionally "
                                   f"BatchNorm, bias, scalar Mul/Add), not {what}: drop the final quantizer "
                                   f"or Relu")
        where = f"{self.file}: output of {v.layer!r}"
        if np.any(v.scale == 0) or not np.all(np.isfinite(v.scale)) or not np.all(np.isfinite(v.offset)):
            raise QonnxImportError(f"{where}: zero or non-finite output scale or bias")
        ratio = v.offset / v.scale
        bias = np.floor(ratio + 0.5)
        if np.abs(bias).max() > 2 ** 31 - 1:
            raise QonnxImportError(f"{where}: output bias {float(np.abs(bias).max()):.3g} LSBs exceeds int32")
        self._add(where, self.graph.add_output, self.graph.unique_name("output"), v.acc, bias.astype(np.int64), v.scale,
                  source=v.layer, exact=bool(np.all(bias == ratio)))


def import_qonnx(source: str | PathLike | Any, *, name: str = "", input_scale: float = 1 / 256) -> Graph:
    """The integer Graph of a QONNX model: a ``.onnx`` path, an ``onnx.ModelProto`` or a qonnx ``ModelWrapper``.

    ``input_scale``: the real value of one pixel step at the model's input (mixq data: 1/256).  Raises
    :class:`QonnxImportError` naming the node, the op and the value for anything it cannot map exactly.
    """
    if not (isinstance(input_scale, (int, float)) and np.isfinite(input_scale) and input_scale > 0):
        raise QonnxImportError(f"input_scale must be a positive number, got {input_scale!r}")
    model, where = load_onnx(source)
    return _Importer(model, where, name, float(input_scale)).run()
