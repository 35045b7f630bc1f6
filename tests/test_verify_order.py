"""The one-build verification runs the whole design alone, then the layer-by-layer checks (sim/verify.py):
the whole network's cycles per second are then those of a run that had the machine to itself."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from networks import plain_net
from test_top import PLAIN_FOLD

import sim.verify as verify
import sim.verilator as verilator
from mixq_hw.pipeline import Accelerator
from sim.layerwise import LayerwiseRun, StageCheck


def test_the_whole_design_runs_alone_before_the_layers(monkeypatch) -> None:
    graph = plain_net(np.random.default_rng(4))
    acc = Accelerator(graph, PLAIN_FOLD)
    images = np.random.default_rng(1).integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    events: list[tuple[str, float, int]] = []
    running = {"whole": False}

    def fake_compile(ports, **_options):
        return Path("/nonexistent/tb")

    def fake_whole(g, frames, accelerator, **options):
        running["whole"] = True
        events.append(("whole begins", time.perf_counter(), threading.active_count()))
        time.sleep(0.05)
        events.append(("whole ends", time.perf_counter(), threading.active_count()))
        running["whole"] = False
        assert options["program"] == Path("/nonexistent/tb") and len(frames) == 2
        return {"images": 2, "bit_exact": 2, "mismatched": [], "mismatch": "", "cycles_total": 100,
                "cycles_per_frame": 40, "latency": 60, "cycles_per_second": 1e5}

    def fake_layers(g, imgs, plan, *, prebuilt, **options):
        assert not running["whole"], "the layer checks started while the whole design ran"
        events.append(("layers begin", time.perf_counter(), threading.active_count()))
        assert prebuilt[1] == Path("/nonexistent/tb") and options["workers"] == 2
        check = StageCheck(stage="conv", node="conv", kind="conv", bit_exact=True, beats=10, cycles_per_frame=40,
                           analytic_cycles_per_frame=40, latency=5, backend="verilator", seconds=0.0)
        return LayerwiseRun(stages=[check], images=len(imgs), backend="verilator", stall=0.3, workers=2, designs=1,
                            seconds=0.0)

    monkeypatch.setattr(verilator, "compile_verilator", fake_compile)
    monkeypatch.setattr(verify, "whole_network", fake_whole)
    monkeypatch.setattr(verify, "verify_layers", fake_layers)
    monkeypatch.setattr(verify, "resolve_backend", lambda backend: "verilator")
    result = verify.verify_accelerator(graph, images, acc, backend="verilator", progress=False,
                                       board_bank=(acc, "module mixq_design(); endmodule\n"), workers=2)
    assert [e[0] for e in events] == ["whole begins", "whole ends", "layers begin"]
    assert events[0][2] == events[1][2] == threading.active_count(), "the whole design ran beside a thread"
    assert result["one_build"] and result["cycles_per_second"] == 1e5 and result["bit_exact"] == 3
