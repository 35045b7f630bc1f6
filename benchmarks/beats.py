"""Beat packing speed: :mod:`sim.beats` (numpy) against the beat-by-beat reference, on stream layouts of the
sizes layer-by-layer verification moves.

    python benchmarks/beats.py [--beats 4000] [--markdown-only]

Both directions (beats -> 32-bit words for a testbench's job file, words -> beats from its result) are timed
on the same random beats, and the numpy words and beats are checked equal to the reference's.  Writes
``benchmarks/results/beats.json`` and ``beats.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amaranth import signed, unsigned  # noqa: E402
from amaranth.lib import data  # noqa: E402

from benchmarks.common import machine  # noqa: E402
from mixq_hw.atomic import atomic_write_text  # noqa: E402
from sim.beats import beat_words, pack_beat, payload_width, unpack_beat, words_of, words_to_beats  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: (name, layout): raster pixels, grouped accumulators, window taps of low-bit activations
LAYOUTS: list[tuple[str, Any]] = [
    ("raster 8 x u8", data.ArrayLayout(unsigned(8), 8)),
    ("grouped 4 px x 16 pe x s24", data.ArrayLayout(data.ArrayLayout(signed(24), 16), 4)),
    ("taps 4 px x 32 lanes x u2", data.ArrayLayout(data.ArrayLayout(unsigned(2), 32), 4)),
    ("rows 10 px x 64 lanes x u4", data.ArrayLayout(data.ArrayLayout(unsigned(4), 64), 10)),
]


def _reference(shape, beats: list) -> tuple[list[int], list]:
    """Beat by beat through pack_beat / unpack_beat: (the words, the beats read back)."""
    nw = words_of(payload_width(shape))
    words: list[int] = []
    for beat in beats:
        raw = pack_beat(shape, beat)
        words.extend((raw >> (32 * w)) & 0xFFFFFFFF for w in range(nw))
    back = []
    for b in range(len(beats)):
        raw = 0
        for w in range(nw):
            raw |= words[b * nw + w] << (32 * w)
        back.append(unpack_beat(shape, raw))
    return words, back


def _random_beats(rng: random.Random, shape, count: int) -> list:
    def one(s):
        if isinstance(s, data.ArrayLayout):
            return [one(s.elem_shape) for _ in range(s.length)]
        width = s.width
        return rng.randrange(-(1 << (width - 1)), 1 << (width - 1)) if s.signed else rng.getrandbits(width)
    return [one(shape) for _ in range(count)]


def measure(count: int) -> list[dict]:
    """One row per layout: values moved and seconds of each direction, numpy and reference."""
    rng = random.Random(0)
    rows = []
    for name, shape in LAYOUTS:
        beats = _random_beats(rng, shape, count)
        t0 = time.perf_counter()
        words = beat_words(shape, beats)
        t1 = time.perf_counter()
        back = words_to_beats(shape, words, count)
        t2 = time.perf_counter()
        ref_words, ref_back = _reference(shape, beats)
        t3 = time.perf_counter()
        if words != ref_words or back != ref_back or back != beats:
            raise SystemExit(f"{name}: the numpy packing differs from the reference")
        rows.append({"layout": name, "beats": count, "bits_per_beat": payload_width(shape),
                     "pack_s": t1 - t0, "unpack_s": t2 - t1, "reference_s": t3 - t2,
                     "speedup": (t3 - t2) / max(t2 - t0, 1e-9)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(result: dict) -> str:
    """The table of ``result`` (as :func:`main` writes it)."""
    m = result["machine"]
    lines = [f"# Beat packing: numpy vs beat by beat ({result['beats']:,} beats per layout)", "",
             f"{m['date']}, {m['cpu']} ({m['cpus']} CPUs, load {m['load_average_at_start'][0]:.2f} at start).", "",
             "| layout | bits/beat | pack s | unpack s | beat-by-beat s (both) | speed-up |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['layout']} | {r['bits_per_beat']} | {r['pack_s']:.3f} | {r['unpack_s']:.3f} | "
                     f"{r['reference_s']:.2f} | {r['speedup']:.0f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, default=4000, help="beats per layout (default 4000)")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite beats.md from beats.json")
    args = parser.parse_args(argv)
    if args.markdown_only:
        result = json.loads((RESULTS / "beats.json").read_text())
    else:
        if args.beats < 1:
            parser.error(f"--beats must be at least 1, got {args.beats}")
        started = machine()
        result = {"machine": started, "beats": args.beats, "rows": measure(args.beats)}
        RESULTS.mkdir(exist_ok=True)
        atomic_write_text(RESULTS / "beats.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(RESULTS / "beats.md", markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
