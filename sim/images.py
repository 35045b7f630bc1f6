"""The images a verification runs on: test images of the checkpoint's data set, else seeded random pixels."""

from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

from mixq_hw.graph import Graph

__all__ = ["verification_images"]


def verification_images(graph: Graph, data: Mapping[str, Any] | None, count: int, *,
                        seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """``count`` uint8 (N, C, H, W) images for ``graph`` and a record of which ones they are.

    ``data``: what the checkpoint says about its data set (``dataset``, ``data_root``, ``seed``, ``task``;
    :attr:`mixq_nn.checkpoint.Checkpoint.data`), None for a graph without one.  With a data set: its first
    ``count`` test images (``{"dataset", "split": "test", "indices"}``); without one, or when the data set
    cannot be read here (a warning on stderr says why): seeded random pixels (``{"random_pixels": True,
    "seed"}``).  Either record has ``"text"``, a one-line description for reports.
    """
    c, h, w = graph.input_shape
    name = (data or {}).get("dataset")
    why = "the checkpoint names no data set"
    if name:
        from mixq_nn.data import get_images_uint8

        try:
            images = get_images_uint8(name, "test", (c, h, w), (data or {}).get("data_root"), count=count,
                                      task=(data or {}).get("task") or "classify",
                                      seed=int((data or {}).get("seed") or 0))
        except Exception as exc:  # noqa: BLE001 - a data set may need a folder this machine lacks
            why = f"no {name} images here ({exc})"
            print(f"[verify] {why}; verifying on random pixels (seed {seed})", file=sys.stderr)
        else:
            if len(images) >= count:
                last = f"-{count - 1}" if count > 1 else ""
                return images, {"dataset": str(name), "split": "test", "indices": list(range(count)),
                                "text": f"{name} test images 0{last}"}
            why = f"the {name} test split has only {len(images)} images"
            print(f"[verify] {why}; verifying on random pixels (seed {seed})", file=sys.stderr)
    images = np.random.default_rng(seed).integers(0, 256, (count, c, h, w)).astype(np.uint8)
    return images, {"random_pixels": True, "seed": int(seed), "text": f"random pixels, seed {seed} ({why})"}
