"""A DSP-free requantizer: the requant function as per-channel thresholds on the accumulator.

``mixq_hw.graph.ops.requant`` is monotone in the accumulator for every channel: non-decreasing for
``inc > 0``, non-increasing for ``inc < 0``, constant for ``inc == 0`` (the LeakyReLU's rounding and the
clip keep it so).  So a channel's code is ``lo + #{j : passes_j(acc)}`` over its ``2**out_bits - 1``
levels ``lo + 1 .. hi``, with ``passes_j(acc) = (acc >= t_j) XOR desc``: ``t_j`` the least accumulator at
which the code is at least level j (``desc`` clear) or below it (``desc`` set), ``2**(acc_bits-1)`` when
there is none.  :func:`requant_thresholds` finds every ``t_j`` exactly, by bisection on the reference
function itself, so the hardware computes the reference bit for bit whatever the rounding or activation.

:class:`ThresholdRequant` counts the levels passed by a binary search, one comparator per output bit
(FINN's multi-threshold unit compares against all ``2**b - 1`` at once): stage ``q`` (from the top bit
down) compares the accumulator with the threshold of level ``prefix*2**(q+1) + 2**q``, ``prefix`` the code
bits found so far, and sets bit ``q`` when it passes.  The thresholds of a stage come from a small ROM
per multiplier lane (read combinationally: LUTs) addressed by the lane's slot (fold and step of the beat)
and the prefix.  It takes :class:`~mixq_hw.layers.requant.RequantSpec`'s arguments, ports and beat
schedule (``lanes`` values per cycle), and uses no DSP.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, memory

from ..estimate import Resources, constant_rom_cost, mux_luts, signed_bit_columns
from ..graph import ops as ref
from ..packing.bits import act_codes, signed_width
from ..packing.calibration import THRESHOLD_LOGIC_MARGIN
from ._checks import layer_label
from ._mux import mux_tree
from .requant import RequantSpec
from .spec import SpecComponent

__all__ = ["ThresholdRequant", "ThresholdRequantSpec", "requant_thresholds", "MAX_THRESHOLD_BITS"]

#: The widest codes a threshold requantizer takes: its ROMs grow as ``2**out_bits``.
MAX_THRESHOLD_BITS = 8


def requant_thresholds(inc, bias, shift: int, out_bits: int, acc_bits: int, *, neg_shift: int | None = None,
                       signed_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(t, desc)``: ``t[c, j-1]`` the threshold of level ``lo + j`` of channel ``c`` (``j = 1..2**out_bits-1``)
    and ``desc[c]`` its direction, such that for every ``acc_bits`` accumulator ``requant(acc)[c] = lo +
    #{j : (acc >= t[c, j-1]) != desc[c]}``; found by bisection on :func:`mixq_hw.graph.ops.requant`."""
    inc = np.asarray(inc, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    lo, _ = act_codes(out_bits, signed_out)
    amin, amax = -2 ** (acc_bits - 1), 2 ** (acc_bits - 1) - 1
    levels = lo + np.arange(1, 2 ** out_bits)[None, :]
    desc = inc < 0

    def beyond(acc: np.ndarray) -> np.ndarray:
        """Whether ``acc[c, j]`` is at or past level j's threshold (the predicate is false..true in acc)."""
        codes = ref.requant(acc[None, :, :, None], inc, bias, shift, out_bits, neg_shift=neg_shift,
                            signed_out=signed_out)[0, :, :, 0]
        return np.where(desc[:, None], codes < levels, codes >= levels)

    shape = (len(inc), levels.shape[1])
    low, high = np.full(shape, amin, np.int64), np.full(shape, amax + 1, np.int64)
    # invariant: the predicate is false below `low` and true from `high` on (high = amax + 1: never)
    low_true = beyond(low)
    high = np.where(low_true, amin, high)
    while True:
        open_ = high - low > 1
        if not open_.any():
            break
        mid = np.where(open_, (low + high) // 2, low)
        true = beyond(mid)
        high = np.where(open_ & true, mid, high)
        low = np.where(open_ & ~true, mid, low)
    return high, desc


class ThresholdRequantSpec(RequantSpec):
    """:class:`~mixq_hw.layers.requant.RequantSpec`'s function (the same arguments and ports) on thresholds:
    no DSP, ``out_bits`` comparators per lane and ROMs of ``2**out_bits - 1`` thresholds per channel.

    Refuses ``out_bits`` above :data:`MAX_THRESHOLD_BITS`, naming the layer.
    """

    kind = "ThresholdRequant"

    def __init__(self, inc, bias, shift: int, *, acc_bits: int, out_bits: int, pe: int, pixels: int = 1,
                 lanes: int | None = None, height: int = 1, width: int | None = None, name: str = "",
                 neg_shift: int | None = None, signed_out: bool = False):
        where = layer_label(name, self.kind)
        if isinstance(out_bits, int) and not isinstance(out_bits, bool) and out_bits > MAX_THRESHOLD_BITS:
            raise ValueError(f"out_bits {out_bits} is too wide for thresholds (at most {MAX_THRESHOLD_BITS}: "
                             f"2**out_bits - 1 of them per channel) {where}; use the DSP requantizer")
        super().__init__(inc, bias, shift, acc_bits=acc_bits, out_bits=out_bits, pe=pe, pixels=pixels,
                         lanes=lanes, height=height, width=width, name=name, neg_shift=neg_shift,
                         signed_out=signed_out)
        t, desc = requant_thresholds(self.inc, self.bias, shift, out_bits, acc_bits, neg_shift=neg_shift,
                                     signed_out=signed_out)
        #: ``thresholds[c][j-1]``, ``descending[c]`` (:func:`requant_thresholds`)
        self.thresholds = [[int(v) for v in row] for row in t]
        self.descending = [bool(v) for v in desc]
        self.t_bits = signed_width(int(t.min()), int(t.max()))
        #: input register, one stage per output bit, output collector
        self.latency = out_bits + 2
        self.slots = self.folds * self.steps

    @property
    def n_dsps(self) -> int:
        """None: the comparisons are fabric logic."""
        return 0

    def stage_table(self, lane: int, q: int) -> list[tuple[list[int], bool]]:
        """Lane ``lane``'s ROM for output bit ``q``: per slot ``fold*steps + step``, the thresholds of levels
        ``prefix*2**(q+1) + 2**q`` for every prefix, and the channel's direction."""
        rows = []
        for fold in range(self.folds):
            for _, p in self._lane_sources(lane):
                c = fold * self.pe + p
                levels = [(prefix << (q + 1)) + (1 << q) for prefix in range(2 ** (self.out_bits - 1 - q))]
                rows.append(([self.thresholds[c][j - 1] for j in levels], self.descending[c]))
        return rows

    def _stage_columns(self, lane: int, q: int) -> np.ndarray:
        """The ROM of :meth:`stage_table` as bits ``[slot*prefixes + prefix, bit]`` (threshold, direction)."""
        rows = [(t, d) for ts, d in self.stage_table(lane, q) for t in ts]
        return np.concatenate([signed_bit_columns(np.array([[t] for t, _ in rows]), self.t_bits),
                               np.array([[d] for _, d in rows], np.uint8)], axis=1)

    def estimate(self) -> Resources:
        """Per lane and output bit a comparator (a carry chain, two bits per LUT, over the wider of accumulator
        and threshold) and its ROM (logic, only distinct lanes' tables: synthesis shares equal ones); the
        operand multiplexer; counters; FFs for the pipeline of accumulators and code bits."""
        width = max(self.acc_bits, self.t_bits) + 1
        tables: dict[bytes, int] = {}
        for lane in range(self.lanes):
            for q in range(self.out_bits):
                columns = self._stage_columns(lane, q)
                tables.setdefault(columns.tobytes() + bytes([q]), constant_rom_cost(columns).lut)
        rom = sum(tables.values())
        compare = self.lanes * self.out_bits * math.ceil(width / 2)
        select = mux_luts(self.steps) * self.acc_bits * self.lanes
        counter = 2 * max(1, (self.slots - 1).bit_length()) + max(1, (self.steps - 1).bit_length())
        lut = math.ceil(THRESHOLD_LOGIC_MARGIN * (rom + compare + select + 2 * counter)) + 4
        slot_bits = max(1, (self.slots - 1).bit_length())
        ff = (self.lanes * (self.out_bits + 1) * (self.acc_bits + self.out_bits)
              + (self.out_bits + 1) * (slot_bits + 2) + self.pixels * self.pe * self.out_bits + counter)
        return Resources(lut=lut, ff=ff)


class ThresholdRequant(ThresholdRequantSpec, SpecComponent):
    """The hardware of :class:`ThresholdRequantSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        steps, lanes, bits = self.steps, self.lanes, self.out_bits
        stages = bits + 1                   # the input register, then one per output bit

        valid = [Signal(name=f"valid{n}") for n in range(stages)]
        step_at = [Signal(range(steps), name=f"step{n}") for n in range(stages)]
        slot_at = [Signal(range(self.slots), name=f"slot{n}") for n in range(stages)]
        o_valid = Signal()
        enable = ~o_valid | self.o.ready
        step = Signal(range(steps))
        slot = Signal(range(self.slots))
        last_step = step == steps - 1
        take = self.i.valid & enable
        m.d.comb += [self.i.ready.eq(enable & last_step), self.o.valid.eq(o_valid)]
        with m.If(take):
            m.d.sync += [step.eq(Mux(last_step, 0, step + 1)),
                         slot.eq(Mux(slot == self.slots - 1, 0, slot + 1))]
        with m.If(enable):
            m.d.sync += [valid[0].eq(self.i.valid), step_at[0].eq(step), slot_at[0].eq(slot)]
            for n in range(1, stages):
                m.d.sync += [valid[n].eq(valid[n - 1]), step_at[n].eq(step_at[n - 1]),
                             slot_at[n].eq(slot_at[n - 1])]
            m.d.sync += o_valid.eq(valid[-1] & (step_at[-1] == steps - 1))

        lo, _ = act_codes(bits, self.signed_out)
        codes = []
        for lane in range(lanes):
            acc = [Signal(signed(self.acc_bits), name=f"acc{lane}_{n}") for n in range(stages)]
            code = [Signal(bits, name=f"code{lane}_{n}") for n in range(stages)]
            sources = self._lane_sources(lane)
            with m.If(enable):
                m.d.sync += acc[0].eq(mux_tree([self.i.payload[pixel][p] for pixel, p in sources], step))
            for n in range(1, stages):
                q = bits - n                # the output bit this stage decides
                prefixes = 2 ** (bits - 1 - q)
                word = data.StructLayout({"t": data.ArrayLayout(signed(self.t_bits), prefixes), "desc": 1})
                rom = memory.Memory(shape=word, depth=self.slots, init=[
                    {"t": ts, "desc": int(d)} for ts, d in self.stage_table(lane, q)])
                m.submodules[f"rom{lane}_{q}"] = rom
                read = rom.read_port(domain="comb")
                prefix = code[n - 1][q + 1:] if q + 1 < bits else None
                m.d.comb += read.addr.eq(slot_at[n - 1])
                threshold = read.data.t[prefix] if prefix is not None else read.data.t[0]
                passes = (acc[n - 1] >= threshold) ^ read.data.desc
                with m.If(enable):
                    m.d.sync += [acc[n].eq(acc[n - 1]), code[n].eq(code[n - 1] | (passes << q))]
            codes.append(code[-1] + lo if lo else code[-1])
        collector = Signal(self.out_layout)
        with m.If(enable & valid[-1]):
            with m.Switch(step_at[-1]):
                for s in range(steps):
                    with m.Case(s):
                        for lane in range(lanes):
                            pixel, p = divmod(s * lanes + lane, self.pe)
                            m.d.sync += collector[pixel][p].eq(codes[lane])
        m.d.comb += self.o.payload.eq(collector)
        return m


ThresholdRequantSpec.component_class = ThresholdRequant
