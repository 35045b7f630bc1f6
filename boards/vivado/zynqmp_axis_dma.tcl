
# ---- mixq: Zynq UltraScale+ PS + AXI DMA + accelerator (AXI-Stream in/out) ----
# Expects (set above by the generator): mixq_out_dir mixq_part mixq_top mixq_verilog mixq_xdc
#   mixq_clock_mhz mixq_in_width mixq_out_width mixq_mm_in_width mixq_mm_out_width mixq_board_part.
# Writes into mixq_out_dir: vivado/ (the project), vivado_utilization.txt, vivado_timing_summary.txt,
#   vivado_power.txt, and when timing is met mixq.bit, mixq.hwh, mixq.xsa (also copied into deploy/).
set mixq_jobs [expr {[info exists ::env(MIXQ_JOBS)] ? $::env(MIXQ_JOBS) : 4}]
create_project mixq_project [file join $mixq_out_dir vivado] -part $mixq_part -force
# The Avnet board files give the PS its DDR/MIO preset.  PYNQ overlays also load without them (the boot
# image configures the PS; PYNQ reads only the PL clocks from the .hwh), so a missing preset is a warning,
# or an error when MIXQ_REQUIRE_BOARD_FILES is set.
if {[lsearch -exact [get_board_parts -quiet] $mixq_board_part] >= 0} {
    set_property board_part $mixq_board_part [current_project]
} else {
    set mixq_msg "the Ultra96-V2 board files ($mixq_board_part) are not installed in this Vivado: the PS\
gets no board preset (DDR, MIO) and keeps its defaults. Install Avnet's board files\
(https://github.com/Avnet/bdf, folder ultra96v2) into <Vivado>/data/boards/board_files or point\
set_param board.repoPaths at them."
    if {[info exists ::env(MIXQ_REQUIRE_BOARD_FILES)]} {
        error "mixq: $mixq_msg"
    }
    puts "mixq: WARNING: $mixq_msg"
}
add_files -norecurse $mixq_verilog
add_files -fileset constrs_1 -norecurse [list $mixq_xdc]
update_compile_order -fileset sources_1

create_bd_design mixq_bd
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e ps]
if {[get_property board_part [current_project]] ne ""} {
    apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
}
set_property -dict [list \
    CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__USE__M_AXI_GP1 {0} CONFIG.PSU__USE__M_AXI_GP2 {0} \
    CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__SAXIGP2__DATA_WIDTH {128} \
    CONFIG.PSU__FPGA_PL0_ENABLE {1} \
    CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $mixq_clock_mhz] $ps

# PG021: a stream may not be wider than its memory map (32..1024 bits); the generator sets each memory map
# to the 128-bit HP port or to the stream's width when that is wider, and the SmartConnect converts down.
set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma dma]
set_property -dict [list \
    CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} \
    CONFIG.c_m_axis_mm2s_tdata_width $mixq_in_width CONFIG.c_s_axis_s2mm_tdata_width $mixq_out_width \
    CONFIG.c_m_axi_mm2s_data_width $mixq_mm_in_width CONFIG.c_m_axi_s2mm_data_width $mixq_mm_out_width \
    CONFIG.c_mm2s_burst_size [expr {min(64, 32768 / $mixq_mm_in_width)}] \
    CONFIG.c_s2mm_burst_size [expr {min(64, 32768 / $mixq_mm_out_width)}]] $dma

# The accelerator is a module reference to the generated Verilog; its flat AXI-Stream port
# names (aclk, aresetn, s_axis_*, m_axis_*) let Vivado infer the interfaces.
set accel [create_bd_cell -type module -reference $mixq_top accel]
set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_pl]

connect_bd_net [get_bd_pins ps/pl_clk0] [get_bd_pins accel/aclk] [get_bd_pins rst_pl/slowest_sync_clk] \
    [get_bd_pins dma/s_axi_lite_aclk] [get_bd_pins dma/m_axi_mm2s_aclk] [get_bd_pins dma/m_axi_s2mm_aclk] \
    [get_bd_pins ps/maxihpm0_fpd_aclk] [get_bd_pins ps/saxihp0_fpd_aclk]
connect_bd_net [get_bd_pins ps/pl_resetn0] [get_bd_pins rst_pl/ext_reset_in]
connect_bd_net [get_bd_pins rst_pl/peripheral_aresetn] [get_bd_pins accel/aresetn]
connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins accel/s_axis]
connect_bd_intf_net [get_bd_intf_pins accel/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]

apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {/ps/pl_clk0} \
    Clk_slave {/ps/pl_clk0} Clk_xbar {/ps/pl_clk0} Master {/ps/M_AXI_HPM0_FPD} Slave {/dma/S_AXI_LITE} \
    intc_ip {New AXI Interconnect} master_apm {0}] [get_bd_intf_pins dma/S_AXI_LITE]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {/ps/pl_clk0} \
    Clk_slave {/ps/pl_clk0} Clk_xbar {/ps/pl_clk0} Master {/dma/M_AXI_MM2S} Slave {/ps/S_AXI_HP0_FPD} \
    intc_ip {New AXI SmartConnect} master_apm {0}] [get_bd_intf_pins ps/S_AXI_HP0_FPD]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list Clk_master {/ps/pl_clk0} \
    Clk_slave {/ps/pl_clk0} Clk_xbar {/ps/pl_clk0} Master {/dma/M_AXI_S2MM} Slave {/ps/S_AXI_HP0_FPD} \
    intc_ip {/axi_smc} master_apm {0}] [get_bd_intf_pins dma/M_AXI_S2MM]

assign_bd_address
validate_bd_design
save_bd_design
set wrapper [make_wrapper -files [get_files mixq_bd.bd] -top]
add_files -norecurse [list $wrapper]
set_property top mixq_bd_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $mixq_jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "mixq: implementation did not finish; see [file join $mixq_out_dir vivado]"
}
open_run impl_1
report_utilization -file [file join $mixq_out_dir vivado_utilization.txt]
report_timing_summary -max_paths 10 -file [file join $mixq_out_dir vivado_timing_summary.txt]
report_power -file [file join $mixq_out_dir vivado_power.txt]

# A design that misses timing is not handed on: no bitstream is copied out.
set mixq_wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
set mixq_whs [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -hold]]
puts "mixq: WNS $mixq_wns ns, WHS $mixq_whs ns at $mixq_clock_mhz MHz"
if {$mixq_wns ne "" && $mixq_wns < 0} {
    set mixq_period [expr {1000.0 / $mixq_clock_mhz}]
    set mixq_fmax [expr {1000.0 / ($mixq_period - $mixq_wns)}]
    error [format "mixq: timing NOT met at %g MHz: worst setup slack %s ns (the design would run at about\
%.1f MHz); see %s and rebuild with --clock %.0f or a smaller folding" $mixq_clock_mhz $mixq_wns\
        $mixq_fmax [file join $mixq_out_dir vivado_timing_summary.txt] [expr {floor($mixq_fmax)}]]
}
if {$mixq_whs ne "" && $mixq_whs < 0} {
    error "mixq: hold timing NOT met: worst hold slack $mixq_whs ns; see\
[file join $mixq_out_dir vivado_timing_summary.txt]"
}

# PYNQ's Overlay wants mixq.bit next to mixq.hwh with the same base name.
set impl_dir [get_property DIRECTORY [get_runs impl_1]]
# glob -directory takes the folder literally (a build folder's name may hold glob characters)
set hwh ""
foreach mixq_gen {mixq_project.gen mixq_project.srcs} {
    set mixq_handoff [file join $mixq_out_dir vivado $mixq_gen sources_1 bd mixq_bd hw_handoff]
    if {$hwh eq ""} {
        set hwh [lindex [glob -nocomplain -directory $mixq_handoff *.hwh] 0]
    }
}
if {$hwh eq ""} {
    error "mixq: no .hwh under [file join $mixq_out_dir vivado]; PYNQ cannot load the overlay without it"
}
file copy -force [file join $impl_dir mixq_bd_wrapper.bit] [file join $mixq_out_dir mixq.bit]
file copy -force $hwh [file join $mixq_out_dir mixq.hwh]
write_hw_platform -fixed -include_bit -force -file [file join $mixq_out_dir mixq.xsa]
file mkdir [file join $mixq_out_dir deploy]
foreach mixq_file {mixq.bit mixq.hwh} {
    file copy -force [file join $mixq_out_dir $mixq_file] [file join $mixq_out_dir deploy $mixq_file]
}
puts "mixq: wrote mixq.bit, mixq.hwh and mixq.xsa to $mixq_out_dir; copy [file join $mixq_out_dir deploy] to the board"
