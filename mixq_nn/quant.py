"""Fake quantisers for weights, activations and the input image (the PyTorch side of the integer contract).

Every quantiser maps a float tensor to ``code * step`` where ``code`` is the integer the hardware sees:

- weights: signed narrow range ``-(2**(w-1)-1) .. 2**(w-1)-1``, per-tensor step;
- activations: unsigned ``0 .. 2**a-1``, or signed ``-2**(a-1) .. 2**(a-1)-1`` (``signed=True``: the
  input of a layer that follows a LeakyReLU, or a residual add's branches);
- the input image (``x = pixel / 256``): the top ``a0`` bits of each 8-bit pixel.

Rounding is half UP everywhere (``floor(v + 0.5)``), the same as the hardware's
``(v + 2**(T-1)) >> T``; ``torch.round`` (half to even) is never used.  The forward value of
every quantiser is exactly ``codes(x) * step`` (custom autograd functions, no ``x + (q - x).detach()``
float residue), so export can reproduce it bit for bit.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mixq_hw.packing.bits import ACT_BITS, INPUT_BITS, act_range, check_bits, signed_act_range, weight_range

__all__ = [
    "GAUSS_WEIGHT_STEP", "HALF_GAUSS_ACT_STEP", "WEIGHT_MODES", "ACT_MODES",
    "weight_code_range", "act_code_range", "signed_act_step", "round_half_up", "std_weight_steps",
    "WeightQuantizer", "ActQuantizer", "InputQuantizer",
]

# MSE-optimal step of a symmetric mid-tread uniform quantiser with 2**w - 1 levels
# (codes -(2**(w-1)-1) .. 2**(w-1)-1, round to nearest, clipped) for a unit Gaussian:
# the narrow-range counterpart of the "optimal uniform quantizer for a Gaussian" steps that
# EdMIPS (Cai & Vasconcelos, CVPR 2020) multiplies by std(W) (cf. Max, IRE Trans. IT 1960).
# Recomputed for mixq's narrow range by minimising the closed-form Gaussian MSE numerically;
# tests/test_nn_quant.py re-derives them.  Step = constant * std(W).
GAUSS_WEIGHT_STEP: dict[int, float] = {
    2: 1.22401, 3: 0.65077, 4: 0.353411, 5: 0.193249, 6: 0.105488, 7: 0.0572613, 8: 0.0308701,
}

# MSE-optimal step of the unsigned uniform quantiser with codes 0 .. 2**a - 1 for a half-wave
# Gaussian max(0, N(0, 1)): the HWGQ fixed steps (Cai et al., "Deep Learning with Low Precision by
# Half-wave Gaussian Quantization", CVPR 2017), which assume BN makes pre-activations ~N(0, 1).
# Recomputed numerically for this code range; tests/test_nn_quant.py re-derives them.
HALF_GAUSS_ACT_STEP: dict[int, float] = {
    1: 1.22401, 2: 0.65077, 3: 0.353411, 4: 0.193249, 5: 0.105488, 6: 0.0572613, 7: 0.0308701,
    8: 0.0165282,
}

WEIGHT_MODES = ("std", "lsq")
ACT_MODES = ("hwgq", "lsq", "pact")
_MIN_STEP = 1e-8


#: Signed narrow-range weight codes of ``bits`` bits (:func:`mixq_hw.packing.bits.weight_range`).
weight_code_range = weight_range
#: Unsigned activation codes of ``bits`` bits (:func:`mixq_hw.packing.bits.act_range`).
act_code_range = act_range


def signed_act_step(bits: int) -> float:
    """Initial (HWGQ-style fixed) step of a signed ``bits``-bit activation: the positive half of a signed
    code holds ``2**(bits-1) - 1`` levels, as many as an unsigned ``bits - 1``-bit code, so it takes the
    half-Gaussian step of ``bits - 1`` bits (LeakyReLU's negative side is small)."""
    bits = check_bits("signed activation", bits, range(2, ACT_BITS.stop))   # a sign bit and one magnitude bit
    return HALF_GAUSS_ACT_STEP[bits - 1]


def round_half_up(v: Tensor) -> Tensor:
    """``floor(v + 0.5)``: the hardware's rounding (ties go up, also for negative values)."""
    return torch.floor(v + 0.5)


def std_weight_steps(w: Tensor, bits: Sequence[int]) -> Tensor:
    """EdMIPS-style steps ``GAUSS_WEIGHT_STEP[b] * std(w)`` for each width in ``bits`` (1-D, no gradient)."""
    std = w.detach().float().std(unbiased=False)
    consts = torch.tensor([GAUSS_WEIGHT_STEP[b] for b in bits], dtype=std.dtype, device=std.device)
    return (consts * std).clamp_min(_MIN_STEP)


def _check_bits(kind: str, bits: object, allowed: dict | range) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in allowed:
        lo, hi = min(allowed), max(allowed)
        raise ValueError(f"{kind} bit width must be an int in {lo}..{hi}, got {bits!r}")
    return bits


def _check_mode(kind: str, mode: object, modes: tuple[str, ...]) -> str:
    if mode not in modes:
        raise ValueError(f"{kind} quantiser mode must be one of {modes}, got {mode!r}")
    return mode  # type: ignore[return-value]


def _quantize(x: Tensor, step: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """Codes ``clamp(floor(x / step + 0.5), lo, hi)`` (as float) and the scaled input ``x / step``."""
    scaled = x / step
    return torch.clamp(round_half_up(scaled), lo, hi), scaled


class _FixedStepSTE(torch.autograd.Function):
    """Quantise with a constant step; straight-through gradient inside the clip range, zero outside."""

    @staticmethod
    def forward(ctx, x: Tensor, step: Tensor, lo: int, hi: int) -> Tensor:
        code, scaled = _quantize(x, step, lo, hi)
        ctx.save_for_backward((scaled >= lo) & (scaled <= hi))
        return code * step

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


class _LearnedStep(torch.autograd.Function):
    """LSQ (Esser et al., ICLR 2020): STE for x, and d(q)/d(step) = code - x/step inside the range,
    the clip bound outside, scaled by ``grad_scale`` = 1 / sqrt(numel * hi)."""

    @staticmethod
    def forward(ctx, x: Tensor, step: Tensor, lo: int, hi: int, grad_scale: float) -> Tensor:
        code, scaled = _quantize(x, step, lo, hi)
        ctx.save_for_backward(code, scaled)
        ctx.bounds = (lo, hi, grad_scale)
        return code * step

    @staticmethod
    def backward(ctx, grad: Tensor):
        code, scaled = ctx.saved_tensors
        lo, hi, grad_scale = ctx.bounds
        inside = (scaled >= lo) & (scaled <= hi)
        d_step = torch.where(inside, code - scaled, code)
        grad_step = (grad * d_step).sum().reshape(()) * grad_scale
        return grad * inside, grad_step, None, None, None


class _PactClip(torch.autograd.Function):
    """PACT (Choi et al., 2018): y = quantise(clip(x, 0, alpha)) with step alpha / (2**a - 1);
    STE for x inside (0, alpha), d(y)/d(alpha) = 1 where x >= alpha."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, hi: int) -> Tensor:
        step = alpha / hi
        code, _ = _quantize(x, step, 0, hi)
        ctx.save_for_backward(x, alpha)
        return code * step

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, alpha = ctx.saved_tensors
        inside = (x > 0) & (x < alpha)
        grad_alpha = (grad * (x >= alpha)).sum().reshape(())
        return grad * inside, grad_alpha, None


class WeightQuantizer(nn.Module):
    """Per-tensor signed narrow-range weight quantiser.

    ``mode="std"``: step = ``GAUSS_WEIGHT_STEP[bits] * std(W)`` (EdMIPS style, no gradient through the
    step); ``mode="lsq"``: a learned step, initialised on first use to LSQ's ``2 * mean|W| / sqrt(Qp)``.
    """

    initialized: Tensor          # buffer (lsq mode)

    def __init__(self, bits: int, mode: str = "std") -> None:
        super().__init__()
        self.bits = _check_bits("weight", bits, GAUSS_WEIGHT_STEP)
        self.mode = _check_mode("weight", mode, WEIGHT_MODES)
        self.lo, self.hi = weight_code_range(self.bits)
        if self.mode == "lsq":
            self.step_param = nn.Parameter(torch.tensor(1.0))
            self.register_buffer("initialized", torch.tensor(False))

    def extra_repr(self) -> str:
        return f"bits={self.bits}, mode={self.mode!r}"

    def init_step(self, w: Tensor) -> None:
        """(LSQ) Set the learned step from ``w``: ``2 * mean|w| / sqrt(Qp)``."""
        if self.mode != "lsq":
            return
        with torch.no_grad():
            value = 2 * w.detach().abs().mean() / self.hi ** 0.5
            self.step_param.copy_(value.clamp_min(_MIN_STEP))
            self.initialized.fill_(True)

    def step(self, w: Tensor) -> Tensor:
        """The quantisation step for weight tensor ``w`` (0-dim, detached): value = code * step."""
        return self._step(w).detach()

    def _step(self, w: Tensor) -> Tensor:
        if self.mode == "lsq":
            if not bool(self.initialized):
                self.init_step(w)
            return self.step_param.abs().clamp_min(_MIN_STEP)
        return std_weight_steps(w, (self.bits,))[0]

    def forward(self, w: Tensor) -> Tensor:
        step = self._step(w)
        if self.mode == "lsq":
            grad_scale = 1.0 / (w.numel() * self.hi) ** 0.5
            return _LearnedStep.apply(w, step, self.lo, self.hi, grad_scale)
        return _FixedStepSTE.apply(w, step, self.lo, self.hi)

    @torch.no_grad()
    def codes(self, w: Tensor) -> Tensor:
        """Integer codes of ``w`` (int64), the values the hardware multiplies."""
        code, _ = _quantize(w.detach(), self.step(w), self.lo, self.hi)
        return code.to(torch.int64)


class ActQuantizer(nn.Module):
    """Activation quantiser: clip to ``[lo * step, hi * step]`` then round half up.

    Codes are unsigned ``0 .. 2**a-1``, or with ``signed=True`` two's-complement
    ``-2**(a-1) .. 2**(a-1)-1`` (:func:`mixq_hw.packing.bits.signed_act_range`; ``a >= 2``).
    ``mode="hwgq"``: fixed step ``HALF_GAUSS_ACT_STEP[bits]`` (signed: :func:`signed_act_step`);
    ``"lsq"``: learned step (initialised to the fixed one); ``"pact"`` (unsigned only): learned clip
    ``alpha`` (initialised to the HWGQ clip), step = ``alpha / (2**a - 1)``.
    """

    fixed_step: Tensor           # buffer (hwgq mode)

    def __init__(self, bits: int, mode: str = "hwgq", signed: bool = False) -> None:
        super().__init__()
        self.bits = _check_bits("activation", bits, HALF_GAUSS_ACT_STEP)
        self.mode = _check_mode("activation", mode, ACT_MODES)
        self.signed = bool(signed)
        if self.signed and self.mode == "pact":
            raise ValueError("activation quantiser mode 'pact' clips at 0 and cannot be signed; "
                             "use 'hwgq' or 'lsq' for signed activations")
        self.lo, self.hi = signed_act_range(self.bits) if self.signed else act_code_range(self.bits)
        hwgq_step = signed_act_step(self.bits) if self.signed else HALF_GAUSS_ACT_STEP[self.bits]
        if self.mode == "lsq":
            self.step_param = nn.Parameter(torch.tensor(hwgq_step))
        elif self.mode == "pact":
            self.alpha = nn.Parameter(torch.tensor(hwgq_step * self.hi))
        else:
            self.register_buffer("fixed_step", torch.tensor(hwgq_step), persistent=False)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, mode={self.mode!r}" + (", signed=True" if self.signed else "")

    def _alpha(self) -> Tensor:
        return self.alpha.abs().clamp_min(_MIN_STEP * self.hi)

    def step(self) -> Tensor:
        """The quantisation step (0-dim, detached): value = code * step."""
        return self._step().detach()

    def _step(self) -> Tensor:
        if self.mode == "lsq":
            return self.step_param.abs().clamp_min(_MIN_STEP)
        if self.mode == "pact":
            return self._alpha() / self.hi
        return self.fixed_step

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "pact":
            return _PactClip.apply(x, self._alpha(), self.hi)
        if self.mode == "lsq":
            per_sample = x[0].numel() if x.dim() > 1 else x.numel()
            grad_scale = 1.0 / (per_sample * self.hi) ** 0.5
            return _LearnedStep.apply(x, self._step(), self.lo, self.hi, grad_scale)
        return _FixedStepSTE.apply(x, self.fixed_step.to(x.dtype), self.lo, self.hi)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """Integer codes ``lo .. hi`` of ``x`` (int64)."""
        step = self.step()
        if self.mode == "hwgq":
            step = step.to(x.dtype)
        code, _ = _quantize(x.detach(), step, self.lo, self.hi)
        return code.to(torch.int64)


class InputQuantizer(nn.Module):
    """Keeps the top ``bits`` bits of 8-bit pixels: for ``x = pixel / 256``, code = ``floor(x * 2**bits)``
    (== ``pixel >> (8 - bits)``), value ``code / 2**bits``; straight-through gradient."""

    fixed_step: Tensor           # buffer

    def __init__(self, bits: int = 8) -> None:
        super().__init__()
        self.bits = _check_bits("input", bits, INPUT_BITS)
        self.hi = (1 << self.bits) - 1
        self.register_buffer("fixed_step", torch.tensor(2.0 ** -self.bits), persistent=False)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"

    def step(self) -> Tensor:
        """``2**-bits`` (0-dim)."""
        return self.fixed_step

    def _codes(self, x: Tensor) -> Tensor:
        # x * 2**bits is exact for x = pixel / 256, so floor gives pixel >> (8 - bits).
        return torch.clamp(torch.floor(x * (1 << self.bits)), 0, self.hi)

    def forward(self, x: Tensor) -> Tensor:
        return _InputSTE.apply(x, self)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """Integer codes ``0 .. 2**bits - 1`` (int64)."""
        return self._codes(x.detach()).to(torch.int64)


class _InputSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, quantizer: InputQuantizer) -> Tensor:
        return quantizer._codes(x) * quantizer.step().to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None
