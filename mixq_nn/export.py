"""Export a fixed-precision mixq model to the integer Graph (fold BN, integerize requantization).

The model is traced with ``torch.fx`` (quantised layers, quantisers and ``Reorg`` kept whole) and
walked symbolically: a quantised layer's output is an exact integer accumulator ``acc`` whose real
value is ``acc * s_w * s_in + b``; BatchNorm folds into that per-channel affine map; ReLU is absorbed
by the next quantiser's clip at 0; a power-of-two LeakyReLU becomes the ``neg_shift`` of the requant (or
of a residual add's rescale) that makes the next quantiser's signed codes; max pool / reorg / concat / flatten commute with the next layer's
(monotone, per-channel) quantiser.  So each accumulator becomes one ``requant`` node per distinct
consumer quantiser, followed by the structural ops on codes, and the last layer becomes ``output``.

    python -m mixq_nn.export weights.pt -o model.npz
    python -m mixq_nn.export weights.pt --qonnx model.onnx     # QONNX for Netron / FINN (mixq_nn.qonnx_export)
"""

from __future__ import annotations

import argparse
import operator
import sys
from typing import Sequence

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from mixq_hw import validate
from mixq_hw.atomic import atomic_write_bytes
from mixq_hw.graph import Graph, GraphError, fan_in
from mixq_hw.graph import ops as gops
from mixq_hw.ops import op_def, registered
from mixq_hw.ops.avgpool import avgpool_bound

from . import layers as mixq_layers
from . import ops_layers as mixq_ops_layers
from .export_add import AddValue, export_add
from .export_values import Affine, ExportError, Image, Parts, Quant, Struct
from .layers import QConv2d, QLinear, trace
from .quant import ActQuantizer, InputQuantizer
from .requantize import choose_requant

__all__ = ["ExportError", "export", "choose_requant", "main"]

class _HookContext:
    """What the ops' export hooks get (:meth:`mixq_hw.ops.OpDef.export_module`): torch, mixq's layers and
    the zoo's operator modules (``ops_layers``),
    so that mixq_hw never imports torch."""

    torch = torch
    layers = mixq_layers
    ops_layers = mixq_ops_layers


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


class _Exporter:
    """One export: walks the fx graph of ``model`` and builds the integer Graph."""

    def __init__(self, model: nn.Module, input_shape: Sequence[int], name: str) -> None:
        self.model = model
        try:
            self.graph = Graph(name, input_shape)
        except GraphError as e:
            raise ExportError(str(e)) from None
        self.modules = dict(model.named_modules())
        self.syms: dict[torch.fx.Node, object] = {}
        self.cache: dict[tuple[int, Quant], str] = {}
        self.keep: list[object] = []      # keeps cached symbols alive so their ids stay unique
        self.input_bits: int | None = None

    # -- naming and graph building ------------------------------------------------------
    def _add(self, where: str, fn, *args, **kwargs) -> str:
        try:
            return fn(*args, **kwargs)
        except GraphError as e:
            raise ExportError(f"{where}: {e}") from None

    # -- materialising codes for a consumer ---------------------------------------------
    def codes(self, sym: object, q: Quant, consumer: str) -> str:
        """Graph node holding ``sym`` quantised by ``q`` (built once per (value, quantiser))."""
        key = (id(sym), q)
        if key not in self.cache:
            self.cache[key] = self._build_codes(sym, q, consumer)
            self.keep.append(sym)
        return self.cache[key]

    def _build_codes(self, sym: object, q: Quant, consumer: str) -> str:
        if isinstance(sym, Image):
            if q.kind != "input":
                raise ExportError(f"layer {consumer!r}: quantises the input image with an activation "
                                  f"quantiser; the first layer needs an InputQuantizer (first=True)")
            if self.input_bits is not None and self.input_bits != q.bits:
                raise ExportError(f"layer {consumer!r}: quantises the image to {q.bits} bits but another "
                                  f"layer uses {self.input_bits}; the graph has one input quantizer")
            self.input_bits = q.bits
            return self._add(f"layer {consumer!r}", self.graph.add_input, q.bits)
        if q.kind == "input":
            raise ExportError(f"layer {consumer!r}: has an InputQuantizer but its input is not the image")
        if isinstance(sym, Affine):
            return self._requant(sym, q, consumer)
        if isinstance(sym, AddValue):
            try:
                return sym.codes(self, q, consumer)
            except (ValueError, GraphError) as e:
                raise ExportError(str(e) if str(e).startswith(sym.where) else f"{sym.where}: {e}") from None
        assert isinstance(sym, Struct)
        if sym.op == "relu" and q.signed:
            # signed codes of a ReLU's output are the non-negative half of the range: unsigned codes of one
            # bit less, same step (the same values; a conv or pool reads them as unsigned codes)
            return self.codes(sym.srcs[0], Quant(q.kind, q.bits - 1, q.step), consumer)
        if sym.op in ("relu", "flatten") or sym.op == "leaky" and not q.signed:
            # unsigned codes clip at 0: a LeakyReLU before them is a ReLU
            return self.codes(sym.srcs[0], q, consumer)
        if sym.op == "leaky":
            return self._leaky(sym, q, consumer)
        srcs = [self.codes(s, q, consumer) for s in sym.srcs]
        name = self.graph.unique_name(sym.where)
        where = f"{sym.op} {sym.where!r}"
        try:
            attrs = op_def(sym.op).export_attrs(sym.attrs, [self.graph.value_info(s) for s in srcs], where)
        except ValueError as e:
            raise ExportError(str(e)) from None
        return self._add(where, self.graph.add, sym.op, name, srcs, attrs)

    def _leaky(self, sym: Struct, q: Quant, consumer: str) -> str:
        """Signed codes ``q`` of LeakyReLU ``sym``: the slope goes into the requant of a conv/linear (after its
        BatchNorm) or into the rescale of a residual add."""
        src, neg_shift = sym.srcs[0], sym.attrs["neg_shift"]
        where = f"layer {sym.where!r} (LeakyReLU)"
        if isinstance(src, Affine):
            return self._requant(src, q, consumer, neg_shift)
        if isinstance(src, AddValue):
            try:
                return src.codes(self, q, consumer, neg_shift=neg_shift)
            except (ValueError, GraphError) as e:
                raise ExportError(str(e) if str(e).startswith(src.where) else f"{src.where}: {e}") from None
        what = src.op if isinstance(src, Struct) else "the image"
        raise ExportError(f"{where}: must directly follow a quantised conv/linear (optionally BatchNorm) or a "
                          f"residual add to become integer arithmetic, not a {what}")

    def _requant(self, sym: Affine, q: Quant, consumer: str, neg_shift: int | None = None) -> str:
        acc_info = self.graph.value_info(sym.acc)
        node = self.graph.node(sym.acc)
        if node.op == "avgpool":
            src = self.graph.value_info(node.inputs[0])
            bound = avgpool_bound(node, src.bits, *src.shape[1:], signed=src.signed_codes)
        else:
            signed_in = self.graph.value_info(node.inputs[0]).signed_codes
            bound = gops.acc_bound(fan_in(node), node.attrs["w_bits"], node.attrs["a_bits"], signed_in)
        where = f"layer {sym.layer!r} -> {consumer!r}"
        inc, bias, shift = choose_requant(sym.scale / q.step, sym.offset / q.step, bound,
                                          acc_info.bits, q.bits, where, signed=q.signed, neg_shift=neg_shift or 0)
        name = self.graph.unique_name(f"{sym.acc}.requant")
        extra: dict = {"signed_out": True} if q.signed else {}
        if neg_shift is not None:
            extra["neg_shift"] = neg_shift
        return self._add(where, self.graph.add_requant, name, sym.acc, inc, bias, shift=shift,
                         out_bits=q.bits, out_step=q.step, source=sym.layer, **extra)

    # -- the walk ------------------------------------------------------------------------
    def run(self) -> Graph:
        if self.model.training:
            raise ExportError("model is in training mode; call model.eval() before export "
                              "(BatchNorm is folded with its running statistics)")
        try:
            gm = trace(self.model)
        except Exception as e:  # fx reports untraceable Python control flow in many ways
            raise ExportError(f"cannot trace {type(self.model).__name__} with torch.fx: {e}") from None
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if any(isinstance(s, Image) for s in self.syms.values()):
                    raise ExportError(f"input {node.name!r}: the model must take exactly one input")
                self.syms[node] = Image()
            elif node.op == "call_module":
                self.syms[node] = self._module(node)
            elif node.op in ("call_function", "call_method"):
                self.syms[node] = self._function(node)
            elif node.op == "output":
                self._output(node)
            else:
                raise ExportError(f"{node.op} {node.target!r}: not supported by export")
        try:
            self.graph.validate()
        except GraphError as e:
            raise ExportError(f"exported graph is invalid: {e}") from None
        return self.graph

    def _arg(self, node: torch.fx.Node, where: str, index: int = 0) -> object:
        arg = node.args[index] if len(node.args) > index else None
        if not isinstance(arg, torch.fx.Node) or arg not in self.syms:
            raise ExportError(f"{where}: argument {index} is {arg!r}, not a tensor of the network")
        return _tensor(self.syms[arg], where)

    def _module(self, node: torch.fx.Node) -> object:
        mod = self.modules[node.target]
        where = f"layer {node.target!r} ({type(mod).__name__})"
        x = self._arg(node, where)
        if isinstance(mod, (QConv2d, QLinear)):
            return self._qlayer(node.target, mod, x)
        if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            return self._batchnorm(mod, x, where)
        if type(mod) is nn.ReLU:
            return Struct("relu", (x,), node.target)
        if isinstance(mod, (mixq_ops_layers.QGlobalAvgPool, mixq_ops_layers.QAvgPool2d)):
            return self._avgpool(node.target, mod, x, where)
        if isinstance(mod, mixq_ops_layers.LeakyReLU):
            return Struct("leaky", (x,), node.target, {"neg_shift": mod.shift})
        if isinstance(mod, mixq_ops_layers.QAdd):
            try:
                return export_add(self, node.target, mod, (x, self._arg(node, where, 1)), where)
            except (ValueError, GraphError) as e:
                raise ExportError(str(e) if str(e).startswith(where) else f"{where}: {e}") from None
        for record in registered().values():
            if record.exports:
                try:
                    match = record.export_module(_HookContext, mod, where)
                except ValueError as e:
                    raise ExportError(str(e)) from None
                if match is not None and match.indexed:           # a split: a tuple of parts
                    if _is_flat(x):
                        raise ExportError(f"{where}: {record.name} of a flattened (N, F) tensor")
                    return Parts(record.name, x, node.target, dict(match.attrs))
                if match is not None and len(node.args) > 1:      # a module of several tensors (Concat)
                    xs = tuple(self._arg(node, where, i) for i in range(len(node.args)))
                    if any(_is_flat(s) for s in xs):
                        raise ExportError(f"{where}: {record.name} of a flattened (N, F) tensor")
                    return Struct(record.name, xs, node.target, dict(match.attrs))
                if match is not None:
                    return self._struct(record.name, x, node.target, where, match.attrs)
        if isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise ExportError(f"{where}: only flatten(start_dim=1) is supported")
            return self._struct("flatten", x, node.target, where)
        if isinstance(mod, (nn.Identity, nn.Dropout)):
            return x
        kind = "a supernet layer: export a fixed-precision model" if getattr(mod, "_mixq_leaf", False) \
            else "not a quantised layer" if isinstance(mod, (nn.Conv2d, nn.Linear)) else "not supported"
        raise ExportError(f"{where}: {kind}")

    def _struct(self, op: str, x: object, name: str, where: str, attrs: dict | None = None) -> Struct:
        if isinstance(x, Affine) and x.flat or isinstance(x, Struct) and x.op == "flatten":
            if op != "flatten":
                raise ExportError(f"{where}: {op} of a flattened (N, F) tensor")
        return Struct(op, (x,), name, dict(attrs or {}))

    def _qlayer(self, name: str, mod: nn.Module, x: object) -> Affine:
        where = f"layer {name!r} ({type(mod).__name__})"
        aq = mod.act_quant
        if isinstance(aq, InputQuantizer):
            q = Quant("input", aq.bits, 2.0 ** -aq.bits)
        elif isinstance(aq, ActQuantizer):
            q = Quant("act", aq.bits, float(_np(aq.step())), bool(aq.signed))
        else:
            raise ExportError(f"{where}: unknown activation quantiser {type(aq).__name__}")
        if q.step <= 0:
            raise ExportError(f"{where}: activation step {q.step} is not positive")
        w_codes = mod.weight_quant.codes(mod.weight).cpu().numpy().astype(np.int64)
        s_w = float(_np(mod.weight_quant.step(mod.weight)))
        out = mod.out_channels if isinstance(mod, QConv2d) else mod.out_features
        offset = _np(mod.bias) if mod.bias is not None else np.zeros(out)
        scale = np.full(out, s_w * q.step)
        if isinstance(mod, QConv2d):
            if _is_flat(x):
                raise ExportError(f"{where}: a convolution of a flattened (N, F) tensor")
            src = self.codes(x, q, name)
            node = self.graph.unique_name(name)  # a layer called twice (shared weights) becomes two nodes
            self._layer("conv", where, node, src, mod, w_codes, name)
            return Affine(node, scale, offset, False, name)
        if not _is_flat(x):
            raise ExportError(f"{where}: its input must be flattened first (torch.flatten(x, 1))")
        src = self.codes(x, q, name)
        node = self.graph.unique_name(name)
        self._layer("linear", where, node, src, mod, w_codes, name)
        return Affine(node, scale, offset, True, name)

    def act_quant(self, aq: nn.Module, where: str) -> Quant:
        """The Quant of a residual add's activation quantiser ``aq`` (ExportError for another module)."""
        if not isinstance(aq, ActQuantizer):
            raise ExportError(f"{where}: unknown activation quantiser {type(aq).__name__}")
        q = Quant("act", aq.bits, float(_np(aq.step())), bool(aq.signed))
        if q.step <= 0:
            raise ExportError(f"{where}: activation step {q.step} is not positive")
        return q

    def _avgpool(self, name: str, mod: nn.Module, x: object, where: str) -> Affine:
        """An ``avgpool`` node summing ``x`` quantised by the pool's own quantiser; its mean is the sum times
        ``step / (kh*kw)``, which the consumer's requant applies."""
        quant = mod.quant
        if not isinstance(quant, ActQuantizer):
            raise ExportError(f"{where}: a float average pool (bits=None) has no integer form; export a "
                              f"fixed-precision model")
        if _is_flat(x):
            raise ExportError(f"{where}: average pool of a flattened (N, F) tensor")
        q = Quant("act", quant.bits, float(_np(quant.step())), bool(quant.signed))
        if q.step <= 0:
            raise ExportError(f"{where}: activation step {q.step} is not positive")
        src = self.codes(x, q, name)
        is_global = isinstance(mod, mixq_ops_layers.QGlobalAvgPool)
        attrs = {} if is_global else {"kh": mod.kernel, "kw": mod.kernel}
        node = self._add(where, self.graph.add, "avgpool", self.graph.unique_name(name), [src], attrs)
        c, h, w = self.graph.value_info(src).shape
        ho, wo = self.graph.value_info(node).shape[1:]
        count = (h // ho) * (w // wo)
        return Affine(node, np.full(c, q.step / count), np.zeros(c), is_global, name)

    def _layer(self, op: str, where: str, node: str, src: str, mod: nn.Module, w_codes: np.ndarray,
               source: str) -> str:
        """The node of a quantised layer, made by its op's export hook."""
        try:
            return op_def(op).export_layer(self.graph, node, src, mod, w_codes, w_bits=mod.bitw, where=where,
                                           source=source)
        except GraphError as e:
            raise ExportError(f"{where}: {e}") from None
        except ValueError as e:
            raise ExportError(str(e)) from None

    def _batchnorm(self, mod: nn.Module, x: object, where: str) -> Affine:
        if not isinstance(x, Affine):
            raise ExportError(f"{where}: BatchNorm must directly follow a quantised conv/linear "
                              f"(before ReLU, pooling or concatenation) to be folded")
        if x.flat != isinstance(mod, nn.BatchNorm1d):
            raise ExportError(f"{where}: BatchNorm{'1d' if x.flat else '2d'} expected after {x.layer!r}")
        if mod.running_mean is None or mod.running_var is None:
            raise ExportError(f"{where}: no running statistics (track_running_stats=False) to fold")
        if mod.num_features != x.scale.size:
            raise ExportError(f"{where}: {mod.num_features} features after {x.scale.size}-channel {x.layer!r}")
        g = 1.0 / np.sqrt(_np(mod.running_var) + mod.eps)
        beta = np.zeros_like(g)
        if mod.affine:
            g, beta = g * _np(mod.weight), _np(mod.bias)
        # BN(acc*s + b) = acc*s*g + (b - mu)*g + beta
        return Affine(x.acc, x.scale * g, (x.offset - _np(mod.running_mean)) * g + beta, x.flat, x.layer)

    def _function(self, node: torch.fx.Node) -> object:
        fn = node.target
        where = f"{node.op} {node.name!r} ({fn if isinstance(fn, str) else getattr(fn, '__name__', fn)})"
        kw = dict(node.kwargs)
        if fn is operator.getitem and node.args and isinstance(self.syms.get(node.args[0]), Parts):
            parts = self.syms[node.args[0]]
            assert isinstance(parts, Parts)
            return parts.part(node.args[1], where)
        for record in registered().values():
            if not record.exports:
                continue
            try:
                match = record.export_function(_HookContext, fn, tuple(node.args), kw, where)
            except ValueError as e:
                raise ExportError(str(e)) from None
            if match is None:
                continue
            syms = []
            for a in match.inputs:
                if not isinstance(a, torch.fx.Node) or a not in self.syms:
                    raise ExportError(f"{where}: {record.name} of {a!r}, not a tensor of the network")
                if _is_flat(self.syms[a]):
                    raise ExportError(f"{where}: {record.name} of a flattened (N, F) tensor")
                syms.append(_tensor(self.syms[a], where))
            if match.indexed:
                return Parts(record.name, syms[0], node.name, dict(match.attrs))
            return Struct(record.name, tuple(syms), node.name, match.attrs)
        x = self._arg(node, where)
        rest, kw = list(node.args[1:]), kw
        if fn in (F.relu, torch.relu, torch.relu_, "relu", "relu_"):
            return Struct("relu", (x,), node.name)
        if fn in (torch.flatten, "flatten"):
            start = rest[0] if rest else kw.get("start_dim", 0)
            end = rest[1] if len(rest) > 1 else kw.get("end_dim", -1)
            if start != 1 or end != -1:
                raise ExportError(f"{where}: only flatten(x, 1) is supported")
            return self._struct("flatten", x, node.name, where)
        if fn == "contiguous" or fn is F.dropout and not (rest[1] if len(rest) > 1 else kw.get("training", True)):
            return x
        hint = " (use torch.flatten(x, 1))" if fn in ("view", "reshape", torch.reshape) else ""
        raise ExportError(f"{where}: op not supported by export{hint}")

    def _output(self, node: torch.fx.Node) -> None:
        arg = node.args[0]
        if not isinstance(arg, torch.fx.Node):
            raise ExportError(f"output: the model must return one tensor, got {type(arg).__name__}")
        sym = _tensor(self.syms[arg], "output")
        while isinstance(sym, Struct) and sym.op == "flatten":
            sym = sym.srcs[0]
            if not (isinstance(sym, Affine) and self.graph.value_info(sym.acc).shape[1:] == (1, 1)):
                raise ExportError("output: flatten after the last layer is only supported for 1x1 maps")
        if not isinstance(sym, Affine):
            what = sym.op if isinstance(sym, Struct) else "the image"
            raise ExportError(f"output: the network output must be the last quantised layer's output "
                              f"(optionally BatchNorm), not a {what}")
        where = f"layer {sym.layer!r} (output)"
        if not (np.all(np.isfinite(sym.scale)) and np.all(np.isfinite(sym.offset))):
            raise ExportError(f"{where}: non-finite output scale or bias (a NaN parameter?)")
        if np.any(sym.scale == 0):
            raise ExportError(f"{where}: a zero output scale (BatchNorm gamma 0) cannot be dequantised")
        bias = np.floor(sym.offset / sym.scale + 0.5)
        if np.abs(bias).max() > 2 ** 31 - 1:
            raise ExportError(f"{where}: output bias {float(np.abs(bias).max()):.3g} LSBs exceeds int32")
        self._add(where, self.graph.add_output, self.graph.unique_name("output"), sym.acc, bias.astype(np.int64),
                  sym.scale, source=sym.layer)


def _tensor(sym: object, where: str) -> object:
    """``sym`` if it is one tensor; ExportError for the tuple of a split used whole."""
    if isinstance(sym, Parts):
        raise ExportError(f"{where}: takes the whole tuple of {sym.op} {sym.where!r}; index its parts "
                          f"(x1, x2 = torch.split(...)) and use them one by one")
    return sym


def _is_flat(sym: object) -> bool:
    while isinstance(sym, Struct) and sym.op in ("relu", "leaky"):
        sym = sym.srcs[0]
    return (isinstance(sym, Affine) and sym.flat) or (isinstance(sym, Struct) and sym.op == "flatten")


def export(model: nn.Module, input_shape: Sequence[int], *, name: str = "") -> Graph:
    """Integer Graph of a fixed-precision mixq ``model`` (eval mode) for frames of ``input_shape`` (C, H, W)."""
    return _Exporter(model, input_shape, name or getattr(model, "mixq_name", type(model).__name__)).run()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m mixq_nn.export weights.pt -o model.npz`` (prints the graph summary); bad input:
    ``error: ...`` on stderr and status 2, and an existing output file is replaced only once complete."""
    from .checkpoint import CheckpointError, load

    p = argparse.ArgumentParser(prog="python -m mixq_nn.export", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="fixed-precision mixq checkpoint (.pt), or an exported graph (.npz) "
                                      "with --qonnx")
    p.add_argument("-o", "--output", help="graph file to write (default: checkpoint name with .npz, unless "
                                          "--qonnx is given)")
    p.add_argument("--qonnx", metavar="OUT.onnx", help="also write the graph as a QONNX model (the only output "
                                                       "without -o) that qonnx executes with the same integers")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the graph summary")
    args = p.parse_args(argv)
    out = qonnx = None
    written = []
    try:
        src = validate.input_file(args.checkpoint, "checkpoint",
                                  suffixes=(".pt", ".pth", ".npz") if args.qonnx else (".pt", ".pth"))
        if args.output or not args.qonnx:
            out = validate.output_file(args.output if args.output else src.with_suffix(".npz"), "-o/--output")
        if args.qonnx:
            qonnx = validate.output_file(args.qonnx, "--qonnx")
            if qonnx.suffix != ".onnx":
                raise validate.InputError(f"--qonnx {args.qonnx}: the file name must end in .onnx")
        if src.suffix == ".npz":
            graph = Graph.load(src)
        else:
            ckpt = load(src)
            if ckpt.variant != "fixed":
                raise ExportError(f"{args.checkpoint}: a {ckpt.variant!r} checkpoint; export needs a trained "
                                  f"fixed-precision model")
            graph = export(ckpt.model, ckpt.input_shape, name=ckpt.name)
        if qonnx is not None:
            from .qonnx_export import QonnxExportError, to_qonnx

            try:
                model = to_qonnx(graph)
            except QonnxExportError as e:
                raise ExportError(f"--qonnx: {e}") from None
        if out is not None:
            graph.save(out)
            written.append(out)
        if qonnx is not None:
            atomic_write_bytes(qonnx, model.SerializeToString())
            written.append(qonnx)
    except (validate.InputError, CheckpointError, ExportError, GraphError) as e:
        print(f"error: {e}", file=sys.stderr)
        return validate.EXIT_BAD_INPUT
    except OSError as e:
        print(f"error: writing {qonnx if out in written or out is None else out}: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(graph.summary())
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
