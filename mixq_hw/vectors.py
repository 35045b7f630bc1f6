"""The build's test vectors: the images it ships and the outputs the integer graph gives for them.

``vectors/test_vectors.npz`` holds ``images`` ((N, C, H, W) uint8), ``expected``
(int64, :meth:`~mixq_hw.graph.Graph.reference` of the images: what the
accelerator must output, bit for bit) and ``scale`` (float64 per output channel,
``expected * scale`` is the dequantized output).  The generated cocotb
testbench (:mod:`mixq_hw.testbench`) and the host driver's validation read it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .graph import Graph

__all__ = ["VECTORS_FILE", "write_test_vectors", "read_test_vectors"]

#: Where a build folder keeps its test vectors.
VECTORS_FILE = Path("vectors") / "test_vectors.npz"


def write_test_vectors(path: str | os.PathLike, graph: Graph, images: np.ndarray) -> Path:
    """Write ``images`` and ``graph.reference(images)`` (with the output ``scale``) to the .npz ``path``,
    atomically (a temporary file renamed into place); returns the path."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != tuple(graph.input_shape):
        raise ValueError(f"test vectors of graph {graph.name!r}: images must be uint8 (N, "
                         f"{', '.join(map(str, graph.input_shape))}), got {images.dtype} {images.shape}")
    expected = np.asarray(graph.reference(images), dtype=np.int64)
    scale = np.asarray(graph.output_node.tensors["scale"], dtype=np.float64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, images=images, expected=expected, scale=scale)
    os.replace(tmp, path)
    return path


def read_test_vectors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``images``, ``expected`` and ``scale`` of a test-vector file, checked for consistent shapes."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            found = {key: data[key] for key in ("images", "expected", "scale")}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a mixq test-vector file ({exc})") from None
    if found["images"].ndim != 4 or len(found["images"]) != len(found["expected"]):
        raise ValueError(f"{path}: {len(found['images'])} images but {len(found['expected'])} expected outputs")
    return found
