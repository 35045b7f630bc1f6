"""Checkpoints: round trips (fixed and supernet), weights_only loading, and every refusal."""

from __future__ import annotations

import pickle

import pytest
import torch

from mixq_nn import checkpoint, models
from mixq_nn.checkpoint import CheckpointError

SHAPE = (1, 16, 16)
BITW, BITA = [8, 4, 3, 2, 4, 5], [8, 4, 3, 2, 6, 3]


def _fixed(seed: int = 0, shape=SHAPE, **opts) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = models.build("VGGtiny", "fixed", bitw=BITW, bita=BITA, input_shape=shape, **opts)
    # Non-default BN statistics and affine parameters, so a round trip that dropped them would show.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _save(path, model, **kw):
    args = dict(name="VGGtiny", bitw=BITW, bita=BITA, input_shape=SHAPE)
    args.update(kw)
    return checkpoint.save(path, model, **args)


def test_fixed_round_trip(tmp_path):
    model = _fixed(act_mode="pact")
    path = _save(tmp_path / "w.pt", model, model_args={"act_mode": "pact"},
                 metrics={"test_accuracy": 98.5, "test_samples": 450}, extra={"note": [1, 2.5, None]})
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain data only
    assert raw["format"] == "mixq-checkpoint" and raw["version"] == 1
    assert raw["model"] == "VGGtiny" and raw["input_shape"] == list(SHAPE)

    ckpt = checkpoint.load(path)
    assert (ckpt.name, ckpt.bitw, ckpt.bita, ckpt.input_shape) == ("VGGtiny", BITW, BITA, SHAPE)
    assert ckpt.variant == "fixed" and ckpt.task == "classify"
    assert ckpt.metrics == {"test_accuracy": 98.5, "test_samples": 450}
    assert ckpt.meta["extra"] == {"note": [1, 2.5, None]}
    assert ckpt.meta["mixq_version"] == checkpoint.mixq_version() != "unknown"
    assert ckpt.meta["created"][:2] == "20"
    assert ckpt.model_args == {"act_mode": "pact"}
    assert not ckpt.model.training
    assert models.model_bits(ckpt.model) == (BITW, BITA)
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key
    x = torch.randint(0, 256, (4, *SHAPE)).float() / 256
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))
    meta_only = checkpoint.load(path, build=False)
    assert meta_only.model is None and meta_only.bitw == BITW


def test_supernet_round_trip_keeps_architecture_weights(tmp_path):
    torch.manual_seed(1)
    opts = {"wbits": [2, 4, 8], "abits": [2, 3, 4], "input_bits": 8}
    net = models.build("VGGtiny", "supernet", input_shape=SHAPE, **opts)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("alpha_w", "alpha_a")):
                p.normal_()
    bitw, bita = models.model_bits(net)
    path = _save(tmp_path / "s.pt", net, bitw=bitw, bita=bita, variant="supernet", model_args=opts)
    ckpt = checkpoint.load(path)
    assert ckpt.variant == "supernet" and (ckpt.bitw, ckpt.bita) == (bitw, bita)
    assert models.model_bits(ckpt.model) == (bitw, bita)
    for key, value in net.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key


def test_save_refuses_objects_that_are_not_plain(tmp_path):
    with pytest.raises(TypeError, match="metrics.*'when'.*not a plain type"):
        _save(tmp_path / "x.pt", _fixed(), metrics={"when": object()})
    with pytest.raises(ValueError, match="variant"):
        _save(tmp_path / "x.pt", _fixed(), variant="int8")
    assert not (tmp_path / "x.pt").exists()


def test_missing_empty_truncated_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such checkpoint file"):
        checkpoint.load(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="not a file"):
        checkpoint.load(tmp_path)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: empty file"):
        checkpoint.load(empty)
    good = _save(tmp_path / "good.pt", _fixed())
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.pt: truncated or corrupt"):
            checkpoint.load(bad)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt: not a checkpoint: neither a torch zip"):
        checkpoint.load(garbage)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_foreign_files(tmp_path):
    model = _fixed()
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match=r"plain.pt: a plain state_dict \(\d+ tensors\), not a mixq"):
        checkpoint.load(plain)
    pickled = tmp_path / "pickled.pt"
    torch.save(model, pickled)  # a whole pickled module: weights_only refuses to unpickle it
    with pytest.raises(CheckpointError, match="pickled.pt: refused.*never runs code") as info:
        checkpoint.load(pickled)
    assert "weights_only" not in str(info.value)  # no advice pointing at the unsafe load
    raw_pickle = tmp_path / "raw.pt"
    raw_pickle.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="raw.pt"):
        checkpoint.load(raw_pickle)
    other = tmp_path / "other.pt"
    torch.save({"epoch": 3, "model": "resnet"}, other)
    with pytest.raises(CheckpointError, match="other.pt: not a mixq checkpoint.*epoch"):
        checkpoint.load(other)
    a_list = tmp_path / "list.pt"
    torch.save([1, 2], a_list)
    with pytest.raises(CheckpointError, match="holds a list"):
        checkpoint.load(a_list)


def _edited(tmp_path, name, **changes):
    path = _save(tmp_path / "base.pt", _fixed())
    raw = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del raw[key]
        else:
            raw[key] = value
    out = tmp_path / name
    torch.save(raw, out)
    return out


def test_wrong_format_version_and_fields(tmp_path):
    with pytest.raises(CheckpointError, match="fmt.pt: format is 'other', expected 'mixq-checkpoint'"):
        checkpoint.load(_edited(tmp_path, "fmt.pt", format="other"))
    with pytest.raises(CheckpointError, match="v2.pt: checkpoint version 2; .* reads version 1"):
        checkpoint.load(_edited(tmp_path, "v2.pt", version=2))
    with pytest.raises(CheckpointError, match="nobits.pt: entry 'bitw' is missing"):
        checkpoint.load(_edited(tmp_path, "nobits.pt", bitw=None))
    with pytest.raises(CheckpointError, match="shape.pt: input_shape must be"):
        checkpoint.load(_edited(tmp_path, "shape.pt", input_shape=[16, 16]))
    with pytest.raises(CheckpointError, match="neg.pt: bita must be positive integers"):
        checkpoint.load(_edited(tmp_path, "neg.pt", bita=[8, 4, 3, 2, 4, -1]))


def test_unknown_model_and_bit_count(tmp_path):
    with pytest.raises(CheckpointError, match="resnet.pt: unknown model 'ResNet50'; known models: VGGtiny"):
        checkpoint.load(_edited(tmp_path, "resnet.pt", model="ResNet50"))
    with pytest.raises(CheckpointError, match="count.pt: VGGtiny has 6 quantised layers, the file gives 5"):
        checkpoint.load(_edited(tmp_path, "count.pt", bitw=[8, 4, 4, 4, 4]))
    with pytest.raises(CheckpointError, match="range.pt: cannot rebuild VGGtiny.*bitw"):
        checkpoint.load(_edited(tmp_path, "range.pt", bitw=[8, 4, 4, 4, 4, 9]))
    with pytest.raises(CheckpointError, match="shape8.pt: cannot rebuild .*multiples of 8"):
        checkpoint.load(_edited(tmp_path, "shape8.pt", input_shape=[1, 12, 12]))


def test_state_that_does_not_match_the_model(tmp_path):
    state = _fixed().state_dict()
    missing = dict(state)
    key = next(iter(missing))
    del missing[key]
    with pytest.raises(CheckpointError, match=f"missing.pt: state does not match VGGtiny.*missing 1.*{key}"):
        checkpoint.load(_edited(tmp_path, "missing.pt", state_dict=missing))
    extra = dict(state, **{"features.9.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"extra.pt: state does not match .*unexpected 1.*features\.9"):
        checkpoint.load(_edited(tmp_path, "extra.pt", state_dict=extra))
    # Weights of a different input size: the classifier's shape no longer fits.
    other = _fixed(shape=(1, 8, 8)).state_dict()
    with pytest.raises(CheckpointError, match=r"size.pt: state does not match .*classifier.weight has shape"):
        checkpoint.load(_edited(tmp_path, "size.pt", state_dict=other))
    not_tensor = dict(state, **{key: [1, 2]})
    with pytest.raises(CheckpointError, match="nt.pt: state_dict entries that are not tensors"):
        checkpoint.load(_edited(tmp_path, "nt.pt", state_dict=not_tensor))


def test_save_creates_folders_and_leaves_no_partial_file(tmp_path):
    path = _save(tmp_path / "sub" / "w.pt", _fixed())
    assert path.exists() and not (tmp_path / "sub" / "w.pt.partial").exists()


def test_half_weights_halve_the_file_and_load_the_same_model(tmp_path):
    model = _fixed(2)
    full = _save(tmp_path / "full.pt", model)
    with pytest.raises(ValueError, match="round_weights_to_half"):
        _save(tmp_path / "refused.pt", model, half_weights=True)
    rounded = checkpoint.round_weights_to_half(model)
    assert rounded == 6  # five conv weights and the classifier (the 1->64 first conv is too small)
    half = _save(tmp_path / "half.pt", model, half_weights=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    raw = torch.load(half, weights_only=True)
    assert raw["half_weights"] is True and raw["state_dict"]["classifier.weight"].dtype == torch.float16
    assert raw["state_dict"]["features.0.1.running_mean"].dtype == torch.float32  # small tensors stay
    ckpt = checkpoint.load(half)
    for key, value in model.state_dict().items():
        loaded = ckpt.model.state_dict()[key]
        assert loaded.dtype == value.dtype and torch.equal(loaded, value), key
    x = torch.randint(0, 256, (4, *SHAPE)).float() / 256
    with torch.no_grad():
        assert torch.equal(ckpt.model(x), model(x))


def test_state_of_the_wrong_kind(tmp_path):
    state = _fixed().state_dict()
    key = "features.0.1.num_batches_tracked"
    wrong = dict(state, **{key: torch.tensor(7.0)})
    with pytest.raises(CheckpointError, match=f"kind.pt: state does not match .*{key} is torch.float32"):
        checkpoint.load(_edited(tmp_path, "kind.pt", state_dict=wrong))
