"""ConvEngine: the matrix-vector unit of a convolution, its multiplies on packed DSP48E2 cores.

Input: the SlidingWindow beat format (per output group of ``pixels`` adjacent
output columns, ``k*k*in_ch/simd`` beats ``[pixel][lane]`` of unsigned codes,
in (tap, chunk) order).  Output: per group, ``out_ch/pe`` beats
``[pixel][pe]`` of signed accumulators (``acc_bits`` wide), one per
output-channel fold.  See ``mixq_hw/layers/__init__.py`` and the shared
contracts for the exact formats.

Schedule (FINN-MVU-like):

- the group's window beats are written into one half of a double-buffered
  ``lib.memory`` while the other half (the previous group) is re-read once per
  output-channel fold, so the next group streams in during the computation;
- the weights live in a ROM with one word per engine cycle, arranged per
  (fold, tap, chunk) (see :func:`~mixq_hw.layers.conv_weights.weight_rom_words`);
- every product is made by a :class:`~mixq_hw.packing.cores.PackedMAC` running a
  kernel-packing plan: weight slots = ``n_weights`` output channels of the PE
  lanes, activation slots = output pixels of the group.  One core per
  (simd lane, group of ``n_weights`` PE lanes, group of ``n_acts`` pixels);
  depthwise layers use one weight slot (a lane is one channel, ``pe == simd``);
- a core accumulates in P over up to ``depth`` consecutive beats of a fold;
  its fields are then summed over the simd lanes by a registered adder tree
  and added into the fabric accumulators (one per output channel per pixel),
  which emit one output beat when the fold ends.

Backpressure: one clock enable ``en = ~o.valid | o.ready`` freezes the whole
compute pipeline (buffer read, weight ROM, cores via their ``en`` port, adder
tree, accumulators) while the output register holds a beat nobody takes; no
output FIFO is needed and the engine runs at one beat per cycle when the
output is not stalled.  The input side (buffer writes) is independent of it.

Linear layers: ``in_ch = C*H*W`` of the flattened input, ``k = 1``, ``pixels = 1``,
``out_size = (1, 1)`` and ``weight.reshape(out, in, 1, 1)``.  The graph flattens in
HWC order, which is exactly the raster stream's order, and a payload
``ArrayLayout(ArrayLayout(unsigned(a), simd), 1)`` has the same bits as the raster
beat ``ArrayLayout(unsigned(a), simd)``; so the raster stream of the previous
layer (with ``lanes == simd``) feeds the engine directly, no window needed.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.estimate import Resources, memory_cost
from mixq_hw.layers.conv_weights import (ConvGeometry, check_conv_config, choose_plan, field_slots,
                                         signed_bits, weight_rom_words)
from mixq_hw.packing.cores import PackedMAC
from mixq_hw.packing.layout import Plan, act_range, check, weight_range

__all__ = ["ConvEngine"]


class ConvEngine(wiring.Component):
    """Convolution (dense k x k, 1x1, depthwise, linear) on packed DSPs, window beats in, accumulators out.

    ``weight``: int array ``(out_ch, in_ch/groups, k, k)`` of narrow-range
    ``w_bits`` codes; ``a_bits``: input code width; ``groups``: 1 (dense) or
    ``in_ch`` (depthwise); ``simd`` input lanes, ``pe`` output lanes,
    ``pixels`` output pixels per group; ``out_size`` = (out_height, out_width)
    of the output map (only used by :meth:`cycles_per_frame`); ``plan``: a
    kernel-packing plan to use instead of the planner's choice.
    """

    def __init__(self, weight: np.ndarray, *, w_bits: int, a_bits: int, in_ch: int, out_ch: int, k: int,
                 groups: int = 1, simd: int, pe: int, pixels: int, out_size: tuple[int, int],
                 plan: Plan | None = None, name: str = "") -> None:
        self.name = name or "conv"
        geo = check_conv_config(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k,
                                groups=groups, simd=simd, pe=pe, pixels=pixels, name=self.name)
        if (not isinstance(out_size, (tuple, list)) or len(out_size) != 2
                or not all(isinstance(v, (int, np.integer)) for v in out_size)):
            raise ValueError(f"out_size {out_size!r} must be (out_height, out_width) in layer '{self.name}'")
        out_h, out_w = out_size
        if out_h < 1 or out_w < 1 or out_w % pixels:
            raise ValueError(f"out_size {tuple(out_size)}: width must be a positive multiple of pixels "
                             f"{pixels} in layer '{self.name}'")
        if plan is None:
            plan = choose_plan(geo, w_bits, a_bits, self.name)
        else:
            try:
                check(plan)
                field_slots(plan)
            except ValueError as err:
                raise ValueError(f"unusable plan in layer '{self.name}': {err}") from err
            if (plan.w_bits, plan.a_bits) != (w_bits, a_bits):
                raise ValueError(f"plan is for w{plan.w_bits}a{plan.a_bits}, layer '{self.name}' is "
                                 f"w{w_bits}a{a_bits}")
            if plan.n_acts > pixels:
                raise ValueError(f"plan has {plan.n_acts} act slots, more than pixels {pixels} "
                                 f"in layer '{self.name}'")
        self.geometry: ConvGeometry = geo
        self.plan: Plan = plan
        self.w_bits, self.a_bits = w_bits, a_bits
        self.in_ch, self.out_ch, self.k, self.groups = in_ch, out_ch, k, groups
        self.simd, self.pe, self.pixels = simd, pe, pixels
        self.out_size = (int(out_h), int(out_w))
        self.weight = np.array(weight, dtype=np.int64)

        w_max = max(-weight_range(w_bits)[0], weight_range(w_bits)[1])
        a_max = act_range(a_bits)[1]
        #: multiplies a core accumulates in P before its fields are extracted
        self.core_depth = min(plan.depth, geo.beats_per_fold)
        #: core accumulations per fold (added together in the fabric accumulators)
        self.segments = math.ceil(geo.beats_per_fold / self.core_depth)
        self._field_bound = self.core_depth * w_max * a_max
        #: signed width of the accumulators and of the output payload
        self.acc_bits = signed_bits(geo.fan_in * w_max * a_max)

        n_w = 1 if geo.depthwise else plan.n_weights
        self._weight_groups = pe if geo.depthwise else math.ceil(pe / n_w)
        self._core_lanes = 1 if geo.depthwise else simd
        self._pixel_groups = math.ceil(pixels / plan.n_acts)
        self._tree_leaves = 1 if geo.depthwise else simd

        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(data.ArrayLayout(unsigned(a_bits), simd), pixels))),
            "o": Out(stream.Signature(data.ArrayLayout(data.ArrayLayout(signed(self.acc_bits), pe), pixels))),
        })

    # ---- figures -------------------------------------------------------------------------------

    @property
    def n_dsps(self) -> int:
        """Packed multiplier cores, one DSP48E2 each."""
        return self._core_lanes * self._weight_groups * self._pixel_groups

    @property
    def macs_per_cycle(self) -> int:
        """Useful multiply-accumulates per engine cycle."""
        return self.simd * self.pixels * (1 if self.geometry.depthwise else self.pe)

    @property
    def macs_per_dsp(self) -> float:
        """Achieved useful MACs per DSP per cycle (below the plan's figure when slots are padded)."""
        return self.macs_per_cycle / self.n_dsps

    @property
    def groups_per_frame(self) -> int:
        """Output groups (of ``pixels`` pixels) per frame."""
        return self.out_size[0] * self.out_size[1] // self.pixels

    @property
    def in_beats_per_frame(self) -> int:
        """Window beats consumed per frame."""
        return self.groups_per_frame * self.geometry.beats_per_group

    @property
    def out_beats_per_frame(self) -> int:
        """Accumulator beats produced per frame."""
        return self.groups_per_frame * self.geometry.folds

    def cycles_per_frame(self) -> int:
        """Initiation interval per frame at full throughput.

        Each group is computed in ``folds * beats_per_fold`` cycles (one buffer
        read per cycle) while the next group (``k*k*in_ch/simd`` beats, never
        more) streams into the other buffer half, so
        ``out_h * out_w/pixels * (out_ch/pe) * k*k*in_ch/simd`` (dense) and
        ``out_h * out_w/pixels * k*k*in_ch/simd`` (depthwise).
        """
        geo = self.geometry
        return self.groups_per_frame * max(geo.folds * geo.beats_per_fold, geo.beats_per_group)

    @property
    def pipeline_latency(self) -> int:
        """Enabled cycles from a fold's last buffer read to its output beat (ROM/buffer read, cores,
        adder-tree levels, accumulator/output register)."""
        return 1 + PackedMAC.LATENCY + len(self._tree_nodes()) + 1

    def _slot_lane(self, weight_group: int, slot: int) -> int | None:
        """The PE lane (output channel within the fold) weight ``slot`` of a core in ``weight_group``
        feeds, or None for a padding slot.  Depthwise: core group ``g`` is lane/channel ``g``, slot 0 only."""
        if self.geometry.depthwise:
            return weight_group if slot == 0 else None
        p = weight_group * self.plan.n_weights + slot
        return p if p < self.pe else None

    def _tree_nodes(self) -> list[list[tuple[int, int]]]:
        """Adder-tree nodes level by level (per output accumulator): (leaves covered, inputs 1 or 2)."""
        levels = []
        nodes = [1] * self._tree_leaves
        while len(nodes) > 1:
            level = [(sum(nodes[n:n + 2]), len(nodes[n:n + 2])) for n in range(0, len(nodes), 2)]
            levels.append(level)
            nodes = [c for c, _ in level]
        return levels

    def estimate(self) -> Resources:
        """DSPs = packed cores; LUT/FF from adder tree, accumulators, output register; memories by size."""
        geo = self.geometry
        outs = self.pe * self.pixels
        lut = ff = 0
        for level in self._tree_nodes():
            widths = [(signed_bits(c * self._field_bound), inputs) for c, inputs in level]
            ff += outs * sum(w for w, _ in widths) + 1
            # a two-input node is one carry-chain adder (~1 LUT per bit); a pass-through is wiring
            lut += outs * sum(w for w, inputs in widths if inputs == 2)
        if self.segments > 1:
            lut += outs * self.acc_bits
            ff += outs * self.acc_bits
        ff += outs * self.acc_bits + 1  # output register
        # per core (see mixq_hw.packing.cores): the field register; a borrow adder per field (offset
        # correction needs only an inverter); parity tracking for overlap plans; the B-side weight
        # subtractor; flags.  Input/M/P registers are the DSP48E2's own and not counted.
        plan = self.plan
        field_bits = sum(f.width for f in plan.fields)
        core_lut = ((field_bits if plan.correction == "borrow" else 0)
                    + (4 * len(plan.fields) if plan.overlap else 0)
                    + (18 if plan.weight_port == "B" else 0))
        core_ff = field_bits + (3 * len(plan.fields) if plan.overlap else 0) + 12
        lut += self.n_dsps * core_lut
        ff += self.n_dsps * core_ff
        counters = sum(max(1, (n - 1).bit_length()) for n in
                       (geo.beats_per_group, geo.folds, geo.beats_per_fold, self.core_depth,
                        geo.folds * geo.beats_per_fold, self.segments))
        lut += 3 * counters + 16
        ff += counters + 8
        rom_width = self.w_bits * self.simd * (1 if geo.depthwise else self.pe)
        mems = (memory_cost(2 * geo.beats_per_group, self.a_bits * self.simd * self.pixels)
                + memory_cost(geo.folds * geo.beats_per_fold, rom_width))
        return Resources(dsp=self.n_dsps, lut=lut, ff=ff) + mems

    # ---- hardware ------------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        geo, plan = self.geometry, self.plan
        S, P, X = self.simd, self.pe, self.pixels
        T, L, F = geo.beats_per_group, geo.beats_per_fold, geo.folds
        D = self.core_depth

        en = Signal()  # clock enable of the compute pipeline
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        # ---- input double buffer: group g+1 is written while group g is re-read per fold
        act_layout = data.ArrayLayout(data.ArrayLayout(unsigned(self.a_bits), S), X)
        m.submodules.window_buffer = buf = memory.Memory(shape=unsigned(act_layout.size), depth=2 * T,
                                                         init=[])
        buf_w = buf.write_port()
        buf_r = buf.read_port(domain="sync")
        full = Signal(2)        # bank b holds a complete group not yet fully used
        set_full = Signal(2)
        clear_full = Signal(2)
        m.d.sync += full.eq((full & ~clear_full) | set_full)

        w_bank = Signal()
        w_index = Signal(range(T))
        m.d.comb += [
            self.i.ready.eq(~full.bit_select(w_bank, 1)),
            buf_w.addr.eq(Mux(w_bank, T, 0) + w_index),
            buf_w.data.eq(self.i.payload.as_value()),
            buf_w.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            with m.If(w_index == T - 1):
                m.d.sync += [w_index.eq(0), w_bank.eq(~w_bank)]
                m.d.comb += set_full.eq(Mux(w_bank, 0b10, 0b01))
            with m.Else():
                m.d.sync += w_index.eq(w_index + 1)

        # ---- weight ROM, one word per (fold, tap, chunk) engine cycle
        rom_words = weight_rom_words(self.weight, geo, self.w_bits)
        w_elem = signed(self.w_bits)
        rom_layout = (data.ArrayLayout(w_elem, S) if geo.depthwise
                      else data.ArrayLayout(data.ArrayLayout(w_elem, S), P))
        m.submodules.weight_rom = rom = memory.Memory(shape=unsigned(rom_layout.size), depth=F * L,
                                                      init=rom_words)
        rom_r = rom.read_port(domain="sync")

        # ---- stage 0: sequencer over (fold, beat of fold); addresses the buffer and the ROM
        r_bank = Signal()
        fold = Signal(range(F))
        beat = Signal(range(L))
        seg_pos = Signal(range(D))
        buf_index = Signal(range(T))
        rom_index = Signal(range(F * L))
        busy = Signal()
        fold_end = Signal()
        m.d.comb += [
            busy.eq(full.bit_select(r_bank, 1)),
            fold_end.eq(beat == L - 1),
            buf_r.addr.eq(Mux(r_bank, T, 0) + buf_index),
            buf_r.en.eq(en),
            rom_r.addr.eq(rom_index),
            rom_r.en.eq(en),
        ]
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        with m.If(en):
            m.d.sync += [
                s1_valid.eq(busy),
                s1_first.eq(seg_pos == 0),
                s1_last.eq((seg_pos == D - 1) | fold_end),
            ]
            with m.If(busy):
                m.d.sync += [
                    seg_pos.eq(Mux((seg_pos == D - 1) | fold_end, 0, seg_pos + 1)),
                    rom_index.eq(Mux(rom_index == F * L - 1, 0, rom_index + 1)),
                ]
                with m.If(fold_end):
                    m.d.sync += beat.eq(0)
                    with m.If(fold == F - 1):
                        m.d.sync += [fold.eq(0), buf_index.eq(0), r_bank.eq(~r_bank)]
                        m.d.comb += clear_full.eq(Mux(r_bank, 0b10, 0b01))
                    with m.Else():
                        m.d.sync += fold.eq(fold + 1)
                        # depthwise: fold f reads chunk f of every tap
                        m.d.sync += buf_index.eq(fold + 1 if geo.depthwise else 0)
                with m.Else():
                    m.d.sync += [beat.eq(beat + 1),
                                 buf_index.eq(buf_index + (geo.chunks if geo.depthwise else 1))]

        # ---- stage 1: buffer and ROM words reach the packed cores
        acts = data.View(act_layout, buf_r.data)
        weights = data.View(rom_layout, rom_r.data)
        slots = field_slots(plan)
        leaves: dict[tuple[int, int], list] = {(x, p): [] for x in range(X) for p in range(P)}
        cores = []
        for lane in range(self._core_lanes):
            for wg in range(self._weight_groups):
                for xg in range(self._pixel_groups):
                    core = PackedMAC(plan, depth=D)
                    m.submodules[f"mac_s{lane}_w{wg}_x{xg}"] = core
                    cores.append(core)
                    m.d.comb += [core.en.eq(en), core.i_valid.eq(s1_valid), core.i_first.eq(s1_first),
                                 core.i_last.eq(s1_last)]
                    for i in range(plan.n_weights):
                        p = self._slot_lane(wg, i)
                        if p is None:
                            value = 0       # padding slot: its fields are never read
                        else:
                            value = weights[p] if geo.depthwise else weights[p][lane]
                        m.d.comb += core.weights[i].eq(value)
                        for j in range(plan.n_acts):
                            x = xg * plan.n_acts + j
                            if p is not None and x < X:
                                leaves[(x, p)].append(core.fields[slots[(i, j)]])
                    for j in range(plan.n_acts):
                        x = xg * plan.n_acts + j
                        src_lane = wg if geo.depthwise else lane
                        m.d.comb += core.acts[j].eq(acts[x][src_lane] if x < X else 0)
        assert cores[0].latency == PackedMAC.LATENCY

        # ---- adder tree over the simd lanes, one registered level per halving
        valid = cores[0].o_valid
        sums = {key: [(v, 1) for v in vals] for key, vals in leaves.items()}
        for level in range(len(self._tree_nodes())):
            next_valid = Signal(name=f"tree{level}_valid")
            with m.If(en):
                m.d.sync += next_valid.eq(valid)
            valid = next_valid
            for (x, p), items in sums.items():
                merged = []
                for n in range(0, len(items), 2):
                    pair = items[n:n + 2]
                    leaves_in = sum(c for _, c in pair)
                    node = Signal(signed(signed_bits(leaves_in * self._field_bound)),
                                  name=f"tree{level}_x{x}_p{p}_{n // 2}")
                    with m.If(en):
                        m.d.sync += node.eq(sum(v for v, _ in pair))
                    merged.append((node, leaves_in))
                sums[(x, p)] = merged

        # ---- fabric accumulators over the segments of a fold, then the output register
        segment = Signal(range(self.segments))
        with m.If(en & valid):
            m.d.sync += segment.eq(Mux(segment == self.segments - 1, 0, segment + 1))
        last_segment = segment == self.segments - 1
        for (x, p), ((value, _),) in sums.items():
            if self.segments > 1:
                acc = Signal(signed(self.acc_bits), name=f"acc_x{x}_p{p}")
                total = Signal(signed(self.acc_bits), name=f"total_x{x}_p{p}")
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
