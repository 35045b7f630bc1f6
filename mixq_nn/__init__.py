"""mixq_nn: DSP-aware mixed-precision search, quantization-aware training and export to the integer Graph.

What a notebook needs, importable from here (loaded on first use):

- :func:`build_model` (the zoo, ``MODELS``), :class:`QConv2d`, :class:`QLinear` -- mixq models
  and the quantised layers to write your own;
- :func:`export_graph` -- an in-memory fixed-precision model to the integer
  :class:`mixq_hw.graph.Graph` (the function :func:`mixq_nn.export.export`); :class:`ExportError`;
- :func:`load_checkpoint` / :func:`save_checkpoint` (:mod:`mixq_nn.checkpoint`), :class:`Checkpoint`;
- :func:`get_dataset`, :func:`get_images_uint8` -- the data sets, as tensors or as uint8 pixels;
- :func:`evaluate_checkpoint` -- the fake-quant model and its integer Graph side by side;
- :func:`dsp_cost` -- DSP48E2-cycles per frame of a model's bit widths;
- :func:`calibrate_random` -- realistic BN ranges for a random-weight model (hardware work without data);
- :func:`import_qonnx` -- a QONNX model (as Brevitas exports it) to the integer Graph;
  :func:`save_qonnx` / :func:`to_qonnx` -- the Graph as QONNX (:mod:`mixq_nn.qonnx_import`, ``qonnx_export``).

The commands (``python -m mixq_nn.search``, ``.train``, ``.evaluate``, ``.export``, ``.models``,
``.prune``) are the same functions behind argparse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mixq_hw.lazy import lazy_exports
from mixq_hw.version import __version__

if TYPE_CHECKING:
    from .calibrate import calibrate_random
    from .checkpoint import Checkpoint, CheckpointError
    from .checkpoint import load as load_checkpoint
    from .checkpoint import save as save_checkpoint
    from .cost import dsp_cost
    from .data import get_dataset, get_images_uint8
    from .evaluate import evaluate_checkpoint
    from .export import ExportError
    from .export import export as export_graph
    from .layers import QConv2d, QLinear
    from .models import MODELS
    from .models import build as build_model
    from .qonnx_export import save_qonnx, to_qonnx
    from .qonnx_import import QonnxImportError, import_qonnx

#: public name -> (module relative to this package, name there)
_EXPORTS: dict[str, str | tuple[str, str]] = {
    "build_model": (".models", "build"), "MODELS": (".models", "MODELS"),
    "QConv2d": (".layers", "QConv2d"), "QLinear": (".layers", "QLinear"),
    "export_graph": (".export", "export"), "ExportError": (".export", "ExportError"),
    "load_checkpoint": (".checkpoint", "load"), "save_checkpoint": (".checkpoint", "save"),
    "Checkpoint": (".checkpoint", "Checkpoint"), "CheckpointError": (".checkpoint", "CheckpointError"),
    "get_dataset": (".data", "get_dataset"), "get_images_uint8": (".data", "get_images_uint8"),
    "evaluate_checkpoint": (".evaluate", "evaluate_checkpoint"),
    "dsp_cost": (".cost", "dsp_cost"),
    "calibrate_random": (".calibrate", "calibrate_random"),
    "import_qonnx": ".qonnx_import", "QonnxImportError": ".qonnx_import",
    "save_qonnx": ".qonnx_export", "to_qonnx": ".qonnx_export",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
