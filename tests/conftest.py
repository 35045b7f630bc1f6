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


#: Tests pytest-xdist's load scheduling sends a worker at a time (its --maxschedchunk, unless given).  Unlimited,
#: its first step gives each worker a quarter of its share as one block (here every SLOW_FIRST module to the first
#: worker, 600 s of work on two cores) and later steps up to a quarter of what is left, so the run ended on one
#: worker's backlog while the other idled (33 s of 11:33).  A few at a time, both workers take the networks
#: side by side and the run ends within a short test of each other.
SCHEDULE_CHUNK = 4


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, :data:`SCHEDULE_CHUNK` tests per scheduling step unless the command line sets one."""
    if getattr(config.option, "maxschedchunk", 0) is None:   # xdist installed, --maxschedchunk not given
        config.option.maxschedchunk = SCHEDULE_CHUNK


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
