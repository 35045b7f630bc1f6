"""Quantization-aware training: ``python -m mixq_nn.train --model VGGtiny --bitw 822222 --bita 833363``.

Trains the fixed-precision model (every layer's weights and input activations
fake-quantised exactly as the integer contract says) and writes a self-describing
checkpoint (:mod:`mixq_nn.checkpoint`).  Bit widths come from ``--bitw/--bita``,
from a search checkpoint (``--from-search``, whose supernet weights also
initialise the model unless ``--scratch``), or from the model's preset.
``--epochs 0`` writes an untrained but complete checkpoint whose BN statistics
are calibrated on a few batches.  Runs unchanged under torchrun.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch

from . import checkpoint, loops
from .loops import CommandError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_nn.train",
        description="Quantization-aware training of a fixed-precision zoo model; writes a mixq "
                    "checkpoint. Runs unchanged under torchrun.")
    loops.add_data_args(parser)
    parser.add_argument("--bitw", default=None,
                        help="weight bits, one digit per quantised layer (e.g. 822222) or comma separated")
    parser.add_argument("--bita", default=None,
                        help="input/activation bits per quantised layer (first = input pixel bits)")
    parser.add_argument("--from-search", default=None, metavar="CKPT",
                        help="take model, bit widths, quantiser modes (and initial weights) from a "
                             "search checkpoint")
    parser.add_argument("--scratch", action="store_true",
                        help="with --from-search: do not copy the supernet's weights")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (default 6; 0: calibrate BN only)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default 0.05 for sgd, 2e-3 for adam), cosine decay")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="adam", help="default adam")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="default 1e-4")
    parser.add_argument("--weight-mode", choices=("std", "lsq"), default=None,
                        help="weight quantiser (default: the model's, std except TinyYOLOv3's lsq; or the "
                             "search checkpoint's)")
    parser.add_argument("--act-mode", choices=("hwgq", "lsq", "pact"), default=None,
                        help="activation quantiser (default: the model's, hwgq except TinyYOLOv3's lsq; or "
                             "the search checkpoint's)")
    parser.add_argument("--calibration-batches", type=int, default=None,
                        help="batches that set the BN statistics when --epochs 0 (default 4)")
    parser.add_argument("--half-weights", action="store_true",
                        help="round conv/linear weights to float16 before the final test and store them "
                             "so (half the file size; the file holds exactly the model measured)")
    parser.add_argument("--out", default="weights.pt", help="checkpoint to write (default weights.pt)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar (epoch lines still print)")
    return parser


def _resolve(args: argparse.Namespace) -> tuple[str, list[int], list[int], dict[str, Any], Any]:
    """Model name, bit widths, build options and the search checkpoint (or None) the options ask for."""
    search = None
    name = args.model or loops.DEFAULT_MODEL
    modes = dict(loops.model_info(name).default_modes)
    if args.from_search:
        search = checkpoint.load(args.from_search, build=not args.scratch)
        if search.variant != "supernet":
            raise CommandError(f"--from-search {args.from_search}: a {search.variant} checkpoint, "
                               "expected a search (supernet) checkpoint from python -m mixq_nn.search")
        if args.model is not None and args.model != search.name:
            raise CommandError(f"--model {args.model} but --from-search {args.from_search} searched "
                               f"{search.name}")
        name = search.name
        modes = dict(loops.model_info(name).default_modes)
        for key in modes:
            modes[key] = search.model_args.get(key, modes[key])
    for key in modes:
        if getattr(args, key) is not None:
            modes[key] = getattr(args, key)
    info = loops.model_info(name)
    if args.bitw is not None:
        bitw = loops.parse_bits(args.bitw, model=name, count=info.num_qlayers, what="--bitw")
    else:
        bitw = list(search.bitw) if search else list(info.default_bitw)
    if args.bita is not None:
        bita = loops.parse_bits(args.bita, model=name, count=info.num_qlayers, what="--bita")
    else:
        bita = list(search.bita) if search else list(info.default_bita)
    return name, bitw, bita, modes, search


def _search_summary(path: str | None, search: Any) -> dict[str, Any] | None:
    """What the trained checkpoint keeps of the search it came from."""
    if search is None:
        return None
    settings = search.meta.get("extra", {}).get("settings", {})
    return {"path": str(path), "bitw": search.bitw, "bita": search.bita, "metrics": search.metrics,
            "cd": settings.get("cd"), "epochs": settings.get("epochs"), "created": search.meta.get("created")}


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad options or inputs: ``error: ...`` on stderr and status 2, before any work."""
    return loops.run_command(_run, argv)


def _run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mixq_hw import validate

    from . import models

    validate.integer(args.epochs, "--epochs", lo=0, hi=100_000)
    if args.epochs and args.calibration_batches is not None:
        validate.unused_options({"--calibration-batches": True}, "when training (--epochs > 0); BN statistics "
                                "come from the training itself")
    args.calibration_batches = validate.integer(4 if args.calibration_batches is None else args.calibration_batches,
                                                "--calibration-batches", lo=1, hi=100_000)
    loops.check_data_args(args)
    loops.check_rates(args, "lr", "weight_decay")
    if args.scratch and not args.from_search:
        validate.unused_options({"--scratch": True}, "without --from-search")
    if args.from_search:
        validate.input_file(args.from_search, "--from-search", suffixes=(".pt", ".pth"))
    out = validate.output_file(args.out, "--out")
    name, bitw, bita, modes, search = _resolve(args)
    info = loops.model_info(name)
    input_shape = tuple(args.input_shape or (search.input_shape if search else info.input_shape))

    ctx = loops.distributed()
    try:
        loops.configure_threads(args.threads)
        loops.seed_everything(args.seed)
        train_set, test_set = loops.load_data(args, input_shape, info.task, info.num_outputs)
        try:
            model = models.build(name, "fixed", bitw=bitw, bita=bita, input_shape=input_shape, **modes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        copied = 0
        if search is not None and search.model is not None:
            if tuple(search.input_shape) != input_shape and info.task == "classify":
                ctx.log(f"note: search ran at {search.input_shape}; weights whose shape differs are not copied")
            copied = len(models.transfer_weights(search.model, model))
        train_loader = loops.make_loader(train_set, args.batch_size, ctx, train=True, seed=args.seed)
        test_loader = loops.make_loader(test_set, args.batch_size, ctx, train=False)
        criterion = loops.task_loss(info.task)
        metric = loops.metric_name(info.task)
        ctx.log(f"train {name} {input_shape} bitw {''.join(map(str, bitw))} bita {''.join(map(str, bita))} "
                f"({modes['weight_mode']}/{modes['act_mode']}) on {args.dataset}: {len(train_set)} train / "
                f"{len(test_set)} test images, {ctx.world_size} process(es)"
                + (f", {copied} tensors from {args.from_search}" if copied else ""))
        history: list[dict[str, Any]] = []
        if args.epochs == 0:
            seen = loops.calibrate_batchnorm(model, train_loader, args.calibration_batches)
            if ctx.enabled:  # every rank saw different images: average the statistics
                for buf_name, buf in model.named_buffers():
                    if buf.is_floating_point() and ("running_mean" in buf_name or "running_var" in buf_name):
                        torch.distributed.all_reduce(buf)
                        buf /= ctx.world_size
            ctx.log(f"epochs 0: BN statistics calibrated on {seen} images per process, no training")
        else:
            ddp_model = loops.wrap(model, ctx)
            lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 2e-3)
            opt: torch.optim.Optimizer
            if args.optimizer == "sgd":
                opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                                      weight_decay=args.weight_decay, nesterov=True)
            else:
                opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
            steps = max(1, args.epochs * len(train_loader))
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
            progress = loops.epoch_bar("train", args.epochs, train_loader, ctx, quiet=args.quiet)
            for epoch in range(1, args.epochs + 1):
                loops.set_epoch(train_loader, epoch)
                progress.set_description(f"train epoch {epoch}/{args.epochs}")
                stats = loops.train_epoch(ddp_model, train_loader, [opt], criterion, info.task, ctx,
                                          schedulers=[sched], progress=progress)
                test_value, _ = loops.evaluate_metric(ddp_model, test_loader, info.task, ctx)
                history.append({"epoch": epoch, "loss": stats.loss, f"train_{metric}": stats.metric,
                                f"test_{metric}": test_value, "seconds": round(stats.seconds, 1)})
                ctx.log(f"epoch {epoch}/{args.epochs}  loss {stats.loss:.4f}  train {metric} "
                        f"{stats.metric:.2f}  test {metric} {test_value:.2f}  {stats.seconds:.0f}s")
            progress.close()
        model.eval()
        if args.half_weights:
            checkpoint.round_weights_to_half(model)
        test_value, samples = loops.evaluate_metric(model, test_loader, info.task, ctx)
        if ctx.is_main:
            settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
            checkpoint.save(out, model, name=name, bitw=bitw, bita=bita, input_shape=input_shape,
                            model_args=modes, task=info.task,
                            metrics={f"test_{metric}": test_value, "test_samples": samples},
                            half_weights=args.half_weights,
                            extra={"command": "train", "settings": settings, "history": history,
                                   "from_search": _search_summary(args.from_search, search),
                                   "data": {"dataset": args.dataset, "seed": args.seed,
                                            "data_root": args.data_root}})
            ctx.log(f"test {metric} (fake-quant) {test_value:.2f} on {samples} images; wrote {out}")
            ctx.log(f"next: python -m mixq_nn.evaluate {out}")
        ctx.barrier()
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
