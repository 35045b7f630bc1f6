"""The multiplier geometry packing plans are laid out for: one :class:`DspGeometry` per DSP family.

:data:`DSP48E2_GEOMETRY` (AMD UltraScale/UltraScale+) is the only instance the cores implement; the
planner's layout search takes a geometry as a parameter so that other DSP families can follow.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DspGeometry", "DSP48E2_GEOMETRY", "DEPTH_LIMIT"]


@dataclass(frozen=True)
class DspGeometry:
    """Port widths of one DSP multiplier family.

    ``ad_bits``: signed width of the pre-adder output / wide multiplier input (A:D side);
    ``b_bits``: signed width of the narrow multiplier input; ``product_bits``: the product's width;
    ``p_bits``: the accumulator (P register / post-adder), which wraps modulo ``2**p_bits``;
    ``a_port_bits``: the physical A input (the multiplier reads its low ``ad_bits``).
    """

    name: str
    ad_bits: int
    b_bits: int
    product_bits: int
    p_bits: int
    a_port_bits: int


#: The DSP48E2 (UG579): 27-bit pre-adder D +- A into a 27 x 18 signed multiplier, 45-bit product, 48-bit P.
DSP48E2_GEOMETRY = DspGeometry("DSP48E2", ad_bits=27, b_bits=18, product_bits=45, p_bits=48, a_port_bits=30)

#: The longest accumulation (multiplies into one field before extraction) the planner searches for and
#: reports: a layout that holds more reports this depth.  3x3x512 = 4608 MACs per output is the longest
#: accumulation in the target networks, so every depth past it is equally good.
DEPTH_LIMIT = 1 << 20
