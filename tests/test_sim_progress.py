"""sim.progress: bars that stay current while the work is silent, totals that are estimates."""

import time

from sim.progress import COMPILE_SECONDS, LiveBar, compile_bar, compile_estimate


def test_a_silent_body_still_prints_lines_with_the_polled_count(capfd):
    count = {"n": 0}
    with LiveBar("[t] cycles", total=100, unit="cycle", poll=lambda: count["n"], every=0.2,
                 postfix=lambda: f"{count['n']} seen"):
        for n in (10, 40):
            count["n"] = n
            time.sleep(0.5)
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) >= 3 and all(line.startswith("[t] cycles:") for line in lines), lines
    assert any(" 10/100 " in line for line in lines) and any("40 seen" in line for line in lines)
    assert "100%" in lines[-1] and "40/40" in lines[-1]       # a normal end is the whole


def test_a_count_past_the_estimate_stretches_it_and_an_error_leaves_it(capfd):
    try:
        with LiveBar("[t] over", total=10, every=10) as live:
            live.set(20)
            assert live.bar.total > 20
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert "100%" not in capfd.readouterr().err


def test_compile_bar_counts_seconds_against_the_size_estimate(capfd):
    fixed, per_kib = COMPILE_SECONDS["verilator"]
    assert compile_estimate("verilator", 1024 * 1000) == fixed + per_kib * 1000
    with compile_bar("verilator") as live:
        live.set_total(live.elapsed + compile_estimate("verilator", 4_000_000))
        assert live.bar.total >= compile_estimate("verilator", 4_000_000)
    assert "[sim verilator] compile: 100%" in capfd.readouterr().err


def test_quiet_bars_print_nothing(capfd):
    with LiveBar("[t] quiet", total=3, quiet=True, poll=lambda: 2, every=0.05) as live:
        live.write("hidden")
        time.sleep(0.2)
    assert capfd.readouterr().err == ""
