"""Structured L1-norm channel pruning with SIMD/PE-aligned widths: ``python -m mixq_nn.prune weights.pt
--sparsity 0.5 --align 8 --out pruned.pt [--finetune-epochs N]``.

The channels of a network fall into *groups* that must be pruned together: the outputs of one conv or
linear layer, joined through a residual add (both branches keep the same channels) and carried through
BN, activations, pools, depthwise convs (which keep their input's channels) and concats (a consumer of a
concat sees each part at its offset).  :func:`channel_groups` finds them by tracing the model with
:func:`mixq_nn.layers.trace`; a group that reaches an operator whose result depends on the channel's
position (shift, shuffle, split, reorg) or the network's output stays whole.

Each prunable group of ``n`` channels keeps the ``k`` with the largest summed L1 norm of their producers'
weights, ``k = align * round(n * (1 - sparsity) / align)`` clipped to ``align .. n`` (a group narrower
than ``align`` stays whole): kept counts are multiples of the layer's SIMD/PE.  The pruned network is
the same zoo model built with the ``channels`` option, so its checkpoint loads like any other
(``weights_only=True``); before fine-tuning it computes exactly what the original computes with the
pruned channels' activations zeroed (:func:`zero_pruned_channels`), given steps that do not depend on
the weight tensor (LSQ weights; ``std`` steps follow ``std(W)``, which pruning changes).
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.fx.passes.shape_prop import ShapeProp

from .layers import trace
from .loops import CommandError

__all__ = ["Group", "PrunePlan", "channel_groups", "plan_pruning", "apply_plan", "zero_pruned_channels",
           "main", "build_parser"]

#: Modules that pass every channel through unchanged (elementwise or per-channel spatial ops).
_PASS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.Identity,
         nn.Dropout)
_PASS_NAMES = ("LeakyReLU", "Upsample", "QAvgPool2d", "QGlobalAvgPool")
_FLATTEN = (torch.flatten,)


@dataclass
class Group:
    """Channels pruned together: ``size`` channels, the conv/linear ``producers`` that emit them."""

    gid: int
    size: int
    producers: list[str] = field(default_factory=list)
    frozen: str = ""                    # why it stays whole ("" = prunable)


@dataclass
class PrunePlan:
    """Which channels of which group survive, and where each layer's channels come from."""

    groups: dict[int, Group]
    keep: dict[int, list[int]]                            # group -> kept channel indices (sorted)
    out_channels: dict[str, list[tuple[int, int]]]        # conv/linear/BN name -> (group, index) per output
    in_channels: dict[str, list[tuple[int, int]]]         # conv/linear name -> (group, index) per input

    def kept(self, entries: list[tuple[int, int]]) -> list[int]:
        """Positions of ``entries`` whose (group, index) survives."""
        keep = {g: set(v) for g, v in self.keep.items()}
        return [i for i, (g, c) in enumerate(entries) if c in keep.get(g, ())]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, g: int) -> int:
        self.parent.setdefault(g, g)
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _is_conv_or_linear(m: nn.Module | None) -> bool:
    return isinstance(m, (nn.Conv2d, nn.Linear))


def channel_groups(model: nn.Module, input_shape: tuple[int, int, int]) -> PrunePlan:
    """Trace ``model`` and find its channel groups (every group kept whole: ``keep`` is all channels)."""
    model = copy.deepcopy(model).eval()
    gm = trace(model)
    ShapeProp(gm).propagate(torch.zeros(2, *input_shape))
    mods = dict(gm.named_modules())
    chan: dict[Any, list[tuple[int, int]]] = {}
    groups: dict[int, Group] = {}
    uf = _UnionFind()
    out_channels: dict[str, list[tuple[int, int]]] = {}
    in_channels: dict[str, list[tuple[int, int]]] = {}
    frozen: dict[int, str] = {}

    def new_group(size: int, producer: str) -> list[tuple[int, int]]:
        gid = len(groups)
        groups[gid] = Group(gid, size, [producer])
        return [(gid, i) for i in range(size)]

    def freeze(entries: list[tuple[int, int]] | None, why: str) -> None:
        for g, _ in entries or ():
            frozen.setdefault(g, why)

    for node in gm.graph.nodes:
        args = list(node.all_input_nodes)
        # every node before this one has its entry in chan: src is None only for a node without inputs
        src = chan.get(args[0]) if args else None
        if node.op == "placeholder":
            chan[node] = [(-1, i) for i in range(input_shape[0])]        # the image: never pruned
        elif node.op == "call_module":
            m = mods[node.target]
            kind = type(m).__name__
            if isinstance(m, nn.Conv2d) and m.groups > 1:
                if m.groups != m.in_channels or m.out_channels != m.in_channels:
                    freeze(src, f"grouped conv {node.target}")
                    chan[node] = new_group(m.out_channels, node.target)
                else:                                                    # depthwise: keeps its channels
                    assert src is not None, f"depthwise conv {node.target} has an input"
                    chan[node] = src
                    out_channels[node.target] = src
            elif _is_conv_or_linear(m):
                assert src is not None, f"{kind} {node.target} has an input"
                in_channels[node.target] = src
                chan[node] = new_group(m.out_channels if isinstance(m, nn.Conv2d) else m.out_features,
                                       node.target)
                out_channels[node.target] = chan[node]
            elif isinstance(m, _PASS) or kind in _PASS_NAMES:
                assert src is not None, f"{kind} {node.target} has an input"
                chan[node] = src
                if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    out_channels[node.target] = src
            elif kind == "QAdd":
                a, b = chan[args[0]], chan[args[1]]
                for (ga, ia), (gb, ib) in zip(a, b):
                    if ia != ib:
                        freeze(a + b, f"residual add {node.target} with permuted channels")
                    uf.union(ga, gb)
                chan[node] = a
            elif kind == "Concat":
                chan[node] = [e for a in args for e in chan[a]]
            else:
                for a in args:
                    freeze(chan.get(a), f"{kind} {node.target} depends on the channel order")
                meta = node.meta.get("tensor_meta")
                size = meta.shape[1] if hasattr(meta, "shape") and len(meta.shape) > 1 else 0
                chan[node] = new_group(size, node.target) if size else []
                if chan[node]:
                    freeze(chan[node], f"output of {kind} {node.target}")
        elif node.op == "call_function" and node.target in _FLATTEN:
            shape = args[0].meta["tensor_meta"].shape
            spatial = math.prod(shape[2:]) if len(shape) > 2 else 1
            assert src is not None, f"{node.target} has an input"
            chan[node] = [e for e in src for _ in range(spatial)]
        elif node.op == "call_function" and node.target is torch.cat and node.kwargs.get(
                "dim", node.args[1] if len(node.args) > 1 else 0) == 1:
            chan[node] = [e for a in node.args[0] for e in chan[a]]
        elif node.op == "output":
            for a in args:
                freeze(chan.get(a), "the network's output")
        else:
            for a in args:
                freeze(chan.get(a), f"{node.target} depends on the channel order")
            meta = node.meta.get("tensor_meta")
            size = meta.shape[1] if hasattr(meta, "shape") and len(meta.shape) > 1 else 0
            chan[node] = new_group(size, str(node.target)) if size else []
            freeze(chan[node], f"output of {node.target}")
    # merge groups joined by residual adds; a merged group is frozen if any member is
    merged: dict[int, Group] = {}
    for gid, group in groups.items():
        root = uf.find(gid)
        if root not in merged:
            merged[root] = Group(root, group.size)
        merged[root].producers += group.producers
        if gid in frozen and not merged[root].frozen:
            merged[root].frozen = frozen[gid]
    for gid, why in frozen.items():
        if gid >= 0 and not merged[uf.find(gid)].frozen:
            merged[uf.find(gid)].frozen = why

    def remap(entries):
        return [(uf.find(g) if g >= 0 else g, i) for g, i in entries]

    out_channels = {k: remap(v) for k, v in out_channels.items()}
    in_channels = {k: remap(v) for k, v in in_channels.items()}
    keep = {g: list(range(grp.size)) for g, grp in merged.items()}
    keep[-1] = list(range(input_shape[0]))                                # the image keeps every channel
    return PrunePlan(merged, keep, out_channels, in_channels)


def aligned_keep(n: int, sparsity: float, align: int) -> int:
    """Channels a group of ``n`` keeps: a multiple of ``align`` near ``n * (1 - sparsity)``, at least
    ``align``; ``n`` itself when ``n < align`` or the rounding reaches ``n``."""
    if n <= align:
        return n
    k = align * round(n * (1 - sparsity) / align)
    return min(max(k, align), n - n % align if n % align else n)


def plan_pruning(model: nn.Module, input_shape: tuple[int, int, int], sparsity: float, align: int) -> PrunePlan:
    """The groups of ``model`` with the kept channels chosen by summed L1 norm of the producers' weights."""
    plan = channel_groups(model, input_shape)
    mods = dict(model.named_modules())
    for gid, group in plan.groups.items():
        if group.frozen:
            continue
        score = torch.zeros(group.size, dtype=torch.float64)
        for name in group.producers:
            w = mods[name].weight.detach().double()
            score += w.abs().reshape(w.shape[0], -1).sum(1)
        k = aligned_keep(group.size, sparsity, align)
        order = sorted(range(group.size), key=lambda i: (-float(score[i]), i))
        plan.keep[gid] = sorted(order[:k])
    return plan


def _select(t: Tensor, dim: int, idx: list[int]) -> Tensor:
    return t.index_select(dim, torch.tensor(idx, dtype=torch.long))


def pruned_widths(model: nn.Module, plan: PrunePlan) -> list[int]:
    """The ``channels`` build option of the pruned network: kept output widths of every conv/linear layer
    (depthwise excluded) in creation order, the last layer excluded."""
    names = [n for n, m in model.named_modules() if _is_conv_or_linear(m) and not
             (isinstance(m, nn.Conv2d) and m.groups > 1)]
    return [len(plan.kept(plan.out_channels[n])) for n in names[:-1]]


def apply_plan(model: nn.Module, pruned: nn.Module, plan: PrunePlan) -> nn.Module:
    """Copy ``model``'s state into ``pruned`` (built with :func:`pruned_widths`), keeping the plan's channels."""
    state = model.state_dict()
    target = pruned.state_dict()
    modules = dict(model.named_modules())
    new_state = {}
    for key, value in target.items():
        old = state[key]
        owner, _, leaf = key.rpartition(".")
        m = modules.get(owner)
        if old.shape == value.shape:
            new_state[key] = old.clone()
            continue
        out_idx = plan.kept(plan.out_channels[owner]) if owner in plan.out_channels else None
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) or leaf == "bias":
            # the plan records the output channels of every BN and conv/linear, the owners of a resized bias
            assert out_idx is not None, f"{key}: {owner} has no output channels in the plan"
            new = _select(old, 0, out_idx)
        elif _is_conv_or_linear(m):
            new = old if out_idx is None else _select(old, 0, out_idx)
            if owner in plan.in_channels:
                new = _select(new, 1, plan.kept(plan.in_channels[owner]))
        else:
            raise ValueError(f"cannot prune state entry {key} of shape {tuple(old.shape)}")
        if new.shape != value.shape:
            raise ValueError(f"pruned {key}: shape {tuple(new.shape)}, the pruned model wants {tuple(value.shape)}")
        new_state[key] = new.clone()
    pruned.load_state_dict(new_state)
    return pruned


@torch.no_grad()
def zero_pruned_channels(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """A copy of ``model`` whose layers ignore the pruned channels (their input weights zeroed): what the
    pruned network computes before fine-tuning."""
    model = copy.deepcopy(model)
    modules = dict(model.named_modules())
    for name, entries in plan.in_channels.items():
        kept = set(plan.kept(entries))
        drop = [i for i in range(len(entries)) if i not in kept]
        if drop:
            modules[name].weight[:, drop] = 0
    return model


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m mixq_nn.prune",
        description="Structured L1-norm channel pruning of a trained mixq checkpoint; kept channel counts "
                    "are multiples of --align (the layers' SIMD/PE); residual adds, concats and depthwise "
                    "convs keep their channels consistent. Writes a smaller checkpoint of the same model.")
    parser.add_argument("checkpoint", help="trained checkpoint (python -m mixq_nn.train)")
    parser.add_argument("--sparsity", type=float, required=True,
                        help="fraction of each prunable group's channels to remove, 0 <= s < 1")
    parser.add_argument("--align", type=int, default=8, help="kept channel counts are multiples of it (default 8)")
    parser.add_argument("--out", required=True, help="pruned checkpoint to write")
    parser.add_argument("--finetune-epochs", type=int, default=0, help="fine-tuning epochs after pruning (default 0)")
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning learning rate (Adam, default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=64, help="fine-tuning batch size (default 64)")
    parser.add_argument("--dataset", default=None, choices=DATASETS,
                        help="fine-tuning / test data (default: the checkpoint's)")
    parser.add_argument("--data-root", default=None, help="folder of cifar10 / dacsdc data")
    parser.add_argument("--limit", type=int, default=None, help="at most this many training (and test) images")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: the checkpoint's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; bad options or inputs: ``error: ...`` on stderr and status 2, before any work."""
    from . import loops

    return loops.run_command(_run, argv)


def _run(argv: list[str] | None) -> int:
    from mixq_hw import validate

    from . import checkpoint, loops, models

    args = build_parser().parse_args(argv)
    validate.number(args.sparsity, "--sparsity", lo=0, hi=1)
    if args.sparsity >= 1:
        raise CommandError(f"--sparsity {args.sparsity:g}: must be below 1 (1 would remove every channel)")
    validate.integer(args.align, "--align", lo=1, hi=4096)
    validate.integer(args.finetune_epochs, "--finetune-epochs", lo=0, hi=100_000)
    validate.number(args.lr, "--lr", lo=0, lo_open=True, hi=100)
    validate.integer(args.batch_size, "--batch-size", lo=1, hi=65_536)
    validate.integer(args.limit, "--limit", lo=1, allow_none=True)
    validate.integer(args.seed, "--seed", lo=0, hi=2**63 - 1, allow_none=True)
    validate.integer(args.threads, "--threads", lo=1, hi=1024, allow_none=True)
    validate.input_file(args.checkpoint, "checkpoint", suffixes=(".pt", ".pth"))
    out = validate.output_file(args.out, "--out")
    ckpt = checkpoint.load(args.checkpoint)
    info = models.MODELS[ckpt.name]
    if "channels" not in info.family_opts:
        prunable = [n for n, i in models.MODELS.items() if "channels" in i.family_opts]
        raise CommandError(f"{args.checkpoint}: model {ckpt.name} has no 'channels' option, so a pruned copy "
                           f"cannot be rebuilt; prunable models: {', '.join(prunable)}")
    if ckpt.variant != "fixed":
        raise CommandError(f"{args.checkpoint}: a {ckpt.variant} checkpoint; prune a trained (fixed) one")
    loops.configure_threads(args.threads)
    model, (c, h, w) = ckpt.model, ckpt.input_shape
    assert model is not None, "checkpoint.load builds the model (build=True)"
    shape = (c, h, w)
    plan = plan_pruning(model, shape, args.sparsity, args.align)
    widths = pruned_widths(model, plan)
    model_args = {**ckpt.model_args, "channels": widths}
    pruned = models.build(ckpt.name, "fixed", bitw=ckpt.bitw, bita=ckpt.bita, input_shape=shape, **model_args)
    apply_plan(model, pruned, plan)
    data = ckpt.data
    args.dataset = args.dataset or data.get("dataset") or "digits"
    args.seed = data.get("seed", 0) if args.seed is None else args.seed
    args.data_root = args.data_root or data.get("data_root")
    loops.seed_everything(args.seed)
    ctx = loops.Distributed()
    train_set, test_set = loops.load_data(args, shape, info.task, info.num_outputs)
    test_loader = loops.make_loader(test_set, args.batch_size, ctx, train=False)
    metric = loops.metric_name(info.task)
    before, _ = loops.evaluate_metric(pruned, test_loader, info.task, ctx)
    params = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in pruned.parameters()))
    macs = (models.macs(model, shape), models.macs(pruned, shape))
    ctx.log(f"pruned {ckpt.name}: channels {widths}; params {params[0]:,} -> {params[1]:,}, MACs/frame "
            f"{macs[0]:,} -> {macs[1]:,}; test {metric} {before:.2f} before fine-tuning")
    history = []
    if args.finetune_epochs:
        loader = loops.make_loader(train_set, args.batch_size, ctx, train=True, seed=args.seed)
        opt = torch.optim.Adam(pruned.parameters(), lr=args.lr)
        criterion = loops.task_loss(info.task)
        progress = loops.epoch_bar("finetune", args.finetune_epochs, loader, ctx, quiet=args.quiet)
        for epoch in range(1, args.finetune_epochs + 1):
            stats = loops.train_epoch(pruned, loader, [opt], criterion, info.task, ctx, progress=progress)
            value, _ = loops.evaluate_metric(pruned, test_loader, info.task, ctx)
            history.append({"epoch": epoch, "loss": stats.loss, f"test_{metric}": value})
            ctx.log(f"finetune epoch {epoch}/{args.finetune_epochs}  loss {stats.loss:.4f}  test {metric} {value:.2f}")
        progress.close()
    pruned.eval()
    after, samples = loops.evaluate_metric(pruned, test_loader, info.task, ctx)
    checkpoint.save(out, pruned, name=ckpt.name, bitw=ckpt.bitw, bita=ckpt.bita, input_shape=shape,
                    model_args=model_args, task=info.task,
                    metrics={f"test_{metric}": after, "test_samples": samples},
                    extra={"command": "prune", "data": {"dataset": args.dataset, "seed": args.seed,
                                                         "data_root": args.data_root},
                           "pruning": {"source": str(args.checkpoint), "sparsity": args.sparsity,
                                       "align": args.align, "channels": widths, "params": list(params),
                                       "macs": list(macs), f"test_{metric}_before_finetune": before,
                                       "source_metrics": ckpt.metrics, "finetune_epochs": args.finetune_epochs,
                                       "history": history}})
    ctx.log(f"test {metric} {after:.2f} on {samples} images; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
