"""The report: stream widths, DMA bandwidth, latency, the plot, and Vivado's reports folded in.

The Vivado fixtures below are small excerpts written in the layout of Vivado 2022.1's
``report_utilization``, ``report_timing_summary`` and ``report_power`` text reports.
"""

import json

import pytest
from networks import small_graph

from mixq_hw.estimate import Resources
from mixq_hw.latency import fill_latency
from mixq_hw.pipeline import LayerFold, plan_stages
from mixq_hw.report import build_report, fold_vivado, main, markdown, stream_figures, write_report
from mixq_hw.report_plot import layer_kind
from mixq_hw.vivado_reports import (
    VivadoReportError,
    parse_power,
    parse_timing_summary,
    parse_utilization,
    read_vivado_dir,
)

UTILIZATION = """\
Copyright 1986-2022 Xilinx, Inc. All Rights Reserved.
-------------------------------------------------------------------------------------------------
| Tool Version : Vivado v.2022.1 (lin64) Build 3526262 Mon Apr 18 15:47:01 MDT 2022
| Command      : report_utilization -file vivado_utilization.txt
| Design       : mixq_bd_wrapper
| Device       : xczu3egsbva484-1
| Design State : Routed
-------------------------------------------------------------------------------------------------

Utilization Design Information

1. CLB Logic
------------

+----------------------------+-------+-------+------------+-----------+-------+
|          Site Type         |  Used | Fixed | Prohibited | Available | Util% |
+----------------------------+-------+-------+------------+-----------+-------+
| CLB LUTs                   | 61234 |     0 |          0 |     70560 | 86.78 |
|   LUT as Logic             | 58000 |     0 |          0 |     70560 | 82.20 |
|   LUT as Memory            |  3234 |     0 |          0 |     28800 | 11.23 |
| CLB Registers              | 80012 |     0 |          0 |    141120 | 56.70 |
|   Register as Flip Flop    | 80012 |     0 |          0 |    141120 | 56.70 |
| CARRY8                     |  1200 |     0 |          0 |      8820 | 13.61 |
+----------------------------+-------+-------+------------+-----------+-------+


3. BLOCKRAM
-----------

+-------------------+-------+-------+------------+-----------+-------+
|     Site Type     |  Used | Fixed | Prohibited | Available | Util% |
+-------------------+-------+-------+------------+-----------+-------+
| Block RAM Tile    | 120.5 |     0 |          0 |       216 | 55.79 |
|   RAMB36/FIFO*    |   110 |     0 |          0 |       216 | 50.93 |
|   RAMB18          |    21 |     0 |          0 |       432 |  4.86 |
| URAM              |     0 |     0 |          0 |         0 |  0.00 |
+-------------------+-------+-------+------------+-----------+-------+


4. ARITHMETIC
-------------

+----------------+------+-------+------------+-----------+-------+
|    Site Type   | Used | Fixed | Prohibited | Available | Util% |
+----------------+------+-------+------------+-----------+-------+
| DSPs           |  352 |     0 |          0 |       360 | 97.78 |
|   DSP48E2 only |  352 |       |            |           |       |
+----------------+------+-------+------------+-----------+-------+
"""

TIMING = """\
------------------------------------------------------------------------------------------------
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)      THS(ns)  THS Failing Endpoints  THS Total Endpoints     WPWS(ns)     TPWS(ns)  TPWS Failing Endpoints  TPWS Total Endpoints
    -------      -------  ---------------------  -------------------      -------      -------  ---------------------  -------------------     --------     --------  ----------------------  --------------------
     -0.218      -35.112                    412               151234        0.010        0.000                      0               151234        0.958        0.000                       0                 80420


Timing constraints are not met.


------------------------------------------------------------------------------------------------
| Clock Summary
| -------------
------------------------------------------------------------------------------------------------

Clock       Waveform(ns)         Period(ns)      Frequency(MHz)
-----       ------------         ----------      --------------
clk_pl_0    {0.000 1.667}        3.333           300.030

"""

POWER = """\
1. Summary
----------

+--------------------------+--------------+
| Total On-Chip Power (W)  | 3.912        |
| Design Power Budget (W)  | Unspecified* |
| Power Budget Margin (W)  | NA           |
| Dynamic (W)              | 3.601        |
| Device Static (W)        | 0.311        |
| Effective TJA (C/W)      | 2.0          |
| Max Ambient (C)          | 92.2         |
| Junction Temperature (C) | 32.8         |
| Confidence Level         | Medium       |
| Setting File             | ---          |
+--------------------------+--------------+
"""


def test_parse_utilization():
    got = parse_utilization(UTILIZATION)
    assert got["used"] == {"lut": 61234, "ff": 80012, "bram36": 120.5, "dsp": 352, "uram": 0}
    assert got["available"]["lut"] == 70560 and got["available"]["dsp"] == 360
    with pytest.raises(VivadoReportError, match="util.txt: no lut, ff, bram36, dsp row"):
        parse_utilization("nothing here", "util.txt")


def test_parse_timing_and_fmax():
    got = parse_timing_summary(TIMING)
    assert (got["wns_ns"], got["tns_ns"], got["tns_failing_endpoints"]) == (-0.218, -35.112, 412)
    assert (got["whs_ns"], got["ths_failing_endpoints"]) == (0.010, 0)
    assert got["clocks"] == {"clk_pl_0": {"period_ns": 3.333, "mhz": 300.03}}
    assert got["fmax_mhz"] == pytest.approx(1000 / (3.333 + 0.218), abs=0.05) and not got["met"]
    with pytest.raises(VivadoReportError, match="Design Timing Summary"):
        parse_timing_summary("WNS(ns) WHS(ns)\n", "t.txt")


def test_parse_power():
    got = parse_power(POWER)
    assert got == {"total_w": 3.912, "dynamic_w": 3.601, "static_w": 0.311, "junction_c": 32.8,
                   "confidence": "Medium"}


def small_plan():
    g = small_graph()
    return plan_stages(g, {"c1": LayerFold(3, 2, 1), "c2": LayerFold(8, 2, 1)})


BUDGET = Resources(dsp=360, lut=70_560, ff=141_120, bram36=216)


def test_stream_figures():
    plan = small_plan()
    st = stream_figures(plan, clock_mhz=200, memory_port_bits=128, dma_mm_widths=(128, 128))
    lanes = plan.out_lanes
    assert st["in_width"] == 32 and st["out_width"] == max(32 * lanes, 8) and st["out_lanes"] == lanes
    assert st["in_bytes_per_frame"] == 64 * 4 and st["out_bytes_per_frame"] == 16 * (4 // lanes) * st["out_width"] // 8
    fps = 200e6 / plan.cycles_per_frame()
    assert st["dma_in_mb_s"] == pytest.approx(256 * fps / 1e6, abs=0.01)
    assert st["memory_port_mb_s"] == 16 * 200 and (st["dma_mm_in"], st["dma_mm_out"]) == (128, 128)


def test_report_latency_and_vivado_fold_in(tmp_path, capsys):
    plan = small_plan()
    report = build_report(plan, clock_mhz=250, budget=BUDGET, board="ultra96",
                          extra={"verify": {"images": 2, "bit_exact": 2, "cycles_per_frame": 300, "latency": 1250,
                                            "backend": "pysim"}})
    assert report["latency"]["cycles"] == 1250 and report["latency"]["us"] == 5.0
    assert "first-frame latency: 1,250 cycles = 5.0 us" in markdown(report)
    assert report["latency"]["estimate"] == {**fill_latency(plan.graph, plan.cycles_per_frame()),
                                             "us": round(fill_latency(plan.graph, plan.cycles_per_frame())["cycles"] / 250, 2)}
    unverified = build_report(plan, clock_mhz=250, budget=BUDGET)["latency"]
    assert unverified["cycles"] == unverified["estimate"]["cycles"] and "estimated" in unverified["source"]
    write_report(report, tmp_path)
    (tmp_path / "vivado_utilization.txt").write_text(UTILIZATION)
    (tmp_path / "vivado_timing_summary.txt").write_text(TIMING)
    (tmp_path / "vivado_power.txt").write_text(POWER)
    assert main(["--vivado", str(tmp_path)]) == 0
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["vivado"]["utilization"]["used"]["lut"] == 61234
    assert on_disk["vivado"]["timing"]["wns_ns"] == -0.218 and on_disk["vivado"]["power"]["total_w"] == 3.912
    assert on_disk["resources"] == report["resources"]              # the estimates stay
    md = (tmp_path / "report.md").read_text()
    assert "Vivado (with the shell)" in md and "| lut |" in md and "61,234 | 86.8 |" in md
    assert "WNS -0.218 ns" in md and "**NOT met**" in md and "Fmax about 281.6 MHz" in md
    assert "3.912 W on chip" in md
    assert (tmp_path / "report_layers.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()


def test_vivado_errors(tmp_path, capsys):
    assert main(["--vivado", str(tmp_path)]) == 2
    assert "report.json: no such file" in capsys.readouterr().err
    (tmp_path / "report.json").write_text("{}")
    assert main(["--vivado", str(tmp_path)]) == 2
    assert "none of vivado_utilization.txt" in capsys.readouterr().err
    (tmp_path / "vivado_power.txt").write_text("garbage")
    with pytest.raises(VivadoReportError, match="vivado_power.txt: no 'Total On-Chip Power"):
        read_vivado_dir(tmp_path)
    with pytest.raises(VivadoReportError, match="no such folder"):
        fold_vivado({}, tmp_path / "nope")


def test_plot_kinds_include_requantizers():
    report = build_report(small_plan(), clock_mhz=250, budget=BUDGET)
    kinds = {row["name"]: layer_kind(row) for row in report["layers"]}
    assert kinds["r1"] == "requantizer" and kinds["c1"] == "DSP-packed conv/linear"
    assert layer_kind({"op": "conv", "packing": {"multiplier": "lut"}}) == "LUT-multiplier conv/linear"


def test_dataflow_stages():
    """report.json lists every stage with its rate and sources; report.md draws them, the bottleneck marked."""
    plan = small_plan()
    report = build_report(plan, clock_mhz=250, budget=BUDGET)
    assert [st["name"] for st in report["stages"]] == [st.name for st in plan.stages]
    assert [st["name"] for st in report["stages"] if st.get("output")] == [plan.out_stage[0]]
    md = markdown(report)
    slow = [i for i, st in enumerate(plan.stages) if st.cycles == plan.cycles_per_frame()]
    assert "```mermaid" in md and f"style s{slow[0]} stroke:#d62728" in md
    assert f'["c1<br/>conv, {plan.stage("c1").cycles:,} cyc"]' in md and 'top_out(["m_axis"])' in md


def test_fill_latency_follows_the_row_schedules():
    """3x8x8 input, 3x3 conv (pad 1: row 1 first), requant, 2x2 pool (row 1), 1x1 conv, output at 4x4: the
    first pooled row is complete 3 input rows in (3 II / 8), the last of 4 output rows 3 II / 4 later."""
    plan = small_plan()
    ii = plan.cycles_per_frame()
    est = fill_latency(plan.graph, ii)
    assert est["fill_cycles"] == round(3 * ii / 8) and est["cycles"] == round(3 * ii / 8 + 3 * ii / 4)
    assert fill_latency(plan.graph, 8_000) == {**est, "cycles": 9_000, "fill_cycles": 3_000}


def test_dataflow_picture_places_stages_at_their_depth(tmp_path):
    from mixq_hw.dataflow_plot import _depths, dataflow_png

    plan = small_plan()
    report = build_report(plan, clock_mhz=250, budget=BUDGET)
    depth = _depths(report["stages"])
    for st in report["stages"]:
        assert depth[st["name"]] == 1 + max((depth.get(s, 0) for s in st["sources"]), default=0)
    assert dataflow_png(report)[:4] == b"\x89PNG"
    paths = write_report(report, tmp_path)
    assert (tmp_path / "report_dataflow.png") in paths and "report_dataflow.png" in markdown(report)
