
# ---- mixq: Zynq UltraScale+ PS + AXI DMA + accelerator (AXI-Stream in/out) ----
# Expects: mixq_part mixq_top mixq_verilog mixq_xdc mixq_clock_mhz mixq_in_width
#          mixq_out_width mixq_out_dir mixq_board_part (set above by the generator).
set mixq_jobs [expr {[info exists ::env(MIXQ_JOBS)] ? $::env(MIXQ_JOBS) : 4}]
create_project mixq_project [file join $mixq_out_dir vivado] -part $mixq_part -force
# The Avnet board files give the PS its DDR/MIO preset; PYNQ overlays work without them,
# because the PS is configured by the boot image and PYNQ only reads clocks from the .hwh.
if {[lsearch -exact [get_board_parts -quiet] $mixq_board_part] >= 0} {
    set_property board_part $mixq_board_part [current_project]
}
add_files -norecurse $mixq_verilog
add_files -fileset constrs_1 -norecurse $mixq_xdc
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

set dma [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma dma]
set_property -dict [list \
    CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} \
    CONFIG.c_m_axis_mm2s_tdata_width $mixq_in_width CONFIG.c_s_axis_s2mm_tdata_width $mixq_out_width \
    CONFIG.c_m_axi_mm2s_data_width {128} CONFIG.c_m_axi_s2mm_data_width {128} \
    CONFIG.c_mm2s_burst_size {64} CONFIG.c_s2mm_burst_size {64}] $dma

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
add_files -norecurse $wrapper
set_property top mixq_bd_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $mixq_jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "mixq: implementation did not finish; see [file join $mixq_out_dir vivado]"
}
# PYNQ's Overlay wants mixq.bit next to mixq.hwh with the same base name.
set impl_dir [get_property DIRECTORY [get_runs impl_1]]
file copy -force [file join $impl_dir mixq_bd_wrapper.bit] [file join $mixq_out_dir mixq.bit]
set hwh [lindex [glob -nocomplain [file join $mixq_out_dir vivado mixq_project.gen sources_1 bd mixq_bd hw_handoff *.hwh]] 0]
if {$hwh eq ""} {
    set hwh [lindex [glob -nocomplain [file join $mixq_out_dir vivado mixq_project.srcs sources_1 bd mixq_bd hw_handoff *.hwh]] 0]
}
file copy -force $hwh [file join $mixq_out_dir mixq.hwh]
open_run impl_1
report_utilization -file [file join $mixq_out_dir vivado_utilization.txt]
report_timing_summary -file [file join $mixq_out_dir vivado_timing.txt]
puts "mixq: wrote mixq.bit and mixq.hwh to $mixq_out_dir"
