"""Evaluate a trained checkpoint twice: the fake-quantised PyTorch model and its exported integer Graph.

    python -m mixq_nn.evaluate weights.pt [--json]

Both run on the same test images (the float model on ``pixel / 256``, the
Graph's int64 ``reference`` on the 8-bit pixels); the metric is accuracy in
percent for classification and mean IoU (0..1) for detection.  The two
agreeing closely is the integer contract at work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint, loops
from .data import DATASETS, get_dataset
from .loops import CommandError

__all__ = ["main", "build_parser", "evaluate_checkpoint", "integer_outputs"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_nn.evaluate",
        description="Metric of the fake-quant model and of its integer Graph side by side.")
    parser.add_argument("checkpoint", help="a trained (fixed-precision) mixq checkpoint")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="default: the data set the checkpoint was trained on (else digits)")
    parser.add_argument("--data-root", default=None, help="folder of the cifar10 batches or dacsdc images")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--limit", type=int, default=None, help="evaluate at most this many images")
    parser.add_argument("--seed", type=int, default=None,
                        help="data split seed (default: the checkpoint's training seed)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--save-graph", default=None, metavar="PATH", help="also write the exported Graph")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def integer_outputs(graph: Any, pixels: np.ndarray, batch_size: int = 100) -> torch.Tensor:
    """The Graph's reference outputs, dequantised (``(acc + bias) * scale``) as float64 ``(N, C, H, W)``."""
    scale = np.asarray(graph.output_node.tensors["scale"], dtype=np.float64)
    outs = []
    for start in range(0, len(pixels), batch_size):
        acc = graph.reference(pixels[start:start + batch_size])
        outs.append(acc.astype(np.float64) * scale.reshape(1, -1, 1, 1))
    return torch.from_numpy(np.concatenate(outs))


def _as_model_output(out: torch.Tensor, task: str) -> torch.Tensor:
    """Classification graphs end in (N, classes, 1, 1): flatten them like the model's (N, classes)."""
    return out.flatten(1) if task == "classify" else out


def evaluate_checkpoint(path: str, *, dataset: str | None = None, data_root: str | None = None,
                        split: str = "test", limit: int | None = None, seed: int | None = None,
                        batch_size: int = 100, save_graph: str | None = None) -> dict[str, Any]:
    """Float (fake-quant) and integer-graph metric of checkpoint ``path`` on the same images."""
    from .export import export

    ckpt = checkpoint.load(path)
    if ckpt.variant != "fixed":
        raise CommandError(f"{path}: a {ckpt.variant} checkpoint; evaluate a trained one "
                           f"(python -m mixq_nn.train --from-search {path})")
    data_info = ckpt.meta.get("extra", {}).get("data", {})
    dataset = dataset or data_info.get("dataset", "digits")
    data_root = data_root or data_info.get("data_root")
    seed = seed if seed is not None else int(data_info.get("seed", 0))
    info = loops.model_info(ckpt.name)
    data = get_dataset(dataset, split, ckpt.input_shape, data_root, task=ckpt.task, seed=seed, size=limit,
                       num_classes=info.num_outputs)
    assert ckpt.model is not None           # load() builds the model unless told not to
    model = ckpt.model.eval()
    graph = export(model, ckpt.input_shape, name=ckpt.name)
    if save_graph:
        graph.save(save_graph)
    n = len(data)
    float_sum = int_sum = agreement = 0.0
    for start in range(0, n, batch_size):  # in batches: a DAC-SDC split does not fit in memory at once
        index = range(start, min(start + batch_size, n))
        pixels = np.stack([data.image_uint8(i).numpy() for i in index])
        targets = torch.stack([data.target(i) for i in index])
        with torch.no_grad():
            float_out = model(torch.from_numpy(pixels).float() / 256)
        int_out = _as_model_output(integer_outputs(graph, pixels, batch_size), ckpt.task).to(torch.float32)
        float_sum += loops.batch_metric_sum(float_out, targets, ckpt.task)
        int_sum += loops.batch_metric_sum(int_out, targets, ckpt.task)
        if ckpt.task == "classify":
            agreement += float((float_out.argmax(1) == int_out.argmax(1)).sum())
        else:
            from .detection import decode, iou

            agreement += float(iou(decode(float_out), decode(int_out)).sum())
    result: dict[str, Any] = {
        "checkpoint": str(path), "model": ckpt.name, "bitw": ckpt.bitw, "bita": ckpt.bita,
        "input_shape": list(ckpt.input_shape), "dataset": dataset, "split": split,
        "metric": loops.metric_name(ckpt.task), "samples": n,
        "float_metric": float_sum / n, "integer_metric": int_sum / n,
    }
    if ckpt.task == "classify":
        result["prediction_agreement"] = 100.0 * agreement / n
    else:
        result["box_agreement_iou"] = agreement / n
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad options or inputs: ``error: ...`` on stderr and status 2, before any work."""
    return loops.run_command(_run, argv)


def _run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mixq_hw import validate

    validate.input_file(args.checkpoint, "checkpoint", suffixes=(".pt", ".pth"))
    validate.integer(args.limit, "--limit", lo=1, allow_none=True)
    validate.integer(args.batch_size, "--batch-size", lo=1, hi=65_536)
    validate.integer(args.seed, "--seed", lo=0, allow_none=True)
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise CommandError(f"--data-root {args.data_root}: no such folder")
    if args.save_graph:
        validate.output_file(args.save_graph, "--save-graph")
    result = evaluate_checkpoint(args.checkpoint, dataset=args.dataset, data_root=args.data_root,
                                 split=args.split, limit=args.limit, seed=args.seed,
                                 batch_size=args.batch_size, save_graph=args.save_graph)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    unit = "%" if result["metric"] == "accuracy" else ""
    print(f"{result['model']} bitw {''.join(map(str, result['bitw']))} bita "
          f"{''.join(map(str, result['bita']))} on {result['dataset']} {result['split']} "
          f"({result['samples']} images)")
    print(f"  {result['metric']:<12} fake-quant model  {result['float_metric']:.4f}{unit}")
    print(f"  {result['metric']:<12} integer graph     {result['integer_metric']:.4f}{unit}")
    if "prediction_agreement" in result:
        print(f"  predictions identical on {result['prediction_agreement']:.2f}% of the images")
    else:
        print(f"  mean IoU between the two models' boxes {result['box_agreement_iou']:.4f}")
    if args.save_graph:
        print(f"wrote {args.save_graph}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
