"""DSP-aware mixed-precision search (EdMIPS style): ``python -m mixq_nn.search --model VGGtiny --cd 3e-5``.

Trains the supernet of a zoo model: every searchable layer mixes its candidate
weight and activation bit widths with softmax(alpha) weights.  The float
weights (SGD or Adam) and the architecture parameters alpha (Adam, their own
group) learn together on

    loss = task loss + cd * E[DSP48E2-cycles per frame] / 1000

where the expectation (``mixq_nn.cost.expected_dsps``) uses the packing
density ``mixq_hw.packing`` achieves at each (w, a, k).  Raising ``cd`` trades
accuracy for DSPs.  Each epoch prints the argmax bit widths, the expected DSP
cycles and BitOps, and accuracy; the end writes the supernet checkpoint (with
the chosen ``bitw``/``bita``, for ``mixq_nn.train --from-search``) and a PNG
of the architecture weights per layer.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from mixq_hw.packing.bits import INPUT_BITS, PACKED_BITS, WEIGHT_BITS

from . import checkpoint, loops
from .loops import CommandError

__all__ = ["main", "build_parser", "COST_UNIT", "plot_architecture"]

#: The DSP term is counted in thousands of DSP48E2-cycles per frame, so that cd ~ 1e-5 .. 1e-4
#: weighs it against a cross-entropy of order 1 for networks of ~10^8 MACs.
COST_UNIT = 1000.0


def _candidates(text: str, what: str, allowed: range) -> tuple[int, ...]:
    try:
        bits = tuple(sorted({int(t) for t in text.replace(" ", "").split(",") if t}))
    except ValueError:
        raise CommandError(f"{what} {text!r}: expected comma-separated bit widths, e.g. 2,3,4,8") from None
    if not bits or bits[0] not in allowed or bits[-1] not in allowed:
        raise CommandError(f"{what} {text!r}: candidates must be bit widths in {allowed.start}..{allowed.stop - 1}")
    return bits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mixq_nn.search",
        description="Search per-layer bit widths (EdMIPS-style supernet) under a DSP48E2 cost; "
                    "writes a supernet checkpoint with the chosen bitw/bita and a plot of the "
                    "architecture weights. Runs unchanged under torchrun.")
    loops.add_data_args(parser)
    parser.add_argument("--cd", type=float, default=3e-5,
                        help="weight of the DSP cost: loss += cd * E[DSP-cycles/frame] / 1000 (default 3e-5)")
    parser.add_argument("--epochs", type=int, default=3, help="search epochs (default 3)")
    parser.add_argument("--lr", type=float, default=None,
                        help="weight learning rate (default 0.05 for sgd, 2e-3 for adam), cosine decay")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="adam",
                        help="for the weights (default adam)")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="for the weights (default 1e-4)")
    parser.add_argument("--arch-lr", type=float, default=0.05,
                        help="Adam learning rate of the architecture parameters (default 0.05: a few "
                             "dozen steps per epoch on small data sets like digits)")
    parser.add_argument("--wbits", default="2,3,4,5,6,7,8", help="weight bit candidates (default 2..8)")
    parser.add_argument("--abits", default="2,3,4,5,6,7,8", help="activation bit candidates (default 2..8)")
    parser.add_argument("--input-bits", type=int, default=8, help="bits kept of the 8-bit input pixels")
    parser.add_argument("--weight-mode", choices=("std", "lsq"), default="std")
    parser.add_argument("--act-mode", choices=("hwgq", "lsq", "pact"), default="hwgq")
    parser.add_argument("--eval-every", type=int, default=1,
                        help="test the supernet every N epochs (0: only after the last)")
    parser.add_argument("--out", default=None, help="checkpoint path (default search_<model>.pt)")
    parser.add_argument("--plot", default=None, help="PNG of the architecture weights (default: next to --out)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar (epoch lines still print)")
    return parser


def layer_probabilities(model: nn.Module) -> list[dict[str, list[float]]]:
    """Per searchable layer: softmax(alpha_w) and softmax(alpha_a) as plain lists."""
    from .supernet import mixq_layers

    out = []
    for layer in mixq_layers(model):
        with torch.no_grad():
            pw, pa = layer.probabilities()
        out.append({"w": [round(float(p), 5) for p in pw], "a": [round(float(p), 5) for p in pa]})
    return out


def plot_architecture(history: Sequence[dict[str, Any]], wbits: Sequence[int],
                      abits: Sequence[Sequence[int]], path: str | Path, title: str) -> Path:
    """One column per layer: softmax(alpha_w) (top) and softmax(alpha_a) (bottom) over the epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    layers = len(history[-1]["probs"])
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(2, layers, figsize=(2.4 * layers + 1, 4.8), sharey=True, squeeze=False)
    for i in range(layers):
        for row, key, bits in ((0, "w", wbits), (1, "a", abits[i])):
            ax = axes[row][i]
            for j, b in enumerate(bits):
                ax.plot(epochs, [h["probs"][i][key][j] for h in history], marker="o", ms=3, label=f"{b}b")
            ax.set_ylim(0, 1)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"layer {i} {'weights' if key == 'w' else 'input'}", fontsize=9)
            if i == 0:
                ax.set_ylabel("softmax(alpha)")
            if row == 1:
                ax.set_xlabel("epoch")
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from mixq_hw.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad options or inputs: ``error: ...`` on stderr and status 2, before any work."""
    return loops.run_command(_run, argv)


def _run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mixq_hw import validate
    from . import models
    from .cost import dsp_cost, expected_bitops, expected_dsps
    from .supernet import arch_parameters, chosen_bits, mixq_layers, weight_parameters

    args.model = args.model or loops.DEFAULT_MODEL
    info = loops.model_info(args.model)
    input_shape = args.input_shape or info.input_shape
    validate.integer(args.epochs, "--epochs", lo=1, hi=100_000)
    validate.number(args.cd, "--cd", lo=0)
    validate.integer(args.eval_every, "--eval-every", lo=0)
    loops.check_data_args(args)
    loops.check_rates(args, "lr", "arch_lr", "weight_decay")
    if args.input_bits not in INPUT_BITS:
        raise CommandError(f"--input-bits must be {INPUT_BITS.start}..{INPUT_BITS.stop - 1}, got {args.input_bits}")
    wbits = _candidates(args.wbits, "--wbits", WEIGHT_BITS)
    abits = _candidates(args.abits, "--abits", PACKED_BITS)      # the widths the cost model prices
    model_args: dict[str, Any] = {"wbits": list(wbits), "abits": list(abits), "input_bits": args.input_bits,
                                  "weight_mode": args.weight_mode, "act_mode": args.act_mode}
    out = validate.output_file(args.out or f"search_{args.model}.pt", "--out")
    plot = validate.output_file(args.plot if args.plot else out.with_suffix(".png"), "--plot")

    ctx = loops.distributed()
    try:
        loops.configure_threads(args.threads)
        loops.seed_everything(args.seed)
        train_set, test_set = loops.load_data(args, input_shape, info.task, info.num_outputs)
        try:
            model = models.build(args.model, "supernet", input_shape=tuple(input_shape), **model_args)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        expected_dsps(model, input_shape)  # trace the layer shapes once, before any DDP wrapping
        layer_abits = [m.abits for m in mixq_layers(model)]
        ddp_model = loops.wrap(model, ctx)
        lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 2e-3)
        weights = weight_parameters(model)
        w_opt: torch.optim.Optimizer
        if args.optimizer == "sgd":
            w_opt = torch.optim.SGD(weights, lr=lr, momentum=0.9, weight_decay=args.weight_decay, nesterov=True)
        else:
            w_opt = torch.optim.Adam(weights, lr=lr, weight_decay=args.weight_decay)
        a_opt = torch.optim.Adam(arch_parameters(model), lr=args.arch_lr, betas=(0.5, 0.999))
        train_loader = loops.make_loader(train_set, args.batch_size, ctx, train=True, seed=args.seed)
        test_loader = loops.make_loader(test_set, args.batch_size, ctx, train=False)
        steps = max(1, args.epochs * len(train_loader))
        sched = torch.optim.lr_scheduler.LambdaLR(w_opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        criterion = loops.task_loss(info.task)
        metric = loops.metric_name(info.task)

        def cost() -> torch.Tensor:
            return args.cd * expected_dsps(model, input_shape) / COST_UNIT

        ctx.log(f"search {args.model} {tuple(input_shape)} on {args.dataset}: {len(train_set)} train / "
                f"{len(test_set)} test images, {ctx.world_size} process(es), cd {args.cd:g}, "
                f"candidates w {wbits} a {abits}")
        history: list[dict[str, Any]] = []
        test_value = float("nan")
        progress = loops.epoch_bar("search", args.epochs, train_loader, ctx, quiet=args.quiet)
        for epoch in range(1, args.epochs + 1):
            loops.set_epoch(train_loader, epoch)
            progress.set_description(f"search epoch {epoch}/{args.epochs}")
            stats = loops.train_epoch(ddp_model, train_loader, [w_opt, a_opt], criterion, info.task, ctx,
                                      extra_loss=cost if args.cd > 0 else None, schedulers=[sched],
                                      progress=progress)
            tested = epoch == args.epochs or bool(args.eval_every and epoch % args.eval_every == 0)
            if tested:
                test_value, _ = loops.evaluate_metric(ddp_model, test_loader, info.task, ctx)
            bitw, bita = chosen_bits(model)
            with torch.no_grad():
                e_dsp = float(expected_dsps(model, input_shape))
                e_bitops = float(expected_bitops(model, input_shape))
            chosen_dsp = dsp_cost(model, input_shape)
            history.append({"epoch": epoch, "bitw": bitw, "bita": bita, "expected_dsp_cycles": e_dsp,
                            "expected_bitops": e_bitops, "chosen_dsp_cycles": chosen_dsp,
                            "loss": stats.loss, f"train_{metric}": stats.metric,
                            f"test_{metric}": test_value if tested else None,
                            "seconds": round(stats.seconds, 1),
                            "probs": layer_probabilities(model)})
            ctx.log(f"epoch {epoch}/{args.epochs}  bitw {''.join(map(str, bitw))} "
                    f"bita {''.join(map(str, bita))}  E[DSP-cycles] {e_dsp / 1e6:.3f}M "
                    f"(chosen {chosen_dsp / 1e6:.3f}M)  E[BitOps] {e_bitops / 1e9:.2f}G  "
                    f"loss {stats.loss:.4f}  train {metric} {stats.metric:.2f}  "
                    + (f"test {metric} {test_value:.2f}  " if tested else "") + f"{stats.seconds:.0f}s")
        progress.close()
        bitw, bita = chosen_bits(model)
        if ctx.is_main:
            final = history[-1]
            metrics = {f"test_{metric}": test_value, "expected_dsp_cycles": final["expected_dsp_cycles"],
                       "expected_bitops": final["expected_bitops"],
                       "chosen_dsp_cycles": final["chosen_dsp_cycles"]}
            settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
            checkpoint.save(out, model, name=args.model, bitw=bitw, bita=bita, input_shape=input_shape,
                            model_args=model_args, metrics=metrics, variant="supernet", task=info.task,
                            extra={"command": "search", "settings": settings, "history": history,
                                   "data": {"dataset": args.dataset, "seed": args.seed,
                                            "data_root": args.data_root}})
            plot_architecture(history, wbits, layer_abits, plot,
                              f"{args.model} search, cd {args.cd:g}: bitw {''.join(map(str, bitw))} "
                              f"bita {''.join(map(str, bita))}")
            ctx.log(f"chosen bitw {''.join(map(str, bitw))} bita {''.join(map(str, bita))}; "
                    f"wrote {out} and {plot}")
            ctx.log(f"next: python -m mixq_nn.train --from-search {out} --model {args.model}")
        ctx.barrier()
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
