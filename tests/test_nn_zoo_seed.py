"""The seed networks' structure: DiracDeltaNet's blocks, Tiny-YOLOv3's route order, CNV's presets,
ResNet-8's residual adds and the LeakyReLU variants' signed codes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixq_nn import models
from mixq_nn.models import cnv, diracdeltanet, tinyyolo
from mixq_nn.ops_layers import LeakyReLU, QAdd, Shift, Upsample
from mixq_nn.quant import InputQuantizer


def test_diracdeltanet_layers_as_published():
    model = models.build("DiracDeltaNet", "float")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (1, 1) for c in convs)                  # only 1x1 convs
    assert (convs[0].in_channels, convs[0].out_channels, convs[1].out_channels) == (3, 32, 64)
    assert [b.shuffle.channels for b in model.blocks] == [116] * 4 + [232] * 8 + [464] * 4
    assert [b.downsample for b in model.blocks].count(True) == 3
    assert model.head[0].out_channels == 1024 and model.fc.out_features == 1000
    assert sum(isinstance(m, Shift) for m in model.modules()) == 2 + 16
    assert models.MODELS["DiracDeltaNet"].num_qlayers == diracdeltanet.num_qlayers() == 39
    seen = {}
    model.head.register_forward_hook(lambda m, i, o: seen.__setitem__("head", o.shape))
    model.eval()(torch.rand(1, 3, 224, 224))
    assert seen["head"] == (1, 1024, 7, 7)                                # avg pool 7 at 224x224


def test_diracdeltanet_block_is_split_branch_concat_shuffle():
    model = models.build("DiracDeltaNetSmall", "float", input_shape=(1, 64, 64)).eval()
    block = model.blocks[1]                                                # a non-downsampling block
    x = torch.rand(2, 32, 9, 9)
    half = x[:, 16:]
    branch = block.conv2(block.shift(block.conv1(half)))
    cat = torch.cat([x[:, :16], branch], dim=1)
    assert torch.equal(block(x), torch.cat([cat[:, 24:], cat[:, :24]], dim=1))


def test_tiny_yolo_follows_the_cfg_route_order():
    shape = (3, 64, 64)
    model = models.build("TinyYOLOv3", "float", input_shape=shape).eval()
    seen = {}
    model.conv7.register_forward_hook(lambda m, i, o: seen.__setitem__("conv7", o))
    model.backbone.register_forward_hook(lambda m, i, o: seen.__setitem__("skip", o))
    model.conv8.register_forward_hook(lambda m, i, o: seen.__setitem__("conv8_in", i[0]))
    out = model(torch.rand(1, *shape))
    assert out.shape == (1, 51, 4, 4) and seen["skip"].shape == (1, 128, 2, 2)
    # route -1, 9: the 1x1 conv's output first, the pooled 128-channel map second; then upsample
    expected = Upsample()(torch.cat([seen["conv7"], seen["skip"]], dim=1))
    assert torch.equal(seen["conv8_in"], expected)
    fixed = models.build("TinyYOLOv3", input_shape=shape)
    layers = models.quantized_layers(fixed)
    assert [m.weight_quant.mode for m in layers] == ["lsq"] * 10
    assert all(m.act_quant.mode == "lsq" for m in layers[1:])
    assert models.model_bits(fixed) == ([3] * 10, [8] + [3] * 8 + [tinyyolo.HEAD_ACT_BITS])
    assert tinyyolo.HEAD_ACT_BITS == 8 < tinyyolo.PUBLISHED_HEAD_ACT_BITS == 9
    assert [c.kernel_size[0] for c in layers] == [3, 3, 3, 3, 3, 3, 1, 1, 3, 1]


def test_leaky_variants_take_signed_codes():
    leaky = models.build("TinyYOLOv3", input_shape=(3, 32, 32), leaky=True)
    layers = models.quantized_layers(leaky)
    assert isinstance(layers[0].act_quant, InputQuantizer)
    assert [m.act_quant.signed for m in layers[1:]] == [True] * 8 + [False]  # head follows the ReLU conv
    assert sum(isinstance(m, LeakyReLU) for m in leaky.modules()) == 8
    res = models.build("ResNet8Leaky", input_shape=(3, 16, 16))
    assert all(m.act_quant.signed for m in models.quantized_layers(res)[1:])
    x = torch.rand(2, 3, 16, 16)
    codes = res.fc.act_quant.codes(res.pool(res.blocks(res.stem(x))))
    assert codes.dtype == torch.int64 and int(codes.min()) >= -128


def test_resnet8_adds_and_shortcuts():
    model = models.build("ResNet8", input_shape=(3, 32, 32))
    adds = [m for m in model.modules() if isinstance(m, QAdd)]
    assert len(adds) == 3 and [a.signed for a in adds] == [(True, False), (True, True), (True, True)]
    assert model.blocks[0].shortcut is None
    assert [(b.shortcut.stride, b.shortcut.kernel_size) for b in model.blocks[1:]] == [((2, 2), (1, 1))] * 2
    float_model = models.build("ResNet8", "float")
    assert all(isinstance(a.quant_a, nn.Identity) for a in float_model.modules() if isinstance(a, QAdd))


def test_cnv_presets_and_unpadded_convs():
    assert cnv.PRESETS["w2a2"] == ((2,) * 9, (8,) + (2,) * 8)
    for preset, b in (("w2a2", 2), ("w4a4", 4), ("w8a8", 8)):
        model = models.build(f"CNV{preset}")
        bitw, bita = models.model_bits(model)
        assert bitw == [b] * 9 and bita == [8] + [b] * 8
    convs = models.quantized_layers(models.build("CNVw2a2"))[:6]
    assert all(c.padding == (0, 0) for c in convs)
    assert models.build("CNVw2a2").classifier[0][0].in_features == 256
    with pytest.raises(ValueError, match="CNV: input height and width must be at least 32"):
        models.build("CNVw2a2", input_shape=(3, 28, 28))

