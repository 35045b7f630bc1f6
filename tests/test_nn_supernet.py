"""Supernet layers (one composite conv, softmax mixing, chosen bits) and the DSP-aware cost model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixq_hw.packing import engine_macs_per_dsp
from mixq_nn import cost, models
from mixq_nn.layers import QConv2d, QLinear
from mixq_nn.quant import ActQuantizer, InputQuantizer, WeightQuantizer
from mixq_nn.supernet import MixQConv2d, MixQLinear, arch_parameters, chosen_bits, mixq_layers, weight_parameters

torch.manual_seed(0)

VGG_SHAPE = (3, 16, 16)


def _favour(model: nn.Module, bitw: list[int], bita: list[int], strength: float = 1e3) -> None:
    """Set every layer's alphas so softmax is (numerically) one-hot on the given bits."""
    with torch.no_grad():
        for layer, w, a in zip(mixq_layers(model), bitw, bita):
            layer.alpha_w.fill_(0).data[layer.wbits.index(w)] = strength
            layer.alpha_a.fill_(0).data[layer.abits.index(a)] = strength


def test_one_convolution_per_layer(monkeypatch):
    calls = {"conv2d": 0, "linear": 0}
    real_conv, real_linear = F.conv2d, F.linear

    def counting_conv(*args, **kwargs):
        calls["conv2d"] += 1
        return real_conv(*args, **kwargs)

    def counting_linear(*args, **kwargs):
        calls["linear"] += 1
        return real_linear(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting_conv)
    monkeypatch.setattr(F, "linear", counting_linear)
    for name, shape, convs, linears in [("VGGtiny", VGG_SHAPE, 6, 1), ("SkyNet", (3, 16, 32), 13, 0)]:
        calls.update(conv2d=0, linear=0)
        model = models.build(name, "supernet", input_shape=shape)
        model(torch.rand(2, *shape))
        assert calls == {"conv2d": convs, "linear": linears}, name


@pytest.mark.parametrize("weight_mode,act_mode", [("std", "hwgq"), ("lsq", "pact"), ("std", "lsq")])
def test_mixing_equals_the_expansion_over_candidate_pairs(weight_mode, act_mode):
    # conv is bilinear: conv(sum_i pa_i Qa_i(x), sum_j pw_j Qw_j(W)) = sum_ij pa_i pw_j conv(Qa_i x, Qw_j W);
    # values AND gradients (x, W, both alphas) must agree with that expansion built from plain quantisers.
    layer = MixQConv2d(3, 4, 3, padding=1, wbits=(2, 4, 8), abits=(3, 5),
                       weight_mode=weight_mode, act_mode=act_mode)
    with torch.no_grad():
        layer.alpha_w.copy_(torch.tensor([0.3, -1.0, 0.7]))
        layer.alpha_a.copy_(torch.tensor([1.5, -0.2]))
    x = (torch.randn(2, 3, 5, 5) * 0.8).requires_grad_()
    upstream = torch.randn(2, 4, 5, 5)
    (layer(x) * upstream).sum().backward()

    weight = layer.weight.detach().clone().requires_grad_()
    alpha_w = layer.alpha_w.detach().clone().requires_grad_()
    alpha_a = layer.alpha_a.detach().clone().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    wqs = [WeightQuantizer(w, weight_mode) for w in layer.wbits]
    aqs = [ActQuantizer(a, act_mode) for a in layer.abits]
    for q, orig in zip(wqs + aqs, list(layer.weight_quants) + list(layer.act_quants)):
        q.load_state_dict(orig.state_dict())
    pw, pa = F.softmax(alpha_w, 0), F.softmax(alpha_a, 0)
    expected = sum(pa[i] * pw[j] * F.conv2d(aq(x2), wq(weight), padding=1)
                   for i, aq in enumerate(aqs) for j, wq in enumerate(wqs))
    (expected * upstream).sum().backward()
    assert torch.allclose(layer(x), expected, atol=1e-5)
    for got, want in [(x.grad, x2.grad), (layer.weight.grad, weight.grad),
                      (layer.alpha_w.grad, alpha_w.grad), (layer.alpha_a.grad, alpha_a.grad)]:
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_one_hot_alphas_reduce_to_the_fixed_layer():
    mix = MixQLinear(6, 3, wbits=(2, 3, 4, 5), abits=(2, 6))
    fixed = QLinear(6, 3, bitw=4, bita=6)
    fixed.load_state_dict(mix.state_dict(), strict=False)
    _favour(mix, [4], [6])
    x = torch.rand(4, 6) * 3
    assert torch.equal(mix(x), fixed(x))
    assert mix.chosen() == (4, 6)


def test_supernet_with_chosen_bits_equals_the_fixed_model():
    sup = models.build("VGGtiny", "supernet", input_shape=VGG_SHAPE)
    sup(torch.rand(8, *VGG_SHAPE))                    # give BN some statistics
    bitw, bita = [8, 2, 3, 4, 2, 5], [8, 3, 3, 3, 6, 3]
    _favour(sup, bitw, bita)
    assert chosen_bits(sup) == (bitw, bita)
    fixed = models.build("VGGtiny", "fixed", bitw=bitw, bita=bita, input_shape=VGG_SHAPE)
    copied = models.transfer_weights(sup, fixed)
    assert "classifier.weight" in copied and "features.0.1.running_mean" in copied
    sup.eval()
    fixed.eval()
    x = torch.randint(0, 256, (3, *VGG_SHAPE)) / 256
    assert torch.equal(sup(x), fixed(x))


def test_first_layer_input_bits_fixed_and_vgg_classifier_stays_w8a8():
    sup = models.build("VGGtiny", "supernet", input_shape=VGG_SHAPE, input_bits=6, wbits=(2, 4), abits=(3, 4))
    layers = mixq_layers(sup)
    assert len(layers) == 6
    assert layers[0].abits == (6,) and isinstance(layers[0].act_quants[0], InputQuantizer)
    assert layers[0].wbits == (2, 4) and layers[1].abits == (3, 4)
    assert isinstance(sup.classifier, QLinear) and (sup.classifier.bitw, sup.classifier.bita) == (8, 8)
    assert chosen_bits(sup) == ([2] * 6, [6, 3, 3, 3, 3, 3])   # uniform alphas: first candidate


def test_parameter_groups_partition_and_alphas_get_task_gradients():
    sup = models.build("UltraNet", "supernet", input_shape=(3, 32, 32))
    arch, weights = arch_parameters(sup), weight_parameters(sup)
    assert len(arch) == 2 * 9
    ids = {id(p) for p in arch}
    assert ids.isdisjoint(id(p) for p in weights)
    assert len(arch) + len(weights) == len(list(sup.parameters()))
    sup(torch.rand(2, 3, 32, 32)).pow(2).mean().backward()
    searchable = [p for layer in mixq_layers(sup) for p in (layer.alpha_w, layer.alpha_a) if p.numel() > 1]
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in searchable)
    assert all(p.grad is not None for p in weights if p.requires_grad)


def test_bad_candidates_raise():
    with pytest.raises(ValueError, match="weight candidate"):
        MixQConv2d(2, 2, 3, wbits=(1, 2))
    with pytest.raises(ValueError, match="activation candidate"):
        MixQConv2d(2, 2, 3, abits=(4, 4))
    with pytest.raises(ValueError, match="no supernet"):
        chosen_bits(models.build("VGGtiny", "fixed", input_shape=VGG_SHAPE))


# ---------------------------------------------------------------- cost model

def _hand_expected_dsps(model: nn.Module, shape) -> float:
    total = 0.0
    for s in cost.layer_shapes(model, shape):
        m = s.module
        if isinstance(m, (MixQConv2d, MixQLinear)):
            pw, pa = (F.softmax(t.detach().double(), 0).tolist() for t in (m.alpha_w, m.alpha_a))
            total += sum(pw[i] * pa[j] * s.macs / engine_macs_per_dsp(w, max(a, 2), s.k, signed_act=m.act_signed)
                         for i, w in enumerate(m.wbits) for j, a in enumerate(m.abits))
        elif isinstance(m, (QConv2d, QLinear)):
            signed = isinstance(m.act_quant, ActQuantizer) and m.act_quant.signed
            total += s.macs / engine_macs_per_dsp(m.bitw, m.bita, s.k, signed_act=signed)
    return total


def test_layers_after_a_leaky_relu_are_priced_with_the_signed_table():
    """ResNet8Leaky's layers after the stem read signed codes: their DSPs come from the signed-activation
    plans, fixed and supernet alike; w3a2 3x3 packs 15 MACs per DSP signed against 18 unsigned."""
    shape = (3, 16, 16)
    fixed = models.build("ResNet8Leaky", "fixed", input_shape=shape)
    rows = cost.cost_report(fixed, shape)
    assert rows[0]["macs_per_dsp"] == engine_macs_per_dsp(rows[0]["w"], rows[0]["a"], 3)      # the stem: pixels
    for r in rows[1:]:
        assert r["macs_per_dsp"] == engine_macs_per_dsp(r["w"], r["a"], r["k"], signed_act=True), r["name"]
    assert cost.dsp_cost(fixed, shape) == pytest.approx(_hand_expected_dsps(fixed, shape), rel=1e-9)
    sup = models.build("ResNet8Leaky", "supernet", input_shape=shape)
    assert float(cost.expected_dsps(sup, shape).detach()) == pytest.approx(_hand_expected_dsps(sup, shape), rel=1e-5)
    signed = cost.packing_density(3, dtype=torch.float64, signed=True)
    unsigned = cost.packing_density(3, dtype=torch.float64)
    assert 1 / signed[1, 0].item() == 15 and 1 / unsigned[1, 0].item() == 18


def test_layer_macs_by_hand():
    shape = (3, 16, 32)
    sup = models.build("SkyNetk5", "supernet", input_shape=shape)
    rows = cost.layer_shapes(sup, shape)
    assert [r.k for r in rows] == [5, 1] * 6 + [1]
    # bundle 0 at 16x32: depthwise 5x5 on 3 channels, pointwise 3 -> 48
    assert rows[0].macs == 16 * 32 * 3 * 25 and rows[1].macs == 16 * 32 * 48 * 3
    assert rows[-1].macs == 2 * 4 * 36 * 96               # head after three pools


def test_expected_dsps_matches_hand_formula_and_is_differentiable():
    shape = (3, 16, 32)
    sup = models.build("UltraNetBypass", "supernet", input_shape=shape)
    with torch.no_grad():
        for p in arch_parameters(sup):
            p.normal_()
    e = cost.expected_dsps(sup, shape)
    assert float(e.detach()) == pytest.approx(_hand_expected_dsps(sup, shape), rel=1e-5)
    e.backward()
    assert all(float(layer.alpha_w.grad.abs().sum()) > 0 for layer in mixq_layers(sup))
    bitops = cost.expected_bitops(sup, shape)
    layer0 = mixq_layers(sup)[0]
    assert bitops.requires_grad and float(cost.weight_bits(sup, shape).detach()) > 0
    ew0 = float((F.softmax(layer0.alpha_w.detach(), 0) * torch.tensor(layer0.wbits, dtype=torch.float)).sum())
    assert float(cost.weight_bits(sup, shape).detach()) > ew0 * layer0.weight.numel()


def test_expected_dsps_decreases_as_alphas_favour_narrow_widths():
    sup = models.build("VGGtiny", "supernet", input_shape=VGG_SHAPE)
    layers = mixq_layers(sup)
    results = []
    for favoured in (8, 5, 2):
        _favour(sup, [favoured] * 6, [8] + [favoured] * 5, strength=3.0)
        results.append(float(cost.expected_dsps(sup, VGG_SHAPE).detach()))
    assert results[0] > results[1] > results[2]
    # and plain gradient descent on the cost alone moves every choice to fewer DSPs
    with torch.no_grad():
        for p in arch_parameters(sup):
            p.zero_()
    opt = torch.optim.Adam(arch_parameters(sup), lr=0.1)
    start = float(cost.expected_dsps(sup, VGG_SHAPE).detach())
    for _ in range(20):
        opt.zero_grad()
        cost.expected_dsps(sup, VGG_SHAPE).backward()
        opt.step()
    assert float(cost.expected_dsps(sup, VGG_SHAPE).detach()) < 0.8 * start
    bitw, bita = chosen_bits(sup)
    assert bitw == [2] * 6 and all(a == 2 for a in bita[1:]) and len(layers) == 6


def test_dsp_cost_of_fixed_models_and_one_hot_supernet_agree():
    bitw, bita = [8, 2, 2, 2, 2, 2], [8, 3, 3, 3, 6, 3]
    fixed = models.build("VGGtiny", "fixed", bitw=bitw, bita=bita, input_shape=VGG_SHAPE)
    sup = models.build("VGGtiny", "supernet", input_shape=VGG_SHAPE)
    _favour(sup, bitw, bita)
    d = cost.dsp_cost(fixed, VGG_SHAPE)
    assert d == pytest.approx(_hand_expected_dsps(fixed, VGG_SHAPE), rel=1e-9)
    assert float(cost.expected_dsps(sup, VGG_SHAPE).detach()) == pytest.approx(d, rel=1e-5)
    assert cost.dsp_cost(sup, VGG_SHAPE) == pytest.approx(d, rel=1e-9)
    # BitOps and weight memory of the fixed model by hand
    rows = cost.quantized_layer_shapes(fixed, VGG_SHAPE)
    wa = list(zip(bitw, bita)) + [(8, 8)]
    assert float(cost.expected_bitops(fixed, VGG_SHAPE)) == pytest.approx(
        sum(r.macs * w * a for r, (w, a) in zip(rows, wa)), rel=1e-6)
    assert float(cost.weight_bits(fixed, VGG_SHAPE)) == pytest.approx(
        sum(r.weight_numel * w for r, (w, _) in zip(rows, wa)), rel=1e-6)


def test_cost_errors_and_state_untouched():
    with pytest.raises(ValueError, match="no quantised layers"):
        cost.expected_dsps(models.build("UltraNet", "float", input_shape=(3, 32, 32)), (3, 32, 32))
    model = models.build("VGGtiny", "fixed", input_shape=VGG_SHAPE)
    with pytest.raises(ValueError, match="does not accept input shape"):
        cost.dsp_cost(model, (3, 32, 32))
    with pytest.raises(ValueError, match="three positive ints"):
        cost.dsp_cost(model, (16, 16))
    with pytest.raises(ValueError, match="kernel size 7"):
        cost.packing_density(7)
    model = models.build("UltraNet", "fixed", input_shape=(3, 32, 32))
    bn = model.conv0[1]
    before = bn.running_mean.clone()
    model.train()
    cost.layer_shapes(model, (3, 48, 16))
    assert model.training and bn.training and torch.equal(bn.running_mean, before)
