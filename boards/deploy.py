"""The build folder's ``README.md`` and its ``deploy/`` folder: what goes to the board and how to run it there.

``deploy/`` is the folder to copy to the board as it is: the build puts the
driver, its metadata and the test vectors there; the Vivado script adds the
bitstream and the ``.hwh`` once implementation has met timing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mixq_hw.atomic import atomic_write_text

from . import Board

__all__ = ["DEPLOY_DIR", "DEPLOY_FILES", "write_deploy", "readme_text"]

DEPLOY_DIR = "deploy"
#: file in deploy/ -> who writes it
DEPLOY_FILES = {
    "mixq.bit": "Vivado (build_vivado.tcl), when timing is met",
    "mixq.hwh": "Vivado (build_vivado.tcl): the block design's hand-off file PYNQ's Overlay reads",
    "mixq_driver.py": "the build: the PYNQ host driver (numpy + pynq only)",
    "mixq_meta.json": "the build: shapes, stream widths, scales, anchors the driver needs",
    "vectors/test_vectors.npz": "the build: test images and their golden outputs (Graph.reference)",
}
#: written by the build and copied into deploy/ when present
_FROM_BUILD = ("mixq_driver.py", "mixq_meta.json", "vectors/test_vectors.npz")


def readme_text(board: Board, report: dict) -> str:
    """The build folder's README: the Vivado command, what to copy to the board, how to validate and measure."""
    vivado = board.vivado_version or "see build_vivado.tcl"
    pynq = board.pynq_image or "a PYNQ image for the board"
    in_w, out_w = report.get("in_width"), report.get("out_width")
    streams = report.get("streams", {})
    rows = "\n".join(f"| `{name}` | {who} |" for name, who in DEPLOY_FILES.items())
    vectors = "present" if "vectors/test_vectors.npz" in report.get("deploy", []) else \
        "not written by this build; --validate needs them"
    return f"""# mixq build: {report.get('network') or 'network'} for {board.description}

{report.get('cycles_per_frame', 0):,} cycles per frame at {report.get('clock_mhz', 0):g} MHz:
{report.get('fps', 0):,.1f} frames/s (analytic). Input stream {in_w} bits, output stream {out_w} bits
{f"(AXI DMA memory maps {streams.get('dma_mm_in')}/{streams.get('dma_mm_out')} bits)" if streams else ''}.
The estimates and the design are in `report.md` / `report.json`.

## 1. Bitstream (on a machine with Vivado)

Written for **Vivado {vivado}**. Optional: the Ultra96-V2 board files (`avnet.com:ultra96v2:part0:1.2`, from
https://github.com/Avnet/bdf), without which the script says so and leaves the PS at its defaults
(`MIXQ_REQUIRE_BOARD_FILES=1` makes that an error). Every path in the script is relative to this folder, so
copy the whole folder to the Vivado machine if needed, then:

    vivado -mode batch -source build_vivado.tcl      # MIXQ_JOBS=8 for more parallel jobs

It writes `vivado_utilization.txt`, `vivado_timing_summary.txt` and `vivado_power.txt`, stops with an error
if setup or hold slack is negative (no bitstream is handed on; the message names the clock that would
work), and otherwise writes `mixq.bit`, `mixq.hwh`, `mixq.xsa` here and copies the first two into `{DEPLOY_DIR}/`.
Fold Vivado's figures into the report next to the estimates:

    python -m mixq_hw.report --vivado .

## 2. On the board

Board image: **PYNQ {pynq}** for the Ultra96-V2. Copy `{DEPLOY_DIR}/` as it is:

    scp -r {DEPLOY_DIR} xilinx@<board>:~/mixq

| file in `{DEPLOY_DIR}/` | written by |
|---|---|
{rows}

Test vectors: {vectors}.

On the board, as root in PYNQ's Python environment (`sudo -i; source /etc/profile.d/pynq_venv.sh`):

    cd ~/mixq
    python3 mixq_driver.py --validate                 # test vectors vs golden outputs, bit-exact count
    python3 mixq_driver.py --throughput --batch 64    # images/s, latency, DMA MB/s, PL clock, pack/unpack
    python3 mixq_driver.py --images test.npz --batch 64   # 'images' (N, C, H, W) uint8 -> test_outputs.npy

From Python:

    from mixq_driver import MixqAccelerator
    acc = MixqAccelerator("mixq.bit")
    raw = acc.infer(images)       # (N, C, H, W) uint8 in, raw (N, C, H, W) int64 acc + bias out
    print(acc.validate())
"""


def write_deploy(out: Path, board: Board, report: dict) -> list[Path]:
    """Copy the build's driver, metadata and test vectors into ``out/deploy`` and write ``out/README.md``."""
    out = Path(out)
    deploy = out / DEPLOY_DIR
    deploy.mkdir(exist_ok=True)
    written = []
    for name in _FROM_BUILD:
        src = out / name
        if src.exists():
            dst = deploy / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    report = {**report, "deploy": [str(p.relative_to(deploy)) for p in written]}
    readme = out / "README.md"
    atomic_write_text(readme, readme_text(board, report))
    return [readme, *written]
