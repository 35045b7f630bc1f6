"""The small example Graphs the tests build, in one place: pipelines, foldings, ops, builds and files.

Builders that take ``rng`` accept a numpy Generator (consumed) or an int seed.
"""

from __future__ import annotations

import numpy as np

from mixq_hw.graph import Graph


def generator(rng: np.random.Generator | int) -> np.random.Generator:
    """``rng`` itself, or a fresh Generator seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def add_requant(g: Graph, name: str, src: str, channels: int, rng: np.random.Generator, out_bits: int = 3,
                shift: int = 7, **attrs) -> str:
    """A requant node with random multipliers and biases (shift 7 unless given; ``attrs`` passed on)."""
    return g.add_requant(name, src, rng.integers(1, 40, channels), rng.integers(-200, 200, channels),
                         shift=shift, out_bits=out_bits, **attrs)


def plain_net(rng: np.random.Generator | int = 0) -> Graph:
    """conv3x3 -> requant -> maxpool -> conv3x3/2 -> requant -> depthwise 3x3 -> requant -> 1x1 -> output."""
    rng = generator(rng)
    g = Graph("plain", (3, 8, 8))
    x = g.add_input(5)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, 3, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng))
    c2 = g.add_conv("c2", p1, rng.integers(-7, 8, (6, 4, 3, 3)), w_bits=4, stride=2)
    r2 = add_requant(g, "r2", c2, 6, rng, out_bits=4)
    d3 = g.add_conv("d3", r2, rng.integers(-1, 2, (6, 1, 3, 3)), w_bits=2, groups=6)
    r3 = add_requant(g, "r3", d3, 6, rng, out_bits=2)
    c4 = g.add_conv("c4", r3, rng.integers(-15, 16, (4, 6, 1, 1)), w_bits=5)
    g.add_output("out", c4, rng.integers(-9, 9, 4), np.full(4, 0.5))
    return g


def unpadded_net(rng: np.random.Generator | int = 0, shape=(4, 6, 8), channels: int = 4) -> Graph:
    """conv3x3 'same' -> requant -> unpadded conv3x3 -> output: the second conv's window loads the
    next frame's first rows while its last output row reads this frame's, if its line buffer has room."""
    rng = generator(rng)
    g = Graph("unpadded", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (channels, shape[0], 3, 3)), w_bits=3, pad=1)
    c2 = g.add_conv("c2", add_requant(g, "r1", c1, channels, rng), rng.integers(-3, 4, (3, channels, 3, 3)),
                    w_bits=3, pad=0)
    g.add_output("out", c2, rng.integers(-9, 9, 3), np.ones(3))
    return g


def bypass_net(rng: np.random.Generator | int = 0) -> Graph:
    """The UltraNet-Bypass shape in miniature: one conv feeds a pool path and a reorg bypass, joined by concat."""
    rng = generator(rng)
    g = Graph("bypass", (2, 8, 8))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-1, 2, (4, 2, 3, 3)), w_bits=2)
    main = g.add_maxpool("p1", add_requant(g, "r1a", c1, 4, rng))
    bypass = g.add_reorg("reorg", add_requant(g, "r1b", c1, 4, rng))
    c2 = g.add_conv("c2", main, rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    c3 = g.add_conv("c3", add_requant(g, "r2", c2, 4, rng), rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    cat = g.add_concat("cat", [bypass, add_requant(g, "r3", c3, 4, rng)])
    c4 = g.add_conv("c4", cat, rng.integers(-3, 4, (5, 20, 3, 3)), w_bits=3)
    g.add_output("out", c4, rng.integers(-9, 9, 5), np.ones(5))
    return g


def linear_net(rng: np.random.Generator | int = 0) -> Graph:
    """conv -> requant -> maxpool -> linear (HWC flattening) -> output, like VGG-tiny's head."""
    rng = generator(rng)
    g = Graph("linear", (1, 4, 4))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-7, 8, (4, 1, 3, 3)), w_bits=4)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng, out_bits=8))
    fc = g.add_linear("fc", p1, rng.integers(-127, 128, (3, 16)), w_bits=8)
    g.add_output("out", fc, rng.integers(-99, 99, 3), np.ones(3))
    return g


def pool_narrowing_net(rng: np.random.Generator | int = 0, channels: int = 8) -> Graph:
    """conv3x3 (8 output lanes) -> requant -> maxpool -> conv3x3 at 2 input lanes: the pool's rows arrive in
    bursts (only while it reads every second input row) at a lane converter that takes 4 cycles a beat."""
    rng = generator(rng)
    g = Graph("pool-narrowing", (3, 8, 16))
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (channels, 3, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, channels, rng))
    c2 = g.add_conv("c2", p1, rng.integers(-3, 4, (4, channels, 3, 3)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 4), np.ones(4))
    return g


def tiny_net(rng: np.random.Generator | int = 0) -> Graph:
    """Two 3x3 convs and a 1x1 head: small enough to try every folding."""
    rng = generator(rng)
    g = Graph("tiny", (2, 4, 8))
    x = g.add_input(6)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, 2, 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng, out_bits=4))
    c2 = g.add_conv("c2", p1, rng.integers(-7, 8, (4, 4, 3, 3)), w_bits=4)
    head = g.add_conv("head", add_requant(g, "r2", c2, 4, rng), rng.integers(-1, 2, (2, 4, 1, 1)), w_bits=2)
    g.add_output("out", head, rng.integers(-9, 9, 2), np.ones(2))
    return g


def micro_net(rng: np.random.Generator | int = 0) -> Graph:
    """A 3x3 conv and a 1x1 head: small enough to try every folding on DSP and LUT multipliers."""
    rng = generator(rng)
    g = Graph("micro", (2, 4, 4))
    x = g.add_input(4)
    c1 = g.add_conv("c1", x, rng.integers(-7, 8, (4, 2, 3, 3)), w_bits=4)
    head = g.add_conv("head", add_requant(g, "r1", c1, 4, rng, out_bits=4), rng.integers(-7, 8, (2, 4, 1, 1)),
                      w_bits=4)
    g.add_output("out", head, rng.integers(-9, 9, 2), np.ones(2))
    return g


def concat3_net(rng, shape=(3, 6, 8)) -> Graph:
    """1x1 conv -> two requants; concat(shift of the first, a 3x3 conv of the second, the first) -> 1x1 conv."""
    g = Graph("concat3", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 1, 1)), w_bits=3)
    a, b = add_requant(g, "ra", c1, 4, rng), add_requant(g, "rb", c1, 4, rng)
    c2 = g.add_conv("c2", b, rng.integers(-3, 4, (8, 4, 3, 3)), w_bits=3)
    cat = g.add_concat("cat", [g.add("shift", "sh", [a]), add_requant(g, "r2", c2, 8, rng), a])
    c3 = g.add_conv("c3", cat, rng.integers(-3, 4, (5, 16, 1, 1)), w_bits=3)
    g.add_output("out", c3, rng.integers(-9, 9, 5), np.ones(5))
    return g


def shuffle_net(rng, shape=(3, 4, 6)) -> Graph:
    """1x1 conv (8 channels) -> shuffle -> 3x3 conv: DiracDeltaNet's block end, at any lane count."""
    g = Graph("shuffle", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (8, shape[0], 1, 1)), w_bits=3)
    sh = g.add("shuffle", "sh", [add_requant(g, "r1", c1, 8, rng)])
    c2 = g.add_conv("c2", sh, rng.integers(-3, 4, (5, 8, 3, 3)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 5), np.ones(5))
    return g


def shift_net(rng, shape=(3, 6, 8)) -> Graph:
    """1x1 conv -> shift -> concat with the unshifted map (a FIFO from the shift's row map) -> 1x1 conv."""
    g = Graph("shift-net", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (10, shape[0], 1, 1)), w_bits=3)
    r1 = add_requant(g, "r1", c1, 10, rng)
    s = g.add("shift", "sh", [r1])
    cat = g.add_concat("cat", [s, r1])
    c2 = g.add_conv("c2", cat, rng.integers(-3, 4, (4, 20, 1, 1)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 4), np.ones(4))
    return g


def padded_pool_net(rng, shape=(3, 7, 10)) -> Graph:
    """conv3x3 -> requant -> padded 2x2/2 pool (odd height) -> conv3x3 -> output."""
    g = Graph("padded-pool", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng), pad=1)
    c2 = g.add_conv("c2", p1, rng.integers(-3, 4, (5, 4, 3, 3)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 5), np.ones(5))
    return g


def yolo_tail(rng, shape=(3, 8, 8)) -> Graph:
    """conv -> pool -> conv (the skip) -> 1x1 conv -> concat(1x1, skip) -> upsample -> conv -> output."""
    g = Graph("yolo-tail", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    p1 = g.add_maxpool("p1", add_requant(g, "r1", c1, 4, rng))
    c2 = g.add_conv("c2", p1, rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    skip = add_requant(g, "r2", c2, 4, rng)
    c3 = g.add_conv("c3", skip, rng.integers(-3, 4, (4, 4, 1, 1)), w_bits=3)
    cat = g.add_concat("cat", [add_requant(g, "r3", c3, 4, rng), skip])
    up = g.add("upsample", "up", [cat])
    c4 = g.add_conv("c4", up, rng.integers(-3, 4, (5, 8, 3, 3)), w_bits=3)
    g.add_output("out", c4, rng.integers(-9, 9, 5), np.ones(5))
    return g


def fpn(rng, shape=(3, 8, 8)) -> Graph:
    """A feature-pyramid join: conv (8x8) -> pool -> conv (4x4) -> upsample, concat with the 8x8 map -> conv:
    the concat's FIFO on the 8x8 branch comes from the upsample's row map (output row y needs y / 2)."""
    g = Graph("fpn", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    r1 = add_requant(g, "r1", c1, 4, rng)
    c2 = g.add_conv("c2", g.add_maxpool("p1", r1), rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    up = g.add("upsample", "up", [add_requant(g, "r2", c2, 4, rng)])
    cat = g.add_concat("cat", [up, r1])
    c3 = g.add_conv("c3", cat, rng.integers(-3, 4, (5, 8, 3, 3)), w_bits=3)
    g.add_output("out", c3, rng.integers(-9, 9, 5), np.ones(5))
    return g


def small_graph(name: str = "small", shape=(3, 8, 8)) -> Graph:
    """conv3x3 -> requant -> maxpool -> 1x1 conv -> output: small enough to build in seconds."""
    rng = np.random.default_rng(0)
    g = Graph(name, shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-1, 2, (8, shape[0], 3, 3)), w_bits=2)
    r1 = g.add_requant("r1", c1, rng.integers(1, 40, 8), rng.integers(-99, 99, 8), shift=8, out_bits=2)
    p1 = g.add_maxpool("p1", r1)
    c2 = g.add_conv("c2", p1, rng.integers(-7, 8, (4, 8, 1, 1)), w_bits=4)
    g.add_output("out", c2, rng.integers(-9, 9, 4), np.full(4, 0.25))
    return g


def all_ops_graph(a0: int = 6) -> Graph:
    """Conv, depthwise, strided conv, requant, maxpool, reorg, two- and three-input concat and linear."""
    rng = np.random.default_rng(7)
    g = Graph("small", (3, 8, 8))
    x = g.add_input(a0)
    c1 = g.add_conv("c1", x, rng.integers(-7, 8, (8, 3, 3, 3)), w_bits=4)
    r1 = g.add_requant("r1", c1, rng.integers(-20, 100, 8), rng.integers(-3000, 3000, 8), shift=10, out_bits=4)
    p1 = g.add_maxpool("p1", r1)
    b1 = g.add_reorg("b1", r1)
    dw = g.add_conv("dw", p1, rng.integers(-3, 4, (8, 1, 3, 3)), w_bits=3, groups=8)
    r2 = g.add_requant("r2", dw, rng.integers(1, 100, 8), rng.integers(-1000, 1000, 8), shift=9, out_bits=4)
    s2 = g.add_conv("s2", r2, rng.integers(-1, 2, (4, 8, 3, 3)), w_bits=2, stride=2)
    r3 = g.add_requant("r3", s2, rng.integers(1, 60, 4), rng.integers(-100, 100, 4), shift=6, out_bits=4)
    r3b = g.add_requant("r3b", s2, rng.integers(1, 60, 4), rng.integers(-100, 100, 4), shift=6, out_bits=4)
    cat = g.add_concat("cat", [r2, b1])
    pw = g.add_conv("pw", cat, rng.integers(-7, 8, (4, 40, 1, 1)), w_bits=4)
    r4 = g.add_requant("r4", pw, rng.integers(1, 60, 4), rng.integers(-100, 100, 4), shift=7, out_bits=4)
    p4 = g.add_maxpool("p4", r4)
    cat2 = g.add_concat("cat2", [p4, r3, r3b])
    fc = g.add_linear("fc", cat2, rng.integers(-31, 32, (5, 12 * 4)), w_bits=6)
    g.add_output("out", fc, rng.integers(-50, 50, 5), rng.random(5) + 0.1)
    return g


def res_block(rng: np.random.Generator | int, shape=(3, 6, 6), shortcut: bool = False, leaky: bool = False) -> Graph:
    """conv -> requant (r1) -> conv -> signed requant -> add(., r1 or a 1x1 conv shortcut's signed requant)
    -> conv -> output: ResNet-8's block, the identity or the projection shortcut."""
    rng = generator(rng)
    g = Graph("res-block", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    r1 = add_requant(g, "r1", c1, 4, rng)
    c2 = g.add_conv("c2", r1, rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    extra = {"neg_shift": 2} if leaky else {}
    r2 = g.add_requant("r2", c2, rng.integers(1, 40, 4), rng.integers(-600, 200, 4), shift=8, out_bits=5,
                       signed_out=True, **extra)
    skip = r1
    if shortcut:
        cs = g.add_conv("cs", r1, rng.integers(-3, 4, (4, 4, 1, 1)), w_bits=3)
        skip = g.add_requant("rs", cs, rng.integers(1, 40, 4), rng.integers(-200, 200, 4), shift=6, out_bits=4,
                             signed_out=True)
    add = g.add("add", "add", [r2, skip], {"m0": 3, "m1": 5, "shift": 2, "out_bits": 3})
    c3 = g.add_conv("c3", add, rng.integers(-3, 4, (5, 4, 3, 3)), w_bits=3)
    g.add_output("out", c3, rng.integers(-9, 9, 5), np.ones(5))
    return g


def pool_head(rng: np.random.Generator | int, shape=(3, 4, 4), window: dict | None = None, classes: int = 5) -> Graph:
    """conv -> requant -> avgpool (global, or ``window``) -> requant -> linear -> output (a ResNet head)."""
    rng = generator(rng)
    g = Graph("pool-head", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    pool = g.add("avgpool", "gap", [add_requant(g, "r1", c1, 4, rng)], window or {})
    r2 = add_requant(g, "r2", pool, 4, rng, out_bits=4, shift=6)
    c, h, w = g.value_info(r2).shape
    fc = g.add_linear("fc", r2, rng.integers(-3, 4, (classes, c * h * w)), w_bits=3)
    g.add_output("out", fc, rng.integers(-9, 9, classes), np.ones(classes))
    return g


def pool_output(rng: np.random.Generator | int, shape=(3, 4, 6)) -> Graph:
    """conv -> requant -> avgpool 2x3 -> output: the output reads the pool's sums directly."""
    rng = generator(rng)
    g = Graph("pool-output", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (2, shape[0], 3, 3)), w_bits=3)
    pool = g.add("avgpool", "pool", [add_requant(g, "r1", c1, 2, rng, shift=10)], {"kh": 2, "kw": 3})
    g.add_output("out", pool, rng.integers(-9, 9, 2), np.ones(2))
    return g


def split_net(rng: np.random.Generator | int, shape=(3, 4, 6), channels: int = 8) -> Graph:
    """DiracDeltaNet's non-downsampling block: a 1x1 conv's codes split in halves; the second half through
    1x1 conv, shift, 1x1 conv; concat(first half, that); shuffle; a 1x1 conv head."""
    rng = generator(rng)
    half = channels // 2
    g = Graph("split", shape)
    x = g.add_input(8)
    c0 = g.add_conv("c0", x, rng.integers(-3, 4, (channels, shape[0], 1, 1)), w_bits=3)
    r0 = add_requant(g, "r0", c0, channels, rng)
    a = g.add("slice", "a", [r0], {"start": 0, "stop": half})
    b = g.add("slice", "b", [r0], {"start": half, "stop": channels})
    c1 = g.add_conv("c1", b, rng.integers(-3, 4, (channels, half, 1, 1)), w_bits=3)
    s = g.add("shift", "sh", [add_requant(g, "r1", c1, channels, rng)])
    c2 = g.add_conv("c2", s, rng.integers(-3, 4, (half, channels, 1, 1)), w_bits=3)
    cat = g.add_concat("cat", [a, add_requant(g, "r2", c2, half, rng)])
    shuf = g.add("shuffle", "shuf", [cat])
    c3 = g.add_conv("c3", shuf, rng.integers(-3, 4, (5, channels, 1, 1)), w_bits=3)
    g.add_output("out", c3, rng.integers(-9, 9, 5), np.ones(5))
    return g



def leaky_net(rng: np.random.Generator | int, shape=(3, 6, 6), pad: int = 1) -> Graph:
    """Signed codes between every pair of layers: conv -> requant LeakyReLU -> max pool (``pad``) -> conv ->
    requant LeakyReLU, and a 1x1 conv shortcut's signed requant, -> add (LeakyReLU) -> rescale (LeakyReLU) ->
    global average pool -> signed requant -> linear -> output (TinyYOLOv3-leaky's pool and ResNet8Leaky's block and head)."""
    rng = generator(rng)
    g = Graph("leaky", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (4, shape[0], 3, 3)), w_bits=3)
    r1 = g.add_requant("r1", c1, rng.integers(1, 40, 4), rng.integers(-4000, 1000, 4), shift=12, out_bits=4,
                       signed_out=True, neg_shift=1)
    p1 = g.add_maxpool("p1", r1, **({"pad": 1} if pad else {}))
    c2 = g.add_conv("c2", p1, rng.integers(-3, 4, (4, 4, 3, 3)), w_bits=3)
    r2 = g.add_requant("r2", c2, rng.integers(1, 40, 4), rng.integers(-300, 100, 4), shift=7, out_bits=4,
                       signed_out=True, neg_shift=2)
    cs = g.add_conv("cs", p1, rng.integers(-3, 4, (4, 4, 1, 1)), w_bits=3)
    rs = g.add_requant("rs", cs, rng.integers(1, 40, 4), rng.integers(-100, 100, 4), shift=5, out_bits=4,
                       signed_out=True)
    add = g.add("add", "add", [r2, rs], {"m0": 3, "m1": -5, "shift": 2, "out_bits": 4, "out_signed": True,
                                         "neg_shift": 1})
    rescaled = g.add("rescale", "rescale", [add], {"m": 3, "shift": 1, "out_bits": 5, "out_signed": True,
                                                   "neg_shift": 2})
    pool = g.add("avgpool", "gap", [rescaled], {})
    r3 = g.add_requant("r3", pool, rng.integers(1, 40, 4), rng.integers(-1500, 0, 4), shift=8, out_bits=4,
                       signed_out=True)
    fc = g.add_linear("fc", r3, rng.integers(-3, 4, (5, 4)), w_bits=3)
    g.add_output("out", fc, rng.integers(-9, 9, 5), np.ones(5))
    return g


def signed_moves_net(rng: np.random.Generator | int, shape=(3, 4, 6)) -> Graph:
    """The code-moving ops on signed codes: conv -> requant LeakyReLU (8 channels) -> two slices, one shifted ->
    concat -> shuffle -> upsample -> reorg -> conv -> output."""
    rng = generator(rng)
    g = Graph("signed-moves", shape)
    x = g.add_input(8)
    c1 = g.add_conv("c1", x, rng.integers(-3, 4, (8, shape[0], 3, 3)), w_bits=3)
    r1 = g.add_requant("r1", c1, rng.integers(1, 40, 8), rng.integers(-4000, 1000, 8), shift=11, out_bits=4,
                       signed_out=True, neg_shift=1)
    lo = g.add("slice", "lo", [r1], {"start": 0, "stop": 4})
    hi = g.add("shift", "sh", [g.add("slice", "hi", [r1], {"start": 4, "stop": 8})])
    cat = g.add_concat("cat", [hi, lo])
    up = g.add("upsample", "up", [g.add("shuffle", "shuf", [cat])])
    c2 = g.add_conv("c2", g.add_reorg("reorg", up), rng.integers(-3, 4, (4, 32, 3, 3)), w_bits=3)
    g.add_output("out", c2, rng.integers(-9, 9, 4), np.ones(4))
    return g
