"""The seed networks' PyTorch operators: definitions checked exhaustively on small shapes, signed codes,
quantised add and pools exact in integers, every module a whole node of ``mixq_nn.layers.trace``."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixq_hw.packing.bits import signed_act_range
from mixq_nn.layers import QConv2d, is_leaf, trace
from mixq_nn.ops_layers import (
    SHIFT_OFFSETS,
    ChannelShuffle,
    Concat,
    LeakyReLU,
    QAdd,
    QAvgPool2d,
    QGlobalAvgPool,
    Shift,
    Split,
    Upsample,
    shift_reference,
)
from mixq_nn.quant import ActQuantizer, signed_act_step
from mixq_nn.supernet import MixQConv2d


def test_shift_offsets_are_up_left_centre_right_down():
    assert SHIFT_OFFSETS == ((-1, 0), (0, -1), (0, 0), (0, 1), (1, 0))
    x = torch.arange(5 * 3 * 3, dtype=torch.float32).reshape(1, 5, 3, 3)
    out = Shift()(x)
    # "up": row 1 of channel 0 holds row 0 of the input; the top row is zero fill
    assert torch.equal(out[0, 0, 1:], x[0, 0, :2]) and not out[0, 0, 0].any()
    assert torch.equal(out[0, 1, :, 1:], x[0, 1, :, :2]) and not out[0, 1, :, 0].any()
    assert torch.equal(out[0, 2], x[0, 2])
    assert torch.equal(out[0, 3, :, :2], x[0, 3, :, 1:]) and not out[0, 3, :, 2].any()
    assert torch.equal(out[0, 4, :2], x[0, 4, 1:]) and not out[0, 4, 2].any()


@pytest.mark.parametrize("c,h,w", list(itertools.product((1, 4, 5, 7, 11), (1, 2, 3), (1, 2, 4))))
def test_shift_matches_its_definition(c, h, w):
    x = torch.randint(-8, 8, (2, c, h, w)).float()
    assert torch.equal(Shift()(x), shift_reference(x))


def test_channel_shuffle_split_concat_upsample():
    x = torch.arange(2 * 8 * 2 * 3, dtype=torch.float32).reshape(2, 8, 2, 3)
    out = ChannelShuffle(8)(x)
    assert torch.equal(out[:, :2], x[:, 6:]) and torch.equal(out[:, 2:], x[:, :6])
    a, b = Split((3, 5))(x)
    assert a.shape[1] == 3 and b.shape[1] == 5
    assert torch.equal(Concat()(a, b), x)
    assert torch.equal(Concat()(b, a, b), torch.cat([x[:, 3:], x[:, :3], x[:, 3:]], dim=1))
    up = Upsample()(x)
    assert torch.equal(up, F.interpolate(x, scale_factor=2, mode="nearest"))
    for y, xx in itertools.product(range(4), range(6)):
        assert torch.equal(up[:, :, y, xx], x[:, :, y // 2, xx // 2])


def test_operator_errors_name_the_operator_and_value():
    with pytest.raises(ValueError, match="ChannelShuffle: channels must be a positive multiple of 4, got 6"):
        ChannelShuffle(6)
    with pytest.raises(ValueError, match=r"ChannelShuffle\(8\): input has 12 channels"):
        ChannelShuffle(8)(torch.zeros(1, 12, 2, 2))
    with pytest.raises(ValueError, match="sections sum to 4"):
        Split((2, 2))(torch.zeros(1, 5, 2, 2))
    with pytest.raises(ValueError, match="Split: sections must be positive ints"):
        Split((2, 0))
    with pytest.raises(ValueError, match="Concat: needs at least two inputs"):
        Concat()(torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"LeakyReLU: shift .* got 0"):
        LeakyReLU(0)
    with pytest.raises(ValueError, match="QAdd: branch shapes differ"):
        QAdd(4)(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="not a multiple of the kernel"):
        QAvgPool2d(2, 4)(torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match="Shift: expects an"):
        Shift()(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="'pact' clips at 0 and cannot be signed"):
        ActQuantizer(4, "pact", signed=True)
    with pytest.raises(ValueError, match=r"signed activation: 1 bits, must be an integer in 2..8"):
        ActQuantizer(1, signed=True)


def test_leaky_relu_slope_is_a_power_of_two():
    for shift in (1, 3, 7):
        x = torch.linspace(-4, 4, 33)
        assert torch.equal(LeakyReLU(shift)(x), torch.where(x >= 0, x, x * 2.0 ** -shift))


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("mode", ("hwgq", "lsq"))
def test_signed_activation_codes_cover_the_signed_range(bits, mode):
    q = ActQuantizer(bits, mode, signed=True)
    lo, hi = signed_act_range(bits)
    step = float(q.step())
    assert step == pytest.approx(signed_act_step(bits))
    # every code value, half-way points between codes (ties round up) and the clip bounds
    codes = torch.arange(lo - 2, hi + 3, dtype=torch.float64)
    x = torch.cat([codes * step, (codes + 0.5) * step, (codes - 0.25) * step]).float()
    got = q.codes(x)
    expected = torch.clamp(torch.floor(x / q.step() + 0.5), lo, hi).long()       # ties up, in float32
    assert torch.equal(got, expected)
    assert int(got.min()) == lo and int(got.max()) == hi
    assert torch.equal(q(x), got.float() * q.step())
    if mode == "lsq":
        xg = x.clone().requires_grad_(True)
        q(xg).sum().backward()
        assert q.step_param.grad is not None and xg.grad is not None


def test_signed_input_conv_and_supernet():
    conv = QConv2d(2, 3, 1, bitw=4, bita=4, act_signed=True)
    assert (conv.act_quant.lo, conv.act_quant.hi) == (-8, 7)
    x = torch.randn(2, 2, 3, 3)
    codes = conv.act_quant.codes(x)
    assert int(codes.min()) < 0
    assert torch.equal(conv.act_quant(x), codes.float() * conv.act_quant.step())
    mixed = MixQConv2d(2, 3, 1, abits=(2, 4), act_signed=True)
    assert mixed._a_bounds == ((-2, 1), (-8, 7))
    assert all(q.signed for q in mixed.act_quants)
    fused = mixed.mixed_input(x)
    probs = F.softmax(mixed.alpha_a, 0)
    assert torch.allclose(fused, sum(p * q(x) for p, q in zip(probs, mixed.act_quants)), atol=1e-6)


def test_quantised_add_is_exact_in_codes():
    add = QAdd(4, (True, False), out_bits=5)
    a, b = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4) * 3
    ca, cb = add.quant_a.codes(a), add.quant_b.codes(b)
    assert int(ca.min()) < 0 <= int(cb.min())
    s_a, s_b = float(add.quant_a.step()), float(add.quant_b.step())
    out = add(a, b)
    co = add.quant_out.codes(ca * s_a + cb * s_b)
    assert torch.equal(out, co.float() * add.quant_out.step())
    lo, hi = signed_act_range(5)
    assert lo <= int(co.min()) and int(co.max()) <= hi
    assert torch.equal(QAdd(None)(a, b), a + b)
    assert not QAdd(8, (False, False)).out_signed


def test_average_pools_average_the_codes():
    """The pools' float outputs are the integer code sums times the step over the window size, to float
    rounding (an average that sums to zero comes out as about 1e-8, not 0: the tolerance is a thousandth of a
    step, far below the step/6 that one code off would make)."""
    generator = torch.Generator().manual_seed(5)
    pool = QAvgPool2d(2, 3)
    x = torch.rand(2, 4, 4, 6, generator=generator) * 2
    codes = pool.quant.codes(x)
    sums = codes.reshape(2, 4, 2, 2, 3, 2).sum(dim=(3, 5))               # integer 2x2 sums
    step = float(pool.quant.step())
    assert torch.allclose(pool(x), sums.float() * step / 4, rtol=0, atol=step / 1000)
    gap = QGlobalAvgPool(8, signed=True)
    for _ in range(20):     # many draws: sums of zero among them
        x = torch.randn(3, 5, 2, 3, generator=generator)
        codes = gap.quant.codes(x)
        step = float(gap.quant.step())
        assert torch.allclose(gap(x), codes.sum(dim=(2, 3)).float() * step / 6, rtol=0, atol=step / 1000)
    assert torch.equal(QGlobalAvgPool(None)(x), x.mean(dim=(2, 3)))


class _Everything(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = QConv2d(1, 8, 3, padding=1, bitw=4, bita=8, first=True)
        self.shift = Shift()
        self.split = Split((4, 4))
        self.concat = Concat()
        self.shuffle = ChannelShuffle(8)
        self.up = Upsample()
        self.leaky = LeakyReLU(3)
        self.add = QAdd(6, (True, True))
        self.avg = QAvgPool2d(2, 4, signed=True)
        self.gap = QGlobalAvgPool(4, signed=True)

    def forward(self, x):
        y = self.leaky(self.shift(self.conv(x)))
        a, b = self.split(y)
        y = self.shuffle(self.concat(b, a))
        y = self.add(y, self.up(self.avg(y)))
        return self.gap(y)


def test_every_operator_is_one_node_of_the_trace():
    model = _Everything().eval()
    gm = trace(model)
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    assert called == {"conv", "shift", "split", "concat", "shuffle", "up", "leaky", "add", "avg", "gap"}
    assert all(is_leaf(getattr(model, name)) for name in called)
    x = torch.randint(0, 256, (2, 1, 8, 8)) / 256
    assert torch.equal(gm(x), model(x))
