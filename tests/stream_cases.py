"""Helpers the stream-operator tests share: random codes, running a block on tensors, frame intervals."""

from __future__ import annotations

import numpy as np

from sim.streams import StreamRun, run_streams
from sim.tensors import beats_to_tensor, tensor_to_beats

STALLS = (0.0, 0.3, 0.7)


def codes(rng: np.random.Generator, shape: tuple[int, ...], bits: int, signed: bool = False) -> np.ndarray:
    """Random codes of ``bits`` (two's complement range when ``signed``) with both extremes present."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    x = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    x.flat[0], x.flat[-1] = hi, lo
    return x


def run_tensors(dut, inputs: dict[str, tuple[np.ndarray, int]], outputs: dict[str, tuple[tuple[int, ...], int]],
                stall: float, seed: int) -> tuple[dict[str, np.ndarray], StreamRun]:
    """Send each input batch (tensor, lanes) and collect each output batch (shape, lanes) under random stalls."""
    beats = {name: tensor_to_beats(x, lanes) for name, (x, lanes) in inputs.items()}
    counts = {name: int(np.prod(shape)) // lanes for name, (shape, lanes) in outputs.items()}
    budget = 400 + 12 * (sum(len(b) for b in beats.values()) + sum(counts.values()))
    run = run_streams(dut, beats, counts, stall=stall, seed=seed, max_cycles=budget)
    got = {name: beats_to_tensor(run.outputs[name], shape, lanes) for name, (shape, lanes) in outputs.items()}
    return got, run


def frame_intervals(run: StreamRun, port: str, frames: int) -> np.ndarray:
    """Cycles between the last beats of consecutive frames on ``port`` (the steady-state frame interval)."""
    cycles = run.beat_cycles[port]
    per_frame = len(cycles) // frames
    return np.diff([cycles[(f + 1) * per_frame - 1] for f in range(frames)])
