// Behavioural model of the DSP48E2 subset that mixq's instances use, for third-party simulators
// (Icarus Verilog, Verilator, cocotb flows).  Written by the mixq project from the DSP48E2 description
// in UG579 (UltraScale Architecture DSP Slice User Guide), like mixq_hw/packing/dsp48e2.py's Amaranth
// model, and checked cycle by cycle against that model (tests/test_sim_hdl.py) and against the UG579
// reference in every configuration it accepts (tests/test_dsp48e2_model.py).  It is not Xilinx's
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
//
// Written for simulation speed (a network instantiates hundreds of slices): the attributes select the
// registers and the pre-adder at elaboration (generate blocks), so a slice holds only what its
// configuration uses; only the 27 bits of A that reach the multiplier are registered; the OPMODE
// register holds the decoded multiplexer selects.
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
    if (A_INPUT != "DIRECT" || B_INPUT != "DIRECT") begin : refuse_input
      DSP48E2_model_unsupported_A_INPUT_or_B_INPUT_only_DIRECT bad_input ();
    end
    if (AMULTSEL != "A" && AMULTSEL != "AD") begin : refuse_amultsel
      DSP48E2_model_unsupported_AMULTSEL_only_A_or_AD bad_amultsel ();
    end
    if (BMULTSEL != "B" || PREADDINSEL != "A") begin : refuse_bmultsel
      DSP48E2_model_unsupported_BMULTSEL_B_and_PREADDINSEL_A_only bad_bmultsel ();
    end
    if (USE_MULT != "MULTIPLY" || USE_SIMD != "ONE48" || USE_WIDEXOR != "FALSE"
        || USE_PATTERN_DETECT != "NO_PATDET") begin : refuse_use
      DSP48E2_model_unsupported_USE_attribute_only_MULTIPLY_ONE48_FALSE_NO_PATDET bad_use ();
    end
    if (AREG < 0 || AREG > 2 || ACASCREG != AREG || BREG < 0 || BREG > 2 || BCASCREG != BREG) begin : refuse_ab
      DSP48E2_model_unsupported_AREG_BREG_only_0_to_2_with_equal_CASCREG bad_ab_regs ();
    end
    if (CREG < 0 || CREG > 1 || DREG < 0 || DREG > 1 || ADREG < 0 || ADREG > 1) begin : refuse_cd
      DSP48E2_model_unsupported_CREG_DREG_ADREG_only_0_or_1 bad_cd_regs ();
    end
    if (MREG != 1 || PREG != 1 || OPMODEREG != 1) begin : refuse_mp
      DSP48E2_model_unsupported_MREG_PREG_OPMODEREG_only_1 bad_mp_regs ();
    end
    if (INMODEREG != 0 || ALUMODEREG != 0 || CARRYINREG != 0 || CARRYINSELREG != 0) begin : refuse_ctrl
      DSP48E2_model_unsupported_INMODEREG_ALUMODEREG_CARRYINREG_CARRYINSELREG_only_0 bad_ctrl_regs ();
    end
  endgenerate

  // ---- input registers, as many as the attributes ask for (power-up 0, like the slice) ----
  wire [26:0] a_tap;   // the A2 tap: A[26:0] after AREG registers (A[29:27] reach only the unmodelled ALU inputs)
  wire [17:0] b_tap;
  wire [47:0] c_tap;
  wire [26:0] mult_a;
  generate
    if (AREG == 0) begin : a_direct
      assign a_tap = A[26:0];
    end else if (AREG == 1) begin : a_one
      reg [26:0] a2 = 27'd0;
      always @(posedge CLK) if (CEA2) a2 <= A[26:0];
      assign a_tap = a2;
    end else begin : a_two
      reg [26:0] a1 = 27'd0, a2 = 27'd0;
      always @(posedge CLK) begin
        if (CEA1) a1 <= A[26:0];
        if (CEA2) a2 <= a1;
      end
      assign a_tap = a2;
    end
    if (BREG == 0) begin : b_direct
      assign b_tap = B;
    end else if (BREG == 1) begin : b_one
      reg [17:0] b2 = 18'd0;
      always @(posedge CLK) if (CEB2) b2 <= B;
      assign b_tap = b2;
    end else begin : b_two
      reg [17:0] b1 = 18'd0, b2 = 18'd0;
      always @(posedge CLK) begin
        if (CEB1) b1 <= B;
        if (CEB2) b2 <= b1;
      end
      assign b_tap = b2;
    end
    if (CREG == 0) begin : c_direct
      assign c_tap = C;
    end else begin : c_one
      reg [47:0] c_r = 48'd0;
      always @(posedge CLK) if (CEC) c_r <= C;
      assign c_tap = c_r;
    end
    // the pre-adder (and the D and AD registers) exist only on the AD multiplier input
    if (AMULTSEL == "AD") begin : pre_adder
      wire [26:0] d_tap;
      if (DREG == 0) begin : d_direct
        assign d_tap = D;
      end else begin : d_one
        reg [26:0] d_r = 27'd0;
        always @(posedge CLK) if (CED) d_r <= D;
        assign d_tap = d_r;
      end
      wire [26:0] pre_a = INMODE[1] ? 27'd0 : a_tap;
      wire [26:0] pre_d = INMODE[2] ? d_tap : 27'd0;
      wire [26:0] pre = INMODE[3] ? pre_d - pre_a : pre_d + pre_a;
      if (ADREG == 0) begin : ad_direct
        assign mult_a = pre;
      end else begin : ad_one
        reg [26:0] ad_r = 27'd0;
        always @(posedge CLK) if (CEAD) ad_r <= pre;
        assign mult_a = ad_r;
      end
    end else begin : a_only
      assign mult_a = a_tap;
    end
  endgenerate

  // ---- multiplier (M register), registered OPMODE (held decoded) and the 48-bit adder ----
  reg [44:0] m_r = 45'd0;
  reg w_c = 1'b0, xy_m = 1'b0;          // W = C; X = Y = M
  reg z_p = 1'b0, z_c = 1'b0, z_pcin = 1'b0;  // Z = P, C or PCIN (none: 0)
  reg [47:0] p_r = 48'd0;
  wire [47:0] w_mux = w_c ? c_tap : 48'd0;
  wire [47:0] xy_mux = xy_m ? {{3{m_r[44]}}, m_r} : 48'd0;
  wire [47:0] z_mux = z_p ? p_r : z_c ? c_tap : z_pcin ? PCIN : 48'd0;
  always @(posedge CLK) begin
    if (CEM) m_r <= $signed(mult_a) * $signed(b_tap);
    if (CECTRL) begin
      w_c <= OPMODE[8:7] == 2'b11;
      xy_m <= OPMODE[3:0] == 4'b0101;
      z_p <= OPMODE[6:4] == 3'b010;
      z_c <= OPMODE[6:4] == 3'b011;
      z_pcin <= OPMODE[6:4] == 3'b001;
    end
    if (CEP) p_r <= z_mux + w_mux + xy_mux;
  end
  assign P = p_r;
  assign PCOUT = p_r;

  // ---- ports driven outside the modelled subset stop the simulation (unknown values pass, as X) ----
  wire op_ok = (OPMODE[8:7] == 2'b00 || OPMODE[8:7] == 2'b11) && (OPMODE[3:0] == 4'b0000 || OPMODE[3:0] == 4'b0101)
               && OPMODE[6] == 1'b0;
  // a control bit counts when it is a known 1 (an unconnected pin floats Z, as Vivado ties it to 0)
  wire ctrl_bad = ((|ALUMODE) === 1'b1) || (CARRYIN === 1'b1) || ((|CARRYINSEL) === 1'b1)
                  || (INMODE[0] === 1'b1) || (INMODE[4] === 1'b1) || (AMULTSEL == "A" && (|INMODE[3:1]) === 1'b1)
                  || ((|{RSTA, RSTB, RSTC, RSTD, RSTM, RSTP, RSTCTRL, RSTALLCARRYIN, RSTALUMODE, RSTINMODE}) === 1'b1);
  always @(posedge CLK) begin
    if (ctrl_bad) begin
      $fatal(1, "DSP48E2 model (%m): ALUMODE=%b CARRYIN=%b CARRYINSEL=%b INMODE=%b or a reset pin is outside the modelled subset (ALUMODE 0, no carry, INMODE taps A2/B2, resets low)",
             ALUMODE, CARRYIN, CARRYINSEL, INMODE);
    end
    if (CECTRL && op_ok === 1'b0) begin   // an OPMODE known to be outside the subset is latched
      $fatal(1, "DSP48E2 model (%m): OPMODE %b is outside the modelled subset (W 0/C, X = Y 0/M, Z 0/P/C/PCIN)", OPMODE);
    end
  end
endmodule
