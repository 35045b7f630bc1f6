"""Hardware-aware cost of a (super)network: expected DSP48E2s, BitOps and weight memory.

The DSP cost of a layer is ``MACs per frame / engine_macs_per_dsp(w, a, k)``: the DSP-cycles one frame
needs when every DSP48E2 is packed as densely as the conv engine builds at that (weight bits,
activation bits, kernel size) -- the planner's ``engine_plan``, a single layout or a digit split, never
a table-only mixed-rate split.  For a supernet layer the cost is its expectation over the product of the two
softmaxes, which is differentiable in ``alpha_w`` / ``alpha_a``:

    E[DSP] = MACs * sum_ij softmax(alpha_w)_i * softmax(alpha_a)_j / engine_macs_per_dsp(w_i, a_j, k)

A layer whose input codes are signed (after a LeakyReLU: ``act_signed``) is priced with the planner's
signed-activation table, the plans its engine builds.  The packing table is imported from
``mixq_hw.packing`` (one source of truth), never copied.  Per-layer
MACs (one traced forward per model and input shape) and the 7x7 table per k are cached, so the cost
is a handful of tiny tensor ops per training step.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from mixq_hw.packing.bits import PACKED_BITS

from .layers import QConv2d, QLinear
from .quant import ActQuantizer
from .supernet import unwrap, is_mixq

__all__ = [
    "TABLE_BITS", "LayerShape", "layer_shapes", "total_macs", "quantized_layer_shapes",
    "packing_density", "expected_dsps", "expected_bitops", "weight_bits", "dsp_cost", "cost_report",
]

#: Bit widths the packing table covers (rows: weights, columns: activations).
TABLE_BITS = tuple(PACKED_BITS)
_KERNELS = (1, 3, 5)


@dataclass(frozen=True)
class LayerShape:
    """One conv/linear layer as the cost model sees it."""

    name: str
    module: Any        # a Conv2d / Linear: quantised (QConv2d, QLinear), supernet (MixQ*) or float
    macs: int          # multiply-accumulates per frame
    k: int             # kernel size (1 for linear layers)
    weight_numel: int


_shape_cache: "weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], list[LayerShape]]]" = (
    weakref.WeakKeyDictionary())
_table_cache: dict[tuple[int, str, torch.dtype, bool], Tensor] = {}


def _input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"input_shape must be three positive ints (C, H, W), got {input_shape!r}")
    return shape


def _kernel(name: str, module: Any) -> int:
    if isinstance(module, nn.Linear):
        return 1
    kh, kw = module.kernel_size
    if kh != kw:
        raise ValueError(f"layer {name!r}: only square kernels are costed, got {kh}x{kw}")
    return kh


def layer_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[LayerShape]:
    """Every Conv2d / Linear of ``model`` (quantised or not) with its MACs per frame, in call order.

    Runs one forward pass on a zero image in eval mode under ``no_grad`` (training flags restored,
    BN statistics untouched) and caches the result per model and input shape.
    """
    model = unwrap(model)
    shape = _input_shape(input_shape)
    per_model = _shape_cache.setdefault(model, {})
    if shape in per_model:
        return per_model[shape]
    names = {m: n for n, m in model.named_modules()}
    found: list[LayerShape] = []

    def hook(module: Any, inputs: tuple, output: Tensor) -> None:
        name = names.get(module, type(module).__name__)
        if isinstance(module, nn.Conv2d):
            macs = output[0].numel() * (module.in_channels // module.groups) * module.kernel_size[0] * \
                module.kernel_size[1]
        else:
            macs = output[0].numel() * module.in_features
        found.append(LayerShape(name, module, int(macs), _kernel(name, module), module.weight.numel()))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        param = next(model.parameters(), None)
        x = torch.zeros((1, *shape), device=param.device if param is not None else "cpu",
                        dtype=param.dtype if param is not None else torch.float32)
        with torch.no_grad():
            try:
                model(x)
            except RuntimeError as err:
                raise ValueError(f"{type(model).__name__} does not accept input shape {shape}: {err}") from None
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.train(mode)
    per_model[shape] = found
    return found


def total_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs per frame of every conv and linear layer."""
    return sum(s.macs for s in layer_shapes(model, input_shape))


def _is_quantized(module: nn.Module) -> bool:
    return is_mixq(module) or isinstance(module, (QConv2d, QLinear))


def quantized_layer_shapes(model: nn.Module, input_shape: Sequence[int]) -> list[LayerShape]:
    """The quantised layers' entries of :func:`layer_shapes`; ValueError if there are none."""
    shapes = [s for s in layer_shapes(model, input_shape) if _is_quantized(s.module)]
    if not shapes:
        raise ValueError(f"{type(unwrap(model)).__name__} has no quantised layers to cost "
                         "(a float model has no bit widths)")
    return shapes


def _macs_per_dsp(w: int, a: int, k: int, signed: bool = False) -> float:
    from mixq_hw.packing import engine_macs_per_dsp

    return float(engine_macs_per_dsp(w, a, k, signed_act=signed))


def _signed_input(module: Any) -> bool:
    """True when the layer's input codes are two's complement (a supernet layer's ``act_signed``, a quantised
    layer's signed activation quantiser)."""
    if is_mixq(module):
        return bool(module.act_signed)
    quant = getattr(module, "act_quant", None)
    return isinstance(quant, ActQuantizer) and quant.signed


def _table_bits(bits: int) -> int:
    # A 1-bit input code is packed exactly like a 2-bit one (unsigned, same slot).
    return max(bits, TABLE_BITS[0])


def packing_density(k: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, *,
                    signed: bool = False) -> Tensor:
    """7x7 tensor of ``1 / engine_macs_per_dsp(w, a, k)``, rows w = 2..8, columns a = 2..8 (cached);
    ``signed``: for signed activation codes."""
    if k not in _KERNELS:
        raise ValueError(f"kernel size {k} has no packing table (supported: {_KERNELS})")
    key = (k, str(device), dtype, bool(signed))
    if key not in _table_cache:
        base_key = (k, "cpu", torch.float64, bool(signed))
        if base_key not in _table_cache:
            _table_cache[base_key] = torch.tensor(
                [[1.0 / _macs_per_dsp(w, a, k, bool(signed)) for a in TABLE_BITS] for w in TABLE_BITS],
                dtype=torch.float64)
        _table_cache[key] = _table_cache[base_key].to(device=device, dtype=dtype)
    return _table_cache[key]


def _layer_bits(module: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if is_mixq(module):
        return module.wbits, module.abits
    return (module.bitw,), (module.bita,)


def _layer_probs(module: Any, like: Tensor) -> tuple[Tensor, Tensor]:
    if is_mixq(module):
        return module.probabilities()
    one = torch.ones(1, device=like.device, dtype=like.dtype)
    return one, one


def _reference_tensor(shapes: list[LayerShape]) -> Tensor:
    for s in shapes:
        if is_mixq(s.module):
            return s.module.alpha_w
    return shapes[0].module.weight


def expected_dsps(model: nn.Module, input_shape: Sequence[int]) -> Tensor:
    """Expected DSP48E2-cycles per frame (0-dim, differentiable in the architecture parameters);
    fixed-precision layers add a constant."""
    shapes = quantized_layer_shapes(model, input_shape)
    ref = _reference_tensor(shapes)
    total = torch.zeros((), device=ref.device, dtype=ref.dtype)
    for s in shapes:
        wbits, abits = _layer_bits(s.module)
        table = packing_density(s.k, ref.device, ref.dtype, signed=_signed_input(s.module))
        rows = [b - TABLE_BITS[0] for b in wbits]
        cols = [_table_bits(b) - TABLE_BITS[0] for b in abits]
        sub = table[rows][:, cols]
        pw, pa = _layer_probs(s.module, ref)
        total = total + s.macs * (pw @ sub @ pa)
    return total


def _expected_bits(module: Any, like: Tensor) -> tuple[Tensor, Tensor]:
    wbits, abits = _layer_bits(module)
    pw, pa = _layer_probs(module, like)
    return (pw * torch.tensor(wbits, dtype=pw.dtype, device=pw.device)).sum(), \
        (pa * torch.tensor(abits, dtype=pa.dtype, device=pa.device)).sum()


def expected_bitops(model: nn.Module, input_shape: Sequence[int]) -> Tensor:
    """Expected BitOps per frame: sum of MACs * E[w bits] * E[a bits] (0-dim, differentiable)."""
    shapes = quantized_layer_shapes(model, input_shape)
    ref = _reference_tensor(shapes)
    total = torch.zeros((), device=ref.device, dtype=ref.dtype)
    for s in shapes:
        ew, ea = _expected_bits(s.module, ref)
        total = total + s.macs * ew * ea
    return total


def weight_bits(model: nn.Module, input_shape: Sequence[int]) -> Tensor:
    """Expected weight memory in bits: sum of weight count * E[w bits] (biases not counted)."""
    shapes = quantized_layer_shapes(model, input_shape)
    ref = _reference_tensor(shapes)
    total = torch.zeros((), device=ref.device, dtype=ref.dtype)
    for s in shapes:
        ew, _ = _expected_bits(s.module, ref)
        total = total + s.weight_numel * ew
    return total


def _fixed_bits(module: Any) -> tuple[int, int]:
    return module.chosen() if is_mixq(module) else (module.bitw, module.bita)


def cost_report(model: nn.Module, input_shape: Sequence[int]) -> list[dict]:
    """One row per quantised layer: name, k, MACs, bits (argmax for supernet layers), MACs/DSP, DSPs."""
    rows = []
    for s in quantized_layer_shapes(model, input_shape):
        w, a = _fixed_bits(s.module)
        density = _macs_per_dsp(w, _table_bits(a), s.k, _signed_input(s.module))
        rows.append({"name": s.name, "k": s.k, "macs": s.macs, "w": w, "a": a,
                     "macs_per_dsp": density, "dsps": s.macs / density})
    return rows


def dsp_cost(model: nn.Module, input_shape: Sequence[int]) -> float:
    """DSP48E2-cycles per frame of a fixed-precision model (supernet layers: their argmax bits)."""
    return float(sum(r["dsps"] for r in cost_report(model, input_shape)))
