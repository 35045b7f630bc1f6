"""Stream formats of the layers' contract: a tensor <-> the beats one stream of the pipeline carries.

:mod:`sim.tensors` covers the raster format; this module covers every format a
pipeline stage reads or writes (see ``mixq_hw.layers``), as a
:class:`StreamFormat` that maps a (N, C, H, W) tensor to beats and tells, for
every value of every beat, which tensor element it is:

* ``raster``: per pixel in raster order, ``C / lanes`` beats ``[lanes]``;
* ``grouped`` (ConvEngine, Requant, AccBias): per row, per group of ``pixels``
  adjacent columns, per channel fold (``ceil(C/pe)``), a beat ``[pixels][pe]``; the slots of a
  ragged last group past the width and the lanes of a padded last fold past channel ``C-1`` carry
  values nobody reads (don't-care);
* ``taps`` (SlidingWindow): per output row, group, ``ky``, ``kx``, channel chunk,
  a beat ``[pixels][lanes]``, zero outside the image and past the last column;
* ``rows`` (RowWindow, stride 1): per output row, group, ``ky``, chunk, a beat
  ``[pixels + k - 1][lanes]`` of input pixels, zero outside the image.

Beats are built by one numpy gather (:meth:`StreamFormat.index`), so even a
full-size layer's window stream takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["StreamFormat", "ZERO", "ANY", "raster", "grouped", "taps", "rows", "locate"]

#: index of a beat value that is zero by the format (padding, slots past the image)
ZERO = -2
#: index of a beat value that the format leaves undefined (ragged slots of grouped streams): not compared
ANY = -1


@dataclass(frozen=True)
class StreamFormat:
    """How one stream carries a (C, H, W) tensor per frame; ``lanes``/``pe``/``pixels``/``k``... as above."""

    kind: str
    lanes: int = 1
    pe: int = 1
    pixels: int = 1
    k: int = 1
    stride: int = 1
    pad: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("raster", "grouped", "taps", "rows"):
            raise ValueError(f"unknown stream format {self.kind!r} (raster, grouped, taps or rows)")

    def describe(self) -> str:
        """A short human-readable form, e.g. ``raster/4`` or ``grouped pe 4 x 2 px``."""
        if self.kind == "raster":
            return f"raster/{self.lanes}"
        if self.kind == "grouped":
            return f"grouped pe {self.pe} x {self.pixels} px"
        return f"{self.kind} k{self.k} s{self.stride} p{self.pad} {self.pixels} px x {self.lanes}"

    def index(self, shape: Sequence[int]) -> np.ndarray:
        """For one frame of ``shape`` (C, H, W): the flat tensor index of every beat value (beats first),
        :data:`ZERO` or :data:`ANY` where the value is not a tensor element."""
        c, h, w = (int(s) for s in shape)
        flat = np.arange(c * h * w, dtype=np.int64).reshape(c, h, w)
        if self.kind == "raster":
            if c % self.lanes:
                raise ValueError(f"{c} channels not divisible by {self.lanes} lanes")
            return np.ascontiguousarray(flat.transpose(1, 2, 0)).reshape(-1, self.lanes)
        if self.kind == "grouped":
            # a pe not dividing c: the last fold's lanes past channel c-1 are padding (don't-care)
            groups = -(-w // self.pixels)
            y = np.arange(h)[:, None, None, None, None]
            col = (np.arange(groups)[None, :, None, None, None] * self.pixels
                   + np.arange(self.pixels)[None, None, None, :, None])
            ch = (np.arange(-(-c // self.pe))[None, None, :, None, None] * self.pe
                  + np.arange(self.pe)[None, None, None, None, :])
            idx = np.where((col < w) & (ch < c), np.minimum(ch, c - 1) * h * w + y * w + np.minimum(col, w - 1),
                           ANY)
            return idx.reshape(-1, self.pixels, self.pe)
        if c % self.lanes:
            raise ValueError(f"{c} channels not divisible by {self.lanes} lanes")
        k, stride, pad, px = self.k, self.stride, self.pad, self.pixels
        out_h, out_w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        groups = -(-out_w // px)
        chunk = np.arange(c // self.lanes)
        lane = np.arange(self.lanes)
        if self.kind == "taps":
            # (y, g, ky, kx, chunk, j, s)
            y, g, ky, kx, ck, j, s = np.ix_(np.arange(out_h), np.arange(groups), np.arange(k), np.arange(k),
                                           chunk, np.arange(px), lane)
            out_col = g * px + j
            row, col = y * stride + ky - pad, out_col * stride + kx - pad
            inside = (row >= 0) & (row < h) & (col >= 0) & (col < w) & (out_col < out_w)
            shape_out = (-1, px, self.lanes)
        else:
            if stride != 1:
                raise ValueError("the rows format is for stride 1")
            span = px + k - 1
            y, g, ky, ck, j, s = np.ix_(np.arange(out_h), np.arange(groups), np.arange(k), chunk,
                                        np.arange(span), lane)
            row, col = y + ky - pad, g * px + j - pad
            inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
            shape_out = (-1, span, self.lanes)
        ch = ck * self.lanes + s
        idx = np.where(inside, ch * h * w + np.clip(row, 0, h - 1) * w + np.clip(col, 0, w - 1), ZERO)
        return idx.reshape(shape_out)

    def batch_index(self, shape: Sequence[int], frames: int) -> np.ndarray:
        """:meth:`index` for ``frames`` frames back to back, indices into the flattened (N, C, H, W) batch."""
        one = self.index(shape)
        size = int(np.prod(shape))
        offsets = (np.arange(frames, dtype=np.int64) * size).reshape((-1,) + (1,) * one.ndim)
        idx = np.where(one >= 0, one[None] + offsets, one[None])
        return idx.reshape((-1,) + one.shape[1:])

    def beats_per_frame(self, shape: Sequence[int]) -> int:
        """Beats of one frame of ``shape``."""
        return int(self.index(shape).shape[0])

    def to_array(self, tensor: np.ndarray) -> np.ndarray:
        """The beats of a (N, C, H, W) batch (or one (C, H, W) frame) as an int64 array (beats first);
        don't-care slots hold 0."""
        x = np.asarray(tensor)
        batch = x if x.ndim == 4 else x[None]
        idx = self.batch_index(batch.shape[1:], batch.shape[0])
        ext = np.append(batch.astype(np.int64).ravel(), 0)
        return ext[np.where(idx >= 0, idx, ext.size - 1)]

    def to_tensor(self, beats: Any, shape: Sequence[int], *, dont_care_zero: bool = False) -> np.ndarray:
        """The (N, C, H, W) batch of frames of ``shape`` that ``beats`` carry (whole frames only): the inverse
        of :meth:`to_array` for a format that carries every element (raster, grouped).  ``dont_care_zero``:
        every slot that carries no element must hold 0.  ValueError on a partial frame or a non-zero slot."""
        arr = np.asarray(beats, dtype=np.int64)
        one = self.index(shape)
        per = one.shape[0]
        if arr.ndim != one.ndim or arr.shape[1:] != one.shape[1:] or not arr.shape[0] or arr.shape[0] % per:
            raise ValueError(f"{self.describe()}: {arr.shape} beats are not whole frames of {per} beats "
                             f"{tuple(one.shape[1:])} for shape {tuple(shape)}")
        frames = arr.shape[0] // per
        idx = self.batch_index(shape, frames)
        carried = idx >= 0
        out = np.zeros(frames * int(np.prod(shape)), dtype=np.int64)
        out[idx[carried]] = arr[carried]
        if dont_care_zero and np.any(arr[~carried] != 0):
            first = np.argwhere((~carried) & (arr != 0))[0]
            raise ValueError(f"{self.describe()}: beat {first[0]} slot {tuple(first[1:])} carries no element "
                             f"but holds {arr[tuple(first)]}, not 0")
        return out.reshape((frames, *(int(s) for s in shape)))

    def to_frame(self, beats: Any, shape: Sequence[int], *, dont_care_zero: bool = False) -> np.ndarray:
        """The one (C, H, W) frame ``beats`` carry (:meth:`to_tensor`; ValueError unless exactly one frame)."""
        out = self.to_tensor(beats, shape, dont_care_zero=dont_care_zero)
        if out.shape[0] != 1:
            raise ValueError(f"{self.describe()}: {len(beats)} beats are {out.shape[0]} frames of shape "
                             f"{tuple(shape)}, not one")
        return out[0]

    def beats(self, tensor: np.ndarray) -> list[Any]:
        """The beats of a (N, C, H, W) batch (or one frame) as nested lists, the payloads a stream driver sends."""
        return self.to_array(tensor).tolist()


def raster(lanes: int) -> StreamFormat:
    """Raster pixels, ``lanes`` channels per beat (the format of :func:`sim.tensors.tensor_to_beats`)."""
    return StreamFormat("raster", lanes=lanes)


def grouped(pe: int, pixels: int) -> StreamFormat:
    """ConvEngine/Requant/AccBias beats: ``[pixels][pe]`` per group and channel fold."""
    return StreamFormat("grouped", pe=pe, pixels=pixels)


def taps(k: int, stride: int, pad: int, pixels: int, lanes: int) -> StreamFormat:
    """SlidingWindow beats: ``[pixels][lanes]`` per output row, group, ky, kx and chunk."""
    return StreamFormat("taps", lanes=lanes, pixels=pixels, k=k, stride=stride, pad=pad)


def rows(k: int, pad: int, pixels: int, lanes: int) -> StreamFormat:
    """RowWindow beats: ``[pixels + k - 1][lanes]`` per output row, group, ky and chunk."""
    return StreamFormat("rows", lanes=lanes, pixels=pixels, k=k, pad=pad)


def locate(index: int, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(image, channel, row, column) of a flat index into a (N, C, H, W) batch whose frames have ``shape``."""
    c, h, w = (int(s) for s in shape)
    n, rest = divmod(int(index), c * h * w)
    ch, rest = divmod(rest, h * w)
    y, x = divmod(rest, w)
    return n, ch, y, x
