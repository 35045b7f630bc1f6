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
        process, _ = verify.start_layers((), {})
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
