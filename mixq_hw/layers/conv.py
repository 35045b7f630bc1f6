"""ConvEngine: the matrix-vector unit of a convolution, its multiplies on packed DSP48E2 cores.

Input, one of two formats (:attr:`ConvEngine.window_kind`):

- ``"taps"`` -- the SlidingWindow format: per output group of ``pixels``
  adjacent output columns, ``k*k*in_ch/simd`` beats ``[pixel][lane]`` of
  codes (unsigned, or two's complement with ``signed_act``) in (tap, chunk) order; used with
  kernel-packing plans;
- ``"rows"`` -- the RowWindow format (stride 1): per group, ``k*in_ch/simd``
  beats ``[pixel][lane]`` in (kernel row, chunk) order, each holding the
  ``pixels + k - 1`` input pixels of one kernel row; used with filter-packing
  plans (see :mod:`mixq_hw.layers.conv_weights` for the layout and why partial
  fields are combined inside a group, not carried between groups).

Output (both): per group, ``ceil(out_ch/pe)`` beats ``[pixel][pe]`` of signed
accumulators (``acc_bits`` wide), one per output-channel fold; when ``pe`` does
not divide ``out_ch`` the last fold's lanes past ``out_ch - 1`` compute zero
filters (accumulators 0, same cycles as skipping them: a fold takes
``beats_per_fold`` cycles however many of its lanes are real) and the
GroupToRaster after the requant drops them.  A row has
``ceil(out_w / pixels)`` groups; the slots of a ragged last group past the
last column carry whatever the window sent there (zeros from a SlidingWindow)
and are dropped downstream.  See
``mixq_hw/layers/__init__.py`` and the shared contracts for the exact formats.

Schedule (FINN-MVU-like), one part (:mod:`mixq_hw.layers.conv_parts`, each a spec with its own estimate
and latency and a small Component) per job:

- :class:`~mixq_hw.layers.conv_parts.GroupBuffer`: the group's input beats are written into one half of a
  double-buffered ``lib.memory`` while the other half (the previous group) is re-read once per
  output-channel fold, so the next group streams in during the computation;
- :class:`~mixq_hw.layers.weight_rom.WeightRom`: the weights live in a ROM with one word per engine cycle
  of a fold (see :func:`~mixq_hw.layers.conv_weights.weight_rom_words`), stepped by the
  :class:`~mixq_hw.layers.conv_parts.FoldSequencer`, which also addresses the buffer;
- :class:`~mixq_hw.layers.conv_parts.MacArray`: every product is made by a :class:`~mixq_hw.packing.cores.PackedMAC` (or, with
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
  cores that share an output pixel) by a registered
  :class:`~mixq_hw.layers.adder_tree.AdderTree` and added into the fabric
  accumulators (one per output channel per pixel) of the
  :class:`~mixq_hw.layers.conv_parts.OutputStage`, which emits one output beat
  when the fold ends.

Backpressure: one clock enable ``en`` (made by the OutputStage) freezes the whole compute pipeline
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
from typing import Any, Sequence

import numpy as np
from amaranth import Module, Shape, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from mixq_hw.estimate import Resources
from mixq_hw.layers.conv_weights import (WINDOW_KINDS, ConvGeometry, CoreWiring, check_conv_config, choose_plan,
                                         core_wiring, cores_for, field_slots, filter_positions, frame_cycles,
                                         geometry_for_plan, groups_per_frame, macs_per_cycle, plan_window_kind,
                                         signed_bits, dsps_per_core)
from mixq_hw.layers.conv_weights import dot_wiring
from mixq_hw.layers.conv_cascade import check_cascade, choose_cascade
from mixq_hw.layers.row_window import RowWindowSpec
from mixq_hw.layers.conv_parts import FoldSequencerSpec, GroupBufferSpec, MacArraySpec, OutputStageSpec
from mixq_hw.layers.weight_rom import WEIGHT_STORES, WeightRomSpec
from mixq_hw.layers.spec import LayerSpec, SpecComponent
from mixq_hw.layers.window import SlidingWindowSpec
from mixq_hw.packing.bits import act_magnitude
from mixq_hw.packing.layout import weight_range
from mixq_hw.packing.planner import ENGINE_PLAN_TYPES
from mixq_hw.packing.protocol import PackingPlan

__all__ = ["ConvEngine", "ENGINE_PLAN_TYPES", "ConvEngineSpec", "weight_codes"]



def weight_codes(weight: np.ndarray) -> np.ndarray:
    """``weight`` as a read-only int64 array that nothing else can change: ``weight`` itself when it already is
    one (read-only and owning its data), else a read-only copy; engines of one layer then share one copy."""
    if (isinstance(weight, np.ndarray) and weight.dtype == np.int64 and not weight.flags.writeable
            and weight.flags.owndata):
        return weight
    codes = np.array(weight, dtype=np.int64)
    codes.flags.writeable = False
    return codes


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
    tap format) or ``"cascade"`` (a kernel layout on DSP48E2 P cascades over simd lanes,
    :func:`~mixq_hw.layers.conv_cascade.choose_cascade`; ``cascade`` then stays 1, the engine chooses the
    length); ``cascade``: with ``"dsp"``, sum this many simd lanes over each cascade (1: none).
    :attr:`window_kind` says which format the engine reads and :meth:`make_window` builds the matching window.
    ``signed_act``: the input codes are two's complement ``-2**(a-1) .. 2**(a-1)-1`` (after a LeakyReLU or a
    residual add): the plan is a signed-activation plan and the ports and windows carry signed elements.
    ``weight_store``: the weight ROM in block RAM (``"bram"``) or LUT logic (``"lut"``).
    """

    def __init__(self, weight: np.ndarray, *, w_bits: int, a_bits: int, in_ch: int, out_ch: int, k: int,
                 groups: int = 1, simd: int, pe: int, pixels: int, out_size: tuple[int, int],
                 plan: PackingPlan | None = None, stride: int = 1, windows: Sequence[str] = ("taps",),
                 multiplier: str = "dsp", cascade: int = 1, signed_act: bool = False, weight_store: str = "bram",
                 name: str = "") -> None:
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
        if not isinstance(signed_act, bool):
            raise ValueError(f"signed_act must be True or False, not {signed_act!r} {where}")
        if weight_store not in WEIGHT_STORES:
            raise ValueError(f"weight_store {weight_store!r} must be one of {WEIGHT_STORES} {where}")
        windows = (windows,) if isinstance(windows, str) else tuple(windows)
        if not windows or any(w not in WINDOW_KINDS for w in windows):
            raise ValueError(f"windows {windows!r} must be a non-empty subset of {WINDOW_KINDS} {where}")
        if multiplier == "cascade":
            if plan is not None:
                self._check_plan(plan, geo, w_bits, a_bits, stride, windows, where)
            if cascade != 1:
                raise ValueError(f"multiplier 'cascade' chooses the cascade length itself, not {cascade!r} {where}")
            plan, cascade = choose_cascade(geo, w_bits, a_bits, self.name, plan, stride=stride, windows=windows,
                                           signed_act=signed_act)
        elif plan is None:
            plan = choose_plan(geo, w_bits, a_bits, self.name, stride=stride, windows=windows,
                               multiplier=multiplier, signed_act=signed_act)
        else:
            self._check_plan(plan, geo, w_bits, a_bits, stride, windows, where)
            if plan.multiplier != multiplier:
                raise ValueError(f"plan runs on {plan.multiplier!r} multipliers, layer '{self.name}' asks for "
                                 f"{multiplier!r}")
            if plan.signed_act != signed_act:
                raise ValueError(f"plan is for {'signed' if plan.signed_act else 'unsigned'} activation codes, "
                                 f"layer '{self.name}' reads {'signed' if signed_act else 'unsigned'} ones")
        geo = geometry_for_plan(geo, plan)
        self.geometry: ConvGeometry = geo
        self.plan: PackingPlan = plan
        #: input format: "taps" (SlidingWindow beats) or "rows" (RowWindow beats)
        self.window_kind: str = geo.window_kind
        self.w_bits, self.a_bits = w_bits, a_bits
        #: the input codes are two's complement (the plan's ``signed_act``)
        self.signed_act: bool = signed_act
        self.in_ch, self.out_ch, self.k, self.groups = in_ch, out_ch, k, groups
        self.simd, self.pe, self.pixels, self.stride = simd, pe, pixels, int(stride)
        self.out_size = (int(out_h), int(out_w))
        self.weight = weight_codes(weight)

        w_max = max(-weight_range(w_bits)[0], weight_range(w_bits)[1])
        a_max = act_magnitude(a_bits, signed_act)
        #: simd lanes summed over each DSP48E2 P cascade (1: none; :func:`check_cascade`)
        self.cascade = check_cascade(cascade, plan, geo, where)
        #: multiplies a core accumulates in P before its fields are extracted (1 with a cascade: the
        #: cascade's lanes use the plan's depth)
        self.core_depth = 1 if self.cascade > 1 else min(plan.depth, geo.beats_per_fold)
        #: core accumulations per fold (added together in the fabric accumulators)
        self.segments = math.ceil(geo.beats_per_fold / self.core_depth)
        #: signed width of the accumulators and of the output payload
        self.acc_bits = signed_bits(geo.fan_in * w_max * a_max)
        self._cores: list[CoreWiring] = core_wiring(geo, plan, w_bits, a_bits, self.core_depth)
        assert len(self._cores) == cores_for(plan, geo)
        act_elem = Shape(a_bits, signed=signed_act)
        act_layout = data.ArrayLayout(data.ArrayLayout(act_elem, simd), geo.span)
        w_elem: Any = signed(w_bits)
        if geo.window_kind == "rows":
            w_elem = data.ArrayLayout(w_elem, geo.row_taps)
        rom_layout = (data.ArrayLayout(w_elem, simd) if geo.depthwise
                      else data.ArrayLayout(data.ArrayLayout(w_elem, simd), pe))
        #: the engine's parts (their estimates sum to the engine's, their Components make its hardware)
        self.buffer = GroupBufferSpec(geo.beats_per_group, act_layout)
        self.weight_rom = WeightRomSpec(self.weight, geo, w_bits, rom_layout, store=weight_store)
        self.sequencer = FoldSequencerSpec.of(geo, self.core_depth)
        self.mac_array = MacArraySpec(plan, tuple(self._cores), self.core_depth, act_layout, rom_layout, pixels,
                                      pe, a_bits, geo.sub_rows, geo.row_taps, self.cascade)
        self.adder_tree = self.mac_array.tree
        self.output_stage = OutputStageSpec(pixels, pe, self.acc_bits, self.segments,
                                            self.adder_tree.sum_layout)

        self.declare_ports({
            "i": In(stream.Signature(act_layout)),
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
        """``"dsp"`` (packed DSP48E2 cores), ``"cascade"`` (packed DSP48E2s summed over the P cascade) or
        ``"lut"`` (shift-and-add LUT cores)."""
        return "cascade" if self.cascade > 1 else self.plan.multiplier

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
        ``out_h * out_w/pixels * ceil(out_ch/pe) * k*k*in_ch/simd`` (dense) and
        ``out_h * out_w/pixels * k*k*in_ch/simd`` (depthwise), ``out_w/pixels``
        rounded up; row beats replace ``k*k`` by ``k * sub_rows``.
        """
        return frame_cycles(self.geometry, self.out_size)

    @property
    def pipeline_latency(self) -> int:
        """Enabled cycles from a fold's last buffer read to its output beat (ROM/buffer read, cores,
        adder-tree levels, accumulator/output register)."""
        return (self.buffer.latency + self.mac_array.latency + self.adder_tree.latency
                + self.output_stage.latency)

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
                                   bits=self.a_bits, signed=self.signed_act, name=name)
        else:
            window = SlidingWindowSpec(self.in_ch, height, width, self.k, self.stride, pad, lanes=self.simd,
                                       pixels=self.pixels, bits=self.a_bits, signed=self.signed_act, name=name)
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

    @property
    def parts(self) -> tuple[Any, ...]:
        """The part specs, input to output: buffer, weight ROM, sequencer, MAC array, adder tree, output stage."""
        return (self.buffer, self.weight_rom, self.sequencer, self.mac_array, self.adder_tree, self.output_stage)

    def estimate(self) -> Resources:
        """The sum of the parts' estimates: DSPs = packed cores (0 with LUT cores); LUT/FF from the cores'
        fabric, sub-row muxes, adder tree, accumulators, output register and counters; memories by size."""
        total = Resources()
        for part in self.parts:
            total = total + part.estimate()
        return total

    # ---- hardware ------------------------------------------------------------------------------


class ConvEngine(ConvEngineSpec, SpecComponent):
    """The hardware of :class:`ConvEngineSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.buffer = buffer = self.buffer.build()
        m.submodules.weights = rom = self.weight_rom.build()
        m.submodules.sequencer = sequencer = self.sequencer.build()
        m.submodules.macs = macs = self.mac_array.build()
        m.submodules.tree = tree = self.adder_tree.build()
        m.submodules.output = output = self.output_stage.build()
        en = output.en
        wiring.connect(m, wiring.flipped(self.i), buffer.i)
        m.d.comb += [
            sequencer.en.eq(en), sequencer.busy.eq(buffer.busy),
            buffer.read_en.eq(en), buffer.read_index.eq(sequencer.index), buffer.done.eq(sequencer.done),
            rom.en.eq(en), rom.advance.eq(sequencer.advance),
            macs.en.eq(en), macs.valid.eq(sequencer.valid), macs.first.eq(sequencer.first),
            macs.last.eq(sequencer.last), macs.sub_row.eq(sequencer.sub_row),
            macs.acts.eq(buffer.read_data), macs.weights.eq(rom.data),
            tree.en.eq(en), tree.i_valid.eq(macs.o_valid), tree.leaves.eq(macs.leaves),
            output.i_valid.eq(tree.o_valid), output.sums.eq(tree.sums),
        ]
        wiring.connect(m, output.o, wiring.flipped(self.o))
        return m


ConvEngineSpec.component_class = ConvEngine
