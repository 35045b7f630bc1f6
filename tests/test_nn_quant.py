"""Quantisers and fixed-precision layers: ranges, half-up rounding, gradients, hand-computed layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixq_nn.layers import MixqTracer, QConv2d, QLinear, Reorg, trace
from mixq_nn.quant import (
    GAUSS_WEIGHT_STEP,
    HALF_GAUSS_ACT_STEP,
    ActQuantizer,
    InputQuantizer,
    WeightQuantizer,
    round_half_up,
)

torch.manual_seed(0)



# ---------------------------------------------------------------- the step constants are MSE-optimal

def _phi(x: float) -> float:
    return 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2))) if math.isfinite(x) else float(x > 0)


def _cell_mse(a: float, b: float, r: float) -> float:
    """Integral over [a, b] of (x - r)^2 phi(x) dx, closed form."""
    xphi = lambda v: 0.0 if math.isinf(v) else v * _phi(v)  # noqa: E731
    p = _cdf(b) - _cdf(a)
    return p - (xphi(b) - xphi(a)) + 2 * r * (_phi(b) - _phi(a)) + r * r * p


def _gauss_mse(step: float, levels: int, symmetric: bool) -> float:
    """MSE of the uniform quantiser with codes 0..levels (and their negatives if symmetric) for N(0,1)
    (symmetric) or for the positive half of it (half-wave Gaussian, the rest maps to 0 exactly)."""
    total = _cell_mse(-step / 2 if symmetric else 0.0, step / 2, 0.0)
    for k in range(1, levels + 1):
        hi = (k + 0.5) * step if k < levels else math.inf
        total += (2 if symmetric else 1) * _cell_mse((k - 0.5) * step, hi, k * step)
    return total


def _golden_min(f, lo: float, hi: float, tol: float = 1e-7) -> float:
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    while b - a > tol:
        c, d = b - g * (b - a), a + g * (b - a)
        if f(c) < f(d):
            b = d
        else:
            a = c
    return (a + b) / 2


@pytest.mark.parametrize("bits", sorted(GAUSS_WEIGHT_STEP))
def test_weight_step_constant_is_gaussian_mse_optimum(bits):
    levels = 2 ** (bits - 1) - 1
    best = _golden_min(lambda s: _gauss_mse(s, levels, True), 1e-3, 3.0)
    assert GAUSS_WEIGHT_STEP[bits] == pytest.approx(best, rel=2e-4)


@pytest.mark.parametrize("bits", sorted(HALF_GAUSS_ACT_STEP))
def test_act_step_constant_is_half_gaussian_mse_optimum(bits):
    best = _golden_min(lambda s: _gauss_mse(s, 2 ** bits - 1, False), 1e-3, 3.0)
    assert HALF_GAUSS_ACT_STEP[bits] == pytest.approx(best, rel=2e-4)


# ---------------------------------------------------------------- ranges, rounding, exact forward value

def test_round_half_up_differs_from_round_half_even():
    v = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51])
    assert round_half_up(v).tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.0, -1.0]


@pytest.mark.parametrize("bits", range(2, 9))
def test_weight_codes_cover_the_narrow_range(bits):
    q = WeightQuantizer(bits)
    w = torch.cat([torch.randn(4000), torch.tensor([20.0, -20.0])]) * 3   # outliers reach the clip
    codes = q.codes(w)
    m = 2 ** (bits - 1) - 1
    assert codes.dtype == torch.int64
    assert int(codes.min()) == -m and int(codes.max()) == m
    step = q.step(w)
    assert float(step) == pytest.approx(GAUSS_WEIGHT_STEP[bits] * float(w.std(unbiased=False)), rel=1e-6)
    # forward value is exactly code * step, and codes are nearest (half up) inside the range
    assert torch.equal(q(w), codes.float() * step)
    expected = np.clip(np.floor(w.numpy().astype(np.float64) / float(step) + 0.5), -m, m)
    assert (codes.numpy() != expected).mean() < 1e-3   # only float32-vs-float64 division ties


@pytest.mark.parametrize("mode", ["hwgq", "lsq", "pact"])
@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_act_codes_range_and_exact_value(mode, bits):
    q = ActQuantizer(bits, mode)
    x = torch.randn(5000) * 4
    codes = q.codes(x)
    assert int(codes.min()) == 0 and int(codes.max()) == 2 ** bits - 1
    assert torch.equal(q(x), codes.float() * q.step())
    assert torch.equal(codes[x <= 0], torch.zeros_like(codes[x <= 0]))


def test_ties_round_half_up_for_weights_and_activations():
    # LSQ steps set to a power of two make exact ties representable.
    wq = WeightQuantizer(4, "lsq")
    wq.init_step(torch.ones(3))
    with torch.no_grad():
        wq.step_param.fill_(0.25)
    w = torch.tensor([-0.375, -0.125, 0.125, 0.375, 10.0, -10.0])   # -1.5, -0.5, 0.5, 1.5 steps
    assert wq.codes(w).tolist() == [-1, 0, 1, 2, 7, -7]
    aq = ActQuantizer(2, "lsq")
    with torch.no_grad():
        aq.step_param.fill_(0.5)
    x = torch.tensor([-0.25, 0.25, 0.75, 1.25, 1.75])                # -0.5, 0.5, 1.5, 2.5, 3.5 steps
    assert aq.codes(x).tolist() == [0, 1, 2, 3, 3]
    assert aq(x).tolist() == [0.0, 0.5, 1.0, 1.5, 1.5]


@pytest.mark.parametrize("bits", range(1, 9))
def test_input_quantizer_keeps_top_bits_exhaustively(bits):
    pixels = torch.arange(256)
    x = pixels.float() / 256
    q = InputQuantizer(bits)
    codes = q.codes(x)
    assert torch.equal(codes, pixels >> (8 - bits))
    assert float(q.step()) == 2.0 ** -bits
    assert torch.equal(q(x), codes.float() / 2 ** bits)


def test_bad_bits_and_modes_raise_value_errors():
    with pytest.raises(ValueError, match="weight bit width.*got 1"):
        WeightQuantizer(1)
    with pytest.raises(ValueError, match="got 9"):
        ActQuantizer(9)
    with pytest.raises(ValueError, match="got 0"):
        InputQuantizer(0)
    with pytest.raises(ValueError, match="'round'"):
        WeightQuantizer(4, "round")
    with pytest.raises(ValueError, match="'relu6'"):
        ActQuantizer(4, "relu6")
    with pytest.raises(ValueError, match="got True"):
        ActQuantizer(True)


# ---------------------------------------------------------------- gradients

def test_straight_through_gradients_inside_the_clip_range():
    x = torch.linspace(-1, 3, 401, requires_grad=True)
    q = ActQuantizer(2)                       # hwgq 2 bits: clip at 3 * 0.65077 = 1.952
    q(x).sum().backward()
    clip = 3 * HALF_GAUSS_ACT_STEP[2]
    inside = (x.detach() >= 0) & (x.detach() <= clip)
    assert torch.equal(x.grad, inside.float())
    w = (torch.randn(300) * 2).requires_grad_()
    wq = WeightQuantizer(3)
    wq(w).sum().backward()
    scaled = w.detach() / wq.step(w)
    assert torch.equal(w.grad, ((scaled >= -3) & (scaled <= 3)).float())
    assert 0 < w.grad.sum() < w.numel()      # some clipped, some passed


def _lsq_reference(x: torch.Tensor, step: torch.Tensor, lo: int, hi: int, grad_scale: float) -> torch.Tensor:
    """LSQ written with plain autograd: scaled step, clamp, STE round."""
    s = step * grad_scale + (step - step * grad_scale).detach()
    v = torch.clamp(x / s, lo, hi)
    return (round_half_up(v) - v).detach().add(v) * s


def test_lsq_step_gradient_matches_the_paper_formula():
    x = torch.randn(2, 3, 5, 5) * 2
    q = ActQuantizer(3, "lsq")
    x1 = x.clone().requires_grad_()
    upstream = torch.randn_like(x)
    (q(x1) * upstream).sum().backward()
    step = q.step_param.detach().clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    ref = _lsq_reference(x2, step, 0, 7, 1.0 / (x[0].numel() * 7) ** 0.5)
    (ref * upstream).sum().backward()
    assert float(q.step_param.grad) == pytest.approx(float(step.grad), rel=1e-4, abs=1e-6)
    assert torch.allclose(x1.grad, x2.grad)
    assert float(q.step_param.grad) != 0.0

    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    wq = WeightQuantizer(4, "lsq")
    (wq(w) * upstream.new_ones(())).sum().backward()
    init = 2 * w.detach().abs().mean() / 7 ** 0.5
    assert float(wq.step(w).detach()) == pytest.approx(float(init), rel=1e-6)
    step = init.clone().requires_grad_()
    w2 = w.detach().clone().requires_grad_()
    _lsq_reference(w2, step, -7, 7, 1.0 / (w.numel() * 7) ** 0.5).sum().backward()
    assert float(wq.step_param.grad) == pytest.approx(float(step.grad), rel=1e-4, abs=1e-6)
    assert torch.allclose(w.grad, w2.grad)


def test_lsq_weight_step_survives_state_dict_round_trip():
    a = WeightQuantizer(5, "lsq")
    a(torch.randn(100))
    b = WeightQuantizer(5, "lsq")
    b.load_state_dict(a.state_dict())
    w = torch.randn(100) * 10      # a different tensor must not re-initialise a loaded step
    assert float(b.step(w).detach()) == float(a.step(w).detach())


def test_pact_clip_gradient():
    q = ActQuantizer(4, "pact")
    alpha = float(q.alpha.detach())
    x = torch.linspace(-1, 2 * alpha, 500, requires_grad=True)
    q(x).sum().backward()
    assert float(q.alpha.grad) == float((x.detach() >= alpha).sum())
    assert torch.equal(x.grad, ((x.detach() > 0) & (x.detach() < alpha)).float())
    assert float(q.step()) == pytest.approx(alpha / 15)


# ---------------------------------------------------------------- fixed-precision layers by hand

def _np_codes_w(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    step = np.float32(GAUSS_WEIGHT_STEP[bits]) * np.float32(w.std())
    m = 2 ** (bits - 1) - 1
    return np.clip(np.floor(w / step + 0.5), -m, m), float(step)


def _np_codes_a(x: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    step = np.float32(HALF_GAUSS_ACT_STEP[bits])
    return np.clip(np.floor(x / step + 0.5), 0, 2 ** bits - 1), float(step)


def _np_conv(a: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int) -> np.ndarray:
    """Plain loops: (C, H, W) codes * (O, C/g, k, k) codes -> (O, H', W') exact int sums."""
    c, h, wd = a.shape
    o, cg, k, _ = w.shape
    ap = np.zeros((c, h + 2 * pad, wd + 2 * pad))
    ap[:, pad:pad + h, pad:pad + wd] = a
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((o, ho, wo))
    per_group = o // groups
    for oc in range(o):
        g = oc // per_group
        for y in range(ho):
            for x in range(wo):
                for ic in range(cg):
                    for dy in range(k):
                        for dx in range(k):
                            out[oc, y, x] += w[oc, ic, dy, dx] * ap[g * cg + ic, y * stride + dy, x * stride + dx]
    return out


@pytest.mark.parametrize("cfg", [
    dict(in_ch=3, out_ch=4, k=3, stride=1, padding=1, groups=1, bitw=3, bita=2),
    dict(in_ch=4, out_ch=4, k=3, stride=2, padding=1, groups=4, bitw=5, bita=4),   # depthwise
    dict(in_ch=5, out_ch=3, k=1, stride=1, padding=0, groups=1, bitw=8, bita=8),   # pointwise
    dict(in_ch=2, out_ch=2, k=5, stride=1, padding=2, groups=2, bitw=2, bita=3),   # depthwise 5x5
])
def test_qconv2d_equals_hand_computation(cfg):
    layer = QConv2d(cfg["in_ch"], cfg["out_ch"], cfg["k"], cfg["stride"], cfg["padding"], cfg["groups"],
                    bias=False, bitw=cfg["bitw"], bita=cfg["bita"])
    x = torch.randn(1, cfg["in_ch"], 6, 7)
    y = layer(x)[0].detach().numpy()
    wc, sw = _np_codes_w(layer.weight.detach().numpy(), cfg["bitw"])
    ac, sa = _np_codes_a(x[0].numpy(), cfg["bita"])
    acc = _np_conv(ac, wc, cfg["stride"], cfg["padding"], cfg["groups"])
    assert np.allclose(y, acc * sw * sa, rtol=1e-5, atol=1e-5 * np.abs(acc * sw * sa).max())
    assert np.array_equal(layer.weight_quant.codes(layer.weight).numpy(), wc)
    assert np.array_equal(layer.act_quant.codes(x)[0].numpy(), ac)


def test_first_layer_quantizes_pixels_and_qlinear_by_hand():
    layer = QConv2d(3, 2, 3, padding=1, bitw=4, bita=5, first=True)
    assert isinstance(layer.act_quant, InputQuantizer)
    pixels = torch.randint(0, 256, (1, 3, 4, 4))
    y = layer(pixels.float() / 256)[0].detach().numpy()
    wc, sw = _np_codes_w(layer.weight.detach().numpy(), 4)
    acc = _np_conv((pixels[0] >> 3).numpy(), wc, 1, 1, 1)
    assert np.allclose(y, acc * sw / 32, rtol=1e-5, atol=1e-6)

    lin = QLinear(6, 3, bitw=6, bita=3)
    x = torch.rand(2, 6) * 2
    y = lin(x).detach().numpy()
    wc, sw = _np_codes_w(lin.weight.detach().numpy(), 6)
    ac, sa = _np_codes_a(x.numpy(), 3)
    assert np.allclose(y, ac @ wc.T * sw * sa + lin.bias.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert (lin.bitw, lin.bita) == (6, 3)


def test_reorg_channel_order():
    x = torch.arange(2 * 4 * 6).reshape(1, 2, 4, 6).float()
    y = Reorg()(x)
    assert y.shape == (1, 8, 2, 3)
    for c in range(2):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(y[0, c * 4 + dy * 2 + dx], x[0, c, dy::2, dx::2])


def test_tracer_keeps_quantized_layers_whole():
    model = torch.nn.Sequential(QConv2d(3, 4, 3, padding=1, bitw=4, bita=8, first=True),
                                torch.nn.BatchNorm2d(4), torch.nn.ReLU(), Reorg(),
                                torch.nn.Flatten(), QLinear(64, 2, bitw=8, bita=4))
    gm = trace(model)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert targets == ["0", "1", "2", "3", "4", "5"]
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(gm(x), model(x))
    assert MixqTracer().is_leaf_module(model[0].weight_quant, "0.weight_quant")
