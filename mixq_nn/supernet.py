"""Mixed-precision supernet layers (EdMIPS-style differentiable bit-width search).

A :class:`MixQConv2d` holds ONE float weight and runs ONE convolution per forward:

    input  = sum_i softmax(alpha_a)_i * Qa_i(x)
    weight = sum_j softmax(alpha_w)_j * Qw_j(W)

so the cost of a search step is one conv per layer plus a few element-wise quantisations, not one
conv per candidate pair.  ``alpha_w`` / ``alpha_a`` are the architecture parameters; the caller puts
them in their own optimiser group via :func:`arch_parameters` / :func:`weight_parameters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixq_hw.packing.bits import INPUT_BITS, PACKED_BITS, WEIGHT_BITS, signed_act_range

from .quant import (HALF_GAUSS_ACT_STEP, ActQuantizer, InputQuantizer, WeightQuantizer, act_code_range,
                    signed_act_step, std_weight_steps, weight_code_range)

__all__ = [
    "DEFAULT_CANDIDATES", "MixQConv2d", "MixQLinear", "is_mixq", "mixq_layers",
    "arch_parameters", "weight_parameters", "chosen_bits", "unwrap",
]

#: Candidate bit widths searched by default, for weights and for activations.
DEFAULT_CANDIDATES: tuple[int, ...] = tuple(PACKED_BITS)


def _candidates(kind: str, bits: Iterable[int], allowed: range) -> tuple[int, ...]:
    out = tuple(bits)
    if not out or len(set(out)) != len(out) or any(
            isinstance(b, bool) or not isinstance(b, int) or b not in allowed for b in out):
        raise ValueError(f"{kind} candidate bit widths must be distinct ints in "
                         f"{allowed.start}..{allowed.stop - 1}, got {out!r}")
    return tuple(sorted(out))


class _MixedFixedSteps(torch.autograd.Function):
    """``sum_j probs_j * Q_j(x)`` for candidates with constant steps (weights "std", activations "hwgq")
    in one pass: nothing per candidate is kept for backward (codes are recomputed), so a 7-candidate
    mix costs about one quantisation's memory.  Gradients: straight-through for x inside each
    candidate's clip range weighted by probs_j; d/d probs_j = sum(grad * Q_j(x))."""

    @staticmethod
    def forward(ctx, x: Tensor, probs: Tensor, steps: Tensor, bounds: tuple[tuple[int, int], ...]) -> Tensor:
        out = torch.zeros_like(x)
        for j, (lo, hi) in enumerate(bounds):
            code = (x / steps[j]).add_(0.5).floor_().clamp_(lo, hi)
            out.add_(code.mul_(steps[j]).mul_(probs[j]))
        ctx.save_for_backward(x, probs, steps)
        ctx.bounds = bounds
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, probs, steps = ctx.saved_tensors
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_p = torch.zeros_like(probs)
        for j, (lo, hi) in enumerate(ctx.bounds):
            scaled = x / steps[j]
            code = (scaled + 0.5).floor_().clamp_(lo, hi)
            grad_p[j] = (grad * code).sum() * steps[j]
            if grad_x is not None:
                inside = (scaled >= lo) & (scaled <= hi)
                grad_x.addcmul_(grad, inside.to(grad.dtype), value=float(probs[j]))
        return grad_x, grad_p, None, None


if TYPE_CHECKING:
    _MixinBase = nn.Module      # the mixin's methods run on an nn.Conv2d / nn.Linear
else:
    _MixinBase = object


class _MixQMixin(_MixinBase):
    """Shared candidate handling of the supernet layers (mixed into nn.Conv2d / nn.Linear)."""

    _mixq_leaf = True
    wbits: tuple[int, ...]
    abits: tuple[int, ...]
    weight: Tensor
    _act_steps: Tensor

    def _init_mixq(self, wbits: Iterable[int], abits: Iterable[int], first: bool,
                   weight_mode: str, act_mode: str, act_signed: bool = False) -> None:
        self.first = first
        self.act_signed = act_signed and not first
        self.wbits = _candidates("weight", wbits, WEIGHT_BITS)
        # searched activations: the widths the cost model's packing table prices
        self.abits = (_candidates("input", abits, INPUT_BITS) if first
                      else _candidates("activation", abits, PACKED_BITS))
        self.weight_quants = nn.ModuleList(WeightQuantizer(b, weight_mode) for b in self.wbits)
        self.act_quants = nn.ModuleList(
            InputQuantizer(b) if first else ActQuantizer(b, act_mode, signed=self.act_signed)
            for b in self.abits)
        # Constant-step candidates are mixed by one fused function (see _MixedFixedSteps).
        self._fused_weights = weight_mode == "std" and len(self.wbits) > 1
        self._fused_acts = not first and act_mode == "hwgq" and len(self.abits) > 1
        self._w_bounds = tuple(weight_code_range(b) for b in self.wbits)
        a_range, a_step = ((signed_act_range, signed_act_step) if self.act_signed
                           else (act_code_range, HALF_GAUSS_ACT_STEP.__getitem__))
        self._a_bounds = tuple(a_range(b) for b in self.abits)
        self.register_buffer("_act_steps", torch.tensor(
            [a_step(b) for b in self.abits] if not first else [0.0] * len(self.abits)),
            persistent=False)
        # Zero init = uniform softmax: no width preferred before the search starts.
        self.alpha_w = nn.Parameter(torch.zeros(len(self.wbits)))
        self.alpha_a = nn.Parameter(torch.zeros(len(self.abits)))

    def mixed_input(self, x: Tensor) -> Tensor:
        """``sum_i softmax(alpha_a)_i * Qa_i(x)``."""
        probs = F.softmax(self.alpha_a, 0)
        if len(self.act_quants) == 1:
            return self.act_quants[0](x) * probs[0]
        if self._fused_acts:
            return _MixedFixedSteps.apply(x, probs.to(x.dtype), self._act_steps.to(x.dtype), self._a_bounds)
        out = probs[0] * self.act_quants[0](x)
        for i in range(1, len(self.act_quants)):
            out = out + probs[i] * self.act_quants[i](x)
        return out

    def mixed_weight(self) -> Tensor:
        """``sum_j softmax(alpha_w)_j * Qw_j(W)`` (all candidates share the one float weight W)."""
        probs = F.softmax(self.alpha_w, 0)
        if self._fused_weights:
            steps = std_weight_steps(self.weight, self.wbits)
            return _MixedFixedSteps.apply(self.weight, probs.to(self.weight.dtype), steps.to(self.weight.dtype),
                                          self._w_bounds)
        out = probs[0] * self.weight_quants[0](self.weight)
        for j in range(1, len(self.weight_quants)):
            out = out + probs[j] * self.weight_quants[j](self.weight)
        return out

    def probabilities(self) -> tuple[Tensor, Tensor]:
        """Softmax of ``alpha_w`` and of ``alpha_a``."""
        return F.softmax(self.alpha_w, 0), F.softmax(self.alpha_a, 0)

    def chosen(self) -> tuple[int, int]:
        """The (weight, activation) bits with the largest architecture weight (first on ties)."""
        return (self.wbits[int(torch.argmax(self.alpha_w.detach()))],
                self.abits[int(torch.argmax(self.alpha_a.detach()))])

    def mixq_repr(self) -> str:
        return f"wbits={self.wbits}, abits={self.abits}, first={self.first}"


class MixQConv2d(_MixQMixin, nn.Conv2d):
    """Supernet Conv2d (dense, depthwise via ``groups``, 1x1) searching weight bits over ``wbits`` and
    input bits over ``abits``; ``first=True`` quantises the image with :class:`InputQuantizer` (give a
    single ``abits`` entry to fix the input bits)."""

    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, bias: bool = False, *, wbits: Sequence[int] = DEFAULT_CANDIDATES,
                 abits: Sequence[int] = DEFAULT_CANDIDATES, first: bool = False,
                 weight_mode: str = "std", act_mode: str = "hwgq", act_signed: bool = False) -> None:
        nn.Conv2d.__init__(self, in_ch, out_ch, k, stride=stride, padding=padding, groups=groups,
                           bias=bias)
        self._init_mixq(wbits, abits, first, weight_mode, act_mode, act_signed)

    def extra_repr(self) -> str:
        return nn.Conv2d.extra_repr(self) + ", " + self.mixq_repr()

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.mixed_input(x), self.mixed_weight(), self.bias)


class MixQLinear(_MixQMixin, nn.Linear):
    """Supernet Linear layer searching weight bits over ``wbits`` and input bits over ``abits``."""

    def __init__(self, in_f: int, out_f: int, bias: bool = True, *,
                 wbits: Sequence[int] = DEFAULT_CANDIDATES, abits: Sequence[int] = DEFAULT_CANDIDATES,
                 first: bool = False, weight_mode: str = "std", act_mode: str = "hwgq",
                 act_signed: bool = False) -> None:
        nn.Linear.__init__(self, in_f, out_f, bias=bias)
        self._init_mixq(wbits, abits, first, weight_mode, act_mode, act_signed)

    def extra_repr(self) -> str:
        return nn.Linear.extra_repr(self) + ", " + self.mixq_repr()

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.mixed_input(x), self.mixed_weight(), self.bias)


def is_mixq(module: nn.Module) -> bool:
    """True for a supernet layer."""
    return isinstance(module, _MixQMixin)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel / DataParallel wrapper (which keeps it in ``.module``),
    or ``model`` itself."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) and type(model).__name__.endswith("DataParallel") else model


def mixq_layers(model: nn.Module) -> list[MixQConv2d | MixQLinear]:
    """The supernet layers of ``model`` in registration (= forward, for the zoo) order."""
    return [m for m in unwrap(model).modules() if isinstance(m, (MixQConv2d, MixQLinear))]


def arch_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every ``alpha_w`` / ``alpha_a`` of the supernet layers (the architecture optimiser's group)."""
    return [p for m in mixq_layers(model) for p in (m.alpha_w, m.alpha_a)]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter that is not an architecture parameter (weights, BN, learned steps/clips)."""
    arch = {id(p) for p in arch_parameters(model)}
    return [p for p in model.parameters() if id(p) not in arch]


def chosen_bits(model: nn.Module) -> tuple[list[int], list[int]]:
    """``(bitw, bita)`` by argmax of each supernet layer's alphas, in forward order -- the lists
    ``mixq_nn.models.build(..., variant="fixed")`` takes."""
    layers = mixq_layers(model)
    if not layers:
        raise ValueError(f"{type(unwrap(model)).__name__} has no supernet (MixQ) layers")
    pairs = [m.chosen() for m in layers]
    return [w for w, _ in pairs], [a for _, a in pairs]
