"""Integer requantization: the multiplier, bias and shift that map an accumulator to the next codes.

``choose_requant`` is the one place that turns a float per-channel affine map into the integers the
hardware's requantizer applies; the exporter and the QONNX importer both call it.
"""

from __future__ import annotations

import numpy as np

from mixq_hw.graph import DSP_B_BITS, DSP_P_BITS, inc_port_bits

from .export_values import ExportError

__all__ = ["MAX_SHIFT", "choose_requant"]

#: Largest requant shift tried; 2**(T-1) must itself fit the 48-bit accumulator.
MAX_SHIFT = DSP_P_BITS - 1


def choose_requant(scale: np.ndarray, offset: np.ndarray, acc_bound: int, acc_bits: int,
                   out_bits: int, where: str = "", signed: bool = False,
                   neg_shift: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer ``(inc, bias, T)`` with ``(acc*inc + bias + 2**(T-1)) >> T ~= floor(acc*scale + offset + 1/2)``.

    T is the largest shift keeping inc within the DSP48E2 port that acc leaves free (18 bits; 27 when
    acc_bits <= 18, so acc goes on the 18-bit port) and ``acc*inc + bias + 2**(T-1)`` within 48 signed
    bits for every acc of ``acc_bits`` bits.  inc's relative precision is what limits how often a code
    differs from the float model's (about ``2**(out_bits - inc_bits)`` of the codes near a rounding tie).
    A bias so large that the code saturates for every ``|acc| <= acc_bound`` is clamped to the saturating
    value: the output is unchanged, exactly (``signed``: the codes are two's complement; ``neg_shift``: a
    LeakyReLU of slope ``2**-neg_shift`` divides the negative side, which then saturates that much later).
    """
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset))):
        raise ExportError(f"{where}: non-finite requantization multiplier or offset "
                          f"(BatchNorm running_var <= -eps or a NaN parameter?)")
    qmax = 2 ** (out_bits - 1) - 1 if signed else 2 ** out_bits - 1
    qneg = 2 ** (out_bits - 1 + neg_shift) if signed else 0
    inc_limit = 2 ** ((inc_port_bits(acc_bits) or DSP_B_BITS) - 1) - 1
    for shift in range(MAX_SHIFT, 0, -1):
        inc_f = np.floor(scale * 2.0 ** shift + 0.5)
        if np.abs(inc_f).max() > inc_limit:
            continue
        inc = inc_f.astype(np.int64)
        reach = acc_bound * np.abs(inc).astype(np.float64)
        bias_f = np.clip(np.floor(offset * 2.0 ** shift + 0.5), -reach - qneg * 2.0 ** shift,
                         reach + qmax * 2.0 ** shift)
        bias = bias_f.astype(np.int64)
        worst = 2 ** (acc_bits - 1) * int(np.abs(inc).max()) + int(np.abs(bias).max()) + 2 ** (shift - 1)
        if worst <= 2 ** (DSP_P_BITS - 1) - 1:
            return inc, bias, shift
    raise ExportError(f"{where}: no requantization shift fits 48 bits (max multiplier "
                      f"{float(np.abs(scale).max()):.3g}, max offset {float(np.abs(offset).max()):.3g})")
