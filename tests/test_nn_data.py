"""Data loaders: digits (classify and detect), synthetic, a fake CIFAR-10 batch, a tiny DAC-SDC folder, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixq_nn.data import DataError, get_dataset, get_images_uint8, resize_bilinear_uint8

# ----------------------------------------------------------------------------- digits


def test_digits_split_is_stratified_disjoint_and_complete():
    from sklearn.datasets import load_digits

    raw = load_digits()
    train = get_dataset("digits", "train", (1, 8, 8))
    test = get_dataset("digits", "test", (1, 8, 8))
    assert len(train) + len(test) == len(raw.target) == 1797
    assert 0.2 < len(test) / 1797 < 0.3
    # At 8x8 the images are the original pixels v*255//16: every original digit appears exactly once.
    expected = sorted(map(bytes, (raw.images.astype(np.int64) * 255 // 16).astype(np.uint8)))
    got = sorted(map(bytes, np.concatenate([train.images[:, 0].numpy(), test.images[:, 0].numpy()])))
    assert got == expected
    counts = np.bincount(test.targets.numpy(), minlength=10)
    assert counts.min() >= 40 and counts.max() <= 50  # stratified: ~25% of each class (174..183 per class)


def test_digits_are_deterministic_and_seeded():
    a = get_dataset("digits", "test", (3, 16, 16))
    b = get_dataset("digits", "test", (3, 16, 16))
    c = get_dataset("digits", "test", (3, 16, 16), seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.targets, c.targets)


def test_digits_items_are_pixels_over_256_replicated_to_channels():
    data = get_dataset("digits", "train", (3, 32, 32))
    image, label = data[5]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert label.dtype == torch.int64 and 0 <= int(label) <= 9
    assert torch.equal(image * 256, (image * 256).round())  # exact multiples of 1/256
    assert float(image.max()) < 1.0 and float(image.min()) >= 0.0
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    pixels = get_images_uint8("digits", "train", (3, 32, 32), count=7)
    assert pixels.dtype == np.uint8 and pixels.shape == (7, 3, 32, 32)
    assert torch.equal(torch.from_numpy(pixels[5]).float() / 256, image)


def test_resize_matches_torch_bilinear():
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, size=(4, 2, 8, 8)).astype(np.uint8)
    for size in [(8, 8), (32, 32), (13, 21), (5, 3)]:
        ours = resize_bilinear_uint8(images, *size)
        ref = F.interpolate(torch.from_numpy(images).double(), size=size, mode="bilinear",
                            align_corners=False, antialias=False)
        ref = torch.floor(ref + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        # Same formula; only float rounding near .5 may put them one apart.
        diff = np.abs(ours.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.05, size
    exact = F.interpolate(torch.from_numpy(images).double(), size=(32, 32), mode="bilinear",
                          align_corners=False)  # x4: every weight is a multiple of 1/8, no ties lost
    assert np.array_equal(resize_bilinear_uint8(images, 32, 32),
                          torch.floor(exact + 0.5).to(torch.uint8).numpy())
    assert np.array_equal(resize_bilinear_uint8(images, 8, 8), images)


def test_digits_detection_boxes_hold_the_ink():
    shape = (3, 40, 80)
    data = get_dataset("digits", "test", shape, task="detect")
    again = get_dataset("digits", "test", shape, task="detect")
    assert torch.equal(data.images, again.images) and torch.equal(data.targets, again.targets)
    train = get_dataset("digits", "train", shape, task="detect")
    assert not torch.equal(train.targets[:10], data.targets[:10])
    boxes = data.targets
    assert boxes.dtype == torch.float32 and boxes.shape == (len(data), 4)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    widths = boxes[:, 2] - boxes[:, 0]
    assert widths.std() > 0.05  # random scales
    for i in range(20):
        image = data.image_uint8(i)[0].numpy().astype(int)
        x1, y1, x2, y2 = (boxes[i] * torch.tensor([80, 40, 80, 40])).round().int().tolist()
        inside = image[y1:y2, x1:x2]
        outside = image.copy()
        outside[y1:y2, x1:x2] = 0
        assert inside.max() >= 64  # the digit's ink is in the box
        assert outside.max() < 64  # no ink outside it (noise < 32, faint interpolated edges)


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_is_seeded_and_sized():
    a = get_dataset("synthetic", "train", (2, 6, 10), size=12, num_classes=3)
    b = get_dataset("synthetic", "train", (2, 6, 10), size=12, num_classes=3)
    t = get_dataset("synthetic", "test", (2, 6, 10), size=12, num_classes=3)
    assert len(a) == 12 and a[0][0].shape == (2, 6, 10)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, t.images)
    assert a.targets.min() >= 0 and a.targets.max() <= 2
    d = get_dataset("synthetic", "test", (3, 8, 8), task="detect")
    assert d.targets.shape == (len(d), 4)
    assert (d.targets[:, 2] > d.targets[:, 0]).all() and (d.targets[:, 3] > d.targets[:, 1]).all()


@pytest.mark.parametrize("shape", [(3, 32, 48), (1, 8, 8)])
def test_synthetic_detection_images_show_their_box(shape):
    """Each synthetic detection image holds one object exactly at its box: in some channel a threshold
    separates the pixels inside the box from all pixels outside it (a box the pixels do not show cannot
    be learnt)."""
    from mixq_nn.data import SYNTHETIC_BOX_SIDES

    data = get_dataset("synthetic", "train", shape, task="detect", size=40)
    again = get_dataset("synthetic", "train", shape, task="detect", size=40)
    assert torch.equal(data.images, again.images) and torch.equal(data.targets, again.targets)
    _, height, width = shape
    lo, hi = SYNTHETIC_BOX_SIDES
    for image, box in zip(data.images.numpy().astype(int), data.targets.numpy()):
        x1, y1, x2, y2 = np.rint(box * [width, height, width, height]).astype(int)
        assert np.allclose(box, [x1 / width, y1 / height, x2 / width, y2 / height])    # whole pixels
        assert max(1, round(lo * width)) <= x2 - x1 <= max(1, round(hi * width))
        assert max(1, round(lo * height)) <= y2 - y1 <= max(1, round(hi * height))
        inside = np.zeros((height, width), dtype=bool)
        inside[y1:y2, x1:x2] = True
        gaps = [max(ch[inside].min() - ch[~inside].max(), ch[~inside].min() - ch[inside].max()) for ch in image]
        assert max(gaps) > 0, (box, gaps)
    boxes = data.targets.numpy()       # positions and sizes vary
    assert boxes[:, 0].std() > 0.05 and (boxes[:, 2] - boxes[:, 0]).std() > 0.03


# ----------------------------------------------------------------------------- CIFAR-10


def _write_batch(path, data, labels):
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * len(labels)}, f, protocol=2)


def test_cifar_fake_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.RandomState(0)
    train_a = rng.randint(0, 256, size=(5, 3072)).astype(np.uint8)
    train_b = rng.randint(0, 256, size=(3, 3072)).astype(np.uint8)
    test = rng.randint(0, 256, size=(4, 3072)).astype(np.uint8)
    _write_batch(folder / "data_batch_1", train_a, [0, 1, 2, 3, 4])
    _write_batch(folder / "data_batch_2", train_b, [9, 8, 7])
    _write_batch(folder / "test_batch", test, [1, 1, 2, 2])
    for root in (tmp_path, folder):
        train = get_dataset("cifar10", "train", (3, 32, 32), root)
        assert len(train) == 8 and train.targets.tolist() == [0, 1, 2, 3, 4, 9, 8, 7]
        # CIFAR rows are the R plane, then G, then B, each 32x32 in raster order.
        assert np.array_equal(train.images[6].numpy(), train_b[1].reshape(3, 32, 32))
        assert torch.equal(train[6][0], torch.from_numpy(train_b[1].reshape(3, 32, 32)).float() / 256)
    small = get_dataset("cifar10", "test", (3, 16, 16), folder)
    assert small.images.shape == (4, 3, 16, 16)
    assert np.array_equal(small.images.numpy(), resize_bilinear_uint8(test.reshape(4, 3, 32, 32), 16, 16))


def test_cifar_refuses_code_in_pickles(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            import os
            return (os.makedirs, (str(marker),))

    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match="refusing to load"):
        get_dataset("cifar10", "test", (3, 32, 32), tmp_path)
    assert not marker.exists()


def test_cifar_errors(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        get_dataset("cifar10", "train", (3, 32, 32))
    with pytest.raises(DataError, match="not a folder"):
        get_dataset("cifar10", "train", (3, 32, 32), tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"data_batch_1\.\.5.*" + str(tmp_path.name)):
        get_dataset("cifar10", "train", (3, 32, 32), tmp_path)
    good = tmp_path / "test_batch"
    _write_batch(good, np.zeros((2, 3072), np.uint8), [0, 1])
    good.write_bytes(good.read_bytes()[:50])
    with pytest.raises(DataError, match="truncated or corrupt"):
        get_dataset("cifar10", "test", (3, 32, 32), tmp_path)
    _write_batch(good, np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(DataError, match="3072"):
        get_dataset("cifar10", "test", (3, 32, 32), tmp_path)
    _write_batch(good, np.zeros((2, 3072), np.uint8), [0])
    with pytest.raises(DataError, match="1 labels for 2 images"):
        get_dataset("cifar10", "test", (3, 32, 32), tmp_path)
    _write_batch(good, np.zeros((2, 3072), np.uint8), [0, 1])
    with pytest.raises(DataError, match="3 channels, the model wants 2"):
        get_dataset("cifar10", "test", (2, 32, 32), tmp_path)
    with pytest.raises(DataError, match="classification"):
        get_dataset("cifar10", "test", (3, 32, 32), tmp_path, task="detect")


# ----------------------------------------------------------------------------- DAC-SDC


def _voc(path, width, height, box):
    x1, y1, x2, y2 = box
    path.write_text(f"""<annotation><filename>{path.stem}.jpg</filename>
<size><width>{width}</width><height>{height}</height><depth>3</depth></size>
<object><name>car</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>
</annotation>""")


def _dacsdc_folder(root, count=4):
    from PIL import Image

    boxes = {}
    for i in range(count):
        sub = root / f"car{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        pixels = np.full((36, 64, 3), 20 * i, np.uint8)
        Image.fromarray(pixels).save(sub / f"{i:04d}.jpg")
        box = (4 + i, 2, 40 + i, 30)
        _voc(sub / f"{i:04d}.xml", 64, 36, box)
        boxes[f"{i:04d}"] = (box[0] / 64, box[1] / 36, box[2] / 64, box[3] / 36)
    return boxes


def test_dacsdc_folder(tmp_path):
    boxes = _dacsdc_folder(tmp_path)
    train = get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    test = get_dataset("dacsdc", "test", (3, 18, 32), tmp_path, task="detect")
    assert len(train) == 3 and len(test) == 1
    names = sorted(p.stem for p, _ in train.samples + test.samples)
    assert names == sorted(boxes)
    for data in (train, test):
        for i in range(len(data)):
            image, box = data[i]
            assert image.shape == (3, 18, 32)
            assert torch.equal(image * 256, (image * 256).round())
            stem = data.samples[i][0].stem
            assert torch.allclose(box, torch.tensor(boxes[stem]))
            level = 20 * int(stem)
            assert abs(int(data.image_uint8(i).float().mean()) - level) <= 2  # it is the right jpg
    pixels = get_images_uint8("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    assert pixels.shape == (3, 3, 18, 32) and pixels.dtype == np.uint8


def test_dacsdc_errors(tmp_path):
    with pytest.raises(DataError, match="no .jpg images"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    _dacsdc_folder(tmp_path, 2)
    xml = tmp_path / "car0" / "0000.xml"
    xml.unlink()
    with pytest.raises(DataError, match="0000.xml"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    xml.write_text("<annotation><size>")
    with pytest.raises(DataError, match="not valid XML"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    xml.write_text("<annotation><size><width>64</width></size></annotation>")
    with pytest.raises(DataError, match="VOC"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    _voc(xml, 64, 36, (10, 2, 80, 30))
    with pytest.raises(DataError, match="does not fit"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path, task="detect")
    with pytest.raises(DataError, match="detection data set"):
        get_dataset("dacsdc", "train", (3, 18, 32), tmp_path)


def test_bad_requests():
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        get_dataset("mnist", "train", (1, 8, 8))
    with pytest.raises(DataError, match="split"):
        get_dataset("digits", "val", (1, 8, 8))
    with pytest.raises(DataError, match=r"\(C, H, W\)"):
        get_dataset("digits", "train", (8, 8))
    with pytest.raises(DataError, match="at least 8x8"):
        get_dataset("digits", "train", (1, 4, 4), task="detect")
    with pytest.raises(DataError, match="size must be at least 1"):
        get_dataset("synthetic", "train", (3, 8, 8), size=0)
