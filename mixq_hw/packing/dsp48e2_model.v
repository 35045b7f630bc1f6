// Behavioural model of the DSP48E2 subset that mixq's instances use, for third-party simulators
// (Icarus Verilog, Verilator, cocotb flows).  Written by the mixq project from the DSP48E2 description
// in UG579 (UltraScale Architecture DSP Slice User Guide), like mixq_hw/packing/dsp48e2.py's Amaranth
// model, and checked cycle by cycle against that model (tests/test_sim_hdl.py).  It is not Xilinx's
// simulation model: Vivado's own simulator and Vivado synthesis use the UNISIM primitive instead.
//
// Modelled: A/B register chains (AREG, BREG 0..2, taps A2/B2: INMODE[0] = INMODE[4] = 0), C, D, AD
// registers (0..1), the 27-bit pre-adder D +- A (AMULTSEL "AD"; INMODE[1] gates A, INMODE[2] enables
// D, INMODE[3] subtracts) or A alone (AMULTSEL "A"), the signed 27 x 18 multiplier with its M register,
// the registered OPMODE (W in {0, C}, X = Y in {0, M}, Z in {0, P, C, PCIN}; PCOUT = P) and the 48-bit adder with
// ALUMODE 0000 (P = Z + W + X + Y, modulo 2**48), every register on its own clock enable, powered up 0.
// Anything else fails loudly: an attribute value outside the subset instantiates a module whose name
// states the problem (an elaboration error in every simulator), and a port driven outside the subset
// (ALUMODE, CARRYIN, CARRYINSEL, resets, INMODE taps, an unmodelled OPMODE) stops the simulation ($fatal).
`timescale 1ns / 1ps
module DSP48E2 #(
  parameter A_INPUT = "DIRECT",
  parameter B_INPUT = "DIRECT",
  parameter AMULTSEL = "A",
  parameter BMULTSEL = "B",
  parameter PREADDINSEL = "A",
  parameter USE_MULT = "MULTIPLY",
  parameter USE_SIMD = "ONE48",
  parameter USE_WIDEXOR = "FALSE",
  parameter USE_PATTERN_DETECT = "NO_PATDET",
  parameter integer AREG = 1,
  parameter integer ACASCREG = 1,
  parameter integer BREG = 1,
  parameter integer BCASCREG = 1,
  parameter integer CREG = 1,
  parameter integer DREG = 1,
  parameter integer ADREG = 1,
  parameter integer MREG = 1,
  parameter integer PREG = 1,
  parameter integer OPMODEREG = 1,
  parameter integer INMODEREG = 1,
  parameter integer ALUMODEREG = 1,
  parameter integer CARRYINREG = 1,
  parameter integer CARRYINSELREG = 1
) (
  input CLK,
  input [29:0] A, input [17:0] B, input [47:0] C, input [26:0] D,
  input [4:0] INMODE, input [8:0] OPMODE, input [3:0] ALUMODE,
  input CARRYIN, input [2:0] CARRYINSEL,
  input [29:0] ACIN, input [17:0] BCIN, input [47:0] PCIN, input CARRYCASCIN, input MULTSIGNIN,
  input CEA1, input CEA2, input CEB1, input CEB2, input CEC, input CED, input CEAD, input CEM, input CEP,
  input CECTRL, input CEINMODE, input CEALUMODE, input CECARRYIN,
  input RSTA, input RSTB, input RSTC, input RSTD, input RSTM, input RSTP, input RSTCTRL,
  input RSTALLCARRYIN, input RSTALUMODE, input RSTINMODE,
  output [47:0] P, output [47:0] PCOUT
);
  // ---- attributes outside the modelled subset: elaboration errors that name the attribute ----
  generate
    if (A_INPUT != "DIRECT" || B_INPUT != "DIRECT")
      DSP48E2_model_unsupported_A_INPUT_or_B_INPUT_only_DIRECT bad_input ();
    if (AMULTSEL != "A" && AMULTSEL != "AD")
      DSP48E2_model_unsupported_AMULTSEL_only_A_or_AD bad_amultsel ();
    if (BMULTSEL != "B" || PREADDINSEL != "A")
      DSP48E2_model_unsupported_BMULTSEL_B_and_PREADDINSEL_A_only bad_bmultsel ();
    if (USE_MULT != "MULTIPLY" || USE_SIMD != "ONE48" || USE_WIDEXOR != "FALSE"
        || USE_PATTERN_DETECT != "NO_PATDET")
      DSP48E2_model_unsupported_USE_attribute_only_MULTIPLY_ONE48_FALSE_NO_PATDET bad_use ();
    if (AREG < 0 || AREG > 2 || ACASCREG != AREG || BREG < 0 || BREG > 2 || BCASCREG != BREG)
      DSP48E2_model_unsupported_AREG_BREG_only_0_to_2_with_equal_CASCREG bad_ab_regs ();
    if (CREG < 0 || CREG > 1 || DREG < 0 || DREG > 1 || ADREG < 0 || ADREG > 1)
      DSP48E2_model_unsupported_CREG_DREG_ADREG_only_0_or_1 bad_cd_regs ();
    if (MREG != 1 || PREG != 1 || OPMODEREG != 1)
      DSP48E2_model_unsupported_MREG_PREG_OPMODEREG_only_1 bad_mp_regs ();
    if (INMODEREG != 0 || ALUMODEREG != 0 || CARRYINREG != 0 || CARRYINSELREG != 0)
      DSP48E2_model_unsupported_INMODEREG_ALUMODEREG_CARRYINREG_CARRYINSELREG_only_0 bad_ctrl_regs ();
  endgenerate

  // ---- registers (power-up 0, like the slice after configuration) ----
  reg [29:0] a1 = 30'd0, a2 = 30'd0;
  reg [17:0] b1 = 18'd0, b2 = 18'd0;
  reg [47:0] c_r = 48'd0;
  reg [26:0] d_r = 27'd0, ad_r = 27'd0;
  reg [44:0] m_r = 45'd0;
  reg [8:0] opmode_r = 9'd0;
  reg [47:0] p_r = 48'd0;

  wire [29:0] a_tap = (AREG == 0) ? A : a2;
  wire [17:0] b_tap = (BREG == 0) ? B : b2;
  wire [47:0] c_tap = (CREG == 0) ? C : c_r;
  wire [26:0] d_tap = (DREG == 0) ? D : d_r;

  wire [26:0] pre_a = INMODE[1] ? 27'd0 : a_tap[26:0];
  wire [26:0] pre_d = INMODE[2] ? d_tap : 27'd0;
  wire [26:0] pre = INMODE[3] ? pre_d - pre_a : pre_d + pre_a;
  wire [26:0] ad_tap = (ADREG == 0) ? pre : ad_r;
  wire [26:0] mult_a = (AMULTSEL == "AD") ? ad_tap : a_tap[26:0];
  wire signed [44:0] product = $signed(mult_a) * $signed(b_tap);

  wire [47:0] w_mux = (opmode_r[8:7] == 2'b11) ? c_tap : 48'd0;
  wire [47:0] xy_mux = (opmode_r[3:0] == 4'b0101) ? {{3{m_r[44]}}, m_r} : 48'd0;
  wire [47:0] z_mux = (opmode_r[6:4] == 3'b010) ? p_r : (opmode_r[6:4] == 3'b011) ? c_tap
                     : (opmode_r[6:4] == 3'b001) ? PCIN : 48'd0;

  always @(posedge CLK) begin
    if (CEA1) a1 <= A;
    if (CEA2) a2 <= (AREG == 2) ? a1 : A;
    if (CEB1) b1 <= B;
    if (CEB2) b2 <= (BREG == 2) ? b1 : B;
    if (CEC) c_r <= C;
    if (CED) d_r <= D;
    if (CEAD) ad_r <= pre;
    if (CEM) m_r <= product;
    if (CECTRL) opmode_r <= OPMODE;
    if (CEP) p_r <= z_mux + w_mux + xy_mux;
  end
  assign P = p_r;
  assign PCOUT = p_r;

  // ---- ports driven outside the modelled subset stop the simulation (unknown values pass, as X) ----
  wire [8:0] op = opmode_r;
  wire op_known = (^op === 1'b0) || (^op === 1'b1);
  wire op_ok = (op[8:7] == 2'b00 || op[8:7] == 2'b11) && (op[3:0] == 4'b0000 || op[3:0] == 4'b0101)
               && (op[6:4] == 3'b000 || op[6:4] == 3'b001 || op[6:4] == 3'b010 || op[6:4] == 3'b011);
  // a control bit counts when it is a known 1 (an unconnected pin floats Z, as Vivado ties it to 0)
  wire ctrl_bad = ((|ALUMODE) === 1'b1) || (CARRYIN === 1'b1) || ((|CARRYINSEL) === 1'b1)
                  || (INMODE[0] === 1'b1) || (INMODE[4] === 1'b1) || (AMULTSEL == "A" && (|INMODE[3:1]) === 1'b1)
                  || ((|{RSTA, RSTB, RSTC, RSTD, RSTM, RSTP, RSTCTRL, RSTALLCARRYIN, RSTALUMODE, RSTINMODE}) === 1'b1);
  always @(posedge CLK) begin
    if (ctrl_bad) begin
      $fatal(1, "DSP48E2 model (%m): ALUMODE=%b CARRYIN=%b CARRYINSEL=%b INMODE=%b or a reset pin is outside the modelled subset (ALUMODE 0, no carry, INMODE taps A2/B2, resets low)",
             ALUMODE, CARRYIN, CARRYINSEL, INMODE);
    end
    if (op_known && !op_ok) begin
      $fatal(1, "DSP48E2 model (%m): OPMODE %b is outside the modelled subset (W 0/C, X = Y 0/M, Z 0/P/C/PCIN)", op);
    end
  end
endmodule
