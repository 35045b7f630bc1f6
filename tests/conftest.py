"""Test-suite wide settings: one torch thread per pytest worker (two workers share two cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch
except ImportError:  # pragma: no cover - torch is a dependency, but hardware tests do not need it
    torch = None
else:
    torch.set_num_threads(1)
