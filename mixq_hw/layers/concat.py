"""Channel concatenation of two pixel streams: for each pixel, C0/lanes beats from ``i0``, then C1/lanes from ``i1``.

Both inputs have the same height, width, bits and lanes (the Graph's concat
requires equal bits).  The layer is a multiplexer steered by a beat counter:
no storage, no added latency.  Its valid/payload follow the selected input
and that input's ready follows ``o.ready`` (no ready -> valid path).  The
inputs run in lock step pixel by pixel, so a branch that arrives early must be
absorbed by a FIFO upstream, sized from the schedules.  This is the two-input
case of :class:`~mixq_hw.layers.channels.ConcatN`.
"""

from __future__ import annotations


from .channels import ConcatN, ConcatNSpec

__all__ = ["Concat", "ConcatSpec"]


class ConcatSpec(ConcatNSpec):
    """Concatenates a (C0, H, W) and a (C1, H, W) stream along channels into (C0 + C1, H, W), same lanes.

    Ports: ``i0``, ``i1`` and ``o``, all ``stream.Signature(ArrayLayout(unsigned(bits), lanes))``.
    """

    kind = "Concat"

    def __init__(self, channels0: int, channels1: int, height: int, width: int, lanes: int, bits: int, *,
                 name: str = ""):
        ConcatNSpec.__init__(self, (channels0, channels1), height, width, lanes, bits, name=name)


class Concat(ConcatSpec, ConcatN):
    """The hardware of :class:`ConcatSpec` (the same arguments; ConcatN's elaborate)."""


ConcatSpec.component_class = Concat
