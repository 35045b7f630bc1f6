"""Helpers of the convolution engine: configuration checks, packing-plan choice, weight ROM layout, core wiring.

Kept apart from :mod:`mixq_hw.layers.conv` so the engine file holds only the
hardware; everything here is plain Python/numpy.

Two input formats, two plan families:

- ``"taps"`` (the SlidingWindow format, kernel-packing plans): one beat per
  (tap, chunk) of ``pixels`` window pixels; weight slots are output channels,
  activation slots output pixels, every field one product.
- ``"rows"`` (the RowWindow format, filter-packing plans, stride 1 only): one
  beat per (kernel row ``ky``, chunk) holding the ``span = pixels + k - 1``
  adjacent input pixels the group's ``pixels`` outputs read in that row.  A
  filter plan with ``Kp`` taps and ``N`` activation slots convolves ``N``
  adjacent pixels with ``Kp`` taps of a kernel row in one multiply (the taps
  sit reversed in the weight slots, so field ``q`` sums ``w[t] * x[u]`` with
  ``u + (Kp-1-t) == q``).  ``cx = ceil((pixels + Kp - 1) / N)`` cores tile the
  window side by side; field ``q`` of core ``c`` belongs to output pixel
  ``x = c*N + q - (Kp - 1)``.  The partial fields where two cores meet are
  added together in the engine's adder tree, so only the ``Kp - 1`` partial
  fields at the two ends of the group are wasted.  A kernel row that needs
  ``sub = ceil(k / Kp)`` multiplies takes ``sub`` engine cycles, sub-row ``m``
  reading the window shifted by ``m*Kp`` (taps past ``k`` are zero weights).

Why partial fields are not carried from one pixel group to the next (the
alternative that wastes nothing inside a row): the carry has to survive all
``out_ch/pe`` folds of a group, so it needs a per-fold memory of
``(k-1)*pe`` partial sums, and every output row needs one extra "prologue"
group of ``k - 1`` pixels (output groups stay aligned to ``pixels``).  Its
density, ``k*pixels*G / (ceil(pixels/N) * sub * (G + ceil((k-1)/pixels)))``
with ``G`` groups per row, beats the group-local scheme only at small
``pixels``; at the best ``pixels`` of each layer the group-local scheme is as
dense or denser (``benchmarks/filter_conv.py`` prints both; best over pixels for
64->64 3x3 on 10x20, simd = pe = 8: w2a2 15 vs 12 MACs/DSP, w3a3 12 vs 12,
w4a4 5.45 vs 5.45; 5x5: w2a2 25 vs 20, w3a3 12.5 vs 10), and it keeps no
state between groups.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mixq_hw.packing import plans
from mixq_hw.packing.bits import ACT_BITS, WEIGHT_BITS, act_magnitude, signed_bits
from mixq_hw.packing.layout import MULTIPLIERS, Plan, weight_range
from mixq_hw.packing.lut_core import lut_shape_estimate
from mixq_hw.packing.lut_layout import lut_plan
from mixq_hw.packing.protocol import PackingPlan
from mixq_hw.packing.split import SplitPlan, split_plans

__all__ = ["plan_fits", "ConvGeometry", "CoreWiring", "WINDOW_KINDS", "check_conv_config", "signed_bits", "choose_plan",
           "field_slots", "filter_positions", "geometry_for_plan", "plan_window_kind", "cores_for",
           "macs_per_cycle", "core_wiring", "weight_rom_words", "lut_layer_plan", "lut_layer_shape", "lut_layer_figures", "dot_wiring", "groups_per_frame",
           "frame_cycles", "dsps_per_core"]

#: Input formats the engine reads: SlidingWindow tap beats, RowWindow row beats.
WINDOW_KINDS = ("taps", "rows")




@dataclass(frozen=True)
class ConvGeometry:
    """The schedule's counts for one layer, derived once from the constructor's arguments.

    ``chunks`` = input beats per pixel (``in_ch / simd``); ``beats_per_group`` =
    window beats per output group (``k*k*chunks``); ``folds`` = output beats per
    group (``ceil(out_ch/pe)``: a ``pe`` not dividing ``out_ch`` pads the last fold with zero filters,
    whose accumulators are 0); ``beats_per_fold`` = engine cycles per output beat (the accumulation
    length: ``k*k*chunks`` dense, ``k*k`` depthwise).  With a filter plan
    (``window_kind == "rows"``, see :func:`geometry_for_plan`): ``row_taps``
    taps per multiply, ``sub_rows`` multiplies per kernel row,
    ``beats_per_group = k*chunks`` row beats and ``beats_per_fold =
    k*sub_rows*chunks`` (dense) or ``k*sub_rows`` (depthwise).
    """

    in_ch: int
    out_ch: int
    k: int
    simd: int
    pe: int
    pixels: int
    depthwise: bool
    chunks: int
    beats_per_group: int
    folds: int
    beats_per_fold: int
    window_kind: str = "taps"
    row_taps: int = 1
    sub_rows: int = 1

    @property
    def span(self) -> int:
        """Pixels per input beat: ``pixels`` (tap beats) or ``pixels + k - 1`` (row beats)."""
        return self.pixels + (self.k - 1 if self.window_kind == "rows" else 0)

    @property
    def fan_in(self) -> int:
        """Products summed into one output accumulator."""
        return self.k * self.k * (1 if self.depthwise else self.in_ch)


def check_conv_config(weight: np.ndarray, *, w_bits: int, a_bits: int, in_ch: int, out_ch: int, k: int,
                      groups: int, simd: int, pe: int, pixels: int, name: str) -> ConvGeometry:
    """Validate a ConvEngine configuration; raise ``ValueError`` naming the layer and the value."""
    where = f"in layer '{name}'" if name else "in ConvEngine"
    for label, value in (("in_ch", in_ch), ("out_ch", out_ch), ("k", k), ("simd", simd), ("pe", pe),
                         ("pixels", pixels)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} {value!r} must be a positive integer {where}")
    if w_bits not in WEIGHT_BITS:
        raise ValueError(f"w_bits {w_bits} outside {WEIGHT_BITS.start}..{WEIGHT_BITS.stop - 1} {where}")
    if a_bits not in ACT_BITS:
        raise ValueError(f"a_bits {a_bits} outside {ACT_BITS.start}..{ACT_BITS.stop - 1} {where}")
    if groups not in (1, in_ch):
        raise ValueError(f"groups {groups} must be 1 (dense) or in_ch {in_ch} (depthwise) {where}")
    depthwise = groups == in_ch and in_ch > 1
    if in_ch % simd:
        raise ValueError(f"in_ch {in_ch} not divisible by simd {simd} {where}")
    if depthwise:
        if out_ch != in_ch:
            raise ValueError(f"depthwise out_ch {out_ch} must equal in_ch {in_ch} {where}")
        if pe != simd:
            raise ValueError(f"depthwise pe {pe} must equal simd {simd} {where}")
    elif pe > out_ch:
        raise ValueError(f"pe {pe} exceeds out_ch {out_ch} {where}")
    shape = (out_ch, in_ch // groups, k, k)
    weight = np.asarray(weight)
    if weight.shape != shape:
        raise ValueError(f"weight shape {weight.shape} is not (out_ch, in_ch/groups, k, k) = {shape} {where}")
    if not np.issubdtype(weight.dtype, np.integer):
        raise ValueError(f"weight dtype {weight.dtype} is not an integer type {where}")
    lo, hi = weight_range(w_bits)
    if weight.size and (weight.min() < lo or weight.max() > hi):
        bad = weight[(weight < lo) | (weight > hi)].flat[0]
        raise ValueError(f"weight code {bad} outside the {w_bits}-bit narrow range {lo}..{hi} {where}")
    chunks = in_ch // simd
    beats_per_group = k * k * chunks
    folds = -(-out_ch // pe)     # a pe not dividing out_ch pads the last fold with zero filters
    return ConvGeometry(in_ch=in_ch, out_ch=out_ch, k=k, simd=simd, pe=pe, pixels=pixels,
                        depthwise=depthwise, chunks=chunks, beats_per_group=beats_per_group, folds=folds,
                        beats_per_fold=k * k if depthwise else beats_per_group)


def groups_per_frame(out_size: tuple[int, int], pixels: int) -> int:
    """Pixel groups per frame: ``ceil(out_w / pixels)`` per output row (the last group may be ragged)."""
    out_h, out_w = out_size
    return int(out_h) * -(-int(out_w) // pixels)


def frame_cycles(geo: ConvGeometry, out_size: tuple[int, int]) -> int:
    """The engine's cycles per frame: per group ``folds * beats_per_fold`` reads, or the group's input beats."""
    return groups_per_frame(out_size, geo.pixels) * max(geo.folds * geo.beats_per_fold, geo.beats_per_group)


def field_slots(plan: Plan) -> dict[tuple[int, int], int]:
    """Map ``(weight slot, act slot)`` to the index of the field holding that one product.

    The tap format uses kernel packing: every field must be a single product,
    and every slot pair must have its own field.
    """
    slots: dict[tuple[int, int], int] = {}
    for f, fld in enumerate(plan.fields):
        if len(fld.terms) != 1:
            raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}): field {f} sums "
                             f"{len(fld.terms)} products; the conv engine needs one product per field")
        slots[fld.terms[0]] = f
    for i in range(plan.n_weights):
        for j in range(plan.n_acts):
            if (i, j) not in slots:
                raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}): product of "
                                 f"weight slot {i} and act slot {j} has no field")
    return slots


def filter_positions(plan: Plan) -> tuple[int, ...]:
    """For a filter plan, the position ``q`` of every field: its terms ``(i, j)`` all have ``i + j == q``.

    That is the 1-D convolution the rows format relies on (weight slot ``i``
    meets activation slot ``j`` at output ``j + i - (Kp - 1)``); every slot pair
    must land in exactly one field.  ValueError otherwise.
    """
    where = f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind})"
    if plan.kind != "filter":
        raise ValueError(f"{where}: the row format needs a filter-packing plan")
    positions: list = []
    seen: set = set()
    for f, fld in enumerate(plan.fields):
        qs = {i + j for i, j in fld.terms}
        if len(qs) != 1:
            raise ValueError(f"{where}: field {f} sums products of different output pixels {sorted(qs)}")
        positions.append(qs.pop())
        seen.update(fld.terms)
    missing = [(i, j) for i in range(plan.n_weights) for j in range(plan.n_acts) if (i, j) not in seen]
    if missing:
        raise ValueError(f"{where}: products {missing[:3]} of weight and act slots land in no field")
    return tuple(positions)


def plan_window_kind(plan: Plan) -> str:
    """``"taps"`` for kernel-packing (and LUT dot) plans, ``"rows"`` for filter-packing plans; ValueError else."""
    kinds = {"kernel": "taps", "filter": "rows", "dot": "taps"}
    if plan.kind not in kinds:
        raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k}: the conv engine runs kernel and filter "
                         f"plans, not {plan.kind!r}")
    return kinds[plan.kind]


def geometry_for_plan(geo: ConvGeometry, plan: Plan) -> ConvGeometry:
    """``geo`` with the input format and schedule counts of ``plan`` (unchanged for kernel plans)."""
    if plan_window_kind(plan) == "taps":
        return dataclasses.replace(geo, window_kind="taps", row_taps=1, sub_rows=1)
    sub = math.ceil(geo.k / plan.n_weights)
    per_row = sub * (1 if geo.depthwise else geo.chunks)
    return dataclasses.replace(geo, window_kind="rows", row_taps=plan.n_weights, sub_rows=sub,
                               beats_per_group=geo.k * geo.chunks, beats_per_fold=geo.k * per_row)


def _filter_core_columns(plan: Plan, geo: ConvGeometry) -> int:
    """Filter cores side by side over one multiply's window of ``pixels + Kp - 1`` input pixels."""
    return math.ceil((geo.pixels + plan.n_weights - 1) / plan.n_acts)


def dsps_per_core(plan: PackingPlan) -> int:
    """DSP48E2s of one core running ``plan``: 1 (PackedMAC), ``plan.dsps`` (SplitMAC: 2), 0 (LutMAC)."""
    return plan.dsps


def cores_for(plan: PackingPlan, geo: ConvGeometry) -> int:
    """Packed cores the engine needs with ``plan`` (slots beyond pe/pixels are padded with zeros); each takes
    :func:`dsps_per_core` DSP48E2s."""
    if plan.kind == "filter":
        return geo.simd * (1 if geo.depthwise else geo.pe) * _filter_core_columns(plan, geo)
    if plan.kind == "dot":      # LUT dot plans: every core takes all simd lanes
        return math.ceil(geo.pe * geo.simd / plan.n_weights) * math.ceil(geo.pixels * geo.simd / plan.n_acts)
    n_w = 1 if geo.depthwise else plan.n_weights
    weight_groups = geo.pe if geo.depthwise else math.ceil(geo.pe / n_w)
    lanes = 1 if geo.depthwise else geo.simd
    return lanes * weight_groups * math.ceil(geo.pixels / plan.n_acts)


def macs_per_cycle(geo: ConvGeometry) -> float:
    """Useful multiply-accumulates per engine cycle: a filter multiply covers ``k / sub_rows`` taps on average."""
    # padded lanes (pe not dividing out_ch) do no useful work: out_ch / folds useful channels per fold
    base = geo.simd * geo.pixels * (1 if geo.depthwise else geo.out_ch / geo.folds)
    if geo.window_kind == "rows":
        return base * geo.k / geo.sub_rows
    return float(base)


def plan_fits(plan: Plan, geo: ConvGeometry) -> bool:
    """Whether the engine can run ``plan`` in one multiply per kernel row at ``geo``'s pixels (a kernel layout
    holds at most ``pixels`` activations; a filter layout has valid positions)."""
    try:
        if plan.kind == "kernel":
            field_slots(plan)
            return plan.n_acts <= geo.pixels
        filter_positions(plan)
    except ValueError:
        return False
    return plan.n_weights <= geo.k and plan.n_acts <= geo.pixels + plan.n_weights - 1


def choose_plan(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, *, stride: int = 1,
                windows: Sequence[str] = ("taps",), multiplier: str = "dsp", signed_act: bool = False) -> PackingPlan:
    """The plan that gives this layer the most achieved MACs per DSP per cycle (then the deepest, fewest fields).

    ``signed_act``: the layer's input codes are two's complement (after a LeakyReLU or a residual add), so
    every candidate is a signed-activation plan of the planner.

    ``multiplier="lut"``: instead, :func:`lut_layer_plan` (shift-and-add LUT cores, tap format only).

    Candidates come from the planner: kernel-packing plans with at most
    ``pixels`` act slots when ``"taps"`` is in ``windows``; filter-packing
    plans with at most ``pixels + k - 1`` act slots when ``"rows"`` is in
    ``windows``, ``stride == 1`` and ``k > 1``.  The figure compared is
    :func:`macs_per_cycle` over :func:`cores_for` (slot padding, the wasted end
    fields of a filter group and extra multiplies per kernel row included).
    Depthwise layers use one weight slot of a kernel plan (a lane is one
    channel) and whole filter plans (one filter per channel).  On a tie the
    kernel plan wins (the older, cheaper format).

    Digit splits (:func:`~mixq_hw.packing.split.split_plans`, a
    :class:`~mixq_hw.packing.split.SplitPlan` on two DSP48E2s per core) of
    either kind compete on the same figure with their DSPs counted
    (:func:`dsps_per_core`); their act/weight slot counts are their digit
    layout's.  A split wins only where strictly denser (it costs more fabric).  The choice is remembered per
    argument set (the folding search asks for the same layer's plans many times).
    """
    return _chosen_plan(geo, w_bits, a_bits, name, int(stride), tuple(windows), multiplier, bool(signed_act))


@functools.lru_cache(maxsize=1 << 14)
def _chosen_plan(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, stride: int, windows: tuple[str, ...],
                 multiplier: str, signed_act: bool) -> PackingPlan:
    """:func:`choose_plan` on hashable arguments (a ValueError is raised again on every call, not kept)."""
    where = f"in layer '{name}'"
    if multiplier != "dsp":
        return lut_layer_plan(geo, w_bits, a_bits, name, windows=windows, multiplier=multiplier,
                              signed_act=signed_act)
    candidates: list[PackingPlan] = []
    errors: list[str] = []
    searches = []
    if "taps" in windows:
        searches.append(("kernel", geo.pixels))
    if "rows" in windows and stride == 1 and geo.k > 1:
        searches.append(("filter", geo.pixels + geo.k - 1))
    if not searches:
        raise ValueError(f"no input format for k{geo.k} stride {stride} with windows {tuple(windows)} {where} "
                         f"(the row window needs stride 1 and k > 1)")
    for kind, max_acts in searches:
        candidates += [p for p in _split_candidates(w_bits, a_bits, geo.k, kind, max_acts, bool(signed_act))
                       if plan_fits(p, geo)]
        try:
            found = plans(w_bits, a_bits, geo.k, kinds=(kind,), max_acts=max_acts, signed_act=bool(signed_act))
        except ValueError as err:
            errors.append(str(err))
            continue
        candidates += [p for p in found if plan_fits(p, geo)]
    if not candidates:
        detail = f" ({'; '.join(errors)})" if errors else ""
        raise ValueError(f"no packing plan for w{w_bits}a{a_bits}{' signed-act' if signed_act else ''} k{geo.k} "
                         f"{where}: the planner has no "
                         f"{' or '.join(k for k, _ in searches)}-packing plan that fits {geo.pixels} "
                         f"pixels{detail}")

    geometries: dict[tuple[str, int], ConvGeometry] = {}      # geometry_for_plan reads only these two

    def key(p: PackingPlan) -> tuple:
        shape = (p.kind, p.n_weights)
        g = geometries.get(shape) or geometries.setdefault(shape, geometry_for_plan(geo, p))
        # a digit split (2 DSPs per core, more fabric) only where it is strictly denser
        return (macs_per_cycle(g) / (cores_for(p, g) * dsps_per_core(p)), p.dsps <= 1,
                min(p.depth, g.beats_per_fold), -len(p.fields), p.kind == "kernel")

    return max(candidates, key=key)


@functools.lru_cache(maxsize=4096)
def _split_candidates(w_bits: int, a_bits: int, k: int, kind: str, max_acts: int,
                      signed_act: bool = False) -> tuple[SplitPlan, ...]:
    """The planner's digit splits of one kind with at most ``max_acts`` act slots (cached: folding asks often)."""
    try:
        return tuple(split_plans(w_bits, a_bits, k, kinds=(kind,), max_acts=max_acts, signed_act=signed_act))
    except ValueError:
        return ()


def lut_layer_shape(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, *,
                    windows: Sequence[str] = ("taps",), multiplier: str = "lut") -> tuple[ConvGeometry, dict]:
    """The layer's tap-format geometry and the :func:`~mixq_hw.packing.lut_layout.lut_plan` arguments of its
    LUT plan (``n_weights``, ``n_acts``, ``depth``, ``lanes``): the plan's shape, without its fields."""
    where = f"in layer '{name}'"
    if multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier {multiplier!r} is not one of {MULTIPLIERS} {where}")
    if "taps" not in windows:
        raise ValueError(f"LUT multipliers read the SlidingWindow ('taps') format, not in windows "
                         f"{tuple(windows)} {where}")
    taps = geometry_for_plan(geo, lut_plan(w_bits, a_bits, 1, 1, 1, k=geo.k))
    if geo.depthwise:
        return taps, dict(n_weights=1, n_acts=geo.pixels, depth=taps.beats_per_fold, lanes=1)
    return taps, dict(n_weights=geo.pe, n_acts=geo.pixels, depth=taps.beats_per_fold, lanes=geo.simd)


def lut_layer_plan(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, *,
                   windows: Sequence[str] = ("taps",), multiplier: str = "lut", signed_act: bool = False) -> Plan:
    """The LUT plan of a layer, accumulating a whole fold (``beats_per_fold`` multiplies) in its cores so no
    fabric accumulator follows them: dense, one ``"dot"`` core of ``pe x pixels`` fields over the ``simd``
    lanes (a kernel core when ``simd == 1``); depthwise, one kernel core of ``pixels`` products per lane."""
    _, shape = lut_layer_shape(geo, w_bits, a_bits, name, windows=windows, multiplier=multiplier)
    return lut_plan(w_bits, a_bits, shape["n_weights"], shape["n_acts"], shape["depth"], lanes=shape["lanes"],
                    k=geo.k, signed_act=bool(signed_act))


def lut_layer_figures(geo: ConvGeometry, w_bits: int, a_bits: int, name: str, *,
                      windows: Sequence[str] = ("taps",), multiplier: str = "lut",
                      signed_act: bool = False) -> tuple[ConvGeometry, int, int]:
    """``(geometry, cores, LUTs per core)`` of the layer on LUT cores, from the plan's shape alone: what
    :func:`cores_for` and :func:`~mixq_hw.packing.lut_core.lut_core_estimate` give for
    :func:`lut_layer_plan`, at a cost independent of the layer's size (the folding search asks thousands
    of times)."""
    taps, shape = lut_layer_shape(geo, w_bits, a_bits, name, windows=windows, multiplier=multiplier)
    cores = taps.pe if taps.depthwise else 1      # one dot (or kernel) core per layer; depthwise one per lane
    luts, _ = lut_shape_estimate(w_bits, a_bits, shape["n_weights"], shape["n_acts"], shape["depth"],
                                 lanes=shape["lanes"], signed_act=bool(signed_act))
    return taps, cores, luts


@dataclass(frozen=True)
class CoreWiring:
    """One packed core of the engine: where its slots read from and which accumulators its fields feed.

    ``weights[i]``: index path of weight slot ``i`` into the ROM word view
    (``[p][s]`` / ``[s]`` for kernel plans, ``[p][s][i]`` / ``[s][i]`` for
    filter plans), or None for a constant-zero slot.  ``acts[j]``:
    ``(pixel, lane)`` of activation slot ``j`` in the input beat -- for filter
    plans the pixel before the sub-row shift ``m*Kp`` -- or None for zero.
    ``outputs``: ``(field, output pixel, pe lane, bound)`` for every field the
    engine adds into an accumulator, ``bound`` the field's largest magnitude.
    """

    name: str
    weights: tuple[tuple[int, ...] | None, ...]
    acts: tuple[tuple[int, int] | None, ...]
    outputs: tuple[tuple[int, int, int, int], ...]


def dot_wiring(geo: ConvGeometry, plan: Plan, bound: int) -> CoreWiring:
    """The one core of a LUT dot plan: weight slot ``p * simd + s`` reads ROM element ``[p][s]``, act slot
    ``x * simd + s`` reads pixel ``x`` lane ``s``, field ``p * pixels + x`` is output ``(x, p)``."""
    S, P, X = geo.simd, geo.pe, geo.pixels
    if (plan.lanes, plan.n_weights, plan.n_acts) != (S, P * S, X * S) or geo.depthwise:
        raise ValueError(f"dot plan of {plan.n_weights // plan.lanes} x {plan.n_acts // plan.lanes} fields over "
                         f"{plan.lanes} lanes does not match a dense layer's pe {P} x pixels {X} over simd {S}")
    return CoreWiring("mac_dot", tuple((p, s) for p in range(P) for s in range(S)),
                      tuple((x, s) for x in range(X) for s in range(S)),
                      tuple((p * X + x, x, p, bound) for p in range(P) for x in range(X)))


def core_wiring(geo: ConvGeometry, plan: Plan, w_bits: int, a_bits: int, depth: int) -> list[CoreWiring]:
    """Every packed core of the engine, as plain data (``depth``: multiplies per core accumulation; a field's
    bound from the plan's activation codes, unsigned or signed)."""
    w_max = max(-weight_range(w_bits)[0], weight_range(w_bits)[1])
    product = w_max * act_magnitude(a_bits, plan.signed_act)
    X, P = geo.pixels, geo.pe
    cores: list[CoreWiring] = []
    if plan.kind == "dot":
        return [dot_wiring(geo, plan, depth * plan.lanes * product)]
    if plan.kind == "filter":
        positions = filter_positions(plan)
        kp, n = plan.n_weights, plan.n_acts
        window = X + kp - 1
        for lane in range(geo.simd):
            for p in ([lane] if geo.depthwise else range(P)):
                for c in range(_filter_core_columns(plan, geo)):
                    path = (lane,) if geo.depthwise else (p, lane)
                    acts = tuple((c * n + j, lane) if c * n + j < window else None for j in range(n))
                    outputs = tuple((f, c * n + q - (kp - 1), p, depth * len(plan.fields[f].terms) * product)
                                    for f, q in enumerate(positions) if 0 <= c * n + q - (kp - 1) < X)
                    cores.append(CoreWiring(f"mac_s{lane}_p{p}_c{c}", tuple((*path, i) for i in range(kp)),
                                            acts, outputs))
        return cores
    slots = field_slots(plan)
    n_w, n_a = plan.n_weights, plan.n_acts
    weight_groups = P if geo.depthwise else math.ceil(P / n_w)
    bound = depth * product
    # per pixel group: the act slots inside the row, and each weight slot's (field, output pixel) pairs
    pixel_groups = []
    for xg in range(math.ceil(X / n_a)):
        inside = [j for j in range(n_a) if xg * n_a + j < X]
        pixel_groups.append((xg, inside, [[(slots[(i, j)], xg * n_a + j) for j in inside] for i in range(n_w)]))
    for lane in range(1 if geo.depthwise else geo.simd):
        for wg in range(weight_groups):
            # PE lane of each weight slot (None: padding); depthwise: core group wg is channel lane wg, slot 0
            lanes = [(wg if i == 0 else None) if geo.depthwise else
                     (wg * n_w + i if wg * n_w + i < P else None) for i in range(n_w)]
            weights = tuple(None if p is None else ((p,) if geo.depthwise else (p, lane)) for p in lanes)
            act_lane = wg if geo.depthwise else lane
            for xg, inside, fields in pixel_groups:
                acts = tuple((xg * n_a + j, act_lane) if j in inside else None for j in range(n_a))
                outputs = tuple((field, pixel, p, bound) for i, p in enumerate(lanes) if p is not None
                                for field, pixel in fields[i])
                cores.append(CoreWiring(f"mac_s{lane}_w{wg}_x{xg}", weights, acts, outputs))
    return cores


def weight_rom_words(weight: np.ndarray, geo: ConvGeometry, w_bits: int) -> list[int]:
    """The weight ROM's contents, one packed word per engine cycle of a fold, folds one after the other.

    Tap beats (kernel plans) -- dense: word ``f*T + (ky*k + kx)*chunks + c``
    holds ``weight[f*pe + p, c*simd + s, ky, kx]`` as element ``[p][s]`` (bit
    offset ``(p*simd + s) * w_bits``, two's complement); depthwise: word
    ``f*k*k + ky*k + kx`` holds ``weight[f*simd + s, 0, ky, kx]`` as element ``[s]``.
    Row beats (filter plans, ``Kp = row_taps``, ``sub = sub_rows``) -- dense: word
    ``f*L + (ky*sub + m)*chunks + c`` holds, as element ``[p][s][i]``, tap
    ``t = m*Kp + Kp-1-i`` of row ``ky`` of ``weight[f*pe + p, c*simd + s]`` (0
    when ``t >= k``); depthwise: word ``f*L + ky*sub + m``, element ``[s][i]``.
    """
    w = np.asarray(weight, dtype=np.int64)
    k, s_, p_ = geo.k, geo.simd, geo.pe
    if geo.folds * p_ > w.shape[0]:
        # the last fold's lanes past out_ch are zero filters (their accumulators are 0)
        w = np.concatenate([w, np.zeros((geo.folds * p_ - w.shape[0], *w.shape[1:]), dtype=np.int64)])
    if geo.window_kind == "rows":
        kp, sub = geo.row_taps, geo.sub_rows
        taps = np.zeros((*w.shape[:3], sub, kp), dtype=np.int64)   # (out, in/groups, ky, m, i)
        for m in range(sub):
            for i in range(kp):
                t = m * kp + kp - 1 - i
                if t < k:
                    taps[..., m, i] = w[..., t]
        if geo.depthwise:
            # (folds, simd, k, sub, Kp) -> (folds, k, sub, simd, Kp)
            arr = taps[:, 0].reshape(geo.folds, s_, k, sub, kp).transpose(0, 2, 3, 1, 4)
        else:
            # (folds, pe, chunks, simd, k, sub, Kp) -> (folds, k, sub, chunks, pe, simd, Kp)
            arr = taps.reshape(geo.folds, p_, geo.chunks, s_, k, sub, kp).transpose(0, 4, 5, 2, 1, 3, 6)
    elif geo.depthwise:
        # (folds, simd, k, k) -> (folds, k*k, simd): one word per (fold, tap), lanes = channels
        arr = w[:, 0].reshape(geo.folds, s_, k * k).transpose(0, 2, 1)
    else:
        # (folds, pe, chunks, simd, k, k) -> (folds, k*k, chunks, pe, simd)
        arr = w.reshape(geo.folds, p_, geo.chunks, s_, k, k).transpose(0, 4, 5, 2, 1, 3)
    arr = arr.reshape(geo.folds * geo.beats_per_fold, -1) & ((1 << w_bits) - 1)
    shifts = [e * w_bits for e in range(arr.shape[1])]
    return [sum(int(v) << sh for v, sh in zip(row, shifts)) for row in arr]
