"""The PYNQ driver against a fake ``pynq`` whose AXI DMA ends every receive at TLAST, as the real one does.

The fake accelerator computes each frame with the golden integer model and
streams it out in the hardware's beat format (``sim.tensors``), raising TLAST
on the last beat of every frame.  Its output buffering holds ``CAPACITY``
frames: input stops when they are not drained, so a send that needs more room
than that never completes (the fake raises where the board would hang).
"""

import json
import sys
import types
from collections import deque

import numpy as np
import pytest
from networks import small_graph

from boards import pynq_driver as drv
from mixq_hw.graph import Graph
from sim.tensors import tensor_to_beats

CAPACITY = 2            # output frames the accelerator and the stream can hold before input stops
MM_ALIGN = 16           # a 128-bit memory map: receive and send addresses aligned to 16 bytes


class Hang(RuntimeError):
    """The real DMA would wait forever here."""


class FakeBuffer(np.ndarray):
    """What ``pynq.allocate`` returns: a numpy array with cache and free methods."""

    def freebuffer(self):
        self.freed = True

    def flush(self):
        pass

    def invalidate(self):
        pass


class FakeAccelerator:
    """Golden outputs per frame, as the output stream's bytes; the last beat of each frame carries TLAST."""

    def __init__(self, graph: Graph, meta: dict, short_by: int = 0):
        self.graph, self.meta, self.short_by = graph, meta, short_by
        c, h, w = meta["output_shape"]
        self.in_frame = meta["input_shape"][1] * meta["input_shape"][2] * meta["in_width"] // 8
        self.out_frame = h * w * c // meta["out_lanes"] * meta["out_width"] // 8
        self.partial = bytearray()
        self.out = deque()                  # whole frames of output bytes, each ending with TLAST
        self.frames_in = 0

    def room(self) -> bool:
        return len(self.out) < CAPACITY

    def accept(self, data: bytes) -> int:
        """Take input bytes up to the end of the current frame; returns how many were taken."""
        take = min(len(data), self.in_frame - len(self.partial))
        self.partial += data[:take]
        if len(self.partial) == self.in_frame:
            c, h, w = self.meta["input_shape"]
            pixels = np.frombuffer(bytes(self.partial), np.uint8).reshape(h, w, -1)[..., :c]
            out = self.graph.reference(pixels.transpose(2, 0, 1)[None].copy())[0]
            lanes, width = self.meta["out_lanes"], self.meta["out_width"]
            beats = np.array(tensor_to_beats(out, lanes), dtype=np.int64)
            words = np.zeros((len(beats), width // 32), dtype="<i4")
            words[:, :lanes] = beats
            frame = words.tobytes()
            self.out.append(frame[:len(frame) - self.short_by])
            self.partial = bytearray()
            self.frames_in += 1
        return take


class FakeChannel:
    def __init__(self, dma, direction: str):
        self.dma, self.direction = dma, direction
        self.active = None                  # [array bytes view, position, end]
        self.transferred = 0
        self.error = ""
        self.posted = []                    # (start, nbytes) of every transfer

    @property
    def idle(self) -> bool:
        self.dma.advance()
        return self.active is None

    def transfer(self, array, start=0, nbytes=0):
        if self.active is not None:
            raise RuntimeError("DMA channel not idle")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if nbytes > self.dma.buffer_max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum DMA buffer size")
        if start % MM_ALIGN:
            raise RuntimeError("DMA does not support unaligned transfers")
        if start + nbytes > array.nbytes:
            raise ValueError("transfer beyond the buffer")
        self.posted.append((start, nbytes))
        self.active = [array.reshape(-1).view(np.uint8), start, start + nbytes, start]
        self.transferred = 0
        self.dma.advance()

    def wait(self):
        self.dma.advance()
        if self.error:
            raise RuntimeError(self.error)
        if self.active is not None:
            raise Hang(f"{self.direction} channel: wait() never returns ({self.active[1] - self.active[3]} of "
                       f"{self.active[2] - self.active[3]} bytes moved, "
                       f"{self.dma.accel.frames_in} frames in, {len(self.dma.accel.out)} frames waiting)")


class FakeDMA:
    """The AXI DMA in simple mode: one transfer per channel; a receive ends at TLAST or at its length."""

    def __init__(self, accel: FakeAccelerator, buffer_max_size: int = (1 << 26) - 1):
        self.accel = accel
        self.buffer_max_size = buffer_max_size
        self.sendchannel = FakeChannel(self, "send")
        self.recvchannel = FakeChannel(self, "recv")

    def advance(self):
        send, recv, accel = self.sendchannel, self.recvchannel, self.accel
        moved = True
        while moved:
            moved = False
            if recv.active is not None and accel.out:
                mem, pos, end, start = recv.active
                frame = accel.out.popleft()
                room = end - pos
                mem[pos:pos + min(room, len(frame))] = np.frombuffer(frame[:room], np.uint8)
                recv.transferred = min(room, len(frame))
                if len(frame) > room:
                    recv.error = "DMA Internal Error (transfer length 0?)"
                recv.active = None          # TLAST (or the error) ends the receive
                moved = True
            if send.active is not None and accel.room():
                mem, pos, end, start = send.active
                taken = accel.accept(mem[pos:end].tobytes())
                send.active[1] += taken
                if send.active[1] == end:
                    send.transferred = end - start
                    send.active = None
                moved = moved or taken > 0


@pytest.fixture
def board(tmp_path, monkeypatch):
    """A build folder with mixq_meta.json and a fake pynq whose Overlay holds a FakeDMA."""
    graph = small_graph()
    state = {"graph": graph, "allocations": 0}

    def setup(lanes=2, out_width=64, short_by=0, max_size=(1 << 26) - 1):
        meta = {"network": "small", "input_shape": [3, 8, 8], "output_shape": [4, 4, 4], "in_width": 32,
                "out_width": out_width, "out_lanes": lanes, "scale": [0.25] * 4, "task": "classify",
                "anchors": None, "cycles_per_frame": 1000}
        (tmp_path / "mixq_meta.json").write_text(json.dumps(meta))
        (tmp_path / "mixq.bit").write_text("bit")
        state["dma"] = FakeDMA(FakeAccelerator(graph, meta, short_by), max_size)
        return tmp_path / "mixq.bit"

    def allocate(shape, dtype):
        state["allocations"] += 1
        buf = np.zeros(shape, dtype).view(FakeBuffer)
        buf.freed = False
        state.setdefault("buffers", []).append(buf)
        return buf

    fake = types.ModuleType("pynq")
    fake.Overlay = lambda path: types.SimpleNamespace(dma=state["dma"])
    fake.allocate = allocate
    fake.Clocks = types.SimpleNamespace(fclk0_mhz=299.997)
    monkeypatch.setitem(sys.modules, "pynq", fake)
    state["setup"] = setup
    return state


def images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("lanes,width", [(2, 64), (1, 64), (4, 128)])
def test_batches_complete_and_in_order(board, lanes, width):
    """Batches of 1, 7 and 64 through a DMA that ends each receive at the frame's TLAST: every frame is the
    golden model's output for its own image, in order (fails with one receive posted for the whole batch)."""
    acc = drv.MixqAccelerator(str(board["setup"](lanes, width)))
    for n in (1, 7, 64):
        x = images(n, seed=n)
        np.testing.assert_array_equal(acc.infer(x), board["graph"].reference(x), err_msg=f"batch {n}")
    assert acc.dma.recvchannel.posted[-64:] == [(i * acc.out_stride, acc.out_stride) for i in range(64)]


def test_large_batch_sent_in_chunks(board):
    """A send longer than the DMA's length register is split, at aligned offsets that can fall inside a frame."""
    in_frame = 8 * 8 * 4
    acc = drv.MixqAccelerator(str(board["setup"](max_size=3 * in_frame + 200)))
    x = images(64, seed=5)
    np.testing.assert_array_equal(acc.infer(x), board["graph"].reference(x))
    sends = acc.dma.sendchannel.posted
    assert len(sends) == 19 and sum(n for _, n in sends) == 64 * in_frame
    assert any(start % in_frame for start, _ in sends)


def test_buffers_reused_per_batch_size(board):
    acc = drv.MixqAccelerator(str(board["setup"]()))
    acc.infer(images(7))
    acc.infer(images(7, seed=1))
    assert board["allocations"] == 2
    acc.infer(images(3))
    assert board["allocations"] == 4
    acc.close()
    assert all(buf.freed for buf in board["buffers"])
    acc.infer(images(7))                 # freed: allocated again
    assert board["allocations"] == 6
    for n in (1, 2, 4, 5):               # a fifth batch size frees the least recently used (7)
        acc.infer(images(n))
    assert [buf.freed for buf in board["buffers"][4:]] == [True, True] + [False] * 8


def test_short_frame_is_a_clear_error(board):
    acc = drv.MixqAccelerator(str(board["setup"](short_by=8)))
    with pytest.raises(drv.DriverError, match=r"frame 0 of 2: the DMA received 248 bytes, expected 256"):
        acc.infer(images(2))


def test_nhwc_images_refused(board):
    acc = drv.MixqAccelerator(str(board["setup"]()))
    with pytest.raises(ValueError, match=r"uint8 \(N, 3, 8, 8\) \(NCHW\)"):
        acc.infer(images(2).transpose(0, 2, 3, 1))


def _write_vectors(folder, graph, n=10, corrupt=None):
    x = images(n, seed=9)
    expected = graph.reference(x)
    if corrupt is not None:
        expected[corrupt, 1, 2, 3] += 1
    (folder / "vectors").mkdir(exist_ok=True)
    np.savez(folder / "vectors" / "test_vectors.npz", images=x, expected=expected, scale=np.full(4, 0.25))


def test_validate_matching_and_corrupted(board, tmp_path):
    acc = drv.MixqAccelerator(str(board["setup"]()))
    _write_vectors(tmp_path, board["graph"])
    result = acc.validate(batch=4)
    assert result == {"images": 10, "bit_exact": 10, "mismatched": [], "first_mismatch": "", "ok": True}
    _write_vectors(tmp_path, board["graph"], corrupt=6)
    result = acc.validate(batch=4)
    assert not result["ok"] and result["bit_exact"] == 9 and result["mismatched"] == [6]
    assert result["first_mismatch"].startswith("image 6, channel 1, row 2, column 3")
    with pytest.raises(drv.DriverError, match="nope.npz: no such file"):
        acc.validate(tmp_path / "nope.npz")


def test_command_line(board, tmp_path, capsys):
    bit = str(board["setup"]())
    _write_vectors(tmp_path, board["graph"])
    assert drv.main(["--bit", bit, "--validate", "--batch", "3"]) == 0
    assert "validate: 10/10 images bit-exact" in capsys.readouterr().out
    _write_vectors(tmp_path, board["graph"], corrupt=0)
    assert drv.main(["--bit", bit]) == 1                  # validate is the default
    assert "first difference at image 0" in capsys.readouterr().out
    np.savez(tmp_path / "test.npz", images=images(5))
    assert drv.main(["--bit", bit, "--images", str(tmp_path / "test.npz"), "--batch", "2", "--throughput"]) == 0
    out = capsys.readouterr().out
    assert "classes:" in out
    np.testing.assert_array_equal(np.load(tmp_path / "test_outputs.npy"), board["graph"].reference(images(5)))
    assert "images_per_s" in out and "pl_clock_mhz 300" in out


def test_throughput_fields(board):
    acc = drv.MixqAccelerator(str(board["setup"]()))
    stats = acc.throughput_test(batch=8, repeats=2)
    assert set(stats) == {"batch", "images_per_s", "latency_ms", "dma_mb_per_s", "pl_clock_mhz", "pack_ms",
                          "unpack_ms", "analytic_images_per_s"}
    assert stats["images_per_s"] > 0 and stats["pl_clock_mhz"] == pytest.approx(299.997)


def test_command_line_bad_images_file(board, tmp_path):
    bit = str(board["setup"]())
    with pytest.raises(drv.DriverError, match="--images .*nope.npz: no such file"):
        drv.main(["--bit", bit, "--images", str(tmp_path / "nope.npz")])
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(drv.DriverError, match="junk.npz: not an .npz file"):
        drv.main(["--bit", bit, "--images", str(tmp_path / "junk.npz")])
    np.savez(tmp_path / "other.npz", pixels=images(1))
    with pytest.raises(drv.DriverError, match="other.npz: no 'images' array"):
        drv.main(["--bit", bit, "--images", str(tmp_path / "other.npz")])
