"""The stall generator of every backend: xorshift64, as ``stream_loop.h`` has it in C++.

Each stream gets its own generator, seeded from the run's seed and the port's place (inputs
``seed * 1000 + k``, outputs ``seed * 1000 + 500 + k``), so Amaranth's simulator, CXXRTL and Verilator
withhold valid and drop ready on the same cycles and agree cycle for cycle.
"""

from __future__ import annotations

__all__ = ["StallRng", "input_seed", "output_seed"]

_MASK = (1 << 64) - 1


def input_seed(seed: int, index: int) -> int:
    """Seed of the stall generator of input stream ``index``."""
    return seed * 1000 + index


def output_seed(seed: int, index: int) -> int:
    """Seed of the stall generator of output stream ``index``."""
    return seed * 1000 + 500 + index


class StallRng:
    """xorshift64 behind a multiplicative seed hash; ``random()`` in [0, 1) like :class:`random.Random`'s."""

    def __init__(self, seed: int) -> None:
        self.state = (seed * 0x9E3779B97F4A7C15 + 0x2545F4914F6CDD1D) & _MASK

    def next(self) -> int:
        """The next 64-bit output."""
        s = self.state
        s ^= (s << 13) & _MASK
        s ^= s >> 7
        s ^= (s << 17) & _MASK
        self.state = s
        return s

    def random(self) -> float:
        """The next value in [0, 1): the top 53 bits of :meth:`next`."""
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)
