"""Test-suite wide settings: one torch thread per pytest worker (two workers share two cores), one compiler
process per model build under pytest-xdist, the slowest modules collected first, and a fresh compile cache for
the tests that need one."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# The workers already fill the cores: a Verilator build split over two compiler processes parses Verilator's
# headers twice (a test-sized design: 6.2 CPU-s in two units against 5.3 in one).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("MIXQ_CXX_JOBS", "1")

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but hardware tests do not need it
    torch = None
else:
    torch.set_num_threads(1)


#: Modules whose tests compile and simulate whole networks (tens of seconds each): collected first, so that
#: pytest-xdist hands them out early and the run ends on short tests, not on one worker's last network.
SLOW_FIRST = ("test_zoo_pipeline.py", "test_sim_hdl.py", "test_sim_layerwise.py", "test_signed_pipeline.py",
              "test_packing_cascade.py", "test_sim_board_bank.py")


def pytest_collection_modifyitems(session, config, items):
    """Move the tests of :data:`SLOW_FIRST` to the front, each module's order kept."""
    rank = {name: k for k, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def fresh_compile_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$MIXQ_CACHE`` set to ``tmp_path`` for one test: its own, empty, folders of programs and libraries
    (``verilator``, ``cxxrtl``), and the session cache's ``verilator-runtime`` folder linked in.  Verilator's
    runtime library (about 3 CPU-seconds a compiler) is built once for the run and never the subject of these
    tests; their designs are built from scratch."""
    from sim.cache import cache_root

    shared = cache_root() / "verilator-runtime"
    shared.mkdir(parents=True, exist_ok=True)
    (tmp_path / "verilator-runtime").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("MIXQ_CACHE", str(tmp_path))
    return tmp_path
