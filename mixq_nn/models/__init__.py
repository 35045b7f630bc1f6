"""The model zoo: VGG-tiny, UltraNet, UltraNet-Bypass, SkyNet, SkyNet-k5, DiracDeltaNet (and its
width-scaled small variant), the reduced Tiny-YOLOv3, FINN's CNV (W2A2 / W4A4 / W8A8 presets) and
MLPerf Tiny's ResNet-8 (and its LeakyReLU variant), each as float, supernet or fixed-precision network (``build(name, variant=...)``), plus helpers shared by search, train and export.

Bit-width lists (``bitw``, ``bita``) have one entry per *searchable* quantised layer in forward order;
``bita[0]`` is the input image's bits.  VGG-tiny's classifier is quantised at a fixed w8a8 and takes
no entry (its preset is bitw 822222, bita 833363).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import nn

from ..cost import total_macs
from ..layers import QConv2d, QLinear
from ..supernet import unwrap, chosen_bits, is_mixq
from . import cnv, diracdeltanet, resnet, skynet, tinyyolo, ultranet, vgg
from .common import VARIANTS, LayerFactory

__all__ = ["ModelInfo", "MODELS", "VARIANTS", "build", "quantized_layers", "macs", "model_bits",
           "transfer_weights", "parse_bits"]


@dataclass(frozen=True)
class ModelInfo:
    """Registry entry of one zoo model."""

    name: str
    input_shape: tuple[int, int, int]      # published (C, H, W)
    task: str                              # "classify" | "detect"
    num_outputs: int                       # classes, or output channels of the detection head
    num_qlayers: int                       # entries of bitw / bita
    default_bitw: tuple[int, ...]
    default_bita: tuple[int, ...]
    description: str
    reference_macs: int                    # MACs per frame at input_shape (REFERENCE.md: VGG-tiny 152.8 M,
    #                                        UltraNet 199.5 M, SkyNet 401 M; Bypass and k5 derived)
    pool_factor: int                       # H and W of an input_shape override must be multiples of it
    factory: Callable[..., nn.Module]      # factory(layer_factory, input_shape, **family_opts)
    family_opts: tuple[str, ...] = ()      # extra build() options the family accepts
    default_modes: tuple[tuple[str, str], ...] = (("weight_mode", "std"), ("act_mode", "hwgq"))


MODELS: dict[str, ModelInfo] = {m.name: m for m in [
    ModelInfo("VGGtiny", (3, 32, 32), "classify", 10, vgg.NUM_QLAYERS, (8, 2, 2, 2, 2, 2),
              (8, 3, 3, 3, 6, 3),
              "VGG-tiny (CIFAR-10): 3x3 convs 64-64-M-128-128-M-256-256-M, linear 4096->10 at w8a8; "
              "preset = MixQ's search at cd 3e-5", 152_805_376, vgg.POOL_FACTOR,
              lambda f, s, **o: vgg.VGGTiny(f, s, **o), ("num_classes", "channels")),
    ModelInfo("UltraNet", (3, 160, 320), "detect", ultranet.HEAD_CHANNELS, ultranet.NUM_QLAYERS,
              (4,) * 9, (8,) + (4,) * 8,
              "UltraNet (DAC-SDC 2020): 3x3 convs 16-32-64-64 with pools, four 64->64 at 10x20, 1x1 head; W4A4",
              199_526_400, ultranet.POOL_FACTOR, lambda f, s: ultranet.UltraNet(f, s, bypass=False)),
    ModelInfo("UltraNetBypass", (3, 160, 320), "detect", ultranet.HEAD_CHANNELS, ultranet.NUM_QLAYERS,
              (4,) * 9, (8,) + (4,) * 8,
              "UltraNet-Bypass (SJTU 2021): 4th conv's 20x40 map reorganised x2 and concatenated before "
              "the 8th conv (320->64); W4A4", 229_017_600, ultranet.POOL_FACTOR,
              lambda f, s: ultranet.UltraNet(f, s, bypass=True)),
    ModelInfo("SkyNet", (3, 160, 320), "detect", skynet.HEAD_CHANNELS, skynet.NUM_QLAYERS,
              (5,) * 13, (8,) * 13,
              "SkyNet (DAC-SDC 2019): six bundles dw3x3 + pw1x1, 3-48-96-192-384-512-96, 1x1 head; "
              "preset W5A8 (SkrSkr 2021)", 401_203_200, skynet.POOL_FACTOR,
              lambda f, s: skynet.SkyNet(f, s, k=3)),
    ModelInfo("SkyNetk5", (3, 160, 320), "detect", skynet.HEAD_CHANNELS, skynet.NUM_QLAYERS,
              (5,) * 13, (8,) * 13,
              "SkyNet-k5: SkyNet with 5x5 depthwise kernels; preset W5A8", 432_332_800,
              skynet.POOL_FACTOR, lambda f, s: skynet.SkyNet(f, s, k=5)),
    ModelInfo("DiracDeltaNet", (3, 224, 224), "classify", 1000, diracdeltanet.NUM_QLAYERS,
              (8,) + (4,) * (diracdeltanet.NUM_QLAYERS - 2) + (8,),
              (8,) + (4,) * (diracdeltanet.NUM_QLAYERS - 2) + (8,),
              "DiracDeltaNet (Synetgy, FPGA 2019): 1x1 convs + shifts, ShuffleNet-V2 stages 4/8/4 at "
              "116/232/464, 1x1 464->1024, global pool, FC 1000; W4A4 (first conv and FC 8-bit)",
              269_229_440, diracdeltanet.POOL_FACTOR,
              lambda f, s, **o: diracdeltanet.DiracDeltaNet(f, s, **o), diracdeltanet.WIDTH_OPTS),
    ModelInfo("DiracDeltaNetSmall", (1, 32, 32), "classify", 10, diracdeltanet.NUM_QLAYERS,
              (8,) + (4,) * (diracdeltanet.NUM_QLAYERS - 2) + (8,),
              (8,) + (4,) * (diracdeltanet.NUM_QLAYERS - 2) + (8,),
              "DiracDeltaNet width-scaled for digits: same depth, stem 16/32, stages 32/64/128, head 256, "
              "10 classes; W4A4", 556_544, diracdeltanet.POOL_FACTOR,
              lambda f, s, **o: diracdeltanet.DiracDeltaNet(f, s, name="DiracDeltaNetSmall",
                                                            **{**diracdeltanet.SMALL, **o}),
              diracdeltanet.WIDTH_OPTS),
    ModelInfo("TinyYOLOv3", (3, 416, 416), "detect", tinyyolo.HEAD_CHANNELS, tinyyolo.NUM_QLAYERS,
              (3,) * tinyyolo.NUM_QLAYERS, (8,) + (3,) * (tinyyolo.NUM_QLAYERS - 2) + (tinyyolo.HEAD_ACT_BITS,),
              "reduced Tiny-YOLOv3 (Tiny-YOLO-LSQ, DAC 2020): 3x3 convs 16-32-64-128-128 with pools, "
              "3x3 192, 1x1 256, 1x1 128, concat + upsample, 3x3 192, 1x1 head 51; LSQ W3A3 (head input "
              "8-bit: published 9)", 1_129_406_720, tinyyolo.POOL_FACTOR,
              lambda f, s, **o: tinyyolo.TinyYOLOv3(f, s, **o), ("leaky", "channels"),
              (("weight_mode", "lsq"), ("act_mode", "lsq"))),
] + [
    ModelInfo(f"CNV{preset}", (3, 32, 32), "classify", 10, cnv.NUM_QLAYERS, bits[0], bits[1],
              f"FINN CNV (BNN-PYNQ): unpadded 3x3 convs 64-64-M-128-128-M-256-256, FC 256-512-512-10; "
              f"{preset.upper()}", 59_461_376, cnv.POOL_FACTOR,
              lambda f, s, **o: cnv.CNV(f, s, **o), ("num_classes", "channels"))
    for preset, bits in cnv.PRESETS.items()
] + [
    ModelInfo("ResNet8", (3, 32, 32), "classify", 10, resnet.NUM_QLAYERS, (8,) + (4,) * 8 + (8,),
              (8,) + (4,) * 9,
              "ResNet-8 (MLPerf Tiny): conv 16, residual stages 16/32/64, global pool, FC 10; W4A4 "
              "(first conv and FC 8-bit weights), 8-bit residual adds", 12_501_632, resnet.POOL_FACTOR,
              lambda f, s, **o: resnet.ResNet8(f, s, **o), ("num_classes", "channels")),
    ModelInfo("ResNet8Leaky", (3, 32, 32), "classify", 10, resnet.NUM_QLAYERS, (8,) + (4,) * 8 + (8,),
              (8,) + (4,) * 9,
              "ResNet-8 with LeakyReLU (slope 1/8, signed activations) instead of ReLU", 12_501_632,
              resnet.POOL_FACTOR, lambda f, s, **o: resnet.ResNet8(f, s, leaky=True, **o),
              ("num_classes", "channels")),
]}

_FACTORY_OPTS = ("wbits", "abits", "input_bits", "weight_mode", "act_mode")


def _info(name: str) -> ModelInfo:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def parse_bits(text: str | Sequence[int]) -> list[int]:
    """``"822222"`` or ``"8,2,2,2,2,2"`` (or a list) -> list of ints."""
    if not isinstance(text, str):
        return list(text)
    parts = text.split(",") if "," in text else list(text.strip())
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"bit widths must be digits (e.g. 822222) or comma-separated ints, got {text!r}") from None


def build(name: str, variant: str = "fixed", bitw: Sequence[int] | None = None,
          bita: Sequence[int] | None = None, **opts: Any) -> nn.Module:
    """Build zoo model ``name`` as ``variant`` "float" | "supernet" | "fixed".

    Fixed: ``bitw``/``bita`` (default: the registry preset).  Options: ``input_shape=(C, H, W)``,
    ``weight_mode`` ("std" | "lsq"), ``act_mode`` ("hwgq" | "lsq" | "pact") (default: the registry's
    ``default_modes``; TinyYOLOv3 is LSQ); supernet: ``wbits``/``abits``
    candidate tuples (default 2..8) and ``input_bits`` (default 8); VGGtiny, CNV, ResNet8: ``num_classes``;
    VGGtiny, CNV, ResNet8, TinyYOLOv3: ``channels`` (the conv/linear output widths but the last layer's, e.g. of a pruned network);
    DiracDeltaNet(Small): ``stem``, ``stages``, ``head``, ``num_classes`` (its widths).
    """
    info = _info(name)
    allowed = ("input_shape",) + _FACTORY_OPTS + info.family_opts
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {unknown}; accepted: {', '.join(allowed)}")
    if variant == "fixed":
        bitw = list(info.default_bitw) if bitw is None else parse_bits(bitw)
        bita = list(info.default_bita) if bita is None else parse_bits(bita)
    factory_opts = {**dict(info.default_modes), **{k: opts[k] for k in _FACTORY_OPTS if k in opts}}
    factory = LayerFactory(name, variant, info.num_qlayers, bitw=bitw, bita=bita, **factory_opts)
    family = {k: opts[k] for k in info.family_opts if k in opts}
    model = info.factory(factory, tuple(opts.get("input_shape", info.input_shape)), **family)
    setattr(model, "mixq_name", name)            # plain attributes, not submodules
    setattr(model, "mixq_variant", variant)
    return model


def quantized_layers(model: nn.Module, include_fixed: bool = False) -> list[nn.Module]:
    """Quantised layers (QConv2d/QLinear/MixQ*) in forward order, one per ``bitw`` entry; with
    ``include_fixed`` also the layers whose bits are fixed by the model (VGG-tiny's classifier)."""
    return [m for m in unwrap(model).modules()
            if is_mixq(m) or (isinstance(m, (QConv2d, QLinear)) and (include_fixed or not m.bits_fixed))]


def model_bits(model: nn.Module) -> tuple[list[int], list[int]]:
    """``(bitw, bita)`` of a fixed model (a supernet: its argmax choice), in ``build``'s convention."""
    if any(is_mixq(m) for m in unwrap(model).modules()):
        return chosen_bits(model)
    layers: list[Any] = quantized_layers(model)
    if not layers:
        raise ValueError(f"{type(unwrap(model)).__name__} has no quantised layers")
    return [m.bitw for m in layers], [m.bita for m in layers]


def macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """MACs per frame of every conv and linear layer at ``input_shape`` (C, H, W)."""
    return total_macs(model, input_shape)


def transfer_weights(src: nn.Module, dst: nn.Module) -> list[str]:
    """Copy every state entry of ``src`` whose name and shape exist in ``dst`` (conv/linear weights,
    biases, BN parameters and statistics; e.g. supernet -> fixed model).  Returns the copied names."""
    src_state = unwrap(src).state_dict()
    dst = unwrap(dst)
    dst_state = dst.state_dict()
    copied = [k for k, v in src_state.items() if k in dst_state and dst_state[k].shape == v.shape]
    dst.load_state_dict({**dst_state, **{k: src_state[k] for k in copied}})
    return copied
