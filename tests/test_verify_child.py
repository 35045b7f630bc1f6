"""The layer-by-layer process that runs beside the whole-design check dies with the build that started it."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from sim import verify


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_layers_process_dies_when_its_build_is_killed(monkeypatch) -> None:
    monkeypatch.setattr(verify, "verify_layers", lambda *a, **k: time.sleep(60))
    read, write = os.pipe()
    build = os.fork()
    if build == 0:   # the build: starts the layers process, then is SIGKILLed
        process = verify.start_layers((), {}).process
        os.write(write, str(process.pid).encode())
        os.kill(os.getpid(), signal.SIGKILL)
    os.close(write)
    child = int(os.read(read, 64))
    os.close(read)
    os.waitpid(build, 0)
    deadline = time.monotonic() + 10
    state = "alive"
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/status") as status:
                state = next(line for line in status if line.startswith("State:")).split()[1]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            state = "gone"
        if state in ("Z", "X", "gone"):
            break
        time.sleep(0.05)
    assert state in ("Z", "X", "gone"), f"the layers process {child} outlived its build ({state})"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")
def test_a_build_that_fails_after_starting_the_layer_checks_stops_them(tmp_path, monkeypatch) -> None:
    """When the stages cannot come from the build's own elaboration, the build starts the layer checks
    beside the rest of the build; an error there ends them too."""
    from networks import small_graph

    import mixq_hw.build
    import sim.board_text
    from mixq_hw.build import BuildError, build

    started = []
    real = verify.start_layer_checks

    def spy(*args, **kwargs):
        handle = real(*args, **kwargs)
        started.append(handle.process)
        return handle

    def broken(*args, **kwargs):
        raise BuildError("the host files broke")

    monkeypatch.setattr(verify, "verify_layers", lambda *a, **k: time.sleep(60))
    monkeypatch.setattr(verify, "resolve_backend", lambda backend: "verilator")
    monkeypatch.setattr(verify, "start_layer_checks", spy)
    monkeypatch.setattr(sim.board_text, "emit_for_verification", lambda *a, **k: ("", None, "no stage ports"))
    monkeypatch.setattr(mixq_hw.build, "_host_files", broken)
    path = tmp_path / "small.npz"
    small_graph().save(path)
    with pytest.raises(BuildError, match="the host files broke"):
        build(path, out=tmp_path / "out", verify=1, backend="verilator", quiet=True)
    assert len(started) == 1 and not started[0].is_alive() and started[0].exitcode is not None
