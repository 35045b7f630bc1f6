"""The realistic budget: the board's shell reserved, a utilisation target, warnings above 90 %."""

import json

import pytest
from networks import bypass_net, small_graph

from boards import get_board
from boards.shell import ZYNQMP_AXIS_DMA_SHELL, shell_total
from mixq_hw.build import build
from mixq_hw.estimate import Resources
from mixq_hw.folding import choose_folding
from mixq_hw.folding.budget import accelerator_limit
from mixq_hw.utilization import WARN_ABOVE, utilization_table, utilization_warnings

DEVICE = Resources(dsp=360, lut=70_560, ff=141_120, bram36=216)


def test_shell_is_the_sum_of_its_parts_and_the_board_reserves_it():
    board = get_board("ultra96")
    assert board.shell == shell_total(ZYNQMP_AXIS_DMA_SHELL)
    assert board.shell.lut == sum(p.lut for p in ZYNQMP_AXIS_DMA_SHELL) > 0
    assert {p.name for p in board.shell_parts} == {"dma", "axi_smc", "ps_axi_periph", "rst"}
    assert all(p.source for p in board.shell_parts)


def test_accelerator_limit_is_target_of_the_device_less_the_shell():
    shell = Resources(dsp=2, lut=4_300, ff=6_750, bram36=3)
    limit = accelerator_limit(DEVICE, 0.85, shell)
    assert limit == Resources(dsp=306 - 2, lut=59_976 - 4_300, ff=119_952 - 6_750, bram36=183.5 - 3)
    assert accelerator_limit(DEVICE) == DEVICE
    with pytest.raises(ValueError, match="utilization 0 "):
        accelerator_limit(DEVICE, 0)
    with pytest.raises(ValueError, match="leaves no LUT"):
        accelerator_limit(DEVICE, 0.05, Resources(lut=4_000))


def test_choose_folding_leaves_the_reserve_free():
    graph = bypass_net()
    budget = Resources(dsp=60, lut=20_000, ff=40_000, bram36=40)
    free = choose_folding(graph, budget)
    reserve = Resources(dsp=20, lut=4_000, ff=1_000, bram36=2)
    held = choose_folding(graph, budget, reserve=reserve)
    assert held.budget == Resources(dsp=40, lut=16_000, ff=39_000, bram36=38)
    assert held.resources.fits(held.budget)
    assert (held.resources + reserve).fits(budget)
    assert held.cycles_per_frame >= free.cycles_per_frame
    # the target applies to the whole PL, the reserve included
    both = choose_folding(graph, budget, utilization=0.9, reserve=reserve)
    assert both.budget == Resources(dsp=54 - 20, lut=18_000 - 4_000, ff=36_000 - 1_000, bram36=36 - 2)


def test_utilization_table_adds_the_shell_and_warns_above_90_percent():
    shell = Resources(lut=4_300, ff=6_750, bram36=3)
    table = utilization_table(Resources(dsp=300, lut=60_000, ff=10_000, bram36=100), shell, DEVICE, 0.85)
    rows = table["resources"]
    assert rows["lut"] == {"accelerator": 60_000, "shell": 4_300, "total": 64_300, "device": 70_560,
                           "share": round(64_300 / 70_560, 4)}
    assert rows["dsp"]["share"] == round(300 / 360, 4)
    # LUT is 91.1 % with the shell (above 90 %), DSP 83.3 % (below): one warning, naming LUT and the shell
    assert rows["lut"]["share"] > WARN_ABOVE > rows["dsp"]["share"]
    assert len(table["warnings"]) == 1 and table["warnings"][0].startswith("LUT 64,300 of 70,560 (91.1 %")
    assert "shell 4,300 included" in table["warnings"][0] and "--utilization" in table["warnings"][0]
    assert utilization_warnings(table) == table["warnings"]
    # exactly 90 % is not above it
    at = utilization_table(Resources(lut=63_504 - 4_300), shell, DEVICE, 0.85)
    assert at["resources"]["lut"]["share"] == 0.9 and at["warnings"] == []


def test_build_folds_under_the_target_less_the_shell(tmp_path, capsys):
    path = tmp_path / "small.npz"
    small_graph().save(path)
    board = get_board("ultra96")
    report = build(path, out=tmp_path / "out", utilization=0.5, quiet=True)
    fill = report["utilization_with_shell"]
    assert report["utilization_target"] == fill["target"] == 0.5
    assert report["shell"]["resources"] == board.shell.to_dict()
    for key, row in fill["resources"].items():
        assert row["accelerator"] == report["resources"][key]
        assert row["total"] == row["accelerator"] + board.shell.to_dict()[key]
        assert row["total"] <= 0.5 * board.budget.to_dict()[key]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["options"]["utilization"] == 0.5
    md = (tmp_path / "out" / "report.md").read_text()
    assert "with the shell" in md and "AXI DMA" in md
    assert "warning" not in capsys.readouterr().err
    assert "--timing" in report["timing"]["skipped"]
