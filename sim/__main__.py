"""``python -m sim build/vggtiny_digits --images N --stall 0.3``: a whole network in simulation.

Reads a build folder (``python -m mixq_hw.build``'s output: its checkpoint and
its folding), a mixq checkpoint (exported to the integer graph here) or an
exported ``.npz`` graph, builds the accelerator for a folding (the build's,
``--fold FILE``, a DSP budget with ``--dsp N``, or one lane per layer, which it
says), runs N images through it on the fastest simulator here (``--backend``) and
reports how many are bit-exact against the graph's reference, the cycles per
frame (measured and analytic) and the simulation speed.  Exit status: 0 when
every image is bit-exact, 3 when some are not, 2 on bad input (checked before any
work), 1 when the simulator itself fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mixq_hw import validate
from mixq_hw.graph import Graph, GraphError
from mixq_hw.validate import InputError
from mixq_hw.pipeline import LayerFold

from .backends import CHOICES, resolve_backend
from .cxxrtl import CompileError, SimulationCrash
from .network import simulate
from .streams import SimulationTimeout

__all__ = ["main", "load_source", "pick_images", "CliError", "OPT_FLAGS"]

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_MISMATCH = 0, 1, 2, 3
#: g++ optimisation flags ``--opt`` accepts (the value reaches the compiler's command line).
OPT_FLAGS = ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og")


class CliError(InputError):
    """Bad input on the command line: the message names the file or option and what is wrong."""


def load_source(path: str | Path) -> tuple[Graph, dict[str, Any]]:
    """The integer graph of a checkpoint (``.pt``, exported now), a graph file (``.npz``) or a QONNX model
    (``.onnx``, :func:`mixq_nn.qonnx_import.import_qonnx`), plus what is
    known about its data: ``dataset``, ``data_root``, ``seed``, ``task`` (None when unknown)."""
    path = Path(path)
    if not path.exists():
        raise CliError(f"{path}: no such file")
    if path.is_dir():
        raise CliError(f"{path}: is a directory, not a checkpoint (.pt) or graph (.npz)")
    if path.suffix in (".npz", ".onnx"):
        try:
            if path.suffix == ".npz":
                graph = Graph.load(path)
            else:
                from mixq_nn.qonnx_import import QonnxImportError, import_qonnx

                try:
                    graph = import_qonnx(path)
                except QonnxImportError as exc:
                    raise CliError(str(exc)) from None
        except GraphError as exc:
            raise CliError(str(exc)) from None
        _, h, w = graph.value_info(graph.output_node.name).shape
        return graph, {"dataset": None, "data_root": None, "seed": 0,
                       "task": "classify" if (h, w) == (1, 1) else "detect"}
    if path.suffix not in (".pt", ".pth"):
        raise CliError(f"{path}: expected a mixq checkpoint (.pt), an exported graph (.npz) or a QONNX model "
                       f"(.onnx)")
    from mixq_nn.checkpoint import CheckpointError, load
    from mixq_nn.export import ExportError, export

    try:
        ckpt = load(path)
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    if ckpt.variant != "fixed":
        raise CliError(f"{path}: a {ckpt.variant!r} checkpoint; simulation needs a trained fixed-precision "
                       f"model (python -m mixq_nn.train)")
    assert ckpt.model is not None           # load() builds the model unless told not to
    try:
        graph = export(ckpt.model, ckpt.input_shape, name=ckpt.name)
    except (ExportError, GraphError) as exc:
        raise CliError(f"{path}: {exc}") from None
    data = ckpt.meta.get("extra", {}).get("data", {}) or {}
    return graph, {"dataset": data.get("dataset"), "data_root": data.get("data_root"),
                   "seed": int(data.get("seed", 0) or 0), "task": ckpt.task}


def pick_images(graph: Graph, info: dict[str, Any], count: int, *, random_pixels: bool = False,
                dataset: str | None = None, data_root: str | None = None, seed: int = 0) -> tuple[np.ndarray, str]:
    """``count`` test images for ``graph`` (uint8 (N, C, H, W)) and where they came from.

    The checkpoint's data set (``dataset`` overrides it; digits when neither says), or seeded random
    pixels with ``random_pixels``.
    """
    if count < 1:
        raise CliError(f"--images must be at least 1, got {count}")
    shape = graph.input_shape
    if count * int(np.prod(shape)) > validate.LIMITS["image_bytes"]:
        raise CliError(f"--images {count}: {count} images of {'x'.join(map(str, shape))} pixels exceed the "
                       f"{validate.LIMITS['image_bytes']:,}-byte limit for images held at once")
    if random_pixels:
        return np.random.default_rng(seed).integers(0, 256, (count, *shape)).astype(np.uint8), f"random (seed {seed})"
    from mixq_nn.data import DataError, get_images_uint8

    name = dataset or info.get("dataset") or "digits"
    try:
        images = get_images_uint8(name, "test", shape, data_root or info.get("data_root"), count=count,
                                  task=info.get("task") or "classify", seed=info.get("seed", 0))
    except DataError as exc:
        raise CliError(f"images from data set {name!r}: {exc} (or use --random)") from None
    if len(images) < count:
        raise CliError(f"data set {name!r} has only {len(images)} test images, asked for {count}")
    return images, f"{name} test split"


def build_folder(path: Path) -> tuple[Path, Path]:
    """(source, folding.json) of a ``mixq_hw.build`` output folder, or a CliError naming what is missing."""
    report, folding = path / "report.json", path / "folding.json"
    for needed in (report, folding):
        if not needed.is_file():
            raise CliError(f"{path}: a folder, but not a build folder (no {needed.name}; "
                           f"python -m mixq_hw.build --out {path} writes one)")
    try:
        source = json.loads(report.read_text()).get("source")
    except (OSError, ValueError, AttributeError) as exc:
        raise CliError(f"{report}: not a build report ({exc})") from None
    if not isinstance(source, str) or not source:
        raise CliError(f"{report}: names no source checkpoint or graph")
    if not Path(source).exists():
        raise CliError(f"{report}: its source {source} does not exist (from here: {Path.cwd()})")
    return Path(source), folding


def _folding(args: argparse.Namespace, graph: Graph) -> tuple[dict[str, LayerFold] | None, str]:
    if args.fold:
        from mixq_hw.folding import FoldingError, load_folding

        try:
            return load_folding(args.fold, graph), f"from {args.fold}"
        except FoldingError as exc:
            raise CliError(str(exc)) from None
    if args.dsp:
        from mixq_hw.estimate import Resources
        from mixq_hw.folding import OverBudgetError, choose_folding

        unlimited = 10 ** 9
        try:
            result = choose_folding(graph, Resources(dsp=args.dsp, lut=unlimited, ff=unlimited, bram36=unlimited))
        except OverBudgetError as exc:
            raise CliError(f"--dsp {args.dsp}: {exc}") from None
        return result.folding, f"balanced under {args.dsp} DSPs"
    return None, "unit (one lane per layer)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim", description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="Folding JSON: {\"layer\": {\"simd\": 8, \"pe\": 16, \"pixels\": 2}}; layers not named get one lane. "
               "The compiled backend caches libraries in $MIXQ_CACHE (default ~/.cache/mixq).")
    p.add_argument("source", help="build folder (python -m mixq_hw.build --out DIR: its source and folding), "
                                  "mixq checkpoint (.pt) or exported integer graph (.npz)")
    p.add_argument("--images", type=int, default=2, metavar="N", help="images to simulate (default 2)")
    p.add_argument("--backend", choices=CHOICES, default="auto",
                   help="verilator: compiled, the fastest; cxxrtl: compiled with Yosys' CXXRTL; pysim: Amaranth's "
                        "simulator; auto (default): the first of these that is installed (printed)")
    p.add_argument("--stall", type=float, default=0.0, metavar="P",
                   help="probability per cycle that the input withholds valid / the output drops ready")
    p.add_argument("--seed", type=int, default=0, help="seed of the stall patterns and of --random pixels")
    p.add_argument("--fold", type=Path, default=None, metavar="FILE", help="folding JSON file")
    p.add_argument("--dsp", type=int, default=None, metavar="N",
                   help="fold for the most fps under N DSPs (mixq_hw.folding; LUT/BRAM not limited)")
    p.add_argument("--random", action="store_true", help="random pixels instead of data set images")
    p.add_argument("--dataset", default=None, help="data set for the images (default: the checkpoint's, else digits)")
    p.add_argument("--data-root", default=None, help="folder of the data set, if it needs one")
    p.add_argument("--vcd", default=None, metavar="FILE", help="write a waveform (pysim only; large)")
    p.add_argument("--opt", default=None, help=f"g++ optimisation flag for cxxrtl, one of {', '.join(OPT_FLAGS)} "
                                             f"(default -O1)")
    p.add_argument("--flatten", choices=("auto", "yes", "no"), default=None,
                   help="cxxrtl: flatten the design (one eval() per cycle, but g++ time grows faster than "
                        "linearly) or keep its hierarchy; auto: flatten small designs (default)")
    p.add_argument("--layers", action="store_true",
                   help="layer by layer: every pipeline stage simulated alone on its reference beats, under "
                        "--stall on all its ports (sim.layerwise), instead of the whole network")
    p.add_argument("--workers", type=int, default=2, help="--layers: parallel processes (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def _check_options(args: argparse.Namespace) -> None:
    """Every option in range and every file usable, before the source is read."""
    if args.dsp is not None and args.dsp < 1:
        raise CliError(f"--dsp must be a positive number of DSPs, got {args.dsp}")
    if args.fold and args.dsp:
        raise CliError("give either --fold or --dsp, not both")
    if args.vcd and args.backend not in ("pysim", "auto"):
        raise CliError("--vcd needs --backend pysim")
    validate.integer(args.images, "--images", lo=1, hi=100_000)
    validate.number(args.stall, "--stall", lo=0.0, hi=0.99)
    validate.integer(args.seed, "--seed", lo=0, hi=2**63 - 1)
    if args.backend == "pysim":
        validate.unused_options({"--opt": args.opt is not None, "--flatten": args.flatten is not None},
                                "to --backend pysim (they set up the compiled backend)")
    args.opt = args.opt or "-O1"
    args.flatten = args.flatten or "auto"
    if args.opt not in OPT_FLAGS:
        raise CliError(f"--opt {args.opt!r}: expected one of {', '.join(OPT_FLAGS)}")
    if Path(args.source).is_dir():
        if args.fold or args.dsp:
            raise CliError(f"{args.source}: a build folder brings its folding; drop --fold/--dsp, or give the "
                           "checkpoint instead")
    else:
        validate.input_file(args.source, "source", suffixes=(".pt", ".pth", ".npz", ".onnx"))
    if args.fold:
        validate.input_file(args.fold, "--fold", suffixes=(".json",))
    if args.vcd:
        validate.output_file(args.vcd, "--vcd")
    if args.random:
        validate.unused_options({"--dataset": args.dataset is not None, "--data-root": args.data_root is not None},
                                "with --random")
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise CliError(f"--data-root {args.data_root}: no such folder")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        _check_options(args)
        source = Path(args.source)
        if source.is_dir():
            source, args.fold = build_folder(source)
        graph, info = load_source(source)
        images, origin = pick_images(graph, info, args.images, random_pixels=args.random, dataset=args.dataset,
                                     data_root=args.data_root, seed=args.seed)
        folding, fold_origin = _folding(args, graph)
        if args.fold and Path(args.source).is_dir():
            fold_origin = f"the build's ({args.fold})"
        backend = "pysim" if args.vcd else resolve_backend(args.backend)
        if not args.quiet:
            if folding is None:
                from mixq_hw.pipeline import plan_stages

                print(f"note: no folding given (a build folder, --fold or --dsp): simulating a one-lane folding, "
                      f"{plan_stages(graph, {}).cycles_per_frame():,} cycles per frame", file=sys.stderr)
            print(f"[sim] backend {backend}" + (" (auto)" if args.backend == "auto" else ""), file=sys.stderr)
        if args.layers:
            return _layers(args, graph, images, origin, folding, fold_origin, backend)
        run = simulate(graph, images, folding=folding, backend=backend, stall=args.stall, seed=args.seed,
                       vcd=args.vcd, progress=not args.quiet, opt=args.opt,
                       flatten={"auto": None, "yes": True, "no": False}[args.flatten])
    except (InputError, GraphError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, CompileError, SimulationTimeout, SimulationCrash) as exc:
        print(f"error: {args.source}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    report = {**run.to_dict(), "graph": graph.name, "source": str(args.source), "input_shape": list(graph.input_shape),
              "images_from": origin, "folding_from": fold_origin, "macs_per_frame": int(graph.macs())}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{graph.name} {graph.input_shape}: {run.bit_exact}/{run.images} images bit-exact ({origin})")
        print(f"  cycles per frame: {run.cycles_per_frame:,} measured, {run.analytic_cycles_per_frame:,} analytic "
              f"(bottleneck {run.bottleneck}); latency {run.latency:,}; folding {fold_origin}")
        print(f"  simulation: {run.cycles_total:,} cycles in {run.sim_seconds:.2f} s = "
              f"{run.cycles_per_second:,.0f} cycles/s ({run.backend}, stall {run.stall:g}); "
              f"build/compile {run.compile_seconds:.1f} s")
        if not run.all_exact:
            print(f"  first mismatch: {run.first_mismatch()}")
    return EXIT_OK if run.all_exact else EXIT_MISMATCH


def _layers(args: argparse.Namespace, graph: Graph, images: np.ndarray, origin: str,
            folding: dict[str, LayerFold] | None, fold_origin: str, backend: str) -> int:
    """``--layers``: :func:`sim.layerwise.verify_layers`, printed as a table (or JSON)."""
    from mixq_hw.pipeline import plan_stages

    from .layerwise import verify_layers

    run = verify_layers(graph, images, plan_stages(graph, folding), backend=backend, stall=args.stall,
                        seed=args.seed, workers=args.workers, progress=not args.quiet)
    if args.json:
        print(json.dumps({**run.to_dict(), "graph": graph.name, "source": str(args.source),
                          "images_from": origin, "folding_from": fold_origin}, indent=2))
    else:
        print(f"{graph.name} {graph.input_shape}: {len(run.stages) - len(run.failed)}/{len(run.stages)} stages "
              f"bit-exact on {run.images} images ({origin}; folding {fold_origin}; {run.backend}, stall "
              f"{run.stall:g}, {run.designs} distinct designs, {run.seconds:.1f} s)")
        print(run.markdown(), end="")
        if not run.all_exact:
            print(f"first mismatch: {run.message()}")
    return EXIT_OK if run.all_exact else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
