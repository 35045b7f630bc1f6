"""PYNQ host driver for a mixq accelerator (copied into the build folder and deploy/ as ``mixq_driver.py``).

Runs on the board with only numpy and pynq: loads the overlay and streams a
batch of 8-bit NCHW images through the AXI DMA.  The accelerator raises TLAST
at the end of every output frame and the AXI DMA ends a receive there, so the
driver posts one receive per frame (each checked against the frame's byte
count) while the send side streams the batch in chunks the DMA's length
register can hold.  Buffers are allocated once per batch size and reused.
Everything the driver needs to know about the design (shapes, stream widths,
per-channel scales, the detection anchors) is in ``mixq_meta.json``, written by
the same build.

    from mixq_driver import MixqAccelerator
    acc = MixqAccelerator("mixq.bit")
    labels = acc.classify(images)          # images: (N, C, H, W) uint8
    acc.validate()                         # the build's test vectors against the golden outputs

Command line (on the board, next to mixq.bit / mixq.hwh / mixq_meta.json)::

    python3 mixq_driver.py --validate
    python3 mixq_driver.py --images test.npz --batch 64 [--throughput]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["MixqAccelerator", "DriverError", "pack_images", "unpack_outputs", "decode_boxes", "frame_bytes",
           "load_images", "load_vectors", "main"]

#: Receive buffers start at multiples of this many bytes: the AXI DMA without its realignment engine needs
#: addresses aligned to the memory-map data width, at most 1024 bits.
ALIGN = 128
#: The simple-mode DMA's length register is ``c_sg_length_width`` = 26 bits wide (set by the Vivado script).
DMA_MAX_BYTES = (1 << 26) - 1
#: Test vectors written by the build, relative to the driver's folder.
VECTORS = Path("vectors") / "test_vectors.npz"


class DriverError(RuntimeError):
    """The accelerator or the DMA did something the design does not allow; the message says what."""


def frame_bytes(meta: dict) -> tuple[int, int]:
    """Bytes per frame on the input and on the output stream."""
    _, h, w = meta["input_shape"]
    c, oh, ow = meta["output_shape"]
    return h * w * meta["in_width"] // 8, oh * ow * (c // meta["out_lanes"]) * meta["out_width"] // 8


def pack_images(images: np.ndarray, meta: dict, out: np.ndarray | None = None) -> np.ndarray:
    """(N, C, H, W) uint8 images -> the input stream's bytes: one pixel per beat, channels zero-padded.

    Writes into ``out`` (a flat uint8 array of at least N frames) when given."""
    c, h, w = meta["input_shape"]
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (c, h, w):
        raise ValueError(f"images must be uint8 (N, {c}, {h}, {w}) (NCHW), got {images.dtype} {images.shape}")
    beat = meta["in_width"] // 8
    n = images.shape[0]
    target = np.zeros(n * h * w * beat, dtype=np.uint8) if out is None else out[:n * h * w * beat]
    view = target.reshape(n, h, w, beat)
    view[..., :c] = images.transpose(0, 2, 3, 1)
    if beat > c:
        view[..., c:] = 0
    return target


def unpack_outputs(data: np.ndarray, n: int, meta: dict, stride: int | None = None) -> np.ndarray:
    """The output stream's bytes -> (N, C, H, W) int64 raw ``acc + bias`` values.

    ``stride``: bytes from one frame's start to the next (frames padded for alignment); default packed."""
    c, h, w = meta["output_shape"]
    lanes, beat = meta["out_lanes"], meta["out_width"] // 32
    size = frame_bytes(meta)[1]
    stride = stride or size
    frames = np.asarray(data).view(np.uint8).reshape(-1)[:n * stride].reshape(n, stride)[:, :size]
    words = np.ascontiguousarray(frames).view("<i4").reshape(n, h, w, c // lanes, beat)[..., :lanes]
    return words.reshape(n, h, w, c).transpose(0, 3, 1, 2).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_boxes(output: np.ndarray, anchors) -> np.ndarray:
    """(N, 6*A, H, W) dequantised head output -> (N, 4) boxes (x1, y1, x2, y2) in [0, 1].

    The most confident (anchor, cell) wins, ties to the first in (anchor, row, col) order; the same
    rule as ``mixq_nn.detection.decode``, which the tests compare this with.
    """
    anchors = np.asarray(anchors, dtype=np.float64)
    n, ch, h, w = output.shape
    out = output.reshape(n, len(anchors), ch // len(anchors), h, w)
    best = out[:, :, 4].reshape(n, -1).argmax(axis=1)
    anchor, cell = best // (h * w), best % (h * w)
    row, col = cell // w, cell % w
    picked = out[np.arange(n), anchor, :, row, col]
    cx = (col + _sigmoid(picked[:, 0])) / w
    cy = (row + _sigmoid(picked[:, 1])) / h
    bw = anchors[anchor, 0] * np.exp(np.minimum(picked[:, 2], 8.0))
    bh = anchors[anchor, 1] * np.exp(np.minimum(picked[:, 3], 8.0))
    return np.clip(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1), 0.0, 1.0)


class MixqAccelerator:
    """The accelerator on the board: ``infer`` for raw outputs, ``classify`` / ``detect`` for results."""

    #: batch sizes whose DMA buffers are kept (the least recently used beyond this are freed)
    KEEP_BUFFERS = 4

    def __init__(self, bitfile: str = "mixq.bit", meta: str | None = None, *, dma: str = "dma"):
        from pynq import Overlay  # only on the board

        bitpath = Path(bitfile)
        self.folder = bitpath.resolve().parent
        self.meta = json.loads(Path(meta or bitpath.with_name("mixq_meta.json")).read_text())
        self.overlay = Overlay(str(bitpath))
        self.dma = getattr(self.overlay, dma)
        self.scale = np.asarray(self.meta["scale"], dtype=np.float64)
        self.in_frame, self.out_frame = frame_bytes(self.meta)
        # one receive per frame; one alignment unit of slack beyond the frame lets a frame that runs long
        # show up as a byte count instead of the DMA's internal error
        self.out_stride = -(-self.out_frame // ALIGN) * ALIGN + ALIGN
        max_bytes = int(getattr(self.dma, "buffer_max_size", 0) or DMA_MAX_BYTES)
        self.send_chunk = max(ALIGN, max_bytes // ALIGN * ALIGN)
        self._buffers: dict[int, tuple] = {}
        self.last_seconds = 0.0
        self.last_timing: dict[str, float] = {}

    # ---- buffers ---------------------------------------------------------------------------------

    def _buffers_for(self, n: int) -> tuple:
        from pynq import allocate

        if n in self._buffers:
            self._buffers[n] = self._buffers.pop(n)          # most recently used last
            return self._buffers[n]
        while len(self._buffers) >= self.KEEP_BUFFERS:
            for buf in self._buffers.pop(next(iter(self._buffers))):
                buf.freebuffer()
        src = allocate(shape=(n * self.in_frame,), dtype=np.uint8)
        dst = allocate(shape=(n * self.out_stride,), dtype=np.uint8)
        self._buffers[n] = (src, dst)
        return src, dst

    def close(self) -> None:
        """Free every DMA buffer."""
        for pair in self._buffers.values():
            for buf in pair:
                buf.freebuffer()
        self._buffers.clear()

    def __enter__(self) -> "MixqAccelerator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- transfers -------------------------------------------------------------------------------

    def _stream(self, src, dst, n: int) -> None:
        """Send ``n`` frames from ``src`` and receive each output frame into its slot of ``dst``."""
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        total = n * self.in_frame
        posted = 0
        for i in range(n):
            recv.transfer(dst, start=i * self.out_stride, nbytes=self.out_stride)
            # every input byte of frame i is posted before waiting for its output; the send channel
            # holds one transfer at a time, so a chunk that ends inside the frame is waited for first
            # (it completes: the outputs it needs are frames <= i, all received or posted)
            while posted < min(total, (i + 1) * self.in_frame):
                if posted:
                    send.wait()
                size = min(self.send_chunk, total - posted)
                send.transfer(src, start=posted, nbytes=size)
                posted += size
            recv.wait()
            got = int(recv.transferred)
            if got != self.out_frame:
                raise DriverError(
                    f"frame {i} of {n}: the DMA received {got} bytes, expected {self.out_frame} "
                    f"(output {self.meta['output_shape']} at {self.meta['out_lanes']} lanes of a "
                    f"{self.meta['out_width']}-bit stream): the bitstream and mixq_meta.json do not match")
        send.wait()

    def infer(self, images: np.ndarray) -> np.ndarray:
        """Raw ``acc + bias`` (N, C, H, W) int64 for a batch of (N, C, H, W) uint8 images."""
        images = np.asarray(images)
        n = images.shape[0] if images.ndim == 4 else 0
        if n == 0:
            pack_images(images, self.meta)     # raises the shape error
            raise ValueError("images: an empty batch")
        src, dst = self._buffers_for(n)
        t0 = time.perf_counter()
        pack_images(images, self.meta, out=src)
        t1 = time.perf_counter()
        self._stream(src, dst, n)
        t2 = time.perf_counter()
        out = unpack_outputs(np.asarray(dst), n, self.meta, stride=self.out_stride)
        t3 = time.perf_counter()
        self.last_seconds = t2 - t1
        self.last_timing = {"pack_s": t1 - t0, "dma_s": t2 - t1, "unpack_s": t3 - t2}
        return out

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        """Real-valued outputs: ``(acc + bias) * scale`` per channel."""
        return raw * self.scale.reshape(1, -1, 1, 1)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """Class index per image (classification networks)."""
        return self.dequantize(self.infer(images)).reshape(len(images), -1).argmax(axis=1)

    def detect(self, images: np.ndarray) -> np.ndarray:
        """(N, 4) boxes (x1, y1, x2, y2) in [0, 1] (single-object detection networks)."""
        return decode_boxes(self.dequantize(self.infer(images)), self.meta["anchors"])

    # ---- checks and measurements -----------------------------------------------------------------

    def validate(self, vectors: str | Path | None = None, *, batch: int = 64) -> dict:
        """Run the build's test vectors and compare with their golden outputs, value for value.

        ``vectors``: an .npz with ``images`` (N, C, H, W) uint8 and ``expected`` (N, C, H, W) int64
        (default: ``vectors/test_vectors.npz`` next to the bitstream).  Returns ``{"images", "bit_exact",
        "mismatched", "first_mismatch", "ok"}``."""
        path = Path(vectors) if vectors else self.folder / VECTORS
        images, expected = load_vectors(path, self.meta)
        got = np.concatenate([self.infer(images[i:i + batch]) for i in range(0, len(images), batch)])
        wrong = [int(i) for i in np.flatnonzero((got != expected).reshape(len(images), -1).any(axis=1))]
        first = ""
        if wrong:
            n, c, y, x = (int(v) for v in np.argwhere(got != expected)[0])
            first = (f"image {n}, channel {c}, row {y}, column {x}: accelerator {int(got[n, c, y, x])}, "
                     f"expected {int(expected[n, c, y, x])}")
        return {"images": len(images), "bit_exact": len(images) - len(wrong), "mismatched": wrong,
                "first_mismatch": first, "ok": not wrong}

    def throughput_test(self, batch: int = 64, repeats: int = 5) -> dict:
        """Images/s, first-frame latency, DMA bandwidth, PL clock and pack/unpack time on random images."""
        c, h, w = self.meta["input_shape"]
        images = np.random.default_rng(0).integers(0, 256, (batch, c, h, w), dtype=np.uint8)
        self.infer(images)                                         # buffers allocated, caches warm
        runs = []
        for _ in range(repeats):
            self.infer(images)
            runs.append(dict(self.last_timing))
        dma_s = min(r["dma_s"] for r in runs)
        self.infer(images[:1])
        latency_s = self.last_timing["dma_s"]
        try:
            from pynq import Clocks
            clock = float(Clocks.fclk0_mhz)
        except Exception:  # an image without the Clocks API
            clock = float("nan")
        cycles = self.meta.get("cycles_per_frame")
        return {
            "batch": batch, "images_per_s": batch / dma_s, "latency_ms": 1e3 * latency_s,
            "dma_mb_per_s": batch * (self.in_frame + self.out_frame) / dma_s / 1e6,
            "pl_clock_mhz": clock, "pack_ms": 1e3 * min(r["pack_s"] for r in runs),
            "unpack_ms": 1e3 * min(r["unpack_s"] for r in runs),
            "analytic_images_per_s": clock * 1e6 / cycles if cycles and clock == clock else None,
        }


def load_vectors(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """``images`` and ``expected`` from a test-vector .npz, checked against the design's shapes."""
    path = Path(path)
    if not path.exists():
        raise DriverError(f"{path}: no such file (the build writes vectors/test_vectors.npz)")
    with np.load(path, allow_pickle=False) as data:
        missing = {"images", "expected"} - set(data.files)
        if missing:
            raise DriverError(f"{path}: no {', '.join(sorted(missing))} array")
        images, expected = data["images"], data["expected"]
    n = len(images)
    if images.dtype != np.uint8 or images.shape[1:] != tuple(meta["input_shape"]):
        raise DriverError(f"{path}: images are {images.dtype} {images.shape}, the design takes uint8 "
                          f"(N, {', '.join(map(str, meta['input_shape']))})")
    if expected.shape != (n, *meta["output_shape"]):
        raise DriverError(f"{path}: expected outputs have shape {expected.shape}, the design gives "
                          f"({n}, {', '.join(map(str, meta['output_shape']))})")
    return images, expected.astype(np.int64)


def load_images(path: Path) -> np.ndarray:
    """The ``images`` array of an .npz file; a DriverError naming the file otherwise."""
    path = Path(path)
    if not path.exists():
        raise DriverError(f"--images {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in getattr(data, "files", ()):
                raise DriverError(f"--images {path}: no 'images' array (an .npz with images (N, C, H, W) uint8)")
            return data["images"]
    except (OSError, ValueError) as exc:
        raise DriverError(f"--images {path}: not an .npz file ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    """The command line: validate, run images, or measure throughput."""
    parser = argparse.ArgumentParser(prog="python3 mixq_driver.py", description="Run a mixq accelerator on PYNQ.")
    parser.add_argument("--bit", default=str(Path(__file__).resolve().with_name("mixq.bit")),
                        help="bitstream (mixq.hwh and mixq_meta.json next to it)")
    parser.add_argument("--images", type=Path, help=".npz with an 'images' (N, C, H, W) uint8 array")
    parser.add_argument("--batch", type=int, default=64, help="images per DMA batch (default 64)")
    parser.add_argument("--validate", nargs="?", const="", metavar="NPZ",
                        help="compare the test vectors (default vectors/test_vectors.npz) with the golden outputs")
    parser.add_argument("--throughput", action="store_true", help="measure images/s, latency and DMA bandwidth")
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch {args.batch}: must be at least 1")
    if args.images is None and args.validate is None and not args.throughput:
        args.validate = ""
    with MixqAccelerator(args.bit) as acc:
        status = 0
        if args.validate is not None:
            result = acc.validate(args.validate or None, batch=args.batch)
            print(f"validate: {result['bit_exact']}/{result['images']} images bit-exact"
                  + (f"; first difference at {result['first_mismatch']}" if not result["ok"] else ""))
            status = 0 if result["ok"] else 1
        if args.images is not None:
            images = load_images(args.images)
            out = np.concatenate([acc.infer(images[i:i + args.batch]) for i in range(0, len(images), args.batch)])
            task = acc.meta.get("task")
            if task == "classify":
                print("classes:", acc.dequantize(out).reshape(len(out), -1).argmax(axis=1).tolist())
            elif task == "detect":
                print("boxes:", decode_boxes(acc.dequantize(out), acc.meta["anchors"]).round(4).tolist())
            np.save(args.images.with_name(args.images.stem + "_outputs.npy"), out)
        if args.throughput:
            stats = acc.throughput_test(batch=args.batch)
            print("throughput: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in stats.items()))
        return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DriverError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
