"""Board support: lookup, budget, and the Vivado script checked by running it in tclsh against stubs."""

import shutil
import subprocess
from pathlib import Path

import pytest

from boards import board_names, get_board

# Vivado commands the script may call, stubbed to record the call; a few return what the
# script needs to proceed.  Anything else is an error, so a typo in the script fails here.
_STUBS = r"""
set calls {}
proc rec {name args} { lappend ::calls [concat $name $args] }
foreach cmd {create_project add_files update_compile_order create_bd_design set_property
             apply_bd_automation connect_bd_net connect_bd_intf_net assign_bd_address
             validate_bd_design save_bd_design launch_runs wait_on_run open_run
             report_utilization report_timing_summary current_project current_fileset} {
    proc $cmd {args} "rec $cmd {*}\$args; return {}"
}
proc get_board_parts {args} { rec get_board_parts {*}$args; return {} }
proc create_bd_cell {args} { rec create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_pins {args} { rec get_bd_pins {*}$args; return $args }
proc get_bd_intf_pins {args} { rec get_bd_intf_pins {*}$args; return $args }
proc get_files {args} { return $args }
proc get_runs {args} { return $args }
proc make_wrapper {args} { rec make_wrapper {*}$args; return wrapper.v }
proc get_property {name args} {
    switch -- $name {
        PROGRESS { return "100%" }
        DIRECTORY { return $::impl_dir }
        default { return "" }
    }
}
"""


def test_lookup_and_budget():
    board = get_board("ultra96")
    assert get_board("Ultra96-V2") is board
    assert board.part == "xczu3eg-sbva484-1-i"
    assert board.budget.to_dict() == {"dsp": 360, "lut": 70_560, "ff": 141_120, "bram36": 216}
    assert board.platform()._part == board.part
    assert "ultra96" in board_names()


def test_unknown_board_lists_known_ones():
    with pytest.raises(ValueError, match="unknown board 'zcu104'.*ultra96"):
        get_board("zcu104")


@pytest.mark.parametrize("width", [12, 2048, 4])
def test_bad_stream_width(tmp_path, width):
    with pytest.raises(ValueError, match=f"width {width}"):
        get_board("ultra96").write_project(tmp_path, tmp_path / "a.v", "top", 300, width, 32)


def test_vivado_script_runs_against_stubs(tmp_path):
    tclsh = shutil.which("tclsh")
    assert tclsh, "tclsh is needed to check the generated Vivado script (apt-get install tcl)"
    verilog = tmp_path / "accel.v"
    verilog.write_text("module mixq_accel(); endmodule\n")
    script, xdc = get_board("ultra96").write_project(tmp_path, verilog, "mixq_accel", 250, 32, 64)
    assert xdc.exists()
    impl = tmp_path / "impl"
    impl.mkdir()
    (impl / "mixq_bd_wrapper.bit").write_text("bit")
    hwh_dir = tmp_path / "vivado" / "mixq_project.gen" / "sources_1" / "bd" / "mixq_bd" / "hw_handoff"
    hwh_dir.mkdir(parents=True)
    (hwh_dir / "mixq_bd.hwh").write_text("hwh")
    driver = tmp_path / "run.tcl"
    driver.write_text(_STUBS + f"set impl_dir {{{impl}}}\nsource {{{script}}}\n"
                      "foreach c $calls { puts $c }\n")
    proc = subprocess.run([tclsh, str(driver)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout
    assert "create_project mixq_project" in log and "xczu3eg-sbva484-1-i" in log
    assert "create_bd_cell -type module -reference mixq_accel accel" in log
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 250" in log
    assert "CONFIG.c_m_axis_mm2s_tdata_width 32" in log and "CONFIG.c_s_axis_s2mm_tdata_width 64" in log
    assert "launch_runs impl_1 -to_step write_bitstream" in log
    assert (tmp_path / "mixq.bit").read_text() == "bit"
    assert (tmp_path / "mixq.hwh").read_text() == "hwh"
