"""The DSP48E2 Verilog model (mixq_hw/packing/dsp48e2_model.v) over its whole modelled space.

One Verilog design holds a slice of every register configuration the model accepts (AREG, BREG 0..2 with
equal CASCREG, CREG, DREG, ADREG 0..1 on the pre-adder input; AREG, BREG, CREG on the A input), every
pre-adder INMODE among them, wired the way :class:`mixq_hw.packing.dsp48e2.DSP48E2` wires the primitive
(one clock enable, CEA1/CEB1 only with two registers), each slice's PCIN fed by the previous slice's PCOUT.
All slices see the same random operands (with the multiplier's and pre-adder's extremes), every modelled
OPMODE value (W 0/C, X = Y 0/M, Z 0/P/C/PCIN) and random clock enables; every slice's P after every edge,
in Icarus and in Verilator, must equal the UG579 reference of tests/test_packing_dsp48e2.py.
"""

from __future__ import annotations

import itertools
import random
import subprocess
from pathlib import Path

import pytest
from test_packing_dsp48e2 import Reference

from mixq_hw.packing.dsp48e2 import VERILOG_MODEL, DSP48E2Config, opmode
from sim.hdl import verilator_build_env, verilator_command, verilator_make_flags

#: Every OPMODE the model covers.
OPMODES = tuple(opmode(w=w, xy=xy, z=z) for w in ("0", "C") for xy in ("0", "M") for z in ("0", "P", "C", "PCIN"))
#: The pre-adder's INMODE values (INMODE[1] gates A, [2] enables D, [3] subtracts; taps A2/B2).
PRE_INMODES = tuple(bits << 1 for bits in range(8))
CYCLES = 300


def configurations() -> list[DSP48E2Config]:
    """Every register configuration on each multiplier input, the pre-adder's INMODEs spread over them."""
    ad = [DSP48E2Config(areg=a, breg=b, creg=c, dreg=d, adreg=ad, amultsel="AD", inmode=PRE_INMODES[k % 8],
                        opmodes=OPMODES, pcin=True)
          for k, (a, b, c, d, ad) in enumerate(itertools.product(range(3), range(3), range(2), range(2), range(2)))]
    direct = [DSP48E2Config(areg=a, breg=b, creg=c, amultsel="A", inmode=0, opmodes=OPMODES, pcin=True)
              for a, b, c in itertools.product(range(3), range(3), range(2))]
    return ad + direct


def _instance(k: int, cfg: DSP48E2Config, n: int) -> str:
    params = {"AMULTSEL": f'"{cfg.amultsel}"', "AREG": cfg.areg, "ACASCREG": cfg.areg, "BREG": cfg.breg,
              "BCASCREG": cfg.breg, "CREG": cfg.creg, "DREG": cfg.dreg, "ADREG": cfg.adreg, "INMODEREG": 0,
              "ALUMODEREG": 0, "CARRYINREG": 0, "CARRYINSELREG": 0}
    ports = {"CLK": "clk", "A": "a", "B": "b", "C": "c", "D": "d", "INMODE": f"5'd{cfg.inmode}", "OPMODE": "op",
             "ALUMODE": "4'd0", "CARRYIN": "1'b0", "CARRYINSEL": "3'd0", "ACIN": "30'd0", "BCIN": "18'd0",
             "PCIN": f"p[{(k - 1) % n}]", "CARRYCASCIN": "1'b0", "MULTSIGNIN": "1'b0",
             "CEA1": "ce" if cfg.areg == 2 else "1'b0", "CEA2": "ce" if cfg.areg else "1'b0",
             "CEB1": "ce" if cfg.breg == 2 else "1'b0", "CEB2": "ce" if cfg.breg else "1'b0",
             "CEC": "ce", "CED": "ce", "CEAD": "ce", "CEM": "ce", "CEP": "ce_p", "CECTRL": "ce",
             "CEINMODE": "1'b0", "CEALUMODE": "1'b0", "CECARRYIN": "1'b0",
             **{pin: "1'b0" for pin in ("RSTA", "RSTB", "RSTC", "RSTD", "RSTM", "RSTP", "RSTCTRL", "RSTALLCARRYIN",
                                        "RSTALUMODE", "RSTINMODE")},
             "P": f"p[{k}]", "PCOUT": f"pcout[{k}]"}
    return (f"  DSP48E2 #({', '.join(f'.{name}({value})' for name, value in params.items())}) u{k} ("
            f"{', '.join(f'.{name}({value})' for name, value in ports.items())});\n")


def _testbench(configs: list[DSP48E2Config]) -> str:
    n = len(configs)
    show = ", ".join(f"p[{k}]" for k in range(n))
    return (f"module wide_tb;\n"
            f"  reg clk = 1'b0;\n"
            f"  reg [29:0] a; reg [17:0] b; reg [47:0] c; reg [26:0] d; reg [8:0] op; reg ce, ce_p;\n"
            f"  wire [47:0] p [0:{n - 1}];\n  wire [47:0] pcout [0:{n - 1}];\n"
            f"  reg [152:0] stim [0:{CYCLES - 1}];\n  integer k, fd;\n"
            + "".join(_instance(k, cfg, n) for k, cfg in enumerate(configs)) +
            f"  initial begin\n"
            f"    $readmemh(\"stim.hex\", stim);\n    fd = $fopen(\"p.txt\", \"w\");\n"
            f"    for (k = 0; k < {CYCLES}; k = k + 1) begin\n"
            f"      {{a, b, c, d, op, ce, ce_p}} = stim[k];\n"
            f"      #5 clk = 1'b1;\n"
            f"      #1 $fwrite(fd, \"{' '.join(['%h'] * n)}\\n\", {show});\n"
            f"      #4 clk = 1'b0;\n"
            f"    end\n    $fclose(fd);\n    $finish;\n  end\nendmodule\n")


def _stimuli() -> list[tuple[int, ...]]:
    rng = random.Random(48)
    edge = [0, 2**26 - 1, 2**26, 2**27 - 1, 2**30 - 1]
    stimuli = []
    for _ in range(CYCLES):
        a = rng.choice(edge) if rng.random() < 0.2 else rng.getrandbits(30)
        d = rng.choice(edge[:4]) if rng.random() < 0.2 else rng.getrandbits(27)
        b = rng.choice([0, 2**17 - 1, 2**17, 2**18 - 1]) if rng.random() < 0.2 else rng.getrandbits(18)
        c = rng.choice([0, 2**47, 2**48 - 1]) if rng.random() < 0.1 else rng.getrandbits(48)
        stimuli.append((a, b, c, d, rng.choice(OPMODES), int(rng.random() < 0.8), int(rng.random() < 0.7)))
    return stimuli


def _reference(configs: list[DSP48E2Config], stimuli: list[tuple[int, ...]]) -> list[list[int]]:
    slices = [Reference(cfg) for cfg in configs]
    trace = []
    for a, b, c, d, op, ce, ce_p in stimuli:
        before = [s.p for s in slices]          # PCIN is the previous slice's registered P
        for k, s in enumerate(slices):
            s.step(a, b, c, d, op, bool(ce), bool(ce_p), pcin=before[k - 1])
        trace.append([s.p for s in slices])
    return trace


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """The folder with the testbench and its stimuli, the configurations and the reference trace."""
    folder = tmp_path_factory.mktemp("wide")
    configs, stimuli = configurations(), _stimuli()
    (folder / "wide_tb.v").write_text(_testbench(configs))
    words = [(((((((a << 18 | b) << 48 | c) << 27 | d) << 9 | op) << 1 | ce) << 1) | ce_p)
             for a, b, c, d, op, ce, ce_p in stimuli]
    (folder / "stim.hex").write_text("".join(f"{w:039x}\n" for w in words))
    return folder, configs, _reference(configs, stimuli)


def _run(simulator: str, folder: Path) -> list[list[int]]:
    sources = ["wide_tb.v", str(VERILOG_MODEL)]
    if simulator.startswith("icarus"):
        subprocess.run(["iverilog", f"-g{simulator.split('-')[1]}", "-s", "wide_tb", "-o", "wide.vvp", *sources],
                       cwd=folder, check=True, capture_output=True, text=True)
        subprocess.run(["vvp", "-n", "wide.vvp"], cwd=folder, check=True, capture_output=True, text=True)
    else:
        subprocess.run([*verilator_command(), "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module",
                        "wide_tb", "-Mdir", "obj_dir", *verilator_make_flags(), "-o", "wide_tb", *sources],
                       cwd=folder, check=True, capture_output=True, text=True, env=verilator_build_env())
        subprocess.run([str(folder / "obj_dir" / "wide_tb")], cwd=folder, check=True, capture_output=True, text=True)
    return [[int(v, 16) for v in line.split()] for line in (folder / "p.txt").read_text().splitlines()]


def test_the_configurations_cover_the_model():
    configs = configurations()
    assert len({(c.areg, c.breg, c.creg, c.dreg, c.adreg) for c in configs if c.amultsel == "AD"}) == 72
    assert {c.inmode for c in configs if c.amultsel == "AD"} == set(PRE_INMODES)
    assert len({(c.areg, c.breg, c.creg) for c in configs if c.amultsel == "A"}) == 18
    assert len(OPMODES) == 16


@pytest.mark.parametrize("simulator", ["icarus-2005", "verilator"])
def test_verilog_model_matches_the_reference_in_every_configuration(wide, simulator):
    folder, configs, want = wide
    got = _run(simulator, folder)
    assert len(got) == CYCLES and all(len(row) == len(configs) for row in got)
    for k, cfg in enumerate(configs):
        column = [row[k] for row in want]
        assert len(set(column)) > CYCLES // 3, f"slice {k} ({cfg}) is hardly exercised"
        first = next((t for t, row in enumerate(got) if row[k] != want[t][k]), None)
        assert first is None, (f"{simulator}: slice {k} ({cfg}) differs first after edge {first}: "
                               f"{got[first][k]:#x}, reference {want[first][k]:#x}")
