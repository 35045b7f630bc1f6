"""Data sets for mixq: real digits (embedded default), CIFAR-10, DAC-SDC and synthetic tensors.

Every image is 8-bit pixels.  The float tensor a model sees is ``pixel / 256``
(no mean/std normalisation: the first BN absorbs it, the integer contract says
so), so every value is an exact multiple of 1/256 and the hardware side gets
the very same pixels from :func:`get_images_uint8`.

Targets: class indices (``int64``) for classification, one normalised box
``(x1, y1, x2, y2)`` (``float32``, in [0, 1]) for single-object detection.
"""

from __future__ import annotations

import pickle
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "DATASETS", "DataError", "ImageDataset", "get_dataset", "get_images_uint8",
    "images_uint8", "resize_bilinear_uint8",
]

DATASETS = ("digits", "cifar10", "dacsdc", "synthetic")
TASKS = ("classify", "detect")
SPLITS = ("train", "test")

#: Fraction of each digit class (and of a DAC-SDC folder) held out as the test split.
TEST_FRACTION = 0.25
#: Size of the generated ``synthetic`` splits unless ``size`` says otherwise.
SYNTHETIC_SIZES = {"train": 256, "test": 64}
#: Synthetic detection objects: side range as a fraction of the image side, least colour difference from the
#: background (8-bit levels, the largest over channels), and the +- amplitude of the pixel noise.
SYNTHETIC_BOX_SIDES = (0.1, 0.5)
SYNTHETIC_CONTRAST = 96
SYNTHETIC_NOISE = 24


class DataError(ValueError):
    """A data set is missing, malformed or asked for in a shape it cannot take."""


# --------------------------------------------------------------------------- datasets


class ImageDataset(Dataset):
    """Images kept as 8-bit pixels; items are ``(pixel / 256 float tensor, target)``.

    Subclasses provide :meth:`image_uint8` and :meth:`target`; this base keeps
    everything in memory (``images``: uint8 tensor ``(N, C, H, W)``).
    """

    def __init__(self, images: torch.Tensor | None, targets: torch.Tensor | None, *,
                 name: str, split: str, task: str, num_classes: int) -> None:
        self.images = images
        self.targets = targets
        self.name = name
        self.split = split
        self.task = task
        self.num_classes = num_classes

    def __len__(self) -> int:
        assert self.images is not None      # a subclass without images in memory overrides this
        return int(self.images.shape[0])

    def image_uint8(self, index: int) -> torch.Tensor:
        """The ``index``-th image as a uint8 tensor ``(C, H, W)``."""
        assert self.images is not None
        return self.images[index]

    def target(self, index: int) -> torch.Tensor:
        """The ``index``-th target (class index or normalised box)."""
        assert self.targets is not None
        return self.targets[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_uint8(index).float() / 256.0, self.target(index)

    def __repr__(self) -> str:
        return f"<{self.name} {self.split} {self.task}: {len(self)} images>"


class _FolderDetectionDataset(ImageDataset):
    """DAC-SDC style folder: jpg images read lazily, resized to the model input on access."""

    def __init__(self, samples: list[tuple[Path, tuple[float, float, float, float]]],
                 input_shape: tuple[int, int, int], *, split: str) -> None:
        super().__init__(None, None, name="dacsdc", split=split, task="detect", num_classes=1)
        self.samples = samples
        self.input_shape = input_shape

    def __len__(self) -> int:
        return len(self.samples)

    def image_uint8(self, index: int) -> torch.Tensor:
        from PIL import Image

        path, _ = self.samples[index]
        channels, height, width = self.input_shape
        try:
            with Image.open(path) as src:
                img = src.convert("RGB" if channels == 3 else "L").resize(
                    (width, height), Image.Resampling.BILINEAR)
                pixels = np.asarray(img, dtype=np.uint8)
        except OSError as exc:
            raise DataError(f"dacsdc: cannot read image {path}: {exc}") from exc
        if channels == 1:
            pixels = pixels[:, :, None]
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))

    def target(self, index: int) -> torch.Tensor:
        return torch.tensor(self.samples[index][1], dtype=torch.float32)


# --------------------------------------------------------------------------- entry points


def get_dataset(name: str, split: str, input_shape: Sequence[int], root: str | Path | None = None,
                *, task: str = "classify", seed: int = 0, size: int | None = None,
                num_classes: int = 10) -> ImageDataset:
    """The ``split`` ("train" | "test") of data set ``name`` at ``input_shape`` (C, H, W) for ``task``.

    ``root`` is the folder of CIFAR-10 batches or DAC-SDC images (unused by
    digits/synthetic).  ``seed`` fixes splits and generated data; ``size``
    limits (or, for synthetic, sets) the number of images.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose 'train' or 'test'")
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose 'classify' or 'detect'")
    shape = _check_shape(input_shape)
    if size is not None and size < 1:
        raise DataError(f"dataset size must be at least 1, got {size}")
    if name == "digits":
        dataset = _digits(split, shape, task, seed)
    elif name == "synthetic":
        dataset = _synthetic(split, shape, task, seed, size, num_classes)
    elif name == "cifar10":
        if task != "classify":
            raise DataError("cifar10 is a classification data set; a detection model needs "
                            "--dataset digits, dacsdc or synthetic")
        dataset = _cifar10(_need_root(name, root), split, shape)
    else:
        if task != "detect":
            raise DataError("dacsdc is a detection data set; a classification model needs "
                            "--dataset digits, cifar10 or synthetic")
        dataset = _dacsdc(_need_root(name, root), split, shape, seed)
    if size is not None and size < len(dataset):
        dataset = _subset(dataset, size)
    return dataset


def images_uint8(dataset: ImageDataset, count: int | None = None) -> np.ndarray:
    """The first ``count`` (default all) images of ``dataset`` as uint8 ``(N, C, H, W)``."""
    n = len(dataset) if count is None else min(count, len(dataset))
    if isinstance(dataset, _FolderDetectionDataset) or dataset.images is None:
        return np.stack([dataset.image_uint8(i).numpy() for i in range(n)])
    return dataset.images[:n].numpy().copy()


def get_images_uint8(name: str, split: str, input_shape: Sequence[int],
                     root: str | Path | None = None, *, count: int | None = None,
                     task: str = "classify", seed: int = 0) -> np.ndarray:
    """The pixels the hardware consumes: uint8 ``(N, C, H, W)``, the same images as :func:`get_dataset`."""
    return images_uint8(get_dataset(name, split, input_shape, root, task=task, seed=seed), count)


# --------------------------------------------------------------------------- helpers


def _check_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise DataError(f"input shape must be three integers (C, H, W), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise DataError(f"input shape must be three positive integers (C, H, W), got {input_shape!r}")
    return shape


def _need_root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise DataError(f"{name} is read from a local folder: pass --data-root (root=...); "
                        "nothing is downloaded")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{name}: data root {path} is not a folder")
    return path


def _subset(dataset: ImageDataset, size: int) -> ImageDataset:
    if isinstance(dataset, _FolderDetectionDataset):
        return _FolderDetectionDataset(dataset.samples[:size], dataset.input_shape, split=dataset.split)
    assert dataset.images is not None and dataset.targets is not None
    return ImageDataset(dataset.images[:size], dataset.targets[:size], name=dataset.name,
                        split=dataset.split, task=dataset.task, num_classes=dataset.num_classes)


def resize_bilinear_uint8(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (half-pixel centres, edges clamped) of uint8 ``(..., h, w)``, rounded half up."""
    src_h, src_w = images.shape[-2:]
    rows = _interpolation_matrix(src_h, height)
    cols = _interpolation_matrix(src_w, width)
    out = rows @ images.astype(np.float64) @ cols.T
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _interpolation_matrix(src: int, dst: int) -> np.ndarray:
    """Linear interpolation weights (dst, src), the align_corners=False convention."""
    matrix = np.zeros((dst, src))
    centres = (np.arange(dst) + 0.5) * src / dst - 0.5
    centres = np.clip(centres, 0, src - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, src - 1)
    frac = centres - low
    matrix[np.arange(dst), low] += 1 - frac
    matrix[np.arange(dst), high] += frac
    return matrix


def _to_channels(gray_or_rgb: np.ndarray, channels: int, source: str) -> np.ndarray:
    """(N, c, H, W) -> (N, channels, H, W): replicate gray, average RGB to gray, else refuse."""
    have = gray_or_rgb.shape[1]
    if have == channels:
        return gray_or_rgb
    if have == 1:
        return np.repeat(gray_or_rgb, channels, axis=1)
    if have == 3 and channels == 1:
        gray = gray_or_rgb.astype(np.uint32).sum(axis=1, keepdims=True)
        return ((gray + 1) // 3).astype(np.uint8)
    raise DataError(f"{source}: images have {have} channels, the model wants {channels}")


# --------------------------------------------------------------------------- digits


def _digits_split(split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn 8x8 digits as 8-bit pixels (N, 8, 8) and labels, stratified seeded split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images.astype(np.int64) * 255 // 16).astype(np.uint8)
    labels = digits.target.astype(np.int64)
    rng = np.random.RandomState(seed)
    chosen = []
    for cls in range(10):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        n_test = int(round(len(members) * TEST_FRACTION))
        chosen.append(members[:n_test] if split == "test" else members[n_test:])
    index = np.sort(np.concatenate(chosen))
    return pixels[index], labels[index]


def _digits(split: str, shape: tuple[int, int, int], task: str, seed: int) -> ImageDataset:
    channels, height, width = shape
    pixels, labels = _digits_split(split, seed)
    if task == "classify":
        images = resize_bilinear_uint8(pixels, height, width)[:, None]
        images = _to_channels(images, channels, "digits")
        return ImageDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels),
                            name="digits", split=split, task=task, num_classes=10)
    images, boxes = _digit_canvases(pixels, shape, seed * 2 + (split == "test"))
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(boxes),
                        name="digits", split=split, task=task, num_classes=1)


def _digit_canvases(digits: np.ndarray, shape: tuple[int, int, int],
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One digit per canvas at a seeded position and scale on faint noise; box = the digit's ink."""
    channels, height, width = shape
    if height < 8 or width < 8:
        raise DataError(f"digits detection needs an input of at least 8x8 pixels, got {height}x{width}")
    rng = np.random.RandomState(seed)
    images = np.empty((len(digits), 1, height, width), dtype=np.uint8)
    boxes = np.empty((len(digits), 4), dtype=np.float32)
    for i, digit in enumerate(digits):
        canvas = rng.randint(0, 32, size=(height, width)).astype(np.uint8)
        patch_h = rng.randint(max(8, height // 4), max(9, height * 3 // 4) + 1)
        patch_w = rng.randint(max(8, width // 4), max(9, width * 3 // 4) + 1)
        patch_h, patch_w = min(patch_h, height), min(patch_w, width)
        top = rng.randint(0, height - patch_h + 1)
        left = rng.randint(0, width - patch_w + 1)
        patch = resize_bilinear_uint8(digit, patch_h, patch_w)
        region = canvas[top:top + patch_h, left:left + patch_w]
        np.maximum(region, patch, out=region)
        ink_rows = np.flatnonzero(patch.max(axis=1) >= 64)
        ink_cols = np.flatnonzero(patch.max(axis=0) >= 64)
        if len(ink_rows) == 0:  # a blank digit: the whole patch is its box
            ink_rows = np.array([0, patch_h - 1])
            ink_cols = np.array([0, patch_w - 1])
        boxes[i] = [(left + ink_cols[0]) / width, (top + ink_rows[0]) / height,
                    (left + ink_cols[-1] + 1) / width, (top + ink_rows[-1] + 1) / height]
        images[i, 0] = canvas
    return np.ascontiguousarray(_to_channels(images, channels, "digits")), boxes


# --------------------------------------------------------------------------- synthetic


def _synthetic(split: str, shape: tuple[int, int, int], task: str, seed: int,
               size: int | None, num_classes: int) -> ImageDataset:
    """Seeded generated data: random pixels with random labels (classification: for tests and
    hardware-only runs), or one object per image with its box (detection: :func:`_synthetic_boxes`)."""
    n = size if size is not None else SYNTHETIC_SIZES[split]
    rng = np.random.RandomState(seed * 2 + (split == "test") + 12345)
    if task == "detect":
        images, boxes = _synthetic_boxes(n, shape, rng)
        return ImageDataset(torch.from_numpy(images), torch.from_numpy(boxes), name="synthetic", split=split,
                            task=task, num_classes=1)
    if num_classes < 1:
        raise DataError(f"synthetic: num_classes must be at least 1, got {num_classes}")
    images = rng.randint(0, 256, size=(n, *shape)).astype(np.uint8)
    targets = torch.from_numpy(rng.randint(0, num_classes, size=n).astype(np.int64))
    return ImageDataset(torch.from_numpy(images), targets, name="synthetic", split=split,
                        task=task, num_classes=num_classes)


def _synthetic_boxes(n: int, shape: tuple[int, int, int], rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of one solid rectangle on a flat background, both in random colours at least
    :data:`SYNTHETIC_CONTRAST` levels apart in some channel, plus uniform noise of +-:data:`SYNTHETIC_NOISE`
    on every pixel; the box is the rectangle's extent (whole pixels, sides :data:`SYNTHETIC_BOX_SIDES`)."""
    channels, height, width = shape
    lo, hi = SYNTHETIC_BOX_SIDES
    images = np.empty((n, channels, height, width), dtype=np.uint8)
    boxes = np.empty((n, 4), dtype=np.float32)
    for i in range(n):
        box_h = rng.randint(max(1, round(lo * height)), max(1, round(hi * height)) + 1)
        box_w = rng.randint(max(1, round(lo * width)), max(1, round(hi * width)) + 1)
        top, left = rng.randint(0, height - box_h + 1), rng.randint(0, width - box_w + 1)
        background = rng.randint(0, 256, size=channels)
        colour = rng.randint(0, 256, size=channels)
        while np.abs(colour - background).max() < SYNTHETIC_CONTRAST:
            colour = rng.randint(0, 256, size=channels)
        canvas = np.broadcast_to(background[:, None, None], (channels, height, width)).copy()
        canvas[:, top:top + box_h, left:left + box_w] = colour[:, None, None]
        canvas += rng.randint(-SYNTHETIC_NOISE, SYNTHETIC_NOISE + 1, size=canvas.shape)
        images[i] = np.clip(canvas, 0, 255)
        boxes[i] = [left / width, top / height, (left + box_w) / width, (top + box_h) / height]
    return images, boxes


# --------------------------------------------------------------------------- CIFAR-10


class _Refused(pickle.UnpicklingError):
    """A pickle asked for something beyond plain data."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: any other global is refused.

    CIFAR-10's python batches are pickles of ``{b"data": ndarray, b"labels": list, ...}``;
    this never imports or calls anything but numpy's array reconstruction.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise _Refused(f"refusing to load {module}.{name}: CIFAR batches hold only "
                                         "dicts, lists, bytes, str and numpy arrays")
        if name == "encode":  # how protocol-2 pickles written by Python 3 spell a bytes object
            return _latin1_bytes
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
            return _reconstruct
        return getattr(np, name)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` restricted to the one use a bytes pickle makes of it."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _Refused(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except _Refused as exc:
        raise DataError(f"cifar10: {path} is not a plain CIFAR-10 python batch: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DataError(f"cifar10: {path} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise DataError(f"cifar10: {path} holds a {type(batch).__name__}, expected a dict batch")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or not ({"labels", "fine_labels"} & batch.keys()):
        raise DataError(f"cifar10: {path} has keys {sorted(batch)}, expected 'data' and 'labels'")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"cifar10: {path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if len(labels) != len(data):
        raise DataError(f"cifar10: {path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"cifar10: {path}: labels outside 0..9 (min {labels.min()}, max {labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar10(root: Path, split: str, shape: tuple[int, int, int]) -> ImageDataset:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    files = [folder / n for n in names if (folder / n).is_file()]
    if not files:
        raise DataError(f"cifar10: no {' / '.join(names[:1] if split == 'test' else ['data_batch_1..5'])} "
                        f"in {folder}; expected the python-version CIFAR-10 batches "
                        "(cifar-10-batches-py) unpacked there")
    parts = [_read_cifar_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    channels, height, width = shape
    if (height, width) != (32, 32):
        images = resize_bilinear_uint8(images, height, width)
    images = _to_channels(images, channels, f"cifar10 ({folder})")
    return ImageDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels),
                        name="cifar10", split=split, task="classify", num_classes=10)


# --------------------------------------------------------------------------- DAC-SDC


def _read_voc_box(xml_path: Path) -> tuple[float, float, float, float]:
    """The first object's box from a VOC xml, normalised by the annotated image size."""
    try:    # a missing element is a None: float(None) / None.findtext raise, and the except below says so
        root = ElementTree.parse(xml_path).getroot()
        width = float(root.findtext("size/width"))  # type: ignore[arg-type]
        height = float(root.findtext("size/height"))  # type: ignore[arg-type]
        box = root.find("object/bndbox")
        x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore
    except ElementTree.ParseError as exc:
        raise DataError(f"dacsdc: {xml_path} is not valid XML: {exc}") from exc
    except (TypeError, AttributeError, ValueError):
        raise DataError(f"dacsdc: {xml_path} lacks size/width, size/height or "
                        "object/bndbox/xmin..ymax (VOC format expected)") from None
    if width <= 0 or height <= 0 or not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise DataError(f"dacsdc: {xml_path}: box ({x1}, {y1}, {x2}, {y2}) does not fit "
                        f"the {width:g}x{height:g} image")
    return x1 / width, y1 / height, x2 / width, y2 / height


def _dacsdc(root: Path, split: str, shape: tuple[int, int, int], seed: int) -> ImageDataset:
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if not images:
        raise DataError(f"dacsdc: no .jpg images under {root}; expected jpg files each with a "
                        "VOC .xml box of the same name next to it")
    samples = []
    for image in images:
        xml_path = image.with_suffix(".xml")
        if not xml_path.is_file():
            raise DataError(f"dacsdc: image {image} has no box file {xml_path.name} next to it")
        samples.append((image, _read_voc_box(xml_path)))
    order = np.random.RandomState(seed).permutation(len(samples))
    n_test = int(round(len(samples) * TEST_FRACTION)) if len(samples) > 1 else 0
    chosen = order[:n_test] if split == "test" else order[n_test:]
    if len(chosen) == 0:
        raise DataError(f"dacsdc: {root} has {len(samples)} image(s), too few for a {split} split")
    return _FolderDetectionDataset([samples[i] for i in sorted(chosen)], shape, split=split)
