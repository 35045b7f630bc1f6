"""The AXI-Stream top level: bit-exact through the wrapper, tlast on every frame's last beat, aresetn resets,
and the emitted Verilog module has exactly the AXI port names Vivado expects."""

from __future__ import annotations

import random
import re
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth import Cat
from amaranth.back import rtlil
from amaranth.sim import Simulator
from networks import linear_net, plain_net

from mixq_hw.pipeline import Accelerator, LayerFold
from mixq_hw.top import PORT_NAMES, AxiStreamTop, emit_verilog, stream_width
from sim.network import image_beats
from sim.streams import SimulationTimeout, receive, send

PLAIN_FOLD = {"c1": LayerFold(3, 2, 2), "c2": LayerFold(2, 3, 2), "d3": LayerFold(2, 2, 1), "c4": LayerFold(6, 2, 2)}


def _in_beats(top: AxiStreamTop, images: np.ndarray, rng: np.random.Generator) -> list[int]:
    """tdata words: the pixel's channels in the low bytes, random garbage in the padding bytes."""
    garbage = random.Random(int(rng.integers(1 << 30)))
    words = []
    for pixel in image_beats(images):
        word = sum(int(v) << (8 * c) for c, v in enumerate(pixel))
        pad = top.in_width - 8 * len(pixel)
        words.append(word | (garbage.getrandbits(pad) << (8 * len(pixel))) if pad else word)
    return words


def run_top(top: AxiStreamTop, words: list[int], n_out: int, *, stall: float, seed: int = 0,
            reset_after: int | None = None, words_after_reset: list[int] | None = None,
            max_cycles: int = 60_000) -> list[tuple[int, int]]:
    """Drive the flat AXI ports under random stalls; returns (tdata, tlast) of every accepted output beat.

    ``aclk`` is toggled by a process (the design's sync domain is driven from it, not by the simulator).
    With ``reset_after``, aresetn drops for 3 cycles after that many input beats, and then
    ``words_after_reset`` are sent; only the beats after the reset are returned.
    """
    sim = Simulator(top)
    s_axis = SimpleNamespace(valid=top.s_axis_tvalid, ready=top.s_axis_tready, payload=top.s_axis_tdata)
    m_axis = SimpleNamespace(valid=top.m_axis_tvalid, ready=top.m_axis_tready,
                             payload=Cat(top.m_axis_tdata, top.m_axis_tlast))
    state = {"done": False, "cycles": 0, "reset_done": reset_after is None}
    out: list[int] = []

    async def clock(ctx):
        while True:
            ctx.set(top.aclk, 0)
            await ctx.delay(5e-9)
            ctx.set(top.aclk, 1)
            await ctx.delay(5e-9)

    async def ticks(ctx, count: int) -> None:
        for _ in range(count):          # plain ticks: tick().repeat() raises while the domain is in reset
            await ctx.tick()

    async def driver(ctx):
        ctx.set(top.aresetn, 0)
        await ticks(ctx, 2)
        ctx.set(top.aresetn, 1)
        rng = random.Random(seed)
        if reset_after is None:
            await send(ctx, s_axis, words, stall=stall, rng=rng)
            return
        await send(ctx, s_axis, words[:reset_after], stall=stall, rng=rng)
        await ticks(ctx, 7)                  # let the partial frame spread into the pipeline
        ctx.set(top.aresetn, 0)
        await ticks(ctx, 3)
        ctx.set(top.aresetn, 1)
        state["reset_done"] = True
        await send(ctx, s_axis, words_after_reset, stall=stall, rng=rng)

    async def sink(ctx):
        while not state["reset_done"]:      # drain whatever the partial frame produced before the reset
            ctx.set(top.m_axis_tready, 1)
            await ctx.tick()
        out.extend(await receive(ctx, m_axis, n_out, stall=stall, rng=random.Random(seed + 1)))
        state["done"] = True

    async def watchdog(ctx):
        while not state["done"]:
            await ctx.tick()
            state["cycles"] += 1
            if state["cycles"] > max_cycles:
                raise SimulationTimeout(f"AxiStreamTop: {len(out)} of {n_out} beats after {max_cycles} cycles")

    sim.add_process(clock)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(sink)
    sim.add_testbench(watchdog)
    sim.run()
    mask = (1 << top.out_width) - 1
    return [(v & mask, v >> top.out_width) for v in out]


def _decode(top: AxiStreamTop, beats: list[tuple[int, int]], n: int) -> np.ndarray:
    """(tdata, tlast) beats -> (N, C, H, W) int64, checking that the padding bits are zero."""
    lanes = top.out_lanes
    values = []
    for data, _ in beats:
        assert data >> (32 * lanes) == 0, f"padding bits of m_axis_tdata not zero: {data:#x}"
        for lane in range(lanes):
            raw = (data >> (32 * lane)) & 0xFFFFFFFF
            values.append(raw - (1 << 32) if raw >> 31 else raw)
    c, h, w = top.accelerator.plan.out_shape
    return np.array(values, dtype=np.int64).reshape(n, h, w, c).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_top_is_bit_exact_and_marks_frame_ends(stall):
    rng = np.random.default_rng(4)
    graph = plain_net(rng)
    top = AxiStreamTop(Accelerator(graph, PLAIN_FOLD))
    assert (top.in_width, top.out_width, top.out_lanes) == (32, 64, 2)   # 3 channels -> 32, 2 lanes -> 64
    images = rng.integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    n_out = 3 * top.out_beats_per_frame
    beats = run_top(top, _in_beats(top, images, rng), n_out, stall=stall, seed=5)
    np.testing.assert_array_equal(_decode(top, beats, 3), graph.reference(images))
    lasts = [k for k, (_, last) in enumerate(beats) if last]
    per = top.out_beats_per_frame
    assert per > 1 and lasts == [per - 1, 2 * per - 1, 3 * per - 1]


def test_top_one_beat_frames_and_explicit_widths():
    """A classifier: one output beat per frame (tlast on every beat), wider tdata than needed."""
    rng = np.random.default_rng(6)
    graph = linear_net(rng)
    top = AxiStreamTop(Accelerator(graph, {"fc": LayerFold(4, 3, 1)}), in_width=16, out_width=256)
    assert top.out_beats_per_frame == 1 and top.out_lanes == 3
    images = rng.integers(0, 256, (4, *graph.input_shape)).astype(np.uint8)
    beats = run_top(top, _in_beats(top, images, rng), 4, stall=0.3, seed=2)
    np.testing.assert_array_equal(_decode(top, beats, 4), graph.reference(images))
    assert all(last for _, last in beats)


def test_aresetn_resets_the_pipeline():
    """Half a frame in, then aresetn: the next frames must come out exact, as if the half frame never was."""
    rng = np.random.default_rng(8)
    graph = plain_net(rng)
    top = AxiStreamTop(Accelerator(graph, PLAIN_FOLD))
    junk = rng.integers(0, 256, (1, *graph.input_shape)).astype(np.uint8)
    images = rng.integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    half = graph.input_shape[1] * graph.input_shape[2] // 2
    beats = run_top(top, _in_beats(top, junk, rng), 2 * top.out_beats_per_frame, stall=0.0,
                    reset_after=half, words_after_reset=_in_beats(top, images, rng))
    np.testing.assert_array_equal(_decode(top, beats, 2), graph.reference(images))
    assert [k for k, (_, last) in enumerate(beats) if last] == [top.out_beats_per_frame - 1,
                                                                 2 * top.out_beats_per_frame - 1]


def test_verilog_has_exactly_the_axi_ports(tmp_path):
    rng = np.random.default_rng(6)
    top = AxiStreamTop(Accelerator(linear_net(rng), {"fc": LayerFold(4, 3, 1)}))
    path = emit_verilog(top, tmp_path / "accel.v", name="mixq_accel")
    text = path.read_text()
    header = re.search(r"^module mixq_accel\s*\((.*?)\);(.*?)^endmodule", text, re.S | re.M)
    assert header, "no module mixq_accel in the emitted Verilog"
    ports = [p.strip() for p in header.group(1).split(",")]
    assert sorted(ports) == sorted(PORT_NAMES)
    widths = {}
    for direction, width, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+)\s*;",
                                             header.group(2), re.M):
        widths[name] = (direction, int(width) + 1 if width else 1)
    assert widths == {
        "aclk": ("input", 1), "aresetn": ("input", 1),
        "s_axis_tdata": ("input", 8), "s_axis_tvalid": ("input", 1), "s_axis_tready": ("output", 1),
        "s_axis_tlast": ("input", 1),
        "m_axis_tdata": ("output", 128), "m_axis_tvalid": ("output", 1), "m_axis_tready": ("input", 1),
        "m_axis_tlast": ("output", 1),
    }


def test_width_errors_are_clear():
    acc = Accelerator(linear_net(np.random.default_rng(0)), {"fc": LayerFold(4, 3, 1)})
    assert stream_width(24) == 32 and stream_width(1) == 8 and stream_width(96) == 128
    with pytest.raises(ValueError, match="power of two"):
        AxiStreamTop(acc, in_width=24)
    with pytest.raises(ValueError, match="too narrow.*96"):
        AxiStreamTop(acc, out_width=64)
    with pytest.raises(ValueError, match="Accelerator"):
        AxiStreamTop("not an accelerator")
    top = AxiStreamTop(acc)
    with pytest.raises(ValueError, match="identifier"):
        emit_verilog(top, "/nonexistent/x.v", name="bad name")
    rtlil.convert(top)      # the refused calls leave the design whole
