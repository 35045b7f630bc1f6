"""Channel moves on a raster pixel stream: concat of N inputs, split into channel ranges, one channel range
(slice), DiracDeltaNet's shuffle.

All three keep the codes and the lane layout; they are wiring plus a beat counter where every part is a whole
number of beats (each part's channel count divisible by ``lanes``), and the constructors say so otherwise.

- :class:`ConcatN`: for each pixel, ``C_0/lanes`` beats from ``i0``, then ``C_1/lanes`` from ``i1``, ... A
  multiplexer steered by the counter; no storage, no latency.  The inputs run in lock step pixel by pixel,
  so a branch that arrives early waits in a FIFO upstream, sized from the schedules.
- :class:`ChannelSplit`: the mirror image, one input to outputs ``o0``, ``o1``, ...  The outputs are
  served in turn within each pixel, so consumers that meet again downstream need the same FIFO reasoning.
- :class:`ChannelSlice`: channels ``[start, stop)`` of the input; the other beats of each pixel are taken and
  dropped.  The graph's channel split is two slices of one forked stream (the pipeline's fan-out).
- :class:`ChannelShuffle`: the last quarter of the channels moves to the front
  (:func:`~mixq_hw.layers.reference.channel_shuffle`).  When a pixel is one beat it is a lane permutation
  (wires).  Otherwise it is a split into (3C/4, C/4), a FIFO of ``3C/4 / lanes + 1`` beats on the first part
  and a concat of (last quarter, FIFO): the FIFO holds a pixel's first three quarters until the last
  quarter has passed, while the next pixel's first part refills it.
"""

from __future__ import annotations

import math
from typing import Sequence

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..estimate import Resources, mux_luts
from ._checks import check_positive, layer_label
from .fifo import StreamFIFO, fifo_cost
from .spec import LayerSpec, SpecComponent

__all__ = ["ConcatN", "ConcatNSpec", "ChannelSplit", "ChannelSplitSpec", "ChannelSlice", "ChannelSliceSpec",
           "ChannelShuffle", "ChannelShuffleSpec", "channel_parts_cost", "split_cost", "slice_cost", "shuffle_cost",
           "shuffle_fifo_depth"]


def _check_parts(where: str, channels: Sequence[int], height: int, width: int, lanes: int, bits: int,
                 port: str) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or len(channels) < 2:
        raise ValueError(f"channels must be a sequence of at least two channel counts, not {channels!r} {where}")
    check_positive(where, **{f"channels{k}": c for k, c in enumerate(channels)}, height=height, width=width,
                   lanes=lanes, bits=bits)
    for k, c in enumerate(channels):
        if c % lanes:
            raise ValueError(f"channels {c} of {port}{k} not divisible by lanes {lanes} {where}")
    return tuple(channels)


def channel_parts_cost(parts: int, max_beats: int, lanes: int, bits: int) -> Resources:
    """A ``parts``:1 multiplexer of lanes * bits (LUTs per bit: :func:`~mixq_hw.estimate.mux_luts`), a beat
    counter up to ``max_beats`` and a select register (estimate; a split needs no payload mux, so it costs
    less than this)."""
    word = lanes * bits
    counter = max(1, math.ceil(math.log2(max_beats + 1)))
    select = max(1, math.ceil(math.log2(parts)))
    return Resources(lut=word * mux_luts(parts) + 2 * counter + 3, ff=counter + select)


def split_cost(parts: int, max_beats: int, lanes: int, bits: int) -> Resources:
    """:func:`channel_parts_cost` less the payload mux: every output of a split sees the input (estimate)."""
    cost = channel_parts_cost(parts, max_beats, lanes, bits)
    return Resources(lut=cost.lut - lanes * bits * mux_luts(parts) + parts, ff=cost.ff)


class ConcatNSpec(LayerSpec):
    """Concatenates (C_k, H, W) streams ``i0``, ``i1``, ... along channels into (sum C_k, H, W), same lanes.

    Ports: ``i<k>`` and ``o``, all ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)``
    with ``signed=True``).  Throughput one beat per cycle; valid/payload follow the selected input and its
    ready follows ``o.ready`` (no ready -> valid path); latency 0.
    """

    kind = "ConcatN"

    def __init__(self, channels: Sequence[int], height: int, width: int, lanes: int, bits: int, *,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, self.kind)
        channels = _check_parts(where, channels, height, width, lanes, bits, "input i")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.name = lanes, bits, name
        self.layout = data.ArrayLayout(Shape(bits, signed=bool(signed)), lanes)
        ports = {f"i{k}": In(stream.Signature(self.layout)) for k in range(len(channels))}
        self.declare_ports(ports | {"o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor."""
        return sum(self.channels), self.height, self.width

    def cycles_per_frame(self) -> int:
        """One output beat per cycle: H * W * sum(C_k) / lanes."""
        return self.height * self.width * sum(self.channels) // self.lanes

    def estimate(self) -> Resources:
        """See :func:`channel_parts_cost`."""
        return channel_parts_cost(len(self.channels), max(self.channels) // self.lanes, self.lanes, self.bits)


def next_part(m: Module, beat: Signal, select: Signal, counts: list[int], k: int) -> None:
    """One beat of part ``k`` moved: ``beat`` counts within the part, and after its ``counts[k]``-th beat
    ``select`` goes to the next part (after the last, back to part 0)."""
    with m.If(beat == counts[k] - 1):
        m.d.sync += [beat.eq(0), select.eq(0 if k == len(counts) - 1 else k + 1)]
    with m.Else():
        m.d.sync += beat.eq(beat + 1)


class ConcatN(ConcatNSpec, SpecComponent):
    """The hardware of :class:`ConcatNSpec` (the same arguments)."""

    @property
    def inputs(self) -> list:
        """The input ports, in channel order."""
        return [getattr(self, f"i{k}") for k in range(len(self.channels))]

    def elaborate(self, platform) -> Module:
        m = Module()
        counts = [c // self.lanes for c in self.channels]
        beat = Signal(range(max(counts)))       # beat within the current input's part of the pixel
        select = Signal(range(len(counts)))
        fire = self.o.valid & self.o.ready

        with m.Switch(select):
            for k, port in enumerate(self.inputs):
                with m.Case(k):
                    m.d.comb += [
                        self.o.valid.eq(port.valid),
                        self.o.payload.eq(port.payload),
                        port.ready.eq(self.o.ready),
                    ]
                    with m.If(fire):
                        next_part(m, beat, select, counts, k)
        return m


class ChannelSplitSpec(LayerSpec):
    """Splits a (sum C_k, H, W) stream into (C_k, H, W) streams ``o0``, ``o1``, ... (consecutive channel
    ranges), same lanes.

    Ports: ``i`` and ``o<k>``, ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with
    ``signed=True``).  Throughput one beat per cycle; each beat goes to the output its position selects, whose
    ready is ``i.ready``; latency 0.
    """

    kind = "ChannelSplit"

    def __init__(self, channels: Sequence[int], height: int, width: int, lanes: int, bits: int, *,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, self.kind)
        channels = _check_parts(where, channels, height, width, lanes, bits, "output o")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.name = lanes, bits, name
        self.layout = data.ArrayLayout(Shape(bits, signed=bool(signed)), lanes)
        ports = {f"o{k}": Out(stream.Signature(self.layout)) for k in range(len(channels))}
        self.declare_ports({"i": In(stream.Signature(self.layout))} | ports)

    def cycles_per_frame(self) -> int:
        """One input beat per cycle: H * W * sum(C_k) / lanes."""
        return self.height * self.width * sum(self.channels) // self.lanes

    def estimate(self) -> Resources:
        """See :func:`split_cost`."""
        return split_cost(len(self.channels), max(self.channels) // self.lanes, self.lanes, self.bits)


class ChannelSplit(ChannelSplitSpec, SpecComponent):
    """The hardware of :class:`ChannelSplitSpec` (the same arguments)."""

    @property
    def outputs(self) -> list:
        """The output ports, in channel order."""
        return [getattr(self, f"o{k}") for k in range(len(self.channels))]

    def elaborate(self, platform) -> Module:
        m = Module()
        counts = [c // self.lanes for c in self.channels]
        beat = Signal(range(max(counts)))       # beat within the current output's part of the pixel
        select = Signal(range(len(counts)))
        fire = self.i.valid & self.i.ready
        for port in self.outputs:
            m.d.comb += port.payload.eq(self.i.payload)
        with m.Switch(select):
            for k, port in enumerate(self.outputs):
                with m.Case(k):
                    m.d.comb += [port.valid.eq(self.i.valid), self.i.ready.eq(port.ready)]
                    with m.If(fire):
                        next_part(m, beat, select, counts, k)
        return m


def slice_cost(beats: int) -> Resources:
    """A beat counter up to ``beats`` (a pixel), two comparisons and the valid/ready gating (estimate; the
    payload is wires)."""
    counter = max(1, math.ceil(math.log2(beats + 1)))
    return Resources(lut=3 * counter + 2, ff=counter)


class ChannelSliceSpec(LayerSpec):
    """Channels ``[start, stop)`` of a (C, H, W) stream: a (stop - start, H, W) stream, same lanes.

    ``lanes`` must divide C, ``start`` and ``stop``.  Ports: ``i`` and ``o``,
    ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with ``signed=True``).  Throughput
    one input beat per cycle; a beat inside the range passes with ``i.ready = o.ready``, a beat outside it is
    taken at once and dropped; latency 0.
    """

    kind = "ChannelSlice"

    def __init__(self, channels: int, start: int, stop: int, height: int, width: int, lanes: int, bits: int, *,
                 signed: bool = False, name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        for key, value in (("start", start), ("stop", stop)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} must be an integer, not {value!r} {where}")
        if not 0 <= start < stop <= channels:
            raise ValueError(f"channels [{start}, {stop}) must be a non-empty range inside 0..{channels} {where}")
        for key, value in (("channels", channels), ("start", start), ("stop", stop)):
            if value % lanes:
                raise ValueError(f"{key} {value} not divisible by lanes {lanes} {where}")
        self.channels, self.start, self.stop, self.height, self.width = channels, start, stop, height, width
        self.lanes, self.bits, self.signed, self.name = lanes, bits, bool(signed), name
        self.layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes)
        self.declare_ports({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(stop - start, H, W) of the output tensor."""
        return self.stop - self.start, self.height, self.width

    def cycles_per_frame(self) -> int:
        """One input beat per cycle: H * W * C / lanes."""
        return self.height * self.width * self.channels // self.lanes

    def estimate(self) -> Resources:
        """See :func:`slice_cost`."""
        return slice_cost(self.channels // self.lanes)


class ChannelSlice(ChannelSliceSpec, SpecComponent):
    """The hardware of :class:`ChannelSliceSpec` (the same arguments)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.comb += self.o.payload.eq(self.i.payload)
        beats, first, last = (v // self.lanes for v in (self.channels, self.start, self.stop))
        if first == 0 and last == beats:        # the whole pixel: wires
            m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
            return m
        beat = Signal(range(beats))             # beat within the pixel
        inside = Signal()
        m.d.comb += [
            inside.eq((beat >= first) & (beat < last)),
            self.o.valid.eq(self.i.valid & inside),
            self.i.ready.eq(self.o.ready | ~inside),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
        return m


def shuffle_fifo_depth(channels: int, lanes: int) -> int:
    """Beats the shuffle's FIFO holds: a pixel's first three quarters and one more (0 when a pixel is one beat).

    Three quarters are needed (the concat takes none of them before the last quarter has passed); the extra
    beat keeps one beat per cycle (measured: without it a pixel of n beats takes n + 1 cycles)."""
    return 0 if lanes == channels else (3 * channels // 4) // lanes + 1


def shuffle_cost(channels: int, lanes: int, bits: int) -> Resources:
    """Nothing for a lane permutation; else the split, FIFO and concat a :class:`ChannelShuffle` is built from."""
    if lanes == channels:
        return Resources()
    beats = 3 * channels // 4 // lanes
    return (split_cost(2, beats, lanes, bits) + fifo_cost(shuffle_fifo_depth(channels, lanes), lanes * bits)
            + channel_parts_cost(2, beats, lanes, bits))


class ChannelShuffleSpec(LayerSpec):
    """DiracDeltaNet's shuffle of a (C, H, W) stream: output channels ``[C - C/4, C)`` then ``[0, C - C/4)``.

    C must be divisible by 4, and either ``lanes == C`` (a lane permutation) or ``lanes`` divides C/4.
    Ports: ``i`` and ``o``, ``stream.Signature(ArrayLayout(unsigned(bits), lanes))`` (``signed(bits)`` with
    ``signed=True``).  Throughput one beat per cycle; latency 0 for the first output beat of a pixel (it is
    the pixel's last-quarter beat passing through), the FIFO's for the rest.
    """

    kind = "ChannelShuffle"

    def __init__(self, channels: int, height: int, width: int, lanes: int, bits: int, *, signed: bool = False,
                 name: str = ""):
        where = layer_label(name, self.kind)
        check_positive(where, channels=channels, height=height, width=width, lanes=lanes, bits=bits)
        if channels % 4:
            raise ValueError(f"the shuffle moves a quarter of the channels: {channels} is not divisible by 4 {where}")
        if lanes != channels and (channels // 4) % lanes:
            raise ValueError(f"lanes {lanes} must equal the channels {channels} or divide a quarter of them "
                             f"({channels // 4}) {where}")
        self.channels, self.height, self.width = channels, height, width
        self.lanes, self.bits, self.signed, self.name = lanes, bits, bool(signed), name
        self.layout = data.ArrayLayout(Shape(bits, signed=self.signed), lanes)
        self.declare_ports({"i": In(stream.Signature(self.layout)), "o": Out(stream.Signature(self.layout))})

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the output tensor (the input's)."""
        return self.channels, self.height, self.width

    def cycles_per_frame(self) -> int:
        """One beat per cycle: H * W * C / lanes."""
        return self.height * self.width * self.channels // self.lanes

    def estimate(self) -> Resources:
        """See :func:`shuffle_cost`."""
        return shuffle_cost(self.channels, self.lanes, self.bits)


class ChannelShuffle(ChannelShuffleSpec, SpecComponent):
    """The hardware of :class:`ChannelShuffleSpec` (the same arguments)."""

    def _parts(self) -> tuple[ChannelSplit, StreamFIFO, ConcatN]:
        c, quarter = self.channels, self.channels // 4
        args = (self.height, self.width, self.lanes, self.bits)
        split = ChannelSplit((c - quarter, quarter), *args, signed=self.signed)
        fifo = StreamFIFO(self.layout, shuffle_fifo_depth(c, self.lanes))
        concat = ConcatN((quarter, c - quarter), *args, signed=self.signed)
        return split, fifo, concat

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.lanes == self.channels:
            moved = self.channels - self.channels // 4
            m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
            for k in range(self.lanes):
                m.d.comb += self.o.payload[k].eq(self.i.payload[(k + moved) % self.lanes])
            return m
        m.submodules.split, m.submodules.fifo, m.submodules.concat = split, fifo, concat = self._parts()
        wiring.connect(m, wiring.flipped(self.i), split.i)
        wiring.connect(m, split.o0, fifo.i)
        wiring.connect(m, split.o1, concat.i0)
        wiring.connect(m, fifo.o, concat.i1)
        wiring.connect(m, concat.o, wiring.flipped(self.o))
        return m


ConcatNSpec.component_class = ConcatN
ChannelSplitSpec.component_class = ChannelSplit
ChannelSliceSpec.component_class = ChannelSlice
ChannelShuffleSpec.component_class = ChannelShuffle
