"""The model zoo: every model in every variant builds, trains a step, traces with fx; MACs match."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from mixq_nn import models
from mixq_nn.layers import QConv2d, QLinear, Reorg, is_leaf, trace
from mixq_nn.quant import InputQuantizer
from mixq_nn.supernet import MixQConv2d, MixQLinear

torch.manual_seed(0)

SMALL = {"VGGtiny": (3, 16, 16), "UltraNet": (3, 32, 64), "UltraNetBypass": (3, 32, 64),
         "SkyNet": (3, 16, 32), "SkyNetk5": (3, 16, 32), "DiracDeltaNet": (3, 64, 64),
         "DiracDeltaNetSmall": (1, 64, 32), "TinyYOLOv3": (3, 32, 64), "CNVw2a2": (3, 32, 32),
         "CNVw4a4": (3, 32, 36), "CNVw8a8": (1, 36, 32), "ResNet8": (3, 16, 16), "ResNet8Leaky": (3, 16, 8)}
#: Output stride of each detector's head.
HEAD_STRIDE = {"UltraNet": 16, "UltraNetBypass": 16, "SkyNet": 8, "SkyNetk5": 8, "TinyYOLOv3": 16}


def _dirac_macs(shape, stem, stages, head, classes):
    c, h, w = shape
    total = h * w * stem[0] * c
    h, w = h // 2 + 1, w // 2 + 1                       # 2x2 pool, stride 2, pad 1
    total += h * w * stem[1] * stem[0]
    h, w = h // 2 + 1, w // 2 + 1
    c = stem[1]
    for s, (count, out) in enumerate(zip((4, 8, 4), stages)):
        half, mid = out // 2, out                       # branches of out/2, expansion 2
        for b in range(count):
            if b == 0:
                fan_in = c // 2 if s == 0 else c
                h2, w2 = h // 2, w // 2
                total += h2 * w2 * half * fan_in        # branch 1: pool, 1x1
                total += h * w * mid * fan_in           # branch 2: 1x1, pool, shift, 1x1
                total += h2 * w2 * half * mid
                h, w = h2, w2
            else:
                total += 2 * h * w * mid * half
        c = out
    return total + h * w * head * c + head * classes


def _cnv_macs(shape):
    c, h, w = shape
    total = 0
    for spec in (64, 64, "M", 128, 128, "M", 256, 256):
        if spec == "M":
            h, w = h // 2, w // 2
        else:
            h, w = h - 2, w - 2
            total += h * w * spec * c * 9
            c = spec
    return total + c * h * w * 512 + 512 * 512 + 512 * 10


def _resnet8_macs(shape):
    c, h, w = shape
    total = h * w * 16 * c * 9
    c = 16
    for i, out in enumerate((16, 32, 64)):
        if i:
            h, w = h // 2, w // 2
            total += h * w * out * c                    # 1x1 stride-2 shortcut
        total += h * w * out * c * 9 + h * w * out * out * 9
        c = out
    return total + 64 * 10


def _tiny_yolo_macs(shape):
    c, h, w = shape
    total = 0
    for out in (16, 32, 64, 128, 128):
        total += h * w * out * c * 9
        c, h, w = out, h // 2, w // 2
    total += h * w * 192 * 128 * 9 + h * w * 256 * 192 + h * w * 128 * 256
    h, w = 2 * h, 2 * w                                 # concat (128 + 128), upsample
    return total + h * w * 192 * 256 * 9 + h * w * 51 * 192


def _hand_macs(name: str, shape: tuple[int, int, int]) -> int:
    """MACs per frame from the architecture descriptions in shared/REFERENCE.md, layer by layer."""
    if name == "DiracDeltaNet":
        return _dirac_macs(shape, (32, 64), (116, 232, 464), 1024, 1000)
    if name == "DiracDeltaNetSmall":
        return _dirac_macs(shape, (16, 32), (32, 64, 128), 256, 10)
    if name.startswith("CNV"):
        return _cnv_macs(shape)
    if name.startswith("ResNet8"):
        return _resnet8_macs(shape)
    if name == "TinyYOLOv3":
        return _tiny_yolo_macs(shape)
    c, h, w = shape
    total = 0
    if name == "VGGtiny":
        for spec in (64, 64, "M", 128, 128, "M", 256, 256, "M"):
            if spec == "M":
                h, w = h // 2, w // 2
            else:
                total += h * w * spec * c * 9
                c = spec
        return total + c * h * w * 10
    if name.startswith("UltraNet"):
        for out in (16, 32, 64, 64):
            total += h * w * out * c * 9
            c, h, w = out, h // 2, w // 2
        for i in range(4):
            fan_in = 64 + (256 if name == "UltraNetBypass" and i == 3 else 0)
            total += h * w * 64 * fan_in * 9
        return total + h * w * 36 * 64
    k = 5 if name == "SkyNetk5" else 3
    for i, out in enumerate((48, 96, 192, 384, 512, 96)):
        total += h * w * c * k * k + h * w * out * c
        c = out
        if i < 3:
            h, w = h // 2, w // 2
    return total + h * w * 36 * c


@pytest.mark.parametrize("name", list(models.MODELS))
def test_macs_match_the_published_architecture(name):
    info = models.MODELS[name]
    model = models.build(name, "float")
    full = models.macs(model, info.input_shape)
    assert full == _hand_macs(name, info.input_shape) == info.reference_macs
    small = models.build(name, "fixed", input_shape=SMALL[name])
    assert models.macs(small, SMALL[name]) == _hand_macs(name, SMALL[name])


def test_published_mac_figures():
    # shared/REFERENCE.md: VGG-tiny ~152.8 M, UltraNet ~199.5 M, SkyNet ~401 M, CNV ~59.46 M,
    # ResNet-8 ~12.5 M MACs per frame
    for name, published in [("VGGtiny", 152.8e6), ("UltraNet", 199.5e6), ("SkyNet", 401e6),
                            ("CNVw2a2", 59.46e6), ("ResNet8", 12.5e6)]:
        assert models.MODELS[name].reference_macs == pytest.approx(published, rel=0.01), name


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize("variant", models.VARIANTS)
def test_builds_trains_and_traces(name, variant):
    info = models.MODELS[name]
    shape = SMALL[name]
    model = models.build(name, variant, input_shape=shape)
    x = torch.randint(0, 256, (2, *shape)) / 256
    out = model(x)
    if info.task == "classify":
        assert out.shape == (2, info.num_outputs)
    else:
        pool = HEAD_STRIDE[name]
        assert out.shape == (2, info.num_outputs, shape[1] // pool, shape[2] // pool)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    gm = trace(model)
    model.eval()
    assert torch.equal(gm(x), model(x))
    # leaf modules appear whole in the graph; nothing inside them is traced
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    layers = models.quantized_layers(model, include_fixed=True)
    by_name = dict(model.named_modules())
    assert [by_name[t] for t in called if isinstance(by_name[t], (QConv2d, QLinear, MixQConv2d, MixQLinear))] == layers
    assert not any("quant" in t for t in called)
    assert len(models.quantized_layers(model)) == (0 if variant == "float" else info.num_qlayers)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_fixed_variant_bits_and_forward_order(name):
    info = models.MODELS[name]
    shape = SMALL[name]
    bitw = [2 + (i % 7) for i in range(info.num_qlayers)]
    bita = [8] + [2 + ((i * 3) % 7) for i in range(1, info.num_qlayers)]
    model = models.build(name, bitw=bitw, bita=bita, input_shape=shape)
    layers = models.quantized_layers(model)
    assert models.model_bits(model) == (bitw, bita)
    assert [m.weight_quant.bits for m in layers] == bitw
    assert isinstance(layers[0].act_quant, InputQuantizer) and layers[0].first
    assert not any(m.first for m in layers[1:])
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in layers]
    model(torch.rand(2, *shape))   # two images: BN in training mode at a 1x1 map (CNV) needs them
    for h in hooks:
        h.remove()
    assert order == layers
    default = models.build(name, input_shape=shape)
    assert models.model_bits(default) == (list(info.default_bitw), list(info.default_bita))


def test_presets_from_the_reference():
    assert models.MODELS["VGGtiny"].default_bitw == (8, 2, 2, 2, 2, 2)
    assert models.MODELS["VGGtiny"].default_bita == (8, 3, 3, 3, 6, 3)
    assert models.MODELS["UltraNet"].default_bita == (8, 4, 4, 4, 4, 4, 4, 4, 4)
    vgg = models.build("VGGtiny", input_shape=(3, 16, 16))
    assert (vgg.classifier.bitw, vgg.classifier.bita, vgg.classifier.bits_fixed) == (8, 8, True)
    assert len(models.quantized_layers(vgg, include_fixed=True)) == 7
    assert models.build("VGGtiny", bitw="822222", bita="8,3,3,3,6,3").classifier.in_features == 4096


def test_ultranet_bypass_reorganises_the_fourth_conv_before_its_pool():
    shape = (3, 32, 64)
    model = models.build("UltraNetBypass", "float", input_shape=shape).eval()
    seen = {}
    model.conv3.register_forward_hook(lambda m, i, o: seen.__setitem__("conv3", o))
    model.conv6.register_forward_hook(lambda m, i, o: seen.__setitem__("conv6", o))
    model.conv7.register_forward_hook(lambda m, i, o: seen.__setitem__("conv7_in", i[0]))
    model(torch.rand(1, *shape))
    assert seen["conv3"].shape == (1, 64, 4, 8)
    expected = torch.cat([nn.functional.pixel_unshuffle(seen["conv3"], 2), seen["conv6"]], dim=1)
    assert torch.equal(seen["conv7_in"], expected)
    assert model.conv7[0].in_channels == 320
    assert isinstance(model.reorg, Reorg) and is_leaf(model.reorg)


def test_skynet_is_depthwise_plus_pointwise():
    for name, k in [("SkyNet", 3), ("SkyNetk5", 5)]:
        model = models.build(name, input_shape=(3, 16, 32))
        convs = models.quantized_layers(model)
        depthwise, pointwise = convs[0:12:2], convs[1:12:2]
        assert all(c.groups == c.in_channels == c.out_channels and c.kernel_size == (k, k) for c in depthwise)
        assert [c.out_channels for c in pointwise] == [48, 96, 192, 384, 512, 96]
        assert all(c.kernel_size == (1, 1) for c in pointwise)
        assert convs[-1].out_channels == 36 and convs[-1].bias is not None


def test_build_errors_name_the_model_and_value():
    with pytest.raises(ValueError, match="VGGtiny: bitw needs 6 entries"):
        models.build("VGGtiny", bitw=[8, 2, 2, 2, 2, 2, 8])
    with pytest.raises(ValueError, match=r"UltraNet: bita\[3\] must be an int in 2..8, got 9"):
        models.build("UltraNet", bitw=[4] * 9, bita=[8, 4, 4, 9, 4, 4, 4, 4, 4])
    with pytest.raises(ValueError, match=r"bitw\[0\] must be an int in 2..8, got 1"):
        models.build("SkyNet", bitw=[1] + [4] * 12, bita=[8] * 13)
    with pytest.raises(ValueError, match="unknown model 'ResNet'"):
        models.build("ResNet")
    with pytest.raises(ValueError, match="variant must be one of"):
        models.build("UltraNet", "int8")
    with pytest.raises(ValueError, match="multiples of 16"):
        models.build("UltraNet", input_shape=(3, 40, 64))
    with pytest.raises(ValueError, match="three positive ints"):
        models.build("SkyNet", input_shape=(32, 64))
    with pytest.raises(ValueError, match="unknown option"):
        models.build("SkyNet", num_classes=3)
    with pytest.raises(ValueError, match="takes none"):
        models.build("VGGtiny", "supernet", bitw=[4] * 6)
    with pytest.raises(ValueError, match="act_mode"):
        models.build("VGGtiny", act_mode="relu")


def test_lsq_and_pact_options_build_and_round_trip_state():
    shape = SMALL["UltraNet"]
    a = models.build("UltraNet", weight_mode="lsq", act_mode="pact", input_shape=shape)
    a(torch.rand(2, *shape))
    b = models.build("UltraNet", weight_mode="lsq", act_mode="pact", input_shape=shape)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, *shape)
    assert torch.equal(a.eval()(x), b.eval()(x))


def test_zoo_cli_json_and_help(capsys):
    from mixq_nn.models.__main__ import main

    assert main(["--json", "--model", "UltraNet", "--model", "VGGtiny"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["UltraNet", "VGGtiny"]
    assert rows[0]["input_shape"] == [3, 160, 320] and rows[0]["macs"] == 199_526_400
    assert rows[1]["params"] == sum(p.numel() for p in models.build("VGGtiny", "float").parameters())
    assert {"name", "input_shape", "params", "macs"} <= set(rows[0])
    assert main(["--model", "SkyNet"]) == 0
    assert "401,203,200" in capsys.readouterr().out
    run = subprocess.run([sys.executable, "-m", "mixq_nn.models", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "--json" in run.stdout


def test_tiny_yolo_routes_like_the_published_lsq_cfg():
    """yolov3-tiny_lsq.cfg: route ``-1, 9`` joins the 1x1 256->128 conv's output with the 5th conv's *pooled*
    map, both at H/32, and the upsample x2 follows the concat (stock yolov3-tiny upsamples first and joins the
    unpooled map at H/16)."""
    model = models.build("TinyYOLOv3", "float", input_shape=(3, 64, 96)).eval()
    seen: dict[str, list[tuple[int, ...]]] = {}
    hooks = [module.register_forward_hook(lambda m, args, out, key=key: seen.__setitem__(
        key, [tuple(a.shape[1:]) for a in args] + [tuple(out.shape[1:])]))
        for key, module in (("concat", model.concat), ("upsample", model.upsample))]
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    for hook in hooks:
        hook.remove()
    assert seen["concat"] == [(128, 2, 3), (128, 2, 3), (256, 2, 3)]
    assert seen["upsample"] == [(256, 2, 3), (256, 4, 6)]
    assert tuple(out.shape[1:]) == (51, 4, 6)
