"""Export: the integer Graph reproduces the fake-quantised PyTorch model, layer by layer and end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixq_hw.graph import Graph, inc_port_bits
from mixq_nn import models
from mixq_nn.calibrate import calibrate_random
from mixq_nn.detection import decode, head_anchors
from mixq_nn.export import ExportError, choose_requant, export, main
from mixq_nn.layers import QConv2d, QLinear, Reorg

# ---- helpers -----------------------------------------------------------------------------


def calibrate(model: nn.Module, shape, seed: int = 0, batches: int = 2, batch: int = 12) -> nn.Module:
    """Random BN affine params, then BN statistics from a few train-mode passes on random 8-bit images."""
    return calibrate_random(model, shape, seed=seed, passes=batches, batch=batch)


def run_model(model: nn.Module, pixels: np.ndarray):
    """Float output and every quantised layer's input codes (from its own quantiser)."""
    codes, hooks = {}, []
    for name, m in model.named_modules():
        if isinstance(m, (QConv2d, QLinear)):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: codes.__setitem__(name, mod.act_quant.codes(inp[0]).numpy())))
    with torch.no_grad():
        y = model(torch.from_numpy(pixels).float() / 256).double().numpy()
    for h in hooks:
        h.remove()
    return y, codes


def forced_run(graph: Graph, pixels: np.ndarray, codes: dict):
    """Run the graph, but feed every conv/linear the MODEL's input codes (teacher forcing).

    Returns per layer (mismatch fraction, max |difference|, distinct codes) of the graph's own codes
    against the model's, and the output computed from the model's codes: every difference is then
    local to one requantization, not a cascade.
    """
    vals, stats = {}, {}
    for node in graph.nodes:
        args = [vals[s] for s in node.inputs]
        if node.op in ("conv", "linear"):
            mine = codes[node.name].reshape(args[0].shape)  # torch flattens (C, H, W): same order
            diff = np.abs(args[0] - mine)
            stats[node.name] = (float(np.mean(diff != 0)), int(diff.max()), len(np.unique(mine)))
            args = [mine]
        vals[node.name] = graph.run_node(node.name, args, pixels)
    return stats, vals[graph.output_node.name]


def dequantised(graph: Graph, out: np.ndarray) -> np.ndarray:
    return out * graph.output_node.tensors["scale"].reshape(1, -1, 1, 1)


# ---- the zoo -------------------------------------------------------------------------------

ZOO = [
    ("VGGtiny", (3, 32, 32), {}),
    ("UltraNet", (3, 32, 64), {}),
    ("UltraNet", (3, 32, 64), dict(bitw=[5, 3, 2, 5, 5, 5, 5, 5, 8], bita=[7, 3, 3, 6, 7, 7, 6, 6, 5])),
    ("UltraNetBypass", (3, 32, 64), {}),
    ("SkyNet", (3, 16, 32), {}),
    ("SkyNetk5", (3, 16, 32), dict(act_mode="lsq", weight_mode="lsq")),
    ("CNVw2a2", (3, 32, 32), {}),
    ("TinyYOLOv3", (3, 32, 64), {}),
    ("TinyYOLOv3", (3, 32, 64), {"leaky": True}),     # signed codes through max pools, concat and upsample
]


@pytest.mark.parametrize("name,shape,opts", ZOO, ids=[f"{z[0]}-{i}" for i, z in enumerate(ZOO)])
def test_zoo_model_matches_fake_quant(name, shape, opts):
    torch.manual_seed(1)
    model = calibrate(models.build(name, input_shape=shape, **opts), shape)
    graph = export(model, shape)
    assert graph.name == name and graph.input_shape == shape
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (16, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    out = dequantised(graph, graph.reference(pixels))
    y = y.reshape(out.shape)
    span = float(y.max() - y.min())

    # Layer by layer (teacher-forced): codes differ only where the model's float32 value sits within
    # the requant's 2**-inc_bits precision of a rounding tie, and then by one.
    stats, forced = forced_run(graph, pixels, codes)
    layers = models.quantized_layers(model, include_fixed=True)
    assert len(stats) == len(layers)
    total = 0.0
    for layer, (frac, worst, distinct) in stats.items():
        assert frac < 1e-3 and worst <= 1, (layer, frac, worst)
        assert distinct > 1, f"{layer}: constant codes make the comparison vacuous"
        total += frac
    assert total / len(stats) < 3e-4
    # From the model's codes, the output differs by the output bias rounding (half an LSB) only.
    scale = graph.output_node.tensors["scale"].reshape(1, -1, 1, 1)
    assert np.all(np.abs(forced * scale - y) <= 0.5 * scale + 1e-4 * span)

    # End to end, the rare one-code differences cascade through the random-weight layers (most in
    # VGG-tiny's 3-bit layers, where one code is a large step), but stay small.  Measured over six
    # seeds: max <= 5.9e-2 (VGG-tiny), <= 3.2e-2 (others); mean <= 9e-3.
    rel = np.abs(out - y).max() / span
    mean = np.abs(out - y).mean() / span
    print(f"{name} {opts}: |graph - model| / range: max {rel:.2e}, mean {mean:.2e}; forced {stats}")
    assert rel < 0.12 and mean < 0.02
    check_decisions(out, y)


def check_decisions(out: np.ndarray, y: np.ndarray) -> None:
    """The class (argmax) or the detected box (the anchor/cell of largest objectness) agree for nearly
    all images, and every disagreement is a near tie in the model's own scores."""
    n = out.shape[0]
    classify = out.shape[2:] == (1, 1)
    fields = 1 if classify else out.shape[1] // len(head_anchors(out.shape[1]))     # per anchor
    score_g = out.reshape(n, -1) if classify else out.reshape(n, -1, fields, *out.shape[2:])[:, :, 4].reshape(n, -1)
    score_m = y.reshape(n, -1) if classify else y.reshape(n, -1, fields, *y.shape[2:])[:, :, 4].reshape(n, -1)
    pick_g, pick_m = score_g.argmax(1), score_m.argmax(1)
    err = np.abs(out - y).max()
    rows = np.arange(n)
    gap = score_m[rows, pick_m] - score_m[rows, pick_g]
    assert np.all(gap[pick_g != pick_m] <= 2 * err), (gap, err)
    assert np.mean(pick_g == pick_m) >= 0.75, (pick_g, pick_m)
    if not classify:
        same = pick_g == pick_m
        boxes_g, boxes_m = decode(torch.from_numpy(out[same])), decode(torch.from_numpy(y[same]))
        assert float(torch.abs(boxes_g - boxes_m).max()) < 0.05


def test_structure_of_exported_graphs():
    shape = (3, 32, 64)
    torch.manual_seed(0)
    bypass = calibrate(models.build("UltraNetBypass", input_shape=shape), shape)
    g = export(bypass, shape)
    ops = [n.op for n in g.nodes]
    assert ops.count("conv") == 9 and ops.count("maxpool") == 4 and ops.count("reorg") == 1
    assert ops.count("concat") == 1 and ops.count("output") == 1
    # conv3 feeds conv4 (via pool) and conv7 (via reorg + concat) with the same 4-bit step: one requant.
    assert [n.op for n in g.consumers("conv3.0")] == ["requant"]
    cat = next(n for n in g.nodes if n.op == "concat")
    assert g.node(cat.inputs[0]).op == "reorg" and g.value_info(cat.name).shape == (320, 2, 4)
    assert g.node("conv0.0").attrs["a_bits"] == 8 and g.input_node.attrs["bits"] == 8
    for n in g.nodes:
        if n.op == "requant":  # W4A4: acc <= 18 bits, so inc may use the 27-bit port
            assert n.attrs["fits_dsp48"] and n.attrs["inc_bits"] <= inc_port_bits(n.attrs["acc_bits"])
    assert g.macs() == models.macs(bypass, shape)

    vgg = calibrate(models.build("VGGtiny", input_shape=(3, 16, 16)), (3, 16, 16))
    gv = export(vgg, (3, 16, 16))
    fc = gv.node("classifier")
    assert fc.op == "linear" and fc.attrs["in_features"] == 256 * 2 * 2 and fc.attrs["w_bits"] == 8
    # HWC column order: column (h*W + w)*C + c of the graph is torch's column c*H*W + h*W + w.
    wt = vgg.classifier.weight_quant.codes(vgg.classifier.weight).numpy()
    assert fc.tensors["weight"][3, (1 * 2 + 0) * 256 + 17] == wt[3, 17 * 4 + 1 * 2 + 0]


def test_pact_steps_give_one_requant_head_per_consumer():
    """UltraNetBypass with learned (PACT) clips: conv3's output feeds two different steps."""
    shape = (3, 32, 64)
    torch.manual_seed(3)
    model = models.build("UltraNetBypass", input_shape=shape, act_mode="pact")
    with torch.no_grad():
        for i, layer in enumerate(models.quantized_layers(model)[1:]):
            layer.act_quant.alpha.mul_(0.7 + 0.1 * i)  # every layer its own step
    model = calibrate(model, shape)
    g = export(model, shape)
    heads = [n for n in g.consumers("conv3.0")]
    assert len(heads) == 2 and {n.op for n in heads} == {"requant"}
    steps = {n.attrs["out_step"] for n in heads}
    assert steps == {float(model.conv4[0].act_quant.step().detach()), float(model.conv7[0].act_quant.step().detach())}
    cat = next(n for n in g.nodes if n.op == "concat")
    # both concat inputs requantised to conv7's step
    for src in cat.inputs:
        node = g.node(src)
        while node.op != "requant":
            node = g.node(node.inputs[0])
        assert node.attrs["out_step"] == pytest.approx(float(model.conv7[0].act_quant.step().detach()))
    pixels = np.random.default_rng(0).integers(0, 256, (8, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    stats, _ = forced_run(g, pixels, codes)
    assert all(frac < 1e-3 and worst <= 1 for frac, worst, _ in stats.values()), stats


# ---- hand-built models: the cases the zoo does not reach ---------------------------------

class Fork(nn.Module):
    """conv0 feeds two consumers with different bits; negative BN gammas before a max pool; a concat
    of differently-produced branches; a final BatchNorm'd linear-free 1x1 head with bias."""

    def __init__(self):
        super().__init__()
        self.conv0 = QConv2d(3, 8, 3, padding=1, bitw=4, bita=6, first=True)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv_a = QConv2d(8, 8, 3, padding=1, bitw=3, bita=4)
        self.bn_a = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv_b = QConv2d(8, 8, 3, stride=1, padding=1, groups=8, bitw=5, bita=6)
        self.bn_b = nn.BatchNorm2d(8)
        self.reorg = Reorg()
        self.conv_c = QConv2d(40, 6, 1, bias=True, bitw=6, bita=5)

    def forward(self, x):
        x0 = F.relu(self.bn0(self.conv0(x)))
        a = torch.relu(self.bn_a(self.conv_a(x0)))
        b = self.bn_b(self.conv_b(self.pool(x0))).relu()
        return self.conv_c(torch.cat([self.reorg(a), b], dim=1))


class TwoLinear(nn.Module):
    """conv -> BN -> ReLU -> pool -> flatten -> linear -> BN1d -> ReLU -> linear (the MLP tail)."""

    def __init__(self):
        super().__init__()
        self.conv = QConv2d(2, 4, 3, padding=1, bitw=4, bita=8, first=True)
        self.bn = nn.BatchNorm2d(4)
        self.fc1 = QLinear(4 * 4 * 4, 12, bias=True, bitw=5, bita=4)
        self.bn1 = nn.BatchNorm1d(12)
        self.fc2 = QLinear(12, 3, bitw=6, bita=3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc2(F.relu(self.bn1(self.fc1(torch.flatten(x, 1)))))


def _check_hand_model(model, shape, n=24, seed=5):
    torch.manual_seed(seed)
    model = calibrate(model, shape, seed=seed)
    g = export(model, shape, name="hand")
    pixels = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    stats, forced = forced_run(g, pixels, codes)
    assert all(frac == 0 and distinct > 1 for frac, _, distinct in stats.values()), stats
    out = dequantised(g, g.reference(pixels))
    scale = g.output_node.tensors["scale"].reshape(1, -1, 1, 1)
    y = y.reshape(out.shape)
    assert np.all(np.abs(out - y) <= 0.5 * scale + 1e-4 * (y.max() - y.min()))
    return model, g


def test_fork_two_consumers_and_concat():
    _, g = _check_hand_model(Fork(), (3, 8, 8))
    heads = g.consumers("conv0")
    assert sorted(n.attrs["out_bits"] for n in heads) == [4, 6]
    assert g.node("conv_b").attrs["groups"] == 8 and g.value_info("conv_c").shape == (6, 4, 4)


def test_negative_gamma_before_max_pool():
    """A channel with negative BN gamma has a decreasing requant: pooling codes is still exact."""
    model = calibrate(Fork(), (3, 8, 8))
    with torch.no_grad():
        model.bn0.weight.mul_(torch.tensor([1.0, -1.0] * 4))
    g = export(model, (3, 8, 8))
    pixels = np.random.default_rng(1).integers(0, 256, (16, 3, 8, 8), dtype=np.uint8)
    y, codes = run_model(model, pixels)
    stats, _ = forced_run(g, pixels, codes)
    assert all(frac == 0 for frac, _, _ in stats.values()), stats
    inc = g.node(g.consumers("conv0")[0].name).tensors["inc"]
    assert (inc[1::2] < 0).all() and (inc[0::2] > 0).all()


def test_two_linear_layers_and_batchnorm1d():
    _, g = _check_hand_model(TwoLinear(), (2, 8, 8))
    assert [n.op for n in g.nodes] == ["input", "conv", "requant", "maxpool", "linear", "requant",
                                       "linear", "output"]
    assert g.value_info("fc1").shape == (12, 1, 1)


# ---- requant arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize("acc_bits,out_bits", [(6, 2), (9, 4), (12, 8)])
def test_choose_requant_is_exact_on_dyadic_scales(acc_bits, out_bits):
    """With scale and offset exact multiples of 2**-12, the requant equals the real rounding exactly."""
    rng = np.random.default_rng(acc_bits)
    scale = rng.integers(-3000, 3000, 16) / 2 ** 12
    offset = rng.integers(-2 ** 16, 2 ** 16, 16) / 2 ** 12
    bound = 2 ** (acc_bits - 1) - 1
    inc, bias, shift = choose_requant(scale, offset, bound, acc_bits, out_bits)
    assert shift >= 12 and inc_port_bits(acc_bits) == 27
    acc = np.arange(-bound, bound + 1)
    for c in range(16):
        got = np.clip((acc * int(inc[c]) + int(bias[c]) + 2 ** (shift - 1)) >> shift, 0, 2 ** out_bits - 1)
        want = np.clip(np.floor(acc * scale[c] + offset[c] + 0.5), 0, 2 ** out_bits - 1)
        np.testing.assert_array_equal(got, want)


def test_choose_requant_port_widths_and_saturated_bias():
    scale = np.array([0.013, -0.002, 0.0])
    for acc_bits, port in [(17, 27), (18, 27), (19, 18), (27, 18), (30, 18)]:
        inc, bias, shift = choose_requant(scale, np.zeros(3), 2 ** (acc_bits - 1) - 1, acc_bits, 4)
        assert np.abs(inc).max() <= 2 ** (port - 1) - 1
        assert np.abs(inc).max() > 2 ** (port - 2), "inc should use its port's precision"
        assert 2 ** (acc_bits - 1) * np.abs(inc).max() + np.abs(bias).max() + 2 ** (shift - 1) < 2 ** 47
    # Huge offsets saturate every reachable acc; the clamped bias gives the same codes.
    bound = 5000
    inc, bias, shift = choose_requant(np.array([0.01, 0.01]), np.array([1e12, -1e12]), bound, 14, 3)
    acc = np.arange(-bound, bound + 1)
    assert ((acc * inc[0] + bias[0] + 2 ** (shift - 1)) >> shift >= 7).all()
    assert ((acc * inc[1] + bias[1] + 2 ** (shift - 1)) >> shift <= 0).all()
    assert abs(int(bias[0])) < 2 ** 47 and abs(int(bias[1])) < 2 ** 47


# ---- errors -----------------------------------------------------------------------------------

class Net(nn.Module):
    """A tiny model whose forward is swapped per test."""

    def __init__(self, fn, first=True, **extra):
        super().__init__()
        self.conv = QConv2d(1, 4, 3, padding=1, bitw=4, bita=8, first=first)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = QConv2d(4, 2, 1, bitw=4, bita=4)
        for k, v in extra.items():
            setattr(self, k, v)
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


def _stem(self, x):
    return F.relu(self.bn(self.conv(x)))


@pytest.mark.parametrize("fn,extra,first,match", [
    (lambda s, x: s.conv2(torch.sigmoid(_stem(s, x))), {}, True, r"sigmoid.*not supported"),
    (lambda s, x: s.conv2(_stem(s, x) + _stem(s, x)), {}, True, r"add.*not supported"),
    (lambda s, x: s.conv2(s.avg(_stem(s, x))), {"avg": nn.AvgPool2d(2)}, True, r"'avg' \(AvgPool2d\): not supported"),
    (lambda s, x: s.conv2(s.mp(_stem(s, x))), {"mp": nn.MaxPool2d(3, 2)}, True, r"'mp'.*only 2x2"),
    (lambda s, x: s.conv2(s.bn(F.relu(s.conv(x)))), {}, True, r"'bn'.*BatchNorm must directly follow"),
    (lambda s, x: s.conv2(_stem(s, x)), {}, False, r"'conv'.*InputQuantizer"),
    (lambda s, x: (s.conv2(_stem(s, x)), x), {}, True, r"one tensor"),
    (lambda s, x: F.relu(s.conv2(_stem(s, x))), {}, True, r"not a relu"),
    (lambda s, x: s.conv2(s.plain(x)), {"plain": nn.Conv2d(1, 4, 3, padding=1)}, True,
     r"'plain' \(Conv2d\): not a quantised layer"),
    (lambda s, x: s.conv2(_stem(s, x).view(-1, 4, 5, 5)), {}, True, r"view.*torch.flatten"),
    (lambda s, x: s.conv2(F.max_pool2d(F.max_pool2d(F.max_pool2d(_stem(s, x), 2), 2), 2)), {}, True,
     r"max_pool2d.*1x1; an unpadded 2x2 pool needs at least 2x2"),
])
def test_export_errors_name_layer_and_op(fn, extra, first, match):
    model = Net(fn, first=first, **extra).eval()
    with pytest.raises(ExportError, match=match):
        export(model, (1, 5, 5))


def test_export_refuses_training_mode_and_supernets():
    model = Net(lambda s, x: s.conv2(_stem(s, x)))
    with pytest.raises(ExportError, match="eval"):
        export(model.train(), (1, 5, 5))
    supernet = models.build("UltraNet", variant="supernet", input_shape=(3, 16, 32)).eval()
    with pytest.raises(ExportError, match=r"'conv0.0' \(MixQConv2d\): a supernet layer"):
        export(supernet, (3, 16, 32))
    with pytest.raises(ExportError, match="input_shape"):
        export(model.eval(), (1, 5))


# ---- files and the command line -------------------------------------------------------------

def test_cli_exports_a_checkpoint(tmp_path, capsys):
    from mixq_nn import checkpoint

    shape = (3, 16, 32)
    torch.manual_seed(4)
    model = calibrate(models.build("UltraNet", input_shape=shape), shape)
    ckpt = checkpoint.save(tmp_path / "w.pt", model, name="UltraNet", bitw=[4] * 9, bita=[8] + [4] * 8,
                           input_shape=shape)
    out = tmp_path / "model.npz"
    assert main([str(ckpt), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "requant" in text and f"wrote {out}" in text
    g = Graph.load(out)
    pixels = np.random.default_rng(0).integers(0, 256, (4, *shape), dtype=np.uint8)
    np.testing.assert_array_equal(g.reference(pixels), export(model, shape).reference(pixels))
    assert g.name == "UltraNet"

    assert main([str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x.npz")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    sup = models.build("UltraNet", variant="supernet", input_shape=shape)
    path = checkpoint.save(tmp_path / "s.pt", sup, name="UltraNet", bitw=[4] * 9, bita=[8] + [4] * 8,
                           input_shape=shape, variant="supernet")
    assert main([str(path), "-q"]) == 2
    assert "'supernet' checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()
