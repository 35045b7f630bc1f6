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
lassign $argv script impl_dir wns whs board_parts
proc rec {name args} { lappend ::calls [concat $name $args] }
foreach cmd {create_project update_compile_order create_bd_design set_property
             apply_bd_automation connect_bd_net connect_bd_intf_net assign_bd_address
             validate_bd_design save_bd_design launch_runs wait_on_run open_run
             report_utilization report_timing_summary report_power write_hw_platform current_project
             current_fileset} {
    proc $cmd {args} "rec $cmd {*}\$args; return {}"
}
proc get_board_parts {args} { rec get_board_parts {*}$args; return $::board_parts }
proc create_bd_cell {args} { rec create_bd_cell {*}$args; return [lindex $args end] }
proc get_bd_pins {args} { rec get_bd_pins {*}$args; return $args }
proc get_bd_intf_pins {args} { rec get_bd_intf_pins {*}$args; return $args }
proc get_files {args} { return $args }
proc get_runs {args} { return $args }
proc get_timing_paths {args} { return $args }
proc make_wrapper {args} { rec make_wrapper {*}$args; return [file join $::impl_dir wrapper.v] }
# add_files: each file list must name files that exist (the paths resolved from the script's folder)
proc add_files {args} {
    rec add_files {*}$args
    for {set i 0} {$i < [llength $args]} {incr i} {
        set a [lindex $args $i]
        if {$a eq "-fileset"} { incr i; continue }
        if {[string match -* $a]} continue
        foreach f $a { if {![file exists $f]} { error "add_files: no such file: $f" } }
    }
}
proc get_property {name args} {
    switch -- $name {
        PROGRESS { return "100%" }
        DIRECTORY { return $::impl_dir }
        SLACK { return [expr {"-hold" in [lindex $args 0] ? $::whs : $::wns}] }
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




def _fake_vivado_outputs(folder: Path) -> Path:
    """What implementation leaves behind: the bitstream in the run folder and the .hwh of the block design."""
    impl = folder / "impl"
    impl.mkdir()
    (impl / "mixq_bd_wrapper.bit").write_text("bit")
    (impl / "wrapper.v").write_text("module mixq_bd_wrapper(); endmodule\n")
    hwh_dir = folder / "vivado" / "mixq_project.gen" / "sources_1" / "bd" / "mixq_bd" / "hw_handoff"
    hwh_dir.mkdir(parents=True)
    (hwh_dir / "mixq_bd.hwh").write_text("hwh")
    return impl


def run_vivado_script(tmp_path: Path, script: Path, *, wns: str = "0.125", whs: str = "0.010", board_parts: str = "",
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Source ``script`` in tclsh after the stubs; every path reaches Tcl through argv, never as code."""
    tclsh = shutil.which("tclsh")
    assert tclsh, "tclsh is needed to check the generated Vivado script (apt-get install tcl)"
    impl = _fake_vivado_outputs(script.parent)
    driver = tmp_path / "run_stubs.tcl"
    driver.write_text(_STUBS + "source $script\nforeach c $calls { puts $c }\n")
    return subprocess.run([tclsh, str(driver), str(script), str(impl), wns, whs, board_parts],
                          capture_output=True, text=True, timeout=60, cwd=cwd or tmp_path)


def _project(folder: Path, in_width: int = 32, out_width: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    verilog = folder / "mixq_accel.v"
    verilog.write_text("module mixq_accel(); endmodule\n")
    script, xdc = get_board("ultra96").write_project(folder, verilog, "mixq_accel", 250, in_width, out_width)
    assert xdc.exists() and script.parent == folder
    return script


def test_vivado_script_runs_against_stubs(tmp_path):
    build = tmp_path / "build"
    script = _project(build)
    proc = run_vivado_script(tmp_path, script)
    assert proc.returncode == 0, proc.stderr
    log = proc.stdout
    assert "create_project mixq_project" in log and "xczu3eg-sbva484-1-i" in log
    assert f"add_files -norecurse {build / 'mixq_accel.v'}" in log
    assert "create_bd_cell -type module -reference mixq_accel accel" in log
    assert "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ 250" in log
    assert "CONFIG.c_m_axis_mm2s_tdata_width 32" in log and "CONFIG.c_s_axis_s2mm_tdata_width 64" in log
    assert "CONFIG.c_m_axi_mm2s_data_width 128" in log and "CONFIG.c_m_axi_s2mm_data_width 128" in log
    assert "launch_runs impl_1 -to_step write_bitstream" in log
    for report in ("utilization", "timing_summary", "power"):
        assert f"-file {build / f'vivado_{report}.txt'}" in log, report
    assert f"write_hw_platform -fixed -include_bit -force -file {build / 'mixq.xsa'}" in log
    assert "WNS 0.125 ns, WHS 0.01 ns at 250 MHz" in log
    for folder in (build, build / "deploy"):
        assert (folder / "mixq.bit").read_text() == "bit"
        assert (folder / "mixq.hwh").read_text() == "hwh"
    # no board files: said, not skipped silently
    assert "WARNING: the Ultra96-V2 board files (avnet.com:ultra96v2:part0:1.2) are not installed" in log
    text = script.read_text()
    assert str(tmp_path) not in text                  # nothing absolute
    assert "Vivado 2022.1" in text and "PYNQ 3.0.1" in text


def test_board_files_used_when_installed(tmp_path):
    proc = run_vivado_script(tmp_path, _project(tmp_path / "b"), board_parts="avnet.com:ultra96v2:part0:1.2")
    assert proc.returncode == 0, proc.stderr
    assert "set_property board_part avnet.com:ultra96v2:part0:1.2" in proc.stdout
    assert "WARNING" not in proc.stdout


def test_vivado_script_after_the_folder_moved(tmp_path):
    """Generated in one place, run from another folder after a move: every path follows the script."""
    script = _project(tmp_path / "made_here")
    moved = tmp_path / "elsewhere" / "server copy"
    moved.parent.mkdir()
    shutil.move(str(script.parent), str(moved))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = run_vivado_script(tmp_path, moved / "build_vivado.tcl", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert str(tmp_path / "made_here") not in proc.stdout
    assert f"create_project mixq_project {{{moved / 'vivado'}}}" in proc.stdout    # a list element
    assert (moved / "mixq.bit").read_text() == "bit" and (moved / "deploy" / "mixq.hwh").exists()


def test_hostile_folder_name_cannot_inject_tcl(tmp_path):
    name = "x}; exec touch PWNED1; #[exec touch PWNED2] $env(HOME) \"q\\ {y"
    script = _project(tmp_path / name)
    proc = run_vivado_script(tmp_path, script)
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.rglob("PWNED*"))
    assert proc.stdout.count("add_files ") == 3        # the stub checked that each file exists
    assert (tmp_path / name / "mixq.bit").read_text() == "bit"


def test_tcl_word_round_trips(tmp_path):
    """Whatever tcl_word writes, Tcl reads back as the same string."""
    from boards import tcl_word

    values = ["plain", "a b", "x}; exec touch P; #", "[exec touch P]", "$env(HOME)", "q\"uote", "back\\slash",
              "{", "}", "", "é-ß", "a\\nb"]
    script = tmp_path / "words.tcl"
    script.write_text("".join(f"puts [list {tcl_word(v)}]\n" for v in values))
    out = subprocess.run([shutil.which("tclsh"), str(script)], capture_output=True, text=True, timeout=30,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    read = [subprocess.run([shutil.which("tclsh")], input=f"puts [lindex {{{line}}} 0]", capture_output=True,
                           text=True).stdout.rstrip("\n") for line in out.stdout.splitlines()]
    assert read == values and not list(tmp_path.glob("P"))
    with pytest.raises(ValueError, match="control character"):
        tcl_word("a\nb")


def test_negative_slack_fails_without_a_bitstream(tmp_path):
    script = _project(tmp_path / "slow")
    proc = run_vivado_script(tmp_path, script, wns="-0.412")
    assert proc.returncode != 0
    assert "timing NOT met at 250 MHz: worst setup slack -0.412 ns" in proc.stderr
    assert "about 226.7 MHz" in proc.stderr and "--clock 226" in proc.stderr     # 1000 / (4 + 0.412)
    assert not (tmp_path / "slow" / "mixq.bit").exists()
    proc = run_vivado_script(tmp_path, _project(tmp_path / "hold"), whs="-0.02")
    assert proc.returncode != 0 and "hold timing NOT met" in proc.stderr


def test_wide_output_stream_gets_a_wide_memory_map(tmp_path):
    """PG021: the stream may not be wider than the DMA's memory map; a 256-bit head gets a 256-bit one."""
    from boards.ultra96 import dma_memory_widths

    proc = run_vivado_script(tmp_path, _project(tmp_path / "wide", out_width=256))
    assert proc.returncode == 0, proc.stderr
    assert "CONFIG.c_m_axi_s2mm_data_width 256" in proc.stdout and "CONFIG.c_s2mm_burst_size 64" in proc.stdout
    assert dma_memory_widths(8, 1024) == (128, 1024)
    with pytest.raises(ValueError, match=r"output stream \(m_axis\) is 2048 bits wide.*1024 bits"):
        dma_memory_widths(32, 2048)


def test_verilog_outside_the_folder_refused(tmp_path):
    with pytest.raises(ValueError, match="inside the build folder"):
        get_board("ultra96").write_project(tmp_path / "out", tmp_path / "a.v", "mixq_accel", 300, 32, 32)


def test_part_description_is_not_a_buildable_platform():
    from boards.ultra96 import Ultra96V2Part, Ultra96V2Platform

    assert Ultra96V2Platform is Ultra96V2Part and get_board("ultra96").platform is Ultra96V2Part
    with pytest.raises(ValueError, match="elaboration only.*pl_clk0.*build_vivado.tcl"):
        Ultra96V2Part().build(None)
