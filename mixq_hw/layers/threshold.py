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
bits found so far, and sets bit ``q`` when it passes.  The thresholds of a stage come from a ROM per
multiplier lane addressed by the fold, the lane's channel and the prefix, read synchronously one stage
ahead (the address from the previous stage's comparison): block RAM once it is large, logic while small.  It takes :class:`~mixq_hw.layers.requant.RequantSpec`'s arguments, ports and beat
schedule (``lanes`` values per cycle), and uses no DSP.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data

from ..estimate import Resources, constant_rom_cost, memory_cost, mux_luts, signed_bit_columns, styled_memory
from ..packing.bits import act_codes, signed_width
from ..packing.calibration import THRESHOLD_LOGIC_MARGIN
from ._checks import layer_label
from ._mux import mux_tree
from .requant import RequantSpec, collect_codes
from .spec import SpecComponent

__all__ = ["ThresholdRequant", "ThresholdRequantSpec", "requant_thresholds", "MAX_THRESHOLD_BITS"]

#: The widest codes a threshold requantizer takes: its ROMs grow as ``2**out_bits``.
MAX_THRESHOLD_BITS = 8


def requant_thresholds(inc, bias, shift: int, out_bits: int, acc_bits: int, *, neg_shift: int | None = None,
                       signed_out: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(t, desc)``: ``t[c, j-1]`` the threshold of level ``lo + j`` of channel ``c`` (``j = 1..2**out_bits-1``)
    and ``desc[c]`` its direction, such that for every ``acc_bits`` accumulator ``requant(acc)[c] = lo +
    #{j : (acc >= t[c, j-1]) != desc[c]}``; found by bisection on :func:`mixq_hw.graph.ops.requant`."""
    # imported here: mixq_hw.graph imports the op registry, whose requant op imports this module
    from ..graph.ops import requant

    inc = np.asarray(inc, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    lo, _ = act_codes(out_bits, signed_out)
    amin, amax = -2 ** (acc_bits - 1), 2 ** (acc_bits - 1) - 1
    levels = lo + np.arange(1, 2 ** out_bits)[None, :]
    desc = inc < 0

    def beyond(acc: np.ndarray) -> np.ndarray:
        """Whether ``acc[c, j]`` is at or past level j's threshold (the predicate is false..true in acc)."""
        codes = requant(acc[None, :, :, None], inc, bias, shift, out_bits, neg_shift=neg_shift,
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

    @property
    def n_dsps(self) -> int:
        """None: the comparisons are fabric logic."""
        return 0

    def lane_channels(self, lane: int) -> list[int]:
        """The channel lanes ``p`` (of a fold's ``pe``) that multiplier lane ``lane`` serves, in order."""
        return list(dict.fromkeys(p for _, p in self._lane_sources(lane)))

    def _index_bits(self, lane: int) -> int:
        return max(0, (len(self.lane_channels(lane)) - 1).bit_length())

    def stage_table(self, lane: int, n: int) -> list[tuple[int, bool]]:
        """Lane ``lane``'s ROM for stage ``n`` (1..out_bits, deciding output bit ``q = out_bits - n``): at
        address ``{fold, channel index, prefix}`` (prefix: the ``n - 1`` code bits found, least significant
        field) the threshold of level ``prefix*2**(q+1) + 2**q`` and the channel's direction; unused channel
        indices (padding to a power of two) read as the lane's last channel."""
        thresholds, descending = self._stage_arrays(lane, n)
        return [(int(t), bool(d)) for t, d in zip(thresholds, descending)]

    def _stage_arrays(self, lane: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`stage_table` as two arrays (thresholds, directions), address order."""
        q = self.out_bits - n
        served = self.lane_channels(lane)
        served += [served[-1]] * (2 ** self._index_bits(lane) - len(served))
        channels = (np.arange(self.folds)[:, None] * self.pe + np.array(served)[None, :]).reshape(-1)
        levels = (np.arange(2 ** (n - 1)) << (q + 1)) + (1 << q) - 1
        table = np.asarray(self.thresholds, dtype=np.int64)
        return (table[channels[:, None], levels[None, :]].reshape(-1),
                np.repeat(np.asarray(self.descending, dtype=np.uint8)[channels], len(levels)))

    def _table_columns(self, lane: int, n: int) -> np.ndarray:
        """:meth:`stage_table` as bits ``[address, bit]`` (threshold, then direction)."""
        thresholds, descending = self._stage_arrays(lane, n)
        return np.concatenate([signed_bit_columns(thresholds[:, None], self.t_bits), descending[:, None]], axis=1)

    def estimate(self) -> Resources:
        """Per lane and output bit a comparator (a carry chain, two bits per LUT, over the wider of accumulator
        and threshold) and its ROM, read synchronously: block RAM where :func:`~mixq_hw.estimate.memory_cost`
        puts it there, else logic (only its non-trivial distinct bits); the operand multiplexer; counters;
        FFs for the pipeline of accumulators and code bits and the ROMs' output registers."""
        width = max(self.acc_bits, self.t_bits) + 1
        rom = Resources()
        for lane in range(self.lanes):
            for n in range(1, self.out_bits + 1):
                columns = self._table_columns(lane, n)
                in_bram = memory_cost(*columns.shape)
                rom = rom + (in_bram if in_bram.bram36 else
                             constant_rom_cost(columns) + Resources(ff=columns.shape[1]))
        compare = self.lanes * self.out_bits * math.ceil(width / 2)
        select = mux_luts(self.steps) * self.acc_bits * self.lanes
        counter = max(1, (self.folds - 1).bit_length()) + 2 * max(1, (self.steps - 1).bit_length())
        lut = math.ceil(THRESHOLD_LOGIC_MARGIN * (rom.lut + compare + select + 2 * counter)) + 4
        ff = (self.lanes * (self.out_bits + 1) * (self.acc_bits + self.out_bits + 1)
              + (self.out_bits + 1) * (counter + 2) + self.pixels * self.pe * self.out_bits + counter)
        return Resources(lut=lut, ff=ff + rom.ff, bram36=rom.bram36)


class ThresholdRequant(ThresholdRequantSpec, SpecComponent):
    """The hardware of :class:`ThresholdRequantSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        steps, lanes, bits = self.steps, self.lanes, self.out_bits
        stages = bits + 1                   # the input register, then one per output bit

        valid = [Signal(name=f"valid{n}") for n in range(stages)]
        step_at = [Signal(range(steps), name=f"step{n}") for n in range(stages)]
        fold_at = [Signal(range(self.folds), name=f"fold{n}") for n in range(stages)]
        o_valid = Signal()
        enable = ~o_valid | self.o.ready
        step = Signal(range(steps))
        last_step = step == steps - 1
        take = self.i.valid & enable
        m.d.comb += [self.i.ready.eq(enable & last_step), self.o.valid.eq(o_valid)]
        fold = self._fold_counter(m, take & last_step)
        with m.If(take):
            m.d.sync += step.eq(Mux(last_step, 0, step + 1))
        with m.If(enable):
            m.d.sync += [valid[0].eq(self.i.valid), step_at[0].eq(step), fold_at[0].eq(fold)]
            for n in range(1, stages):
                m.d.sync += [valid[n].eq(valid[n - 1]), step_at[n].eq(step_at[n - 1]),
                             fold_at[n].eq(fold_at[n - 1])]
            m.d.sync += o_valid.eq(valid[-1] & (step_at[-1] == steps - 1))

        lo, _ = act_codes(bits, self.signed_out)
        word = data.StructLayout({"t": signed(self.t_bits), "desc": 1})
        codes = []
        for lane in range(lanes):
            sources = self._lane_sources(lane)
            served = self.lane_channels(lane)
            index_bits = self._index_bits(lane)
            # the channel index of each step, and the one the item in each stage carries
            index_at = [Signal(max(1, index_bits), name=f"index{lane}_{n}") for n in range(stages)]
            index = Signal(max(1, index_bits), name=f"index{lane}")
            m.d.comb += index.eq(mux_tree([served.index(p) for _, p in sources], step))
            acc = [Signal(signed(self.acc_bits), name=f"acc{lane}_{n}") for n in range(stages)]
            code = [Signal(max(1, n), name=f"code{lane}_{n}") for n in range(stages)]
            with m.If(enable):
                m.d.sync += [acc[0].eq(mux_tree([self.i.payload[pixel][p] for pixel, p in sources], step)),
                             index_at[0].eq(index)]
            # the ROM of stage n is addressed one cycle ahead, by the item in stage n - 1 (its prefix the
            # code bits found there): its registered output meets the item when it enters stage n
            address = ([index[:index_bits]] if index_bits else []) + [fold]
            for n in range(1, stages):
                rom = styled_memory(shape=word, depth=len(self.stage_table(lane, n)),
                                    init=[{"t": t, "desc": int(d)} for t, d in self.stage_table(lane, n)])
                m.submodules[f"rom{lane}_{n}"] = rom
                read = rom.read_port(domain="sync")
                m.d.comb += [read.en.eq(enable), read.addr.eq(Cat(*address))]
                passes = (acc[n - 1] >= read.data.t) ^ read.data.desc
                found = Cat(passes, code[n - 1][:n - 1]) if n > 1 else passes
                with m.If(enable):
                    m.d.sync += [acc[n].eq(acc[n - 1]), code[n].eq(found), index_at[n].eq(index_at[n - 1])]
                address = [found] + ([index_at[n - 1][:index_bits]] if index_bits else []) + [fold_at[n - 1]]
            codes.append(code[-1] + lo if lo else code[-1])
        m.d.comb += self.o.payload.eq(collect_codes(m, self, codes, enable & valid[-1], step_at[-1]))
        return m


ThresholdRequantSpec.component_class = ThresholdRequant
