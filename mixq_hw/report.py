"""The build report: per layer bit widths, folding, packing, cycles and resources; totals against a budget.

``build_report`` turns a :class:`~mixq_hw.pipeline.PipelinePlan` into a JSON-ready
dict; ``write_report`` writes ``report.json``, a readable ``report.md`` and a
plot of per-layer cycles and resources (:mod:`mixq_hw.report_plot`).  Resource
figures here are the layers' estimates (labelled so); synthesis counts, when
asked for, and Vivado's figures (``python -m mixq_hw.report --vivado DIR``)
sit next to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .atomic import atomic_write_bytes, atomic_write_text
from .estimate import Resources
from .layers.conv import ConvEngineSpec
from .ops import op_def
from .latency import fill_latency
from .pipeline import OUTPUT_BITS, PipelinePlan
from .dataflow_plot import dataflow_png
from .report_board import timing_lines, utilization_lines
from .report_plot import plot_layers, plot_png
from .vivado_reports import VivadoReportError, read_vivado_dir

__all__ = ["build_report", "write_report", "markdown", "stream_figures", "fold_vivado", "main",
           "plot_layers"]


def _layer_rows(plan: PipelinePlan) -> list[dict]:
    graph = plan.graph
    per_node = plan.per_node()
    bottleneck = plan.bottleneck().node
    rows = []
    for node in graph:
        entry = per_node.get(node.name)
        if entry is None:
            continue
        res: Resources = entry["resources"]
        row = {
            "name": node.name, "op": node.op, "cycles_per_frame": entry["cycles"],
            "resources": res.to_dict(), "bottleneck": node.name == bottleneck,
            "stages": entry["stages"], "macs": graph.node_macs(node.name),
            **op_def(node.op).report_fields(node),
        }
        if op_def(node.op).folded:
            engine = plan.stage(node.name).spec
            assert isinstance(engine, ConvEngineSpec)     # a folded node's own stage is its engine
            fold = plan.folding.get(node.name)
            row.update({
                "folding": fold.unpinned().to_dict() if fold else None,   # the plan: "packing"
                "packing": {"kind": engine.plan.kind, "multiplier": engine.multiplier,
                            "plan_macs_per_dsp": engine.plan.macs_per_dsp,
                            "macs_per_dsp": round(float(engine.macs_per_dsp), 3), "dsps": engine.n_dsps},
            })
        rows.append(row)
    return rows


def _stream_bits(bits: int) -> int:
    width = 8
    while width < bits:
        width *= 2
    return width


def stream_figures(plan: PipelinePlan, *, clock_mhz: float, memory_port_bits: int = 128,
                   dma_mm_widths: tuple[int, int] | None = None) -> dict:
    """Stream widths, bytes per frame each way, and the DMA bandwidth the analytic frame rate needs against
    what the memory port moves (``memory_port_bits`` x clock per direction: AXI reads and writes are separate
    channels)."""
    _, h, w = plan.graph.input_shape
    c, oh, ow = plan.out_shape
    in_width = _stream_bits(8 * plan.in_channels)
    out_width = _stream_bits(OUTPUT_BITS * plan.out_lanes)
    in_bytes = h * w * in_width // 8
    out_bytes = oh * ow * (c // plan.out_lanes) * out_width // 8
    fps = clock_mhz * 1e6 / plan.cycles_per_frame()
    port = memory_port_bits / 8 * clock_mhz  # MB/s
    figures: dict[str, Any] = {
        "in_width": in_width, "out_width": out_width, "out_lanes": plan.out_lanes,
        "in_bytes_per_frame": in_bytes, "out_bytes_per_frame": out_bytes,
        "dma_in_mb_s": round(in_bytes * fps / 1e6, 2), "dma_out_mb_s": round(out_bytes * fps / 1e6, 2),
        "memory_port_bits": memory_port_bits, "memory_port_mb_s": round(port, 1),
    }
    if dma_mm_widths:
        figures["dma_mm_in"], figures["dma_mm_out"] = dma_mm_widths
    figures["dma_share"] = round(max(figures["dma_in_mb_s"], figures["dma_out_mb_s"]) / port, 4) if port else None
    return figures


def _latency(report: dict, estimate: dict) -> dict:
    """First-frame latency: measured in simulation when the build verified, else the row schedules' estimate
    (:func:`~mixq_hw.latency.fill_latency`), which is kept under ``estimate`` either way."""
    clock = report["clock_mhz"]
    estimated = {**estimate, "us": round(estimate["cycles"] / clock, 2)}
    measured = report.get("verify", {}).get("latency")
    if not measured:
        return {"cycles": estimated["cycles"], "us": estimated["us"], "source": estimated["source"],
                "estimate": estimated}
    return {"cycles": int(measured), "us": round(measured / clock, 2),
            "source": f"measured in simulation ({report['verify'].get('backend', '')}): cycle of the first "
                      "frame's last output beat", "estimate": estimated}


def build_report(plan: PipelinePlan, *, clock_mhz: float, budget: Resources, board: str = "",
                 extra: dict | None = None, memory_port_bits: int = 128,
                 dma_mm_widths: tuple[int, int] | None = None) -> dict:
    """Everything the user wants to know about a design, as a JSON-ready dict."""
    cycles = plan.cycles_per_frame()
    fps = clock_mhz * 1e6 / cycles
    macs = plan.graph.macs()
    res = plan.resources()
    report = {
        "network": plan.graph.name, "board": board, "clock_mhz": clock_mhz,
        "cycles_per_frame": cycles, "fps": round(fps, 2), "gops": round(2 * macs * fps / 1e9, 2),
        "macs_per_frame": macs, "bottleneck": plan.bottleneck().name,
        "resources": res.to_dict(), "resources_are": "estimates", "budget": budget.to_dict(),
        "utilization": {k: round(v / budget.to_dict()[k], 4) if budget.to_dict()[k] else None
                        for k, v in res.to_dict().items()},
        "fifo_depths": plan.fifo_depths,
        "streams": stream_figures(plan, clock_mhz=clock_mhz, memory_port_bits=memory_port_bits,
                                  dma_mm_widths=dma_mm_widths),
        "layers": _layer_rows(plan),
        "stages": [{"name": st.name, "node": st.node, "kind": st.kind, "cycles_per_frame": st.cycles,
                    "sources": [src for src, _ in st.sources],
                    **({"fifo_depth": plan.fifo_depths[st.name]} if st.name in plan.fifo_depths else {}),
                    **({"output": True} if st.name == plan.out_stage[0] else {})}
                   for st in plan.stages],
    }
    report.update(extra or {})
    report["latency"] = _latency(report, fill_latency(plan.graph, cycles))
    return report


def fold_vivado(report: dict, folder: Path) -> dict:
    """``report`` with Vivado's utilization, timing and power from ``folder`` under ``"vivado"``."""
    vivado = read_vivado_dir(folder)
    timing = vivado.get("timing")
    if timing and timing.get("fmax_mhz"):
        vivado["fps_at_fmax"] = round(min(timing["fmax_mhz"], report["clock_mhz"]) * 1e6
                                      / report["cycles_per_frame"], 2)
    return {**report, "vivado": vivado}


def markdown(report: dict) -> str:
    """A readable summary of a report dict."""
    vivado = report.get("vivado", {})
    used_v = vivado.get("utilization", {}).get("used", {})
    lines = [
        f"# mixq build report: {report['network'] or 'network'} on {report['board'] or 'board'}",
        "",
        f"- **{report['cycles_per_frame']:,} cycles per frame** (bottleneck `{report['bottleneck']}`), "
        f"**{report['fps']:,.1f} fps** and {report['gops']:,.1f} GOPS at {report['clock_mhz']:g} MHz",
        f"- {report['macs_per_frame']:,} MACs per frame",
        *_stream_lines(report),
        "",
        "| resource | used (estimate) | budget | % |" + (" synthesis |" if "synth" in report else "")
        + (" Vivado (with the shell) | % |" if used_v else ""),
        "|---|---|---|---|" + ("---|" if "synth" in report else "") + ("---|---|" if used_v else ""),
    ]
    for key in ("dsp", "lut", "ff", "bram36"):
        used, cap = report["resources"][key], report["budget"][key]
        row = f"| {key} | {used:,.1f} | {cap:,} | {100 * used / cap:.1f} |" if cap else f"| {key} | {used} | - | - |"
        if "synth" in report:
            row += f" {report['synth'].get(key, '-')} |"
        if used_v:
            got = used_v.get(key)
            row += (f" {got:,g} | {100 * got / cap:.1f} |" if got is not None and cap else " - | - |")
        lines.append(row)
    lines += utilization_lines(report)
    lines += _vivado_lines(vivado, report)
    lines += timing_lines(report)
    if "verify" in report:
        v = report["verify"]
        origin = v.get("images_from", {}).get("text")
        lines += ["", f"Verified in simulation: {v['bit_exact']}/{v['images']} images bit-exact"
                      + (f" ({origin})" if origin else "") + f", {v['cycles_per_frame']:,} cycles per frame "
                      f"measured" + (f" ({v['backend']})" if v.get("backend") else "") + "."]
        if v.get("message"):
            lines += ["", f"First failure: {v['message']}"]
        if v.get("layers", {}).get("table"):
            lay = v["layers"]
            lines += ["", f"Layer by layer ({lay['images']} images, {lay['backend']}, stalls {lay['stall']:g} on "
                          f"every port; cycles and latency from a stall-free run):", "", lay["table"].rstrip()]
    if "testbench" in report:
        tb = report["testbench"]
        lines += ["", f"Test vectors: {tb['images']} images and their golden outputs in `{tb['vectors']}`; "
                      f"a cocotb testbench in `{tb['cocotb']}` streams them through the AXI-Stream ports under "
                      f"random stalls (`{tb['run']}`, or `SIM=verilator`; the board Verilog runs with `tb/dsp48e2_model.v`). "
                      f"mixq's tests run the emitted Verilog bit-exact in: {', '.join(tb['tested_simulators'])}."]
    per_layer = report.get("synth", {}).get("layers", {})
    lines += ["", "| layer | op | w/a bits | kernel | simd/pe/pixels | multiplier | MACs/DSP | cycles/frame | DSP | LUT "
                  "| BRAM36 |" + (" LUT (yosys) |" if per_layer else ""),
              "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if per_layer else "")]
    for row in report["layers"]:
        bits = f"{row['w_bits']}/{row['a_bits']}" if "w_bits" in row else ""
        kernel = (f"{row['kernel']}x{row['kernel']}/{row['stride']}" + (" dw" if row.get("depthwise") else "")
                  if "kernel" in row else "")
        fold = row.get("folding")
        fold_s = f"{fold['simd']}/{fold['pe']}/{fold['pixels']}" if fold else ""
        packing = row.get("packing", {})
        mult = packing.get("multiplier", "dsp") if packing else ""
        dens = (f"{packing['macs_per_dsp']:g}" if mult == "dsp" else "-") if packing else ""
        name = f"**{row['name']}** (bottleneck)" if row["bottleneck"] else row["name"]
        r = row["resources"]
        synth_lut = ""
        if per_layer:
            synth_lut = f" {per_layer[row['name']]['lut']:,} |" if row["name"] in per_layer else " - |"
        lines.append(f"| {name} | {row['op']} | {bits} | {kernel} | {fold_s} | {mult} | {dens} | "
                     f"{row['cycles_per_frame']:,} | {r['dsp']} | {r['lut']:,} | {r['bram36']:g} |" + synth_lut)
    if per_layer.get(""):
        lines += ["", f"yosys counts {per_layer['']['lut']:,} LUTs outside every layer's stages (the accelerator's "
                      "wiring and the AXI-Stream top)."]
    lines += _dataflow_lines(report)
    return "\n".join(lines) + "\n"


def _stream_lines(report: dict) -> list[str]:
    lines = []
    st = report.get("streams")
    if st:
        mm = (f" (AXI DMA memory maps {st['dma_mm_in']}/{st['dma_mm_out']} bits, at most 1024)"
              if "dma_mm_in" in st else "")
        lines.append(f"- streams: input {st['in_width']} bits, output {st['out_width']} bits "
                     f"({st['out_lanes']} lanes){mm}")
        lines.append(f"- DMA at the analytic frame rate: {st['dma_in_mb_s']:,.1f} MB/s in, {st['dma_out_mb_s']:,.1f} "
                     f"MB/s out, against {st['memory_port_mb_s']:,.0f} MB/s each way on the {st['memory_port_bits']}-bit "
                     f"memory port ({100 * (st['dma_share'] or 0):.1f} % of it)")
    lat = report.get("latency")
    if lat:
        est = lat.get("estimate")
        extra = (f"; the row schedules estimate {est['cycles']:,} cycles, {est['fill_cycles']:,} of them the "
                 f"pipeline's fill" if est and est["cycles"] != lat.get("cycles") else
                 f"; {est['fill_cycles']:,} cycles of it the pipeline's fill" if est else "")
        lines.append(f"- first-frame latency: {lat['cycles']:,} cycles = {lat['us']:,.1f} us ({lat['source']}{extra})"
                     if lat.get("cycles") else f"- first-frame latency: {lat['source']}")
    return lines


def _dataflow_lines(report: dict) -> list[str]:
    """The stages as a Mermaid flowchart: each with its cycles per frame (FIFOs with their depth), the
    bottleneck in red."""
    stages = report.get("stages")
    if not stages:
        return []
    ids = {st["name"]: f"s{i}" for i, st in enumerate(stages)}
    slowest = max(st["cycles_per_frame"] for st in stages)
    lines = ["", "## Dataflow", "", "Stages with their cycles per frame (FIFOs with their depth in beats); "
             "the bottleneck in red (also drawn in `report_dataflow.png`).", "", "```mermaid", "flowchart LR", '    top_in(["s_axis"])']
    for st in stages:
        label = f"{st['name']}<br/>{st['kind']}, {st['cycles_per_frame']:,} cyc"
        if "fifo_depth" in st:
            label += f"<br/>depth {st['fifo_depth']}"
        label = label.replace('"', "#quot;").replace("`", "#96;")
        lines.append(f'    {ids[st["name"]]}["{label}"]')
        if st["cycles_per_frame"] == slowest:
            lines.append(f"    style {ids[st['name']]} stroke:#d62728,stroke-width:3px")
        for src in st["sources"]:
            lines.append(f"    {ids.get(src, 'top_in')} --> {ids[st['name']]}")
    last = next((st for st in stages if st.get("output")), stages[-1])
    lines += [f'    {ids[last["name"]]} --> top_out(["m_axis"])', "```"]
    return lines


def _vivado_lines(vivado: dict, report: dict) -> list[str]:
    lines = []
    timing, power = vivado.get("timing"), vivado.get("power")
    if timing:
        clocks = ", ".join(f"{n} {c['mhz']:g} MHz" for n, c in timing.get("clocks", {}).items())
        fmax = f"; Fmax about {timing['fmax_mhz']:g} MHz" if timing.get("fmax_mhz") else ""
        at = f", {vivado['fps_at_fmax']:,.1f} fps there" if vivado.get("fps_at_fmax") else ""
        lines += ["", f"Vivado timing: WNS {timing['wns_ns']} ns, WHS {timing['whs_ns']} ns "
                      f"({'met' if timing['met'] else '**NOT met**'}; {clocks}){fmax}{at}."]
    if power:
        lines += ["", f"Vivado power: {power['total_w']} W on chip ({power.get('dynamic_w')} W dynamic, "
                      f"{power.get('static_w')} W static; confidence {power.get('confidence', '-')})."]
    return lines


def write_report(report: dict, out_dir: Path) -> list[Path]:
    """``report.json``, ``report.md``, ``report_layers.png`` and ``report_dataflow.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "report_layers.png",
             out_dir / "report_dataflow.png"]
    atomic_write_text(paths[0], json.dumps(report, indent=2) + "\n")
    atomic_write_text(paths[1], markdown(report))
    atomic_write_bytes(paths[2], plot_png(report))
    atomic_write_bytes(paths[3], dataflow_png(report))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mixq_hw.report --vivado DIR``: fold Vivado's reports in DIR into DIR's report.json/.md/.png."""
    parser = argparse.ArgumentParser(prog="python -m mixq_hw.report",
                                     description="Fold Vivado's utilization, timing and power reports into a "
                                                 "build's report.json and report.md, next to the estimates.")
    parser.add_argument("--vivado", type=Path, required=True, metavar="DIR",
                        help="folder holding vivado_utilization.txt, vivado_timing_summary.txt, vivado_power.txt")
    parser.add_argument("--report", type=Path, default=None,
                        help="the build's report.json (default: DIR/report.json); rewritten in place")
    args = parser.parse_args(argv)
    path = args.report or args.vivado / "report.json"
    try:
        if not path.exists():
            raise VivadoReportError(f"{path}: no such file (the build writes report.json)")
        try:
            report = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise VivadoReportError(f"{path}: not JSON ({exc})") from None
        report = fold_vivado(report, args.vivado)
    except VivadoReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_report(report, path.parent)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
