"""train and search under ``torchrun --nproc_per_node=2`` (DistributedDataParallel, gloo on CPU)."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from mixq_nn import checkpoint


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_train_under_torchrun_two_processes(tmp_path):
    out = tmp_path / "ddp.pt"
    proc = _torchrun(["-m", "mixq_nn.train", "--dataset", "synthetic", "--input-shape", "1,8,8",
                      "--limit", "24", "--batch-size", "4", "--epochs", "2", "--bitw", "844444",
                      "--bita", "844444", "--out", str(out)], tmp_path)
    text = proc.stdout
    # Only rank 0 prints: one header, one line per epoch, one "wrote".
    assert text.count("2 process(es)") == 1
    assert text.count("epoch 1/2") == 1 and text.count("epoch 2/2") == 1
    assert text.count(f"wrote {out}") == 1
    assert "24 train / 24 test images" in text
    ckpt = checkpoint.load(out)
    assert ckpt.bitw == [8, 4, 4, 4, 4, 4] and ckpt.input_shape == (1, 8, 8)
    assert [h["epoch"] for h in ckpt.meta["extra"]["history"]] == [1, 2]
    raw = torch.load(out, weights_only=True)
    assert not any(k.startswith("module.") for k in raw["state_dict"])  # the DDP wrapper is not saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt"]


def test_search_under_torchrun_two_processes(tmp_path):
    out = tmp_path / "s.pt"
    proc = _torchrun(["-m", "mixq_nn.search", "--dataset", "synthetic", "--input-shape", "1,8,8",
                      "--limit", "16", "--batch-size", "4", "--epochs", "1", "--wbits", "2,4",
                      "--abits", "2,4", "--out", str(out)], tmp_path)
    assert proc.stdout.count("epoch 1/1") == 1
    found = checkpoint.load(out)
    assert found.variant == "supernet" and len(found.bitw) == 6
    assert (tmp_path / "s.png").exists()
