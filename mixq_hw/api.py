"""The notebook API: build an accelerator from an in-memory model, a Graph or a file, and keep the result.

    import mixq_hw
    result = mixq_hw.build_accelerator(model, input_shape=(3, 32, 32), out="build/mine")
    print(result.to_markdown())          # the report (cycles, fps, resources per layer)
    run = result.simulate(images, backend="pysim")   # bit-exact against the integer Graph
    assert run.all_exact

:func:`build_accelerator` runs the same flow as ``python -m mixq_hw.build``
(:func:`mixq_hw.build.build`) and returns a :class:`BuildResult`.  Importing this
module needs no torch; a torch model is exported through :func:`mixq_nn.export.export`
only when one is passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .build import BuildError, build
from .folding import load_folding
from .graph import Graph
from .pipeline import LayerFold
from .report import markdown, plot_layers

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.network import NetworkRun

__all__ = ["BuildResult", "build_accelerator", "as_graph"]


@dataclass
class BuildResult:
    """A finished build: its report, the Graph it realises, the chosen folding and the output folder."""

    #: the build report (the contents of ``report.json``)
    report: dict[str, Any]
    #: the integer Graph the accelerator realises; ``graph.reference(images)`` is its golden model
    graph: Graph
    #: the parallelism of every layer, as chosen by the folding search (or read from ``fold``)
    folding: dict[str, LayerFold]
    #: the output folder
    out: Path

    @property
    def paths(self) -> dict[str, Path]:
        """Every file of the build folder by name (``"mixq_accel.v"``, ``"build_vivado.tcl"``, ``"report.json"``, ...)."""
        return {p.name: p for p in sorted(self.out.iterdir()) if p.is_file()}

    @property
    def verilog(self) -> Path:
        """The emitted Verilog of the AXI-Stream top (``mixq_accel.v``)."""
        return self.out / "mixq_accel.v"

    @property
    def cycles_per_frame(self) -> int:
        """The design's initiation interval in clock cycles (its slowest stage)."""
        return int(self.report["cycles_per_frame"])

    @property
    def fps(self) -> float:
        """Frames per second at the build's clock."""
        return float(self.report["fps"])

    def to_markdown(self) -> str:
        """The report as markdown (``report.md``)."""
        return markdown(self.report)

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (``report.json``)."""
        return json.dumps(self.report, indent=indent)

    def plot(self) -> Figure:
        """A matplotlib Figure of per-layer cycles and DSPs (the bottleneck in red), as in ``report_layers.png``."""
        return plot_layers(self.report)

    def simulate(self, images: Any, *, backend: str = "pysim", stall: float = 0.0, seed: int = 0,
                 progress: bool = True, **options: Any) -> NetworkRun:
        """Run uint8 ``images`` (N, C, H, W) through this design in simulation and compare with the Graph.

        Goes through :func:`sim.network.simulate` with this build's folding; ``backend`` is one of
        ``sim.network.BACKENDS``; ``options`` pass on (``max_cycles``, ``vcd``, ``opt``, ...).  The
        returned run has ``bit_exact``, ``all_exact``, ``outputs`` and ``reference``.
        """
        from sim.network import simulate

        return simulate(self.graph, images, folding=self.folding, backend=backend, stall=stall, seed=seed,
                        progress=progress, **options)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def as_graph(source: Any, input_shape: Sequence[int] | None = None, *, name: str = "") -> Graph | Path:
    """A Graph for an in-memory model or checkpoint, the Graph itself, or the path of a file to read.

    ``source``: a Graph; a ``str``/``PathLike`` (checkpoint ``.pt``, exported ``.npz`` or QONNX ``.onnx``,
    read by the build); a QONNX model in memory (``onnx.ModelProto`` or qonnx ``ModelWrapper``); a :class:`mixq_nn.checkpoint.Checkpoint` (its model and input shape); or a
    fixed-precision mixq ``torch.nn.Module`` in eval mode, which needs ``input_shape`` (C, H, W).
    """
    if isinstance(source, Graph):
        return source
    if isinstance(source, (str, PathLike)):
        return Path(source)
    if type(source).__name__ in ("ModelProto", "ModelWrapper"):                # a QONNX model in memory
        from mixq_nn.qonnx_import import QonnxImportError, import_qonnx

        try:
            return import_qonnx(source, name=name)
        except QonnxImportError as exc:
            raise BuildError(str(exc)) from None
    if hasattr(source, "model") and hasattr(source, "input_shape"):       # a mixq_nn Checkpoint
        input_shape = input_shape or tuple(source.input_shape)
        name = name or getattr(source, "name", "")
        source = source.model
    try:
        from torch import nn
    except ImportError:
        raise BuildError(f"cannot build from a {type(source).__name__}: pass a Graph, a file path, "
                         f"or a torch model (torch is not installed)") from None
    if not isinstance(source, nn.Module):
        raise BuildError(f"cannot build from a {type(source).__name__}: pass a mixq model (torch.nn.Module), "
                         f"a mixq_nn Checkpoint, a Graph, a QONNX ModelProto, or a path to a .pt checkpoint, "
                         f".npz graph or .onnx QONNX model")
    if input_shape is None:
        raise BuildError(f"building from a {type(source).__name__} needs input_shape=(C, H, W)")
    from mixq_nn.export import ExportError, export

    try:
        return export(source, tuple(input_shape), name=name)
    except ExportError as exc:
        raise BuildError(str(exc)) from None


def build_accelerator(source: Any, *, input_shape: Sequence[int] | None = None, name: str = "",
                      board: str = "ultra96", out: str | PathLike | None = None,
                      clock_mhz: float | None = None, fold: str | PathLike | None = None, verify: int = 0,
                      backend: str = "cxxrtl", synth: bool = False,
                      multipliers: Sequence[str] = ("dsp", "lut"), quiet: bool = False,
                      utilization: float | None = None, timing: bool = False) -> BuildResult:
    """Build the accelerator of ``source`` for ``board`` into ``out``; the same flow as ``python -m mixq_hw.build``.

    ``source``: see :func:`as_graph` (an in-memory model needs ``input_shape``; ``name`` names its
    Graph and the default output folder ``build/<name>``).  ``fold``: a folding JSON instead of the
    search; ``verify``: images to check bit-exact in simulation with ``backend`` during the build;
    ``synth``: also count resources with yosys; ``utilization``: the share of the PL the design and the
    board's shell may use (default 0.85); ``timing``: estimate every stage's logic depth and Fmax.  Raises :class:`~mixq_hw.build.BuildError` on bad input
    or a failed verification.
    """
    graph_or_path = as_graph(source, input_shape, name=name)
    report = build(graph_or_path, board=board, clock_mhz=clock_mhz, out=Path(out) if out is not None else None,
                   fold=Path(fold) if fold is not None else None, verify=verify, synth=synth, backend=backend,
                   quiet=quiet, multipliers=tuple(multipliers), utilization=utilization,
                   timing=timing)
    out_dir = Path(out) if out is not None else Path("build") / (
        graph_or_path.name if isinstance(graph_or_path, Graph) else graph_or_path.stem)
    if isinstance(graph_or_path, Graph):
        graph = graph_or_path
    else:
        from .build import load_graph

        graph, _ = load_graph(graph_or_path)
    folding = load_folding(out_dir / "folding.json", graph)
    return BuildResult(report=report, graph=graph, folding=folding, out=out_dir)
