"""A network whose weights exceed the device's block RAM (full-size DiracDeltaNet on the Ultra96) is refused
before any export, folding or elaboration, with the bits needed, the bits the device has, where the weights would
have to go and the layers that hold most of them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from mixq_hw import build as build_mod
from mixq_hw.graph import Graph
from mixq_hw.weight_fit import BRAM36_BITS, WeightsDoNotFit, check_weights_fit, graph_weight_bits
from mixq_nn import checkpoint, models


def test_check_passes_what_fits_and_names_what_does_not():
    check_weights_fit({"a": 10 * BRAM36_BITS}, network="n", board="B", device_bram36=20, available_bram36=10)
    bits = {f"l{k}": (k + 1) * BRAM36_BITS for k in range(7)}        # 28 BRAM36 of weights
    with pytest.raises(WeightsDoNotFit) as info:
        check_weights_fit(bits, network="n", board="B", device_bram36=20, available_bram36=16.5)
    text = str(info.value)
    assert f"need {28 * BRAM36_BITS:,} bits" in text and "16.5 BRAM36" in text and "20 BRAM36" in text
    assert "1.40x the device's block RAM" in text and "off-chip DDR" in text
    # the five largest layers, largest first, with their shares
    assert "l6 258,048 (25 %), l5 221,184 (21 %), l4" in text and "l1 " not in text


def test_graph_weight_bits_counts_conv_and_linear():
    g = Graph("t", (2, 4, 4))
    c = g.add_conv("c", g.add_input(8), np.ones((3, 2, 3, 3), dtype=np.int64), w_bits=4)
    r = g.add_requant("r", c, np.ones(3, dtype=np.int64), np.zeros(3, dtype=np.int64), shift=4, out_bits=4)
    fc = g.add_linear("fc", r, np.ones((5, 48), dtype=np.int64), w_bits=6)
    g.add_output("out", fc, np.zeros(5, dtype=np.int64), np.ones(5))
    assert graph_weight_bits(g) == {"c": 3 * 2 * 9 * 4, "fc": 5 * 48 * 6}


@pytest.fixture(scope="module")
def dirac_checkpoint(tmp_path_factory):
    """An untrained full-size DiracDeltaNet (W4A4, 8-bit first and last layers) as a checkpoint."""
    info = models.MODELS["DiracDeltaNet"]
    model = models.build("DiracDeltaNet", "fixed", info.default_bitw, info.default_bita)
    path = tmp_path_factory.mktemp("dirac") / "dirac.pt"
    checkpoint.save(path, model, name="DiracDeltaNet", bitw=info.default_bitw, bita=info.default_bita,
                    input_shape=info.input_shape)
    return path


def test_full_size_diracdeltanet_stops_before_export(dirac_checkpoint, tmp_path, capsys, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("the build exported a network that cannot fit")

    monkeypatch.setattr("mixq_nn.export.export", no_export)
    start = time.perf_counter()
    status = build_mod.main([str(dirac_checkpoint), "--board", "ultra96", "--out", str(tmp_path / "out"), "-q"])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert status == 2, err
    assert "DiracDeltaNet does not fit the Avnet Ultra96-V2" in err
    bits = int(err.split("weights need ")[1].split(" bits")[0].replace(",", ""))
    assert 15.5e6 < bits < 16e6                                     # about 15.7 Mbit
    assert "whole device has 216 BRAM36 = 7,962,624 bits" in err and "1.98x the device's block RAM" in err
    assert "off-chip DDR memory (weight streaming), which mixq does not build" in err
    assert "bits: fc 8,192,000 (52 %), head.0 1,900,544 (12 %)" in err     # FC 1024 -> 1000 at 8 bits, head
    assert not (tmp_path / "out").exists()
    assert seconds < 30, seconds


def test_a_graph_source_is_checked_too(tmp_path):
    """An exported graph (or QONNX model) is checked once it is read, before the folding."""
    g = Graph("wide", (64, 1, 1))
    fc = g.add_linear("fc", g.add_input(8), np.ones((40_000, 64), dtype=np.int64), w_bits=8)
    g.add_output("out", fc, np.zeros(40_000, dtype=np.int64), np.ones(40_000))
    with pytest.raises(build_mod.BuildError, match=r"wide does not fit .*need 20,480,000 bits.*holds 100 % of the bits: fc 20,480,000 "
                                                   r"\(100 %\)"):
        build_mod.build(g, out=tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()
