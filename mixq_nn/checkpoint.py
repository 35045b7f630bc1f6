"""Self-describing mixq checkpoints: tensors and plain types only, loadable with ``weights_only=True``.

A checkpoint names its model and the model's build arguments, the bit widths
of every quantised layer, the input shape and the task, next to the state
dict, the metrics measured when it was written, the mixq version and the
date.  :func:`load` rebuilds the model through :func:`mixq_nn.models.build`
and refuses anything it cannot vouch for with a :class:`CheckpointError`
that names the file and the problem.  No pickled Python objects, ever.
"""

from __future__ import annotations

import datetime
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

__all__ = ["FORMAT", "VERSION", "Checkpoint", "CheckpointError", "save", "load", "mixq_version",
           "round_weights_to_half"]

FORMAT = "mixq-checkpoint"
VERSION = 1
#: With ``half_weights``, float32 tensors of at least this many elements (the conv / linear
#: weights, not BN vectors or quantiser steps) are stored as float16.
HALF_MIN_NUMEL = 1024
_HALF_MAX = 65504.0
VARIANTS = ("fixed", "supernet", "float")
_PLAIN = (str, int, float, bool, type(None))


class CheckpointError(ValueError):
    """A file is missing, truncated, not a mixq checkpoint, or does not match its model."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode) and what the file says about it."""

    model: nn.Module | None
    name: str
    bitw: list[int]
    bita: list[int]
    input_shape: tuple[int, int, int]
    meta: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def variant(self) -> str:
        """"fixed" (trained), "supernet" (a search result) or "float"."""
        return self.meta.get("variant", "fixed")

    @property
    def task(self) -> str:
        """"classify" or "detect"."""
        return self.meta.get("task", "classify")

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics", {})

    @property
    def data(self) -> dict[str, Any]:
        """The data set it was trained on, as training recorded it: ``dataset``, ``data_root``, ``seed``
        (an empty dict if none was recorded), plus ``task``."""
        recorded = (self.meta.get("extra") or {}).get("data") or {}
        return {**(recorded if isinstance(recorded, dict) else {}), "task": self.task}

    @property
    def model_args(self) -> dict[str, Any]:
        return self.meta.get("model_args", {})


def mixq_version() -> str:
    """The installed mixq version (:data:`mixq_hw.version.__version__`)."""
    from mixq_hw.version import __version__

    return __version__


def _plain(value: Any, what: str) -> Any:
    """Check (recursively) that ``value`` is made of plain types that weights_only loading accepts."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, what) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what}: key {key!r} is not a string")
            out[key] = _plain(item, f"{what}[{key!r}]")
        return out
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    raise TypeError(f"{what}: {type(value).__name__} is not a plain type (str, int, float, bool, "
                    "None, list, dict, tensor)")


def _half_keys(state: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, v in state.items() if v.dtype == torch.float32 and v.numel() >= HALF_MIN_NUMEL]


@torch.no_grad()
def round_weights_to_half(model: nn.Module) -> int:
    """Round ``model``'s large float32 tensors in place to float16-representable values.

    Afterwards ``save(..., half_weights=True)`` stores them in half the bytes and
    the loaded model is bit-identical to this one (float16 -> float32 is exact).
    Evaluate the model after rounding: that is the model the file holds.
    Returns the number of tensors rounded.
    """
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    state = module.state_dict(keep_vars=True)
    keys = _half_keys(state)
    for key in keys:
        tensor = state[key]
        if float(tensor.abs().max()) > _HALF_MAX:
            raise ValueError(f"{key}: values up to {float(tensor.abs().max()):g} do not fit float16")
        tensor.copy_(tensor.to(torch.float16).to(torch.float32))
    return len(keys)


def save(path: str | Path, model: nn.Module, *, name: str, bitw: Sequence[int], bita: Sequence[int],
         input_shape: Sequence[int], model_args: dict[str, Any] | None = None,
         metrics: dict[str, Any] | None = None, variant: str = "fixed", task: str | None = None,
         extra: dict[str, Any] | None = None, half_weights: bool = False) -> Path:
    """Write ``model``'s state and description to ``path`` (atomically); returns the path.

    ``model_args`` are the extra keyword arguments of ``models.build`` (plain
    types only); ``extra`` holds anything else worth keeping (training
    settings, search history...).  A DDP wrapper is unwrapped.  With
    ``half_weights`` the large float tensors are stored as float16; they must
    already hold float16 values (:func:`round_weights_to_half`), so that
    nothing changes between the model measured and the model loaded.
    """
    if variant not in VARIANTS:
        raise ValueError(f"checkpoint variant must be one of {VARIANTS}, got {variant!r}")
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    if half_weights:
        for key in _half_keys(state):
            half = state[key].to(torch.float16)
            if not torch.equal(half.to(torch.float32), state[key]):
                raise ValueError(f"{key} holds values float16 cannot represent exactly; call "
                                 "checkpoint.round_weights_to_half(model) (and re-measure) before saving")
            state[key] = half
    if task is None:
        from . import models

        info = models.MODELS.get(name)
        task = info.task if info is not None else "classify"
    shape = [int(v) for v in input_shape]
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    content = {
        "format": FORMAT,
        "version": VERSION,
        "model": str(name),
        "variant": variant,
        "task": task,
        "model_args": _plain(dict(model_args or {}), "model_args"),
        "bitw": [int(b) for b in bitw],
        "bita": [int(b) for b in bita],
        "input_shape": shape,
        "metrics": _plain(dict(metrics or {}), "metrics"),
        "extra": _plain(dict(extra or {}), "extra"),
        "mixq_version": mixq_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "half_weights": bool(half_weights),
        "state_dict": state,
    }
    from mixq_hw.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return path


def _unpickler_reason(message: str) -> str:
    """What torch's weights-only unpickler objected to, without torch's advice to load unsafely."""
    match = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\s*\n|$)", message, re.S)
    reason = (match.group(1) if match else "").strip().splitlines()
    return reason[0][:200] if reason else "an object that is not a tensor or a plain type"


def _read(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True, every failure turned into a CheckpointError of our own wording."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (an interrupted write?)")
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(f"{path}: not a checkpoint: neither a torch zip archive nor a pickle stream "
                              f"(first bytes {head!r})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: it holds something other than tensors and plain types (a pickled model, "
            f"optimizer or other object: {_unpickler_reason(str(exc))}); mixq reads only tensors and plain "
            f"types and never runs code from a checkpoint"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError,
            IndexError, AttributeError, TypeError, MemoryError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if "weights_only" in first:
            first = "its contents cannot be read with the safe loader"
        raise CheckpointError(f"{path}: truncated or corrupt, torch cannot read it "
                              f"({type(exc).__name__}: {first})") from None


def _validate(path: Path, content: Any) -> None:
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: holds a {type(content).__name__}, not a mixq checkpoint "
                              "(a dict with format 'mixq-checkpoint')")
    if "format" not in content:
        if content and all(isinstance(v, torch.Tensor) for v in content.values()):
            raise CheckpointError(
                f"{path}: a plain state_dict ({len(content)} tensors), not a mixq checkpoint: it does "
                "not say which model, bit widths or input shape it belongs to; write checkpoints with "
                "python -m mixq_nn.train or mixq_nn.checkpoint.save")
        raise CheckpointError(f"{path}: not a mixq checkpoint (no 'format' entry; keys: "
                              f"{', '.join(sorted(map(str, content))[:8])})")
    if content["format"] != FORMAT:
        raise CheckpointError(f"{path}: format is {content['format']!r}, expected {FORMAT!r}")
    if content.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {content.get('version')!r}; this mixq "
                              f"({mixq_version()}) reads version {VERSION}")
    expect = {"model": str, "variant": str, "task": str, "model_args": dict, "bitw": list,
              "bita": list, "input_shape": list, "state_dict": dict}
    for key, kind in expect.items():
        if not isinstance(content.get(key), kind):
            raise CheckpointError(f"{path}: entry {key!r} is missing or not a {kind.__name__} "
                                  f"(got {type(content.get(key)).__name__})")
    for key in ("bitw", "bita", "input_shape"):
        if not all(isinstance(v, int) and v > 0 for v in content[key]):
            raise CheckpointError(f"{path}: {key} must be positive integers, got {content[key]!r}")
    if len(content["input_shape"]) != 3:
        raise CheckpointError(f"{path}: input_shape must be (C, H, W), got {content['input_shape']!r}")
    if content["variant"] not in VARIANTS:
        raise CheckpointError(f"{path}: unknown variant {content['variant']!r} (expected one of {VARIANTS})")
    bad = [k for k, v in content["state_dict"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state_dict entries that are not tensors: {', '.join(bad[:5])}")


def _check_sizes(path: Path, content: dict[str, Any]) -> None:
    """Input shape and every integer model option within ``validate.LIMITS`` before the model is built."""
    from mixq_hw.validate import LIMITS, InputError, shape

    try:
        shape(content["input_shape"], f"{path}: input_shape")
    except InputError as exc:
        raise CheckpointError(str(exc)) from None
    for key, value in content["model_args"].items():
        limit = LIMITS["classes"] if key == "num_classes" else LIMITS["channels"]
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= limit:
            raise CheckpointError(f"{path}: model option {key}={value} is outside 0..{limit:,} "
                                  f"(refused before building the model)")


def _load_state(path: Path, model: nn.Module, state: dict[str, torch.Tensor], label: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{path}: state does not match {label}: {'; '.join(parts)}")
    for key, tensor in own.items():
        if tuple(tensor.shape) != tuple(state[key].shape):
            raise CheckpointError(f"{path}: state does not match {label}: {key} has shape "
                                  f"{tuple(state[key].shape)} in the file, the model wants {tuple(tensor.shape)}")
        if tensor.is_floating_point() != state[key].is_floating_point():
            raise CheckpointError(f"{path}: state does not match {label}: {key} is {state[key].dtype} "
                                  f"in the file, the model wants {tensor.dtype}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: state does not match {label}: {exc}") from None


def load(path: str | Path, *, build: bool = True) -> Checkpoint:
    """Read and check a mixq checkpoint; rebuild its model (eval mode) unless ``build=False``."""
    path = Path(path)
    content = _read(path)
    _validate(path, content)
    name = content["model"]
    bitw, bita = list(content["bitw"]), list(content["bita"])
    input_shape = tuple(content["input_shape"])
    meta = {k: v for k, v in content.items() if k != "state_dict"}
    model = None
    if build:
        from . import models

        if name not in models.MODELS:
            raise CheckpointError(f"{path}: unknown model {name!r}; known models: {', '.join(models.MODELS)}")
        info = models.MODELS[name]
        if content["variant"] != "float" and (len(bitw) != info.num_qlayers or len(bita) != info.num_qlayers):
            raise CheckpointError(f"{path}: {name} has {info.num_qlayers} quantised layers, the file gives "
                                  f"{len(bitw)} weight and {len(bita)} activation bit widths")
        _check_sizes(path, content)
        kwargs = dict(content["model_args"])
        kwargs["input_shape"] = input_shape
        if content["variant"] == "fixed":
            kwargs.update(bitw=bitw, bita=bita)
        label = f"{name} ({content['variant']}, bitw {bitw}, bita {bita}, input {input_shape})"
        try:
            model = models.build(name, variant=content["variant"], **kwargs)
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{path}: cannot rebuild {label}: {exc}") from None
        _load_state(path, model, content["state_dict"], label)
        model.eval()
    return Checkpoint(model=model, name=name, bitw=bitw, bita=bita, input_shape=input_shape,
                      meta=meta, state_dict=content["state_dict"])
