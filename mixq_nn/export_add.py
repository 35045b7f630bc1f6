"""Export of the zoo's quantised residual add (:class:`~mixq_nn.ops_layers.QAdd`) to ``add`` nodes.

``QAdd`` computes ``Qout(Qa(a) + Qb(b))``: each branch is made into codes by its own quantiser, and the
branches are aligned in integers at export: ``m0 / 2**shift`` and ``m1 / 2**shift`` are the branch steps
in units of the output step (exact for dyadic ratios, otherwise a rounding differs only at near ties, as
for a requant).  A consumer whose quantiser is ``Qout`` (or a ReLU then an unsigned quantiser of the same
step and no wider range) reads the add's codes directly; another consumer reads them re-scaled to its own
step by a ``rescale`` node (``m / 2**shift`` the ratio of the steps); a LeakyReLU after the add is that
rescale's ``neg_shift`` (the slope before its rounding, as the fake-quantised model rounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .export_values import Quant

__all__ = ["AddValue", "align", "export_add"]

#: the larger multiplier of an alignment lies in [2**(ALIGN_BITS-1), 2**ALIGN_BITS) unless shift is 0
ALIGN_BITS = 12


def align(ratios: tuple[float, ...]) -> tuple[list[int], int]:
    """Integer multipliers and a shift with ``m / 2**shift ~= ratio`` for each ratio (ValueError for a
    non-positive or non-finite ratio)."""
    if not all(math.isfinite(r) and r > 0 for r in ratios):
        raise ValueError(f"step ratios {ratios} must be positive and finite")
    top = max(ratios)
    shift = max(0, ALIGN_BITS - 1 - math.floor(math.log2(top)))
    return [int(math.floor(r * 2 ** shift + 0.5)) for r in ratios], shift


def _range(q: Any) -> tuple[int, int]:
    return (-(1 << (q.bits - 1)), (1 << (q.bits - 1)) - 1) if q.signed else (0, (1 << q.bits) - 1)


@dataclass(eq=False)
class AddValue:
    """A QAdd's output over the Graph: the codes of its two branches and the quantisers involved."""

    name: str
    srcs: tuple[str, str]
    quants: tuple[Quant, Quant]     # the branches' quantisers
    out: Quant                      # Qout's quantiser
    where: str

    def codes(self, exporter: Any, q: Any, consumer: str, *, neg_shift: int | None = None) -> str:
        """The node holding this sum quantised by consumer quantiser ``q`` (ValueError when it cannot be);
        ``neg_shift``: through a LeakyReLU of slope ``2**-neg_shift`` first (``q`` signed), which the rescale
        applies to Qout's codes."""
        if q.kind != "act":
            raise ValueError(f"{self.where}: its consumer {consumer!r} quantises it as the input image")
        graph = exporter.graph
        (m0, m1), shift = align((self.quants[0].step / self.out.step, self.quants[1].step / self.out.step))
        lo, hi = _range(self.out)
        attrs = {"m0": m0, "m1": m1, "shift": shift, "out_bits": self.out.bits, "out_signed": self.out.signed}
        qlo, qhi = _range(q)
        if neg_shift is None and q.step == self.out.step and lo <= qlo and qhi <= hi:
            # the consumer's range lies inside Qout's: its clip is the add's
            attrs.update(out_bits=q.bits, out_signed=q.signed)
            return graph.add("add", graph.unique_name(self.name), list(self.srcs), attrs)
        total = exporter.codes(self, self.out, consumer)
        (m,), rshift = align((self.out.step / q.step,))
        leaky = {} if neg_shift is None else {"neg_shift": neg_shift}
        return graph.add("rescale", graph.unique_name(f"{self.name}.rescale"), [total],
                         {"m": m, "shift": rshift, "out_bits": q.bits, "out_signed": q.signed, **leaky})


def export_add(exporter: Any, name: str, module: Any, xs: tuple[Any, Any], where: str) -> AddValue:
    """The AddValue of QAdd ``module`` of symbolic branches ``xs``: their codes are made here, each by its
    branch quantiser (``exporter.act_quant`` makes a Quant; ``exporter.codes`` the code nodes)."""
    if module.bits is None:
        raise ValueError(f"{where}: a float residual add (bits=None) has no integer form; export a "
                         f"fixed-precision model")
    quants = (exporter.act_quant(module.quant_a, where), exporter.act_quant(module.quant_b, where))
    srcs = (exporter.codes(xs[0], quants[0], name), exporter.codes(xs[1], quants[1], name))
    return AddValue(name, srcs, quants, exporter.act_quant(module.quant_out, where), where)
