"""The op registry and one module per Graph op (see :mod:`mixq_hw.ops.registry`).

Importing this package registers every op, in this order: input, conv, linear, requant, output, maxpool,
reorg, concat, upsample, shift, shuffle, slice, avgpool, add, rescale.
"""

from . import input  # noqa: F401  (each import registers its op)
from . import conv  # noqa: F401
from . import linear  # noqa: F401
from . import requant  # noqa: F401
from . import output  # noqa: F401
from . import maxpool  # noqa: F401
from . import reorg  # noqa: F401
from . import concat  # noqa: F401
from . import upsample  # noqa: F401
from . import shift  # noqa: F401
from . import shuffle  # noqa: F401
from . import slice  # noqa: F401
from . import avgpool  # noqa: F401
from . import add  # noqa: F401
from . import rescale  # noqa: F401
from .registry import ExportMatch, NoHardwareError, OpDef, op_def, register, registered

__all__ = ["OpDef", "ExportMatch", "NoHardwareError", "register", "op_def", "registered"]
