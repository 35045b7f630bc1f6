"""Bit-width rules and integer code ranges, the one home of these facts (pure Python, no dependencies).

Both halves import it: ``mixq_nn`` (quantizers, cost model) and ``mixq_hw`` (graph checks, packing
planner, layers), so the widths a network may use and the codes a width holds have one answer.

- weights are signed narrow-range codes ``-(2**(w-1)-1) .. 2**(w-1)-1`` (:func:`weight_range`);
- activations are unsigned codes ``0 .. 2**a-1`` (:func:`act_range`), or signed two's-complement
  codes ``-2**(a-1) .. 2**(a-1)-1`` after a LeakyReLU or a residual add (:func:`signed_act_range`);
- a conv/linear layer's ``w_bits`` / ``a_bits`` may be :data:`WEIGHT_BITS` / :data:`ACT_BITS`: what the
  conv engine builds, and what the quantizers have step tables for; the graph validates the same ranges,
  so a width the hardware cannot build is refused where the layer is defined.  The DSP packing planner
  plans :data:`PACKED_BITS` weights and activations (a 1-bit activation runs on LUT multipliers only);
  :func:`~mixq_hw.packing.lut_layout.lut_plan` takes up to :data:`LUT_MAX_BITS`;
- a LeakyReLU requant's negative slope is ``2**-k`` for ``k`` in :data:`NEG_SHIFTS`;
- the accelerator emits the last layer's ``acc + bias`` as :data:`OUTPUT_BITS`-bit signed integers.
"""

from __future__ import annotations

__all__ = ["PACKED_BITS", "WEIGHT_BITS", "ACT_BITS", "INPUT_BITS", "LUT_MAX_BITS", "OUTPUT_BITS",
           "weight_max", "weight_range", "act_range", "signed_range", "signed_act_range", "act_codes",
           "act_magnitude", "signed_width", "signed_bits", "check_bits", "NEG_SHIFTS"]

#: Weight and activation widths the packing planner plans DSP layouts for (its table's rows and columns).
PACKED_BITS = range(2, 9)
#: Legal weight widths of a conv/linear layer (the conv engine's; the graph validates them).
WEIGHT_BITS = range(2, 9)
#: Legal input activation widths of a conv/linear layer (the conv engine's; 1 bit only on LUT multipliers).
ACT_BITS = range(1, 9)
#: Legal widths of the input quantizer (the top bits of an 8-bit pixel).
INPUT_BITS = range(1, 9)
#: Widest weight or activation code a LUT multiplier takes.
LUT_MAX_BITS = 16
#: Width of the accelerator's output words: the last layer's ``acc + bias`` as signed integers.
OUTPUT_BITS = 32
#: Legal ``neg_shift`` values of a LeakyReLU requant (``mixq_hw.graph.ops.leaky_shift``): slope ``2**-neg_shift``.
NEG_SHIFTS = range(1, 32)


def weight_max(w_bits: int) -> int:
    """Largest narrow-range weight magnitude of ``w_bits`` bits: ``2**(w_bits-1) - 1``."""
    return (1 << (int(w_bits) - 1)) - 1


def weight_range(w_bits: int) -> tuple[int, int]:
    """Narrow-range signed weight codes of ``w_bits`` bits: ``(-(2**(w-1)-1), 2**(w-1)-1)``."""
    m = weight_max(w_bits)
    return -m, m


def act_range(a_bits: int) -> tuple[int, int]:
    """Unsigned activation codes of ``a_bits`` bits: ``(0, 2**a-1)``."""
    return 0, (1 << a_bits) - 1


def signed_range(bits: int) -> tuple[int, int]:
    """Every value of a ``bits``-bit two's-complement word: ``(-2**(bits-1), 2**(bits-1)-1)``."""
    return -(1 << (int(bits) - 1)), (1 << (int(bits) - 1)) - 1


def signed_act_range(a_bits: int) -> tuple[int, int]:
    """Signed two's-complement activation codes of ``a_bits`` bits: ``(-2**(a-1), 2**(a-1)-1)``."""
    return signed_range(a_bits)


def act_codes(a_bits: int, signed_act: bool = False) -> tuple[int, int]:
    """Activation codes of ``a_bits`` bits: :func:`signed_act_range` if ``signed_act``, else :func:`act_range`."""
    return signed_act_range(a_bits) if signed_act else act_range(a_bits)


def act_magnitude(a_bits: int, signed_act: bool = False) -> int:
    """Largest activation magnitude: ``2**(a-1)`` for signed codes (the two's-complement minimum), ``2**a - 1``
    for unsigned ones; a product bound is ``max|w| * act_magnitude``."""
    lo, hi = act_codes(a_bits, signed_act)
    return max(-lo, hi)


def signed_width(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in ``[lo, hi]`` (at least 1)."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"signed_width: empty range [{lo}, {hi}]")
    return max(1, hi.bit_length() + 1 if hi > 0 else 1, (-lo - 1).bit_length() + 1 if lo < 0 else 1)


def signed_bits(bound: int) -> int:
    """Bits of a signed value that holds every integer in ``-bound .. bound`` (``bound < 0`` counts as 0)."""
    return max(int(bound), 0).bit_length() + 1


def check_bits(what: str, bits: object, allowed: range) -> int:
    """``bits`` as an int if it is one of ``allowed``, else a ValueError naming ``what`` and the legal range."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in allowed:
        raise ValueError(f"{what}: {bits!r} bits, must be an integer in {allowed.start}..{allowed.stop - 1}")
    return bits
