"""mixq_hw.progress: plain lines off a terminal, quiet means silent, a ticker never leaves a long silence."""

import time

from mixq_hw.progress import bar, line, ticker


def test_ticker_prints_while_the_body_holds_the_interpreter(capfd):
    with ticker("busy", every=0.3):
        end = time.perf_counter() + 1.2
        while time.perf_counter() < end:     # pure Python work in the calling thread
            sum(range(1000))
    err = capfd.readouterr().err
    assert err.count("busy ... ") >= 2, err
    assert err.rstrip().splitlines()[-1].startswith("busy done in ")


def test_a_line_restarts_the_tickers_wait(capfd):
    with ticker("waiting", every=1.5):
        line("a line")
        time.sleep(0.5)
    err = capfd.readouterr().err
    assert "waiting ..." not in err and err.splitlines()[0] == "a line", err


def test_ticker_reports_a_failure_and_passes_it_on(capfd):
    try:
        with ticker("failing", every=5):
            raise KeyError("boom")
    except KeyError:
        pass
    else:
        raise AssertionError("the exception was swallowed")
    assert capfd.readouterr().err.startswith("failing stopped in ")


def test_quiet_prints_nothing(capfd):
    with ticker("silent", quiet=True, every=0.1):
        time.sleep(0.3)
    line("nothing", quiet=True)
    for _ in bar(range(3), desc="steps", quiet=True):
        pass
    assert capfd.readouterr().err == ""


def test_bar_off_a_terminal_is_whole_lines(capfd):
    for _ in bar(range(3), desc="steps", unit="step"):
        pass
    err = capfd.readouterr().err
    assert "\r" not in err and err.endswith("\n")
    assert "steps: 100%" in err.splitlines()[-1] and "3/3" in err.splitlines()[-1]


def test_a_process_forked_under_a_ticker_does_not_keep_it_running(capfd):
    """A forked child (sim.forked: a build's second elaboration) does not hold the ticker's stdin open: the
    ticker ends with its ``with`` block, not when the child ends or after the 5 s wait for it."""
    from sim import forked

    began = time.perf_counter()
    with ticker("forking", every=5):
        child = forked.start(time.sleep, 4, what="a sleeper")
        time.sleep(0.2)
    ended = time.perf_counter() - began
    assert ended < 2, ended
    assert forked.result(child) is None
    assert "forking done in" in capfd.readouterr().err
