"""The integer Graph: the network as exact integer ops, and their numpy reference semantics.

Export (``mixq_nn.export``) produces a :class:`Graph`; the hardware elaborates
it; :meth:`Graph.reference` is the bit-exact golden model.  Numpy only: reading
a graph never needs torch.  The per-op numpy functions live in
:mod:`mixq_hw.graph.ops` (``graph.ops.conv2d_int``, ``graph.ops.requant`` ...)
so that hardware tests can check one layer at a time.
"""

from . import ops
from .checks import (DSP_A_BITS, DSP_B_BITS, DSP_P_BITS, GraphError, Node, ValueInfo, inc_port_bits,
                     requant_fits_dsp48)
from .core import Graph, fan_in
from .fileio import FORMAT, VERSION

__all__ = ["Graph", "Node", "ValueInfo", "GraphError", "ops", "FORMAT", "VERSION",
           "fan_in", "requant_fits_dsp48", "inc_port_bits", "DSP_A_BITS", "DSP_B_BITS", "DSP_P_BITS"]
