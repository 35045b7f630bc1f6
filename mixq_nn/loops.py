"""What search and train share: command-line parsing, DDP set-up, loaders, epochs, metrics, BN calibration.

Both commands run unchanged as a single process or under
``torchrun --nproc_per_node=N`` (gloo on CPU): :func:`distributed` reads
torchrun's environment, :func:`make_loader` shards the training set with a
``DistributedSampler``, metrics are summed over ranks, and only rank 0
prints (:meth:`Distributed.log`) and writes files.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from mixq_hw import validate
from mixq_hw.packing.bits import ACT_BITS
from mixq_hw.progress import bar
from mixq_hw.validate import InputError

from .data import DATASETS, ImageDataset, get_dataset
from .supernet import unwrap

__all__ = [
    "DEFAULT_MODEL", "CommandError", "Distributed", "distributed", "wrap", "unwrap", "seed_everything",
    "configure_threads", "model_info", "parse_bits", "parse_shape", "add_data_args", "load_data",
    "make_loader", "set_epoch", "task_loss", "metric_name", "batch_metric_sum", "evaluate_metric",
    "EpochStats", "train_epoch", "epoch_bar", "calibrate_batchnorm", "run_command", "check_data_args",
    "check_rates",
]


DEFAULT_MODEL = "VGGtiny"


class CommandError(InputError):
    """Bad command-line input: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- distributed


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def log(self, message: str) -> None:
        """Print (flushed) on rank 0 only, above any progress bar."""
        if self.is_main:
            tqdm.write(message, file=sys.stdout)
            sys.stdout.flush()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over all ranks (identity when not distributed)."""
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def distributed() -> Distributed:
    """Join the torchrun process group (gloo backend) when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


def wrap(model: nn.Module, ctx: Distributed) -> nn.Module:
    """DDP-wrap ``model`` when running distributed (CPU, gloo)."""
    if not ctx.enabled:
        return model
    return nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so that a run repeats."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- arguments


def model_info(name: str):
    """The registry entry of model ``name``, or a CommandError listing the known models."""
    from . import models

    if name not in models.MODELS:
        raise CommandError(f"unknown model {name!r}; choose one of {', '.join(models.MODELS)}")
    return models.MODELS[name]


def parse_bits(text: str | Sequence[int], *, model: str, count: int, what: str) -> list[int]:
    """Bit widths 'one digit per layer' ("822222") or comma separated ("8,2,2,2,2,2")."""
    if isinstance(text, str):
        text = text.strip()
        parts = text.split(",") if "," in text else list(text)
        try:
            bits = [int(p) for p in parts]
        except ValueError:
            raise CommandError(f"{what} {text!r}: expected one digit per layer (e.g. 822222) "
                               "or comma-separated integers") from None
    else:
        bits = [int(b) for b in text]
    if len(bits) != count:
        raise CommandError(f"{what} {text!r} gives {len(bits)} bit widths, but {model} has {count} "
                           f"quantised layers: give exactly {count}")
    for b in bits:     # the loosest rule (ACT_BITS); building the model checks each layer's own
        if b not in ACT_BITS:
            raise CommandError(f"{what} {text!r}: bit width {b} is outside {ACT_BITS.start}..{ACT_BITS.stop - 1}")
    return bits


def parse_shape(text: str) -> tuple[int, int, int]:
    """"C,H,W" (or "CxHxW") -> (C, H, W)."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise CommandError(f"--input-shape {text!r}: expected three integers C,H,W (e.g. 3,32,32)") from None
    if len(shape) != 3 or min(shape) < 1:
        raise CommandError(f"--input-shape {text!r}: expected three positive integers C,H,W")
    return shape


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """The model / data / optimisation options search and train share."""
    parser.add_argument("--model", default=None,
                        help="a zoo model (python -m mixq_nn.models lists them; default VGGtiny)")
    parser.add_argument("--dataset", default="digits", choices=DATASETS,
                        help="digits (built in, default), cifar10 / dacsdc (local folder, --data-root) "
                             "or synthetic")
    parser.add_argument("--data-root", default=None, help="folder of the cifar10 batches or dacsdc images")
    parser.add_argument("--input-shape", default=None, type=parse_shape,
                        help="C,H,W input size (default: the model's published size)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use at most this many training (and test) images")
    parser.add_argument("--batch-size", type=int, default=64, help="per process (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data splits, init and order")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")


def check_data_args(args: argparse.Namespace) -> None:
    """The shared data options in range: --limit, --batch-size, --threads, --seed, --data-root."""
    validate.integer(args.limit, "--limit", lo=1, allow_none=True)
    validate.integer(args.batch_size, "--batch-size", lo=1, hi=65_536)
    validate.integer(args.threads, "--threads", lo=1, hi=1024, allow_none=True)
    validate.integer(args.seed, "--seed", lo=0, hi=2**63 - 1)
    if args.input_shape is not None:
        validate.shape(args.input_shape, "--input-shape")
    if args.data_root is not None and not os.path.isdir(args.data_root):
        raise CommandError(f"--data-root {args.data_root}: no such folder")


def check_rates(args: argparse.Namespace, *names: str) -> None:
    """Learning rates and similar options finite; ``--lr``-like options above 0, decays at least 0."""
    for name in names:
        value = getattr(args, name)
        option = "--" + name.replace("_", "-")
        if name in ("lr", "arch_lr"):
            validate.number(value, option, lo=0, lo_open=True, hi=100, allow_none=True)
        else:
            validate.number(value, option, lo=0, hi=100, allow_none=True)


def load_data(args: argparse.Namespace, input_shape: tuple[int, int, int],
              task: str, num_classes: int) -> tuple[ImageDataset, ImageDataset]:
    """The train and test splits named by ``args`` (dataset, data_root, limit, seed)."""
    kwargs = dict(task=task, seed=args.seed, num_classes=num_classes)
    train = get_dataset(args.dataset, "train", input_shape, args.data_root, size=args.limit, **kwargs)
    test = get_dataset(args.dataset, "test", input_shape, args.data_root, size=args.limit, **kwargs)
    return train, test


def make_loader(dataset: ImageDataset, batch_size: int, ctx: Distributed, *, train: bool,
                seed: int = 0) -> DataLoader:
    """Shuffled (seeded, sharded over ranks) batches for training; this rank's slice in order for tests.

    Training drops the last, partial batch when there is at least one whole batch per rank: a batch of a few
    images gives BatchNorm statistics of a few values per channel where maps are small (DiracDeltaNetSmall's
    last stage is 1x1: its 3-image remainder on digits held training at 43 %)."""
    if train:
        drop_last = len(dataset) >= batch_size * ctx.world_size
        if ctx.enabled:
            sampler: DistributedSampler = DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                         shuffle=True, seed=seed, drop_last=False)
            return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last)
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, drop_last=drop_last)
    shard = Subset(dataset, range(ctx.rank, len(dataset), ctx.world_size))
    return DataLoader(shard, batch_size=batch_size, shuffle=False)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Reshuffle a DistributedSampler for ``epoch`` (no-op otherwise)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


# --------------------------------------------------------------------------- loss and metric


def task_loss(task: str) -> nn.Module:
    """Cross entropy for classification; the YOLO-style single-object loss for detection."""
    if task == "classify":
        return nn.CrossEntropyLoss()
    from .detection import DetectionLoss

    return DetectionLoss()


def metric_name(task: str) -> str:
    """"accuracy" (percent) for classification, "mean_iou" (0..1) for detection."""
    return "accuracy" if task == "classify" else "mean_iou"


def batch_metric_sum(output: torch.Tensor, target: torch.Tensor, task: str) -> float:
    """Sum over the batch of the per-sample metric (correct = 100, or IoU)."""
    if task == "classify":
        return 100.0 * float((output.argmax(dim=1) == target).sum())
    from .detection import decode, iou

    return float(iou(decode(output), target).sum())


@torch.no_grad()
def evaluate_metric(model: nn.Module, loader: DataLoader, task: str, ctx: Distributed) -> tuple[float, int]:
    """(metric, samples) of ``model`` in eval mode over the whole test set (summed over ranks)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for images, target in loader:
        output = model(images)
        total += batch_metric_sum(output, target, task)
        count += len(images)
    model.train(was_training)
    total, summed = ctx.sum([total, count])
    return (total / summed if summed else float("nan")), int(summed)


# --------------------------------------------------------------------------- loops


@dataclass
class EpochStats:
    """Mean loss and training metric of one epoch (over all ranks) and its wall time."""

    loss: float
    metric: float
    samples: int
    seconds: float


def train_epoch(model: nn.Module, loader: DataLoader, optimizers: Iterable[torch.optim.Optimizer],
                criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], task: str,
                ctx: Distributed, *, extra_loss: Callable[[], torch.Tensor] | None = None,
                schedulers: Iterable = (), progress: tqdm | None = None) -> EpochStats:
    """One pass over ``loader``: loss = criterion (+ ``extra_loss()``), a step of every optimizer.

    Per-batch ``schedulers`` (e.g. cosine over all steps) step after the optimizers; ``progress``
    (an :func:`epoch_bar`) advances by one per batch.
    """
    optimizers, schedulers = list(optimizers), list(schedulers)
    model.train()
    start = time.perf_counter()
    loss_sum, metric_sum, count = 0.0, 0.0, 0
    for images, target in loader:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        output = model(images)
        loss = criterion(output, target)
        if extra_loss is not None:
            loss = loss + extra_loss()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged: loss {loss.item()} (lower the learning rate)")
        loss.backward()
        for opt in optimizers:
            opt.step()
        for sched in schedulers:
            sched.step()
        with torch.no_grad():
            loss_sum += float(loss) * len(images)
            metric_sum += batch_metric_sum(output.detach(), target, task)
            count += len(images)
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"loss {loss_sum / count:.4f}", refresh=False)
    loss_sum, metric_sum, summed = ctx.sum([loss_sum, metric_sum, count])
    return EpochStats(loss_sum / max(summed, 1), metric_sum / max(summed, 1), int(summed),
                      time.perf_counter() - start)


def epoch_bar(what: str, epochs: int, loader: DataLoader, ctx: Distributed, *, quiet: bool = False) -> tqdm:
    """A progress bar on stderr over every batch of ``epochs`` epochs (rank 0 only), with the ETA of the run."""
    return bar(total=epochs * len(loader), desc=what, unit="batch", quiet=quiet or not ctx.is_main)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, loader: DataLoader, batches: int = 4) -> int:
    """Reset BN running statistics and re-estimate them (cumulative mean) from ``batches`` batches.

    Gives an untrained (``--epochs 0``) model complete, data-consistent BN
    statistics.  Returns the number of images seen.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    seen = 0
    for i, (images, _) in enumerate(loader):
        if i >= batches:
            break
        model(images)
        seen += len(images)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was_training)
    return seen


def configure_threads(threads: int | None) -> None:
    """Set torch's CPU thread count when asked (torchrun already sets OMP_NUM_THREADS=1)."""
    if threads:
        torch.set_num_threads(threads)


def run_command(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main``; turn user errors into one line on stderr and exit status 2."""
    from mixq_hw.graph import GraphError

    from .checkpoint import CheckpointError
    from .data import DataError
    from .export import ExportError

    try:
        return main(argv)
    except (InputError, CheckpointError, DataError, ExportError, GraphError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
