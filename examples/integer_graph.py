"""Evaluate the integer Graph: the golden model of the hardware, its per-layer trace, and the float model beside it.

    python examples/integer_graph.py                    # the shipped VGG-tiny, 100 test images
    python examples/integer_graph.py weights.pt --images 450

``Graph.reference(pixels)`` runs the exported network in int64 numpy exactly as the accelerator
does (hls4ml calls this ``predict``); ``Graph.reference(pixels, keep=True)`` returns every node's
tensor by name (hls4ml's ``trace``), the values a layer-by-layer hardware check compares against.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import mixq_hw
import mixq_nn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?", default=None,
                        help="fixed-precision mixq checkpoint (default: the shipped VGG-tiny on digits)")
    parser.add_argument("--images", type=int, default=100, help="test images (default 100)")
    args = parser.parse_args(argv)

    ckpt = mixq_nn.load_checkpoint(args.checkpoint or mixq_hw.default_checkpoint())
    graph = mixq_nn.export_graph(ckpt.model, ckpt.input_shape, name=ckpt.name)
    print(graph.summary())

    # the graph is a file of its own: numpy only, no torch needed to read and run it
    with tempfile.TemporaryDirectory() as tmp:
        graph.save(Path(tmp) / "model.npz")
        graph = mixq_hw.Graph.load(Path(tmp) / "model.npz")

    dataset = ckpt.meta.get("dataset") or "digits"
    pixels = mixq_nn.get_images_uint8(dataset, "test", ckpt.input_shape, count=args.images)   # uint8 (N, C, H, W)
    labels = mixq_nn.get_dataset(dataset, "test", ckpt.input_shape, size=args.images).targets.numpy()

    logits_int = graph.reference(pixels)                       # (N, classes, 1, 1) int64: acc + bias
    scale = graph.output_node.tensors["scale"].reshape(1, -1, 1, 1)
    predicted = logits_int.reshape(len(pixels), -1).argmax(1)
    with torch.no_grad():
        logits_float = ckpt.model(torch.from_numpy(pixels).float() / 256).numpy()   # the model sees pixel / 256
    print(f"integer graph accuracy {100 * np.mean(predicted == labels):.2f} %, "
          f"fake-quant model {100 * np.mean(logits_float.argmax(1) == labels):.2f} % on {len(pixels)} images; "
          f"same prediction on {100 * np.mean(predicted == logits_float.argmax(1)):.2f} %")
    print(f"largest |dequantised integer - float| logit: "
          f"{np.abs(logits_int * scale - logits_float.reshape(logits_int.shape)).max():.4f}")

    trace = graph.reference(pixels[:2], keep=True)             # every node's tensor, by name
    print(f"{'node':<24}{'op':<10}{'shape':<20}{'min':>10}{'max':>10}")
    for node in graph:
        value = trace[node.name]
        print(f"{node.name:<24}{node.op:<10}{str(value.shape[1:]):<20}{value.min():>10}{value.max():>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
