"""Verification from the build's own elaboration compiles the whole design and the stage bank side by side,
runs the whole design alone, then the layer-by-layer checks (sim/verify.py): the whole network's cycles per
second are then those of a run that had the machine to itself, on a program of the whole design only."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from networks import plain_net
from test_top import PLAIN_FOLD

import sim.verify as verify
import sim.verilator as verilator
from mixq_hw.pipeline import Accelerator
from sim.layerwise import LayerwiseRun, StageCheck


class _Ports:
    """A stand-in for sim.board_text.BoardBankPorts: only its signature's members are read."""

    def __init__(self, members: list[str]):
        self.signature = SimpleNamespace(members=dict.fromkeys(members))


@pytest.mark.parametrize("together", [False, True], ids=["two programs", "one program"])
def test_the_whole_design_runs_alone_before_the_layers(monkeypatch, together: bool) -> None:
    graph = plain_net(np.random.default_rng(4))
    acc = Accelerator(graph, PLAIN_FOLD)
    images = np.random.default_rng(1).integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    events: list[tuple[str, float, int]] = []
    running = {"whole": False}

    compiled: list[tuple[object, str, int]] = []

    def fake_compile(ports, *, verilog_text, jobs=None, **_options):
        compiled.append((ports, verilog_text, jobs))
        return Path("/nonexistent/whole" if ports is acc else "/nonexistent/bank")

    whole_program = Path("/nonexistent/bank" if together else "/nonexistent/whole")

    def fake_whole(g, frames, accelerator, **options):
        running["whole"] = True
        events.append(("whole begins", time.perf_counter(), threading.active_count()))
        time.sleep(0.05)
        events.append(("whole ends", time.perf_counter(), threading.active_count()))
        running["whole"] = False
        assert options["program"] == whole_program and len(frames) == 2
        return {"images": 2, "bit_exact": 2, "mismatched": [], "mismatch": "", "cycles_total": 100,
                "cycles_per_frame": 40, "latency": 60, "cycles_per_second": 1e5}

    def fake_layers(g, imgs, plan, *, prebuilt, **options):
        assert not running["whole"], "the layer checks started while the whole design ran"
        events.append(("layers begin", time.perf_counter(), threading.active_count()))
        assert prebuilt == (bank_ports, Path("/nonexistent/bank")) and options["workers"] == 2
        check = StageCheck(stage="conv", node="conv", kind="conv", bit_exact=True, beats=10, cycles_per_frame=40,
                           analytic_cycles_per_frame=40, latency=5, backend="verilator", seconds=0.0)
        return LayerwiseRun(stages=[check], images=len(imgs), backend="verilator", stall=0.3, workers=2, designs=1,
                            seconds=0.0)

    monkeypatch.setattr(verilator, "compile_verilator", fake_compile)
    monkeypatch.setattr(verify, "whole_network", fake_whole)
    monkeypatch.setattr(verify, "verify_layers", fake_layers)
    monkeypatch.setattr(verify, "resolve_backend", lambda backend: "verilator")
    monkeypatch.setenv("MIXQ_CXX_JOBS", "4")
    bank_ports = _Ports(["i", "o", "s0_i", "s0_o"] if together else ["s0_i", "s0_o"])
    result = verify.verify_accelerator(graph, images, acc, backend="verilator", progress=False,
                                       whole_verilog="module whole; endmodule\n",
                                       board_bank=(bank_ports, "module bank; endmodule\n"), workers=2)
    if together:   # one build on every CPU
        assert compiled == [(bank_ports, "module bank; endmodule\n", None)] and result["programs"] == 1
    else:          # two builds side by side, on half the CPUs each
        assert sorted(compiled, key=lambda c: c[1]) == [(bank_ports, "module bank; endmodule\n", 2),
                                                        (acc, "module whole; endmodule\n", 2)]
        assert result["programs"] == 2
    assert [e[0] for e in events] == ["whole begins", "whole ends", "layers begin"]
    assert events[0][2] == events[1][2] == threading.active_count(), "the whole design ran beside a thread"
    assert result["one_build"] and result["cycles_per_second"] == 1e5 and result["bit_exact"] == 3
