"""The emitted Verilog in third-party simulators, and the cocotb testbench every build ships.

- The DSP48E2 Verilog model against the Amaranth behavioural model, cycle by cycle, on the primitive
  instances exactly as the cores emit them, and its loud refusals.
- The `plain` network's Verilog (board elaboration with DSP48E2 instances + the model, and the all-behavioural
  one) in Icarus under -g2005 and -g2012 and in Verilator: bit-exact against Graph.reference under 30 %
  stalls on both AXI-Stream ports, with no `always @*` left in the text.
- A small build's generated cocotb testbench passes under Icarus and fails when one golden output changes.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator
from networks import linear_net, plain_net
from test_packing_dsp48e2 import ACC, CONFIGS, FIRST, OTHER
from test_top import PLAIN_FOLD

from boards.ultra96 import Ultra96V2Platform
from mixq_hw.hdl_text import convert
from mixq_hw.packing.dsp48e2 import DSP48E2, VERILOG_MODEL, UltraScalePlus
from mixq_hw.packing.synth import run_yosys_script
from mixq_hw.pipeline import Accelerator, LayerFold
from mixq_hw.top import AxiStreamTop, emit_verilog
from mixq_hw.vectors import VECTORS_FILE, read_test_vectors, write_test_vectors
from sim.hdl import simulate_verilog, verilator_build_env

# the configurations the cores and requantizers instantiate, plus the rest of the modelled space
DSP_CONFIGS = {**CONFIGS, "requant": dict(areg=1, breg=1, creg=1)}


def _amaranth_trace(dsp: DSP48E2, stimuli: list[tuple]) -> list[int]:
    """P after every clock edge of the Amaranth behavioural model under ``stimuli``."""
    trace: list[int] = []

    async def bench(ctx):
        for a, b, c, d, op, ce, ce_p in stimuli:
            for port, value in ((dsp.a, a), (dsp.b, b), (dsp.c, c), (dsp.d, d), (dsp.opmode, op),
                                (dsp.ce, ce), (dsp.ce_p, ce_p)):
                ctx.set(port, value)
            await ctx.tick()
            trace.append(ctx.get(dsp.p))

    sim = Simulator(dsp)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


_SLICE_TB = """\
module slice_tb;
  reg clk = 1'b0;
  reg rst = 1'b0;
  reg [29:0] a; reg [17:0] b; reg [47:0] c; reg [26:0] d; reg [8:0] op; reg ce, ce_p;
  wire [47:0] p;
  reg [152:0] stim [0:{n}];
  integer k, fd;
  slice_top dut (.clk(clk), .rst(rst), .a(a), .b(b), .c(c), .d(d), .opmode(op), .ce(ce), .ce_p(ce_p), .p(p));
  initial begin
    $readmemh("stim.hex", stim);
    fd = $fopen("p.txt", "w");
    for (k = 0; k < {n}; k = k + 1) begin
      {{a, b, c, d, op, ce, ce_p}} = stim[k];
      #5 clk = 1'b1;
      #1 $fwrite(fd, "%h\\n", p);
      #4 clk = 1'b0;
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""


def _verilog_trace(dsp: DSP48E2, stimuli: list[tuple], folder: Path, generation: str) -> list[int]:
    """P after every clock edge of the primitive instance (as emitted for the board) + the Verilog model."""
    (folder / "slice.v").write_text(convert(dsp, "slice_top", UltraScalePlus()))
    n = len(stimuli)
    (folder / "slice_tb.v").write_text(_SLICE_TB.format(n=n))
    words = []
    for a, b, c, d, op, ce, ce_p in stimuli:
        words.append((((((a << 18 | b) << 48 | c) << 27 | d) << 9 | op) << 1 | ce) << 1 | ce_p)
    (folder / "stim.hex").write_text("".join(f"{w:039x}\n" for w in words))
    subprocess.run(["iverilog", f"-g{generation}", "-s", "slice_tb", "-o", "slice.vvp", "slice.v", "slice_tb.v",
                    str(VERILOG_MODEL)], cwd=folder, check=True, capture_output=True, text=True)
    subprocess.run(["vvp", "-n", "slice.vvp"], cwd=folder, check=True, capture_output=True, text=True)
    return [int(line, 16) for line in (folder / "p.txt").read_text().split()]


@pytest.mark.parametrize("name", sorted(DSP_CONFIGS))
def test_verilog_model_matches_the_amaranth_model(name, tmp_path):
    opmodes = (FIRST, ACC, *OTHER)
    rng = random.Random(name)
    edge = [0, 2**26 - 1, 2**26, 2**27 - 1, 2**30 - 1]
    stimuli = []
    for _ in range(500):
        a = rng.choice(edge) if rng.random() < 0.2 else rng.getrandbits(30)
        d = rng.choice(edge[:4]) if rng.random() < 0.2 else rng.getrandbits(27)
        b = rng.choice([0, 2**17 - 1, 2**17, 2**18 - 1]) if rng.random() < 0.2 else rng.getrandbits(18)
        stimuli.append((a, b, rng.getrandbits(48), d, rng.choice(opmodes), int(rng.random() < 0.8),
                        int(rng.random() < 0.7)))
    want = _amaranth_trace(DSP48E2(**DSP_CONFIGS[name], opmodes=opmodes), stimuli)
    assert len(set(want)) > 100, "the stimuli do not exercise the slice"
    for generation in ("2005", "2012"):
        got = _verilog_trace(DSP48E2(**DSP_CONFIGS[name], opmodes=opmodes), stimuli, tmp_path, generation)
        first = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w), None)
        assert len(got) == len(want) and first is None, f"{name} -g{generation}: first difference at cycle {first}"


def _compile(folder: Path, top: str, text: str, generation: str = "2012") -> subprocess.CompletedProcess:
    (folder / "t.v").write_text(text)
    done = subprocess.run(["iverilog", f"-g{generation}", "-s", top, "-o", "t.vvp", "t.v", str(VERILOG_MODEL)],
                          cwd=folder, capture_output=True, text=True)
    if done.returncode:
        return done
    return subprocess.run(["vvp", "-n", "t.vvp"], cwd=folder, capture_output=True, text=True)


@pytest.mark.parametrize("attribute, message", [
    (".AREG(3), .ACASCREG(3)", "unsupported_AREG_BREG"),
    (".AREG(2), .ACASCREG(1)", "unsupported_AREG_BREG"),
    (".MREG(0)", "unsupported_MREG_PREG_OPMODEREG"),
    ('.USE_SIMD("FOUR12")', "unsupported_USE_attribute"),
    ('.AMULTSEL("B")', "unsupported_AMULTSEL"),
    (".INMODEREG(1)", "unsupported_INMODEREG"),
])
def test_verilog_model_refuses_unmodelled_attributes(attribute, message, tmp_path):
    defaults = ".INMODEREG(0), .ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0)"
    if "INMODEREG" in attribute:
        defaults = ".ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0)"
    text = f"module t; wire [47:0] p; DSP48E2 #({defaults}, {attribute}) u (.CLK(1'b0), .P(p)); endmodule\n"
    done = _compile(tmp_path, "t", text)
    assert done.returncode != 0 and message in done.stdout + done.stderr, done.stdout + done.stderr
    # and the same instance with supported values elaborates
    ok = f"module t; wire [47:0] p; DSP48E2 #({defaults.replace('.INMODEREG(1)', '')}) u (.CLK(1'b0), .P(p)); endmodule\n"
    if "INMODEREG" in attribute:
        ok = ok.replace("#(", "#(.INMODEREG(0), ")
    assert _compile(tmp_path, "t", ok).returncode == 0


@pytest.mark.parametrize("ports, message", [
    (".ALUMODE(4'd1)", "ALUMODE=0001"),
    (".OPMODE(9'b000000101), .ALUMODE(4'd0), .RSTP(1'b1)", "reset pin"),
    (".OPMODE(9'b001000101)", "OPMODE 001000101"),     # Z = PCIN
])
def test_verilog_model_stops_on_unmodelled_controls(ports, message, tmp_path):
    ties = {"ALUMODE": "4'd0", "OPMODE": "9'b000000101", "INMODE": "5'd0", "CARRYIN": "1'b0",
            "CARRYINSEL": "3'd0", "RSTP": "1'b0", "CECTRL": "1'b1"}
    given = {part.split("(")[0].strip(" .") for part in ports.split(",")}
    wiring = ", ".join([ports] + [f".{k}({v})" for k, v in ties.items() if k not in given])
    text = (f"module t; reg clk = 0; wire [47:0] p;\n"
            f"DSP48E2 #(.INMODEREG(0), .ALUMODEREG(0), .CARRYINREG(0), .CARRYINSELREG(0)) u (.CLK(clk), {wiring}, .P(p));\n"
            f"initial begin repeat (6) #5 clk = ~clk; $display(\"ran through\"); $finish; end endmodule\n")
    done = _compile(tmp_path, "t", text)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and message in out and "ran through" not in out, out


# ---- the plain network in Icarus (-g2005, -g2012) and Verilator -----------------------------------------

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The plain network at test_top's folding: its graph, test images and both elaborations' Verilog."""
    folder = tmp_path_factory.mktemp("plain")
    graph = plain_net(np.random.default_rng(4))
    images = np.random.default_rng(1).integers(0, 256, (3, *graph.input_shape)).astype(np.uint8)
    verilog = {}
    for kind, platform in (("board", Ultra96V2Platform()), ("behavioural", None)):
        top = AxiStreamTop(Accelerator(graph, PLAIN_FOLD))
        verilog[kind] = (emit_verilog(top, folder / f"{kind}.v", platform=platform), top)
    return graph, images, verilog


@pytest.mark.parametrize("simulator", ["icarus-2005", "icarus-2012", "verilator"])
@pytest.mark.parametrize("kind", ["board", "behavioural"])
def test_plain_network_bit_exact_in_third_party_simulators(plain, kind, simulator, tmp_path):
    graph, images, verilog = plain
    path, top = verilog[kind]
    text = path.read_text()
    assert "always @*" not in text                     # nothing relies on a time-0 event
    assert ("DSP48E2 #(" in text) == (kind == "board")
    extra = (VERILOG_MODEL,) if kind == "board" else ()
    outputs, run = simulate_verilog(path, top, images, simulator, tmp_path, stall=0.3, seed=3,
                                    extra_sources=extra, max_cycles=50_000)
    np.testing.assert_array_equal(outputs, graph.reference(images))
    per = top.out_beats_per_frame
    assert [k for k, (_, _, last) in enumerate(run.beats) if last] == [per - 1, 2 * per - 1, 3 * per - 1]
    print(f"{kind} {simulator}: {run.cycles} cycles, {run.seconds:.1f} s")


def test_verilator_builds_share_their_runtime_through_ccache_when_it_is_installed(monkeypatch, tmp_path):
    """With ccache on PATH a ``verilator --binary`` build runs with ``OBJCACHE=ccache`` and a ccache folder in
    mixq's cache (or the user's ``$CCACHE_DIR``); without it, no OBJCACHE."""
    import sim.hdl as hdl

    monkeypatch.setenv("MIXQ_CACHE", str(tmp_path))
    monkeypatch.delenv("CCACHE_DIR", raising=False)
    monkeypatch.delenv("OBJCACHE", raising=False)
    monkeypatch.setattr(hdl.shutil, "which", lambda name: "/usr/bin/ccache" if name == "ccache" else None)
    env = verilator_build_env()
    assert env["OBJCACHE"] == "ccache" and env["CCACHE_DIR"] == str(tmp_path / "ccache")
    monkeypatch.setenv("CCACHE_DIR", "/somewhere/else")
    assert verilator_build_env()["CCACHE_DIR"] == "/somewhere/else"
    monkeypatch.setattr(hdl.shutil, "which", lambda name: None)
    assert "OBJCACHE" not in verilator_build_env()


def test_a_wrong_design_is_caught(plain, tmp_path):
    """The harness can fail: with a DSP48E2 model whose adder is off by one, the board Verilog still runs
    (no X) but its outputs differ from the reference."""
    graph, images, verilog = plain
    path, top = verilog["board"]
    model = VERILOG_MODEL.read_text()
    assert model.count("p_r <= z_mux + w_mux + xy_mux;") == 1
    wrong = tmp_path / "wrong_model.v"
    wrong.write_text(model.replace("p_r <= z_mux + w_mux + xy_mux;", "p_r <= z_mux + w_mux + xy_mux + 48'd1;"))
    outputs, _ = simulate_verilog(path, top, images, "icarus-2012", tmp_path / "run", stall=0.3,
                                  extra_sources=(wrong,), max_cycles=50_000)
    assert outputs.shape == graph.reference(images).shape
    assert not np.array_equal(outputs, graph.reference(images))


# ---- the cocotb testbench of a small build --------------------------------------------------------------

def _make(tb: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(["make", "-C", str(tb), "SIM=icarus"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, **env})


def test_build_ships_a_cocotb_testbench_that_checks_the_golden_outputs(tmp_path):
    from networks import small_graph

    from mixq_hw.build import build

    pytest.importorskip("cocotb", reason="cocotb comes with the dev extra (pip install -e .[dev])")
    source = tmp_path / "small.npz"
    small_graph().save(source)
    fold = tmp_path / "fold.json"
    fold.write_text('{"c1": {"simd": 3, "pe": 2, "pixels": 2}, "c2": {"simd": 8, "pe": 4, "pixels": 1}}')
    out = tmp_path / "build"
    build(source, out=out, fold=fold, quiet=True)
    vectors = read_test_vectors(out / VECTORS_FILE)
    assert vectors["images"].shape == (4, 3, 8, 8) and vectors["images"].dtype == np.uint8
    np.testing.assert_array_equal(vectors["expected"], small_graph().reference(vectors["images"]))
    assert "DSP48E2 #(" in (out / "mixq_accel.v").read_text()      # the board Verilog, run with the model

    done = _make(out / "tb", {})
    assert done.returncode == 0 and "FAIL=0" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    assert "bit-exact" in done.stdout

    altered = dict(vectors)
    altered["expected"] = vectors["expected"].copy()
    altered["expected"][2, 1, 3, 0] += 1
    bad = tmp_path / "altered.npz"
    np.savez(bad, **altered)
    done = _make(out / "tb", {"MIXQ_VECTORS": str(bad)})
    assert done.returncode != 0 or "FAIL=1" in done.stdout, done.stdout[-3000:]
    assert "FAIL=1" in done.stdout and "expected" in done.stdout, done.stdout[-3000:]


def test_test_vectors_refuse_wrong_images(tmp_path):
    graph = plain_net(np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        write_test_vectors(tmp_path / "v.npz", graph, np.zeros((2, 3, 8, 8), dtype=np.int64))
    with pytest.raises(ValueError, match="not a mixq test-vector file"):
        (tmp_path / "junk.npz").write_bytes(b"junk")
        read_test_vectors(tmp_path / "junk.npz")


_EQUIV = """\
read_verilog -lib +/xilinx/cells_xtra.v
read_verilog {gold}
hierarchy -top mixq_accel
proc
flatten
memory -nomap
opt_clean
rename mixq_accel gold
design -stash gold
read_verilog -lib +/xilinx/cells_xtra.v
read_verilog {gate}
hierarchy -top mixq_accel
proc
flatten
memory -nomap
opt_clean
rename mixq_accel gate
design -stash gate
design -copy-from gold -as gold gold
design -copy-from gate -as gate gate
equiv_make gold gate equiv
hierarchy -top equiv
equiv_simple -seq 2
equiv_induct -seq 2
equiv_status -assert
"""


def test_lowered_verilog_is_equivalent_to_amaranths(tmp_path):
    """yosys proves the emitted text (processes lowered) equivalent to Amaranth's own verilog.convert text,
    on a small board design with DSP48E2 instances (a blackbox here): the fix changes no logic."""
    from amaranth.back import verilog

    graph = linear_net(np.random.default_rng(6))
    top = AxiStreamTop(Accelerator(graph, {"fc": LayerFold(4, 3, 1)}))
    emit_verilog(top, tmp_path / "gate.v", platform=Ultra96V2Platform())
    assert "DSP48E2 #(" in (tmp_path / "gate.v").read_text()
    again = AxiStreamTop(Accelerator(graph, {"fc": LayerFold(4, 3, 1)}))
    (tmp_path / "gold.v").write_text(verilog.convert(again, name="mixq_accel", emit_src=False,
                                                     platform=Ultra96V2Platform()))
    assert "always @*" in (tmp_path / "gold.v").read_text()
    (tmp_path / "equiv.ys").write_text(_EQUIV.format(gold="gold.v", gate="gate.v"))
    failure = run_yosys_script(tmp_path, "equiv.ys", 900)
    log = (tmp_path / "yosys.log").read_text()
    assert failure is None and "Equivalence successfully proven" in log, log[-3000:]


def test_a_yosys_failure_while_writing_verilog_is_reported(monkeypatch):
    """A yosys run that fails names the design, its exit status and the end of its log."""
    import mixq_hw.hdl_text as hdl_text

    monkeypatch.setattr(hdl_text, "SCRIPT", "read_rtlil no_such_file.il\n")
    top = AxiStreamTop(Accelerator(linear_net(np.random.default_rng(6)), {"fc": LayerFold(4, 3, 1)}))
    with pytest.raises(hdl_text.VerilogError, match=r"yosys writing mixq_accel failed \(exit status [1-9]\)"):
        convert(top, "mixq_accel")


#: One text read for the per-module proof: processes and memories as yosys' equivalence passes take them, the
#: names yosys generates while lowering and optimising ($procmux$*, $auto$*) hidden (the -norename texts keep them
#: as public names, which equiv_make would pair although they name different logic in the two texts), and every
#: multiplier named after the wire it drives, so the two texts' multipliers pair as cells (below).
_PER_MODULE_READ = """\
{lib}read_verilog {text}
hierarchy -top mixq_accel
proc
memory -nomap
opt_clean
rename -hide w:$procmux$* w:$auto$* c:$procmux$* c:$auto$*
rename -wire t:$mul
design -stash {name}
"""

#: One module's proof.  The other modules are blackboxes: equiv_make pairs a submodule instance, a DSP48E2
#: primitive, a memory or a multiplier of the same name, type and parameters in both texts as one cell whose
#: inputs must be proven equal (each module is proven on its own, so the composition holds) and whose outputs
#: both sides share; -ignore-unknown-cells leaves those shared outputs free.  equiv_induct proves the flip-flops opt_dff
#: replaced by their constant initial value (their step; the initial values themselves are the texts').
_PER_MODULE_PROOF = """\
design -load boxes
design -copy-from gold -as gold {module}
design -copy-from gate -as gate {module}
equiv_make gold gate equiv
select -module equiv
equiv_simple -seq 2 -ignore-unknown-cells
equiv_induct -seq 2 -ignore-unknown-cells
tee -q -a status.txt log MODULE {module}
tee -q -a status.txt equiv_status
select -clear
"""


def _prove_per_module(folder: Path, gold: str, gate: str, only: str | None = None) -> dict[str, str]:
    """yosys' equivalence check of two Verilog texts of module ``mixq_accel``, one module at a time (``only``:
    that module alone); the modules with $equiv cells left unproven, each with its equiv_status report (empty:
    proven)."""
    modules = re.findall(r"^module (\\\S+|\w+)\s*\(", gold, re.MULTILINE)
    assert modules and modules == re.findall(r"^module (\\\S+|\w+)\s*\(", gate, re.MULTILINE)
    if only is not None:
        assert only in modules, only
        modules = [only]
    (folder / "gold.v").write_text(gold)
    (folder / "gate.v").write_text(gate)
    lib = "read_verilog -lib +/xilinx/cells_xtra.v\n" if "DSP48E2 #(" in gold else ""   # the primitives' ports
    script = (_PER_MODULE_READ.format(lib=lib, text="gold.v", name="gold")
              + _PER_MODULE_READ.format(lib=lib, text="gate.v", name="gate")
              + lib + "design -copy-from gold *\nblackbox *\ndesign -save boxes\n"
              + "".join(_PER_MODULE_PROOF.format(module=m) for m in modules))
    (folder / "per_module.ys").write_text(script)
    (folder / "status.txt").unlink(missing_ok=True)
    failure = run_yosys_script(folder, "per_module.ys", 900)
    assert failure is None, failure
    reports = (folder / "status.txt").read_text().split("MODULE ")[1:]
    assert [r.split("\n", 1)[0].strip() for r in reports] == modules, reports
    return {m: r for m, r in zip(modules, reports) if "Equivalence successfully proven" not in r}


def _texts(graph, fold, board: bool = False) -> tuple[str, str, str]:
    """The emitted text of ``graph`` under ``fold`` (module mixq_accel, the behavioural DSP48E2 model; with
    ``board`` the board's top level with DSP48E2 primitives, as a build writes ``design.v`` and ``sim.v``), its
    :data:`SIM_OPT` text and its simulation text, from one RTLIL."""
    from mixq_hw.hdl_text import SIM_OPT, simulation_text, texts_from_rtlil
    from mixq_hw.stage_ports import rtlil_text

    if board:
        il = rtlil_text(AxiStreamTop(Accelerator(graph, fold)), "mixq_accel", Ultra96V2Platform())
        gold, text = texts_from_rtlil(il, "mixq_accel")
        return gold, simulation_text(il, "mixq_accel", passes=SIM_OPT), text
    il = rtlil_text(Accelerator(graph, fold), "mixq_accel")
    gold = convert(Accelerator(graph, fold), "mixq_accel")
    return gold, simulation_text(il, "mixq_accel", passes=SIM_OPT), simulation_text(il, "mixq_accel")


#: the folding of the proofs below: a small accelerator (DSP48E2 cores, FIFOs, the fully connected window whose
#: ``need`` flip-flop yosys folds into a constant)
_LINEAR_FOLD = {"fc": LayerFold(4, 3, 1)}


@pytest.fixture(scope="module")
def linear_texts():
    """:func:`_texts` of ``linear_net(6)`` at :data:`_LINEAR_FOLD` by ``board``, each made once per module (per
    pytest worker) and only read by the proofs."""
    made: dict[bool, tuple[str, str, str]] = {}

    def texts(board: bool) -> tuple[str, str, str]:
        if board not in made:
            made[board] = _texts(linear_net(np.random.default_rng(6)), _LINEAR_FOLD, board=board)
        return made[board]

    return texts


def test_simulation_text_is_the_emitted_logic_without_attributes_or_unread_wires(tmp_path, linear_texts):
    """The Verilog the Verilator backend compiles (hdl_text.simulation_text) has no attribute, no `always @*`
    and almost none of the wires Amaranth adds for the fields of structured signals (a field wire stays only
    where it names bits that logic reads), keeps the ports, and yosys proves it equivalent to the text a build
    emits in two steps, module by module: the emitted text against :data:`SIM_OPT`'s (clock enables, constant
    flip-flops folded, every name kept), and that against the simulation text (unread wires removed)."""
    from amaranth.back import verilog

    gold, optimised, text = linear_texts(False)
    amaranths = verilog.convert(Accelerator(linear_net(np.random.default_rng(6)), _LINEAR_FOLD), name="mixq_accel")
    field_wires = [len(re.findall(r"wire (signed )?(\[\d+:0\] )?\\\S+\[\d+\] ;", t)) for t in (amaranths, text)]
    assert "(*" in amaranths and "always @*" in amaranths and field_wires[0] > 100
    assert "(*" not in text and "always @*" not in text and field_wires[1] * 10 < field_wires[0], field_wires
    assert len(text) < len(amaranths) / 2

    def header(verilog_text: str) -> set[str]:
        ports = re.search(r"^module mixq_accel\((.*?)\);", verilog_text, re.MULTILINE | re.DOTALL)
        assert ports is not None
        return {p.strip() for p in ports.group(1).split(",")}

    assert header(text) == header(amaranths)
    # the step the proof needs induction for is there: a flip-flop folded into its constant (the fully
    # connected window's `need`, never leaving its initial 1)
    assert "assign need = 2'h1;" in optimised and "assign need = " not in gold
    for step, (before, after) in {"opt": (gold, optimised), "purge": (optimised, text)}.items():
        (tmp_path / step).mkdir()
        assert _prove_per_module(tmp_path / step, before, after) == {}, step


def test_board_simulation_text_is_the_emitted_logic(tmp_path, linear_texts):
    """The build's simulation text (``sim.v`` beside ``design.v``, the board elaboration with DSP48E2 primitive
    instances) is proven equivalent to its emitted text the same way, the primitives as blackboxes whose
    inputs are compared."""
    gold, optimised, text = linear_texts(True)
    assert "DSP48E2 #(" in gold and "DSP48E2 #(" in text
    for step, (before, after) in {"opt": (gold, optimised), "purge": (optimised, text)}.items():
        (tmp_path / step).mkdir()
        assert _prove_per_module(tmp_path / step, before, after) == {}, step


@pytest.mark.parametrize("change", ["fifo", "constant", "multiplier", "primitive"])
def test_the_equivalence_check_fails_on_a_changed_simulation_text(change, tmp_path, linear_texts):
    """The proof above can fail, in each of its steps: one comparison changed in the simulation text (a FIFO's
    ``filled < 4`` made ``filled <= 4``), the constant a folded flip-flop became (the fully connected window's
    ``need``) changed in the optimised text, or one multiplier's operand swapped for another register of the
    DSP48E2 model (the multipliers pair as cells, so their operands are compared) leaves $equiv cells unproven
    in the changed module (proven alone here, as the proof above proves each module)."""
    gold, optimised, text = linear_texts(change == "primitive")
    if change in ("fifo", "primitive"):
        before, after = optimised, text
        changed = re.sub(r"(assign i__ready = filled) < (\d+'h\d+);", r"\1 <= \2;", text, count=1) \
            if change == "fifo" else re.sub(r"(DSP48E2 #\(.*?\.CEP\()[^)]*\)", r"\g<1>1'h1)", text, count=1,
                                            flags=re.DOTALL)
    elif change == "constant":
        before, after = gold, optimised
        changed = re.sub(r"(assign \S+\s+= filled >= )2'h1;", r"\g<1>2'h2;", optimised, count=1)
    else:
        before, after = gold, optimised
        changed = re.sub(r"(assign \\\$1  = \$signed\(\{[^}]*)a2\[7:0\]", r"\1a1[7:0]", optimised, count=1)
    assert changed != after
    # the module the change is in (the last one that starts before the first changed character)
    first = next(i for i, (x, y) in enumerate(zip(after, changed)) if x != y)
    module = re.findall(r"^module (\\\S+|\w+)\s*\(", changed[:first], re.MULTILINE)[-1]
    unproven = _prove_per_module(tmp_path, before, changed, only=module)
    assert unproven and all(re.search(r"Of those cells \d+ are proven and [1-9]\d* are unproven", r)
                            for r in unproven.values()), unproven


def test_simulation_passes_are_checked_before_yosys_runs():
    """Other optimisation passes (benchmarks/sim_backends.py --sim-passes) are yosys optimisation passes with
    plain options, or a ValueError naming the offending one; nothing else reaches the yosys script."""
    from mixq_hw.hdl_text import SIM_PASSES, SIM_SCRIPT, check_passes, simulation_text

    assert "\n" + "\n".join(check_passes(SIM_PASSES)) + "\nwrite_verilog" in SIM_SCRIPT
    assert check_passes("opt -purge; opt_dff -sat") == ["opt -purge", "opt_dff -sat"]
    for bad in ["read_verilog other.v", "opt -purge\nshell", "tee -o log.txt opt", "opt;;", "opt_dff -sat x",
                "write_verilog -noattr"]:
        with pytest.raises(ValueError, match="not one of yosys' optimisation passes"):
            check_passes(bad)
    with pytest.raises(ValueError, match="'shell' is not one of"):
        simulation_text("this RTLIL is never read", "mixq_accel", passes="opt -purge; shell")


def test_other_simulation_passes_change_the_text():
    """``passes`` reaches yosys: ``opt -purge -nodffe`` (no clock enable) writes feedback multiplexers where the
    default writes enable flip-flops, on the same RTLIL."""
    from amaranth.back import rtlil

    from mixq_hw.hdl_text import simulation_text

    il = rtlil.convert(Accelerator(linear_net(np.random.default_rng(6)), {"fc": LayerFold(4, 3, 1)}),
                       name="mixq_accel", emit_src=False)
    default, nodffe = simulation_text(il, "mixq_accel"), simulation_text(il, "mixq_accel", passes="opt -purge -nodffe")
    enables = [len(re.findall(r"^\s+else if \(", t, re.MULTILINE)) + len(re.findall(r"^\s+if \((?!rst\))", t, re.MULTILINE))
               for t in (default, nodffe)]
    assert default != nodffe and len(default) < len(nodffe) and enables[0] > enables[1], enables
