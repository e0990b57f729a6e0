"""course_utils.data: splitting, loading with verification, Fashion-MNIST sources, conversions."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from course_utils import data
from course_utils.data import DatasetError, DatasetMissingError, Split

REPO_DATASETS = Path(__file__).resolve().parents[2] / "datasets"
# Imbalanced labels: class 2 is rare, so stratification is actually tested.
LABELS = np.repeat(np.arange(4), [500, 300, 20, 180])


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    """Tests never see an instructor's COURSE_DATA_DIR / FASHION_MNIST_DIR."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)


# ----------------------------------------------------------------------------- stratified_split


def test_split_has_requested_sizes_and_is_disjoint():
    parts = data.stratified_split(LABELS, {"train": 600, "val": 150, "test": 250}, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 600, "val": 150, "test": 250}
    everything = np.concatenate(list(parts.values()))
    assert len(np.unique(everything)) == len(everything) == len(LABELS)
    assert all(v.dtype == np.int64 for v in parts.values())


def test_split_is_stratified():
    parts = data.stratified_split(LABELS, {"train": 700, "val": 100, "test": 200}, seed=3)
    whole = np.bincount(LABELS) / len(LABELS)
    for name, idx in parts.items():
        counts = np.bincount(LABELS[idx], minlength=4)
        np.testing.assert_allclose(counts, whole * len(idx), atol=1.01, err_msg=name)


def test_every_class_appears_when_possible():
    labels = np.repeat(np.arange(3), [97, 2, 1])
    parts = data.stratified_split(labels, {"a": 10, "b": 10}, seed=0)
    assert set(labels[parts["a"]]) == {0, 1, 2}  # the single class-2 sample lands in "a"
    assert set(labels[parts["b"]]) == {0, 1}


def test_split_accepts_fractions():
    parts = data.stratified_split(LABELS, {"train": 0.8, "val": 0.2}, seed=0)
    assert (len(parts["train"]), len(parts["val"])) == (800, 200)
    assert len(np.intersect1d(parts["train"], parts["val"])) == 0


def test_split_is_deterministic_and_depends_on_seed():
    sizes = {"train": 600, "val": 400}
    a = data.stratified_split(LABELS, sizes, seed=1)
    b = data.stratified_split(LABELS, sizes, seed=1)
    c = data.stratified_split(LABELS, sizes, seed=2)
    np.testing.assert_array_equal(a["train"], b["train"])
    assert not np.array_equal(a["val"], c["val"])


def test_split_parts_are_shuffled():
    idx = data.stratified_split(LABELS, {"train": 900}, seed=0)["train"]
    assert not np.all(np.diff(idx) > 0)
    assert len(np.unique(LABELS[idx[:50]])) >= 3


@pytest.mark.parametrize(
    "sizes, message",
    [
        ({"train": -1}, "negative"),
        ({"train": 900, "val": 200}, "only 1000"),
        ({"train": 0.9, "val": 0.2}, "sum to at most 1"),
        ({}, "empty"),
    ],
)
def test_split_rejects_bad_sizes(sizes, message):
    with pytest.raises(ValueError, match=message):
        data.stratified_split(LABELS, sizes, seed=0)


# ----------------------------------------------------------------------------- Split


def _tiny_split() -> Split:
    x = np.zeros((10, 28, 28), np.uint8)
    y = np.arange(10, dtype=np.int64) % 2
    return Split(x, y, x[:4], y[:4], x[:6], y[:6], class_names=("a", "b"), name="tiny")


def test_split_object_basics():
    split = _tiny_split()
    assert split.sizes() == {"train": 10, "val": 4, "test": 6}
    assert split.num_classes == 2
    assert repr(split) == "Split('tiny', train=10, val=4, test=6, classes=2)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.name = "other"


def test_subset_takes_the_first_n():
    split = _tiny_split()
    small = split.subset(train=3, test=0)
    assert small.sizes() == {"train": 3, "val": 4, "test": 0}
    np.testing.assert_array_equal(small.y_train, split.y_train[:3])
    assert small.name == split.name and split.sizes()["train"] == 10  # original untouched


def test_subset_too_large_names_part_and_size():
    with pytest.raises(ValueError, match=r"val.*has 4 samples"):
        _tiny_split().subset(val=5)


def test_split_rejects_mismatched_lengths():
    x = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="train"):
        Split(x, np.zeros(2), x, np.zeros(3), x, np.zeros(3), ("a",), "bad")


# ----------------------------------------------------------------------------- shipped loaders


def test_load_mnist_default_split():
    split = data.load_mnist()
    assert split.sizes() == {"train": 7000, "val": 1000, "test": 2000}
    assert split.x_train.dtype == np.uint8 and split.x_train.shape[1:] == (28, 28)
    assert split.y_train.dtype == np.int64 and split.class_names == data.MNIST_CLASSES
    # The three parts are disjoint images and each holds every digit in proportion.
    images = np.concatenate([split.x_train, split.x_val, split.x_test])
    assert len({image.tobytes() for image in images}) == 10_000
    whole = np.bincount(np.concatenate([split.y_train, split.y_val, split.y_test])) / 10_000
    np.testing.assert_allclose(np.bincount(split.y_val) / 1000, whole, atol=0.002)


def test_load_mnist_depends_on_seed_only():
    a, b, c = data.load_mnist(seed=0), data.load_mnist(seed=0), data.load_mnist(seed=1)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.y_val, c.y_val)


def test_load_fashion_shipped():
    split = data.load_fashion_mnist(source="shipped")
    assert split.sizes() == {"train": 10_000, "val": 2000, "test": 10_000}
    assert split.name == "fashion_mnist (shipped subset)"
    assert np.bincount(split.y_val).tolist() == [200] * 10
    assert split.class_names[0] == "T-shirt/top" and split.num_classes == 10


def test_load_fashion_auto_falls_back_to_shipped(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))  # empty: not installed
    assert data.load_fashion_mnist().name == "fashion_mnist (shipped subset)"


def test_data_dir_reads_env_at_call_time(monkeypatch, tmp_path):
    assert data.data_dir() == REPO_DATASETS
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    assert data.DATA_DIR == tmp_path  # the module attribute follows the environment too


def test_every_loader_reads_the_data_dir_at_call_time():
    import inspect

    readers = [f for name, f in vars(data).items() if inspect.isfunction(f) and f.__module__ == data.__name__]
    assert len(readers) > 5 and not [f.__name__ for f in readers if "DATA_DIR" in f.__code__.co_names]


# ----------------------------------------------------------------------------- load_npz errors


def test_missing_file_says_how_to_rebuild(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetMissingError) as info:
        data.load_mnist()
    assert isinstance(info.value, FileNotFoundError)
    assert "mnist.npz" in str(info.value)
    assert "python datasets/build_datasets.py" in str(info.value)


def _copy_data(tmp_path: Path, name: str) -> Path:
    shutil.copy(REPO_DATASETS / "manifest.json", tmp_path)
    return Path(shutil.copy(REPO_DATASETS / name, tmp_path))


def test_corrupted_file_fails_checksum(monkeypatch, tmp_path):
    path = _copy_data(tmp_path, "mnist.npz")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        data.load_npz("mnist")
    assert "mnist.npz" in str(info.value) and "build_datasets.py" in str(info.value)


def test_verification_notices_a_rewritten_file(monkeypatch, tmp_path):
    path = _copy_data(tmp_path, "mnist.npz")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data.load_npz("mnist")["images"].shape == (10_000, 28, 28)  # verified and cached
    path.write_bytes(path.read_bytes()[:-10])  # new size: the cache must not hide it
    with pytest.raises(DatasetError, match="checksum"):
        data.load_npz("mnist.npz")


def test_not_an_npz_file(monkeypatch, tmp_path):
    (tmp_path / "notes.npz").write_text("this is not a zip archive")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="not a valid npz") as info:
        data.load_npz("notes", verify=False)
    assert "notes.npz" in str(info.value)
    with pytest.raises(DatasetMissingError, match="manifest.json"):
        data.load_npz("notes")  # nothing to verify against


def test_wrong_shape_is_reported(monkeypatch, tmp_path):
    _copy_data(tmp_path, "mnist.npz")
    np.savez(
        tmp_path / "mnist.npz", images=np.zeros((5, 28, 28), np.uint8), labels=np.zeros(5, np.uint8)
    )
    sha = data._sha256_file(tmp_path / "mnist.npz")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    # The right checksum but the manifest's shapes: only the shape check can catch it.
    manifest = (tmp_path / "manifest.json").read_text()
    old_sha = data._manifest_entry(REPO_DATASETS, "mnist.npz")["sha256"]
    (tmp_path / "manifest.json").write_text(manifest.replace(old_sha, sha))
    with pytest.raises(DatasetError, match="wrong shape or dtype"):
        data.load_npz("mnist")


# ----------------------------------------------------------------------------- full Fashion-MNIST


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion_dir(directory: Path, n_train_per_class=30, n_test_per_class=5) -> dict:
    rng = np.random.RandomState(0)
    arrays = {}
    for part, per_class in (("train", n_train_per_class), ("t10k", n_test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = rng.randint(0, 256, size=(len(labels), 28, 28)).astype(np.uint8)
        images[:, 0, 0] = labels  # lets the test check images stay with their labels
        _write_idx(directory / f"{part}-images-idx3-ubyte.gz", images)
        _write_idx(directory / f"{part}-labels-idx1-ubyte.gz", labels)
        arrays[part] = (images, labels)
    return arrays


def test_read_idx_round_trip(tmp_path):
    arrays = _fake_fashion_dir(tmp_path)
    images = data.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(images, arrays["train"][0])
    assert images.dtype == np.uint8 and images.shape == (300, 28, 28)


def test_read_idx_rejects_bad_magic(tmp_path):
    bad = tmp_path / "bad-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">IIII", 2051 + 0x1000, 1, 28, 28) + bytes(784))
    with pytest.raises(DatasetError, match="magic"):
        data.read_idx(bad)


def test_load_fashion_full_from_debian_files(monkeypatch, tmp_path):
    _fake_fashion_dir(tmp_path)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    for source in ("full", "auto"):
        split = data.load_fashion_mnist(n_val=50, seed=0, source=source)
        assert split.name == "fashion_mnist (full Debian set)"
        assert split.sizes() == {"train": 250, "val": 50, "test": 50}
        assert np.bincount(split.y_val).tolist() == [5] * 10
        assert np.bincount(split.y_test).tolist() == [5] * 10
        for part in ("train", "val", "test"):
            x, y = getattr(split, f"x_{part}"), getattr(split, f"y_{part}")
            np.testing.assert_array_equal(x[:, 0, 0], y)
            assert y.dtype == np.int64


def test_load_fashion_full_missing_says_apt_get(monkeypatch, tmp_path):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="apt-get install dataset-fashion-mnist") as info:
        data.load_fashion_mnist(source="full")
    assert str(tmp_path) in str(info.value)


def test_load_fashion_rejects_unknown_source():
    with pytest.raises(ValueError, match="source"):
        data.load_fashion_mnist(source="internet")


# ----------------------------------------------------------------------------- conversions


def test_to_float_images_layouts():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)  # (1, 2, 2)
    last = data.to_float_images(images)
    first = data.to_float_images(images, channels_last=False)
    assert last.shape == (1, 2, 2, 1) and first.shape == (1, 1, 2, 2)
    assert last.dtype == first.dtype == np.float32
    np.testing.assert_allclose(last[0, :, :, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    np.testing.assert_array_equal(first[:, 0], last[..., 0])


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 28, 28), np.float32),
        np.zeros((28, 28), np.uint8),
        np.zeros((2, 28, 28, 2), np.uint8),
        np.zeros((2, 3, 28, 28), np.uint8),
    ],
)
def test_to_float_images_rejects_bad_input(bad):
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, H, W, C\) with C 1 or 3"):
        data.to_float_images(bad)


def test_to_float_images_takes_colour():
    images = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    last, first = data.to_float_images(images), data.to_float_images(images, channels_last=False)
    assert last.shape == (2, 4, 5, 3) and first.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(np.moveaxis(first, 1, -1), last)
    np.testing.assert_allclose(last * 255, images, rtol=1e-6)


def test_to_rgb_repeats_grey_and_keeps_colour():
    grey = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    rgb = data.to_rgb(grey)
    assert rgb.shape == (1, 3, 4, 3) and rgb.dtype == np.uint8
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))
    assert np.array_equal(data.to_rgb(grey[..., None]), rgb)
    assert data.to_rgb(rgb) is rgb
    with pytest.raises(ValueError, match=r"to_rgb expects images \(N, H, W\) or \(N, H, W, C\).*got shape \(1, 3, 4, 2\)"):
        data.to_rgb(np.zeros((1, 3, 4, 2)))
    with pytest.raises(ValueError, match="numeric"):
        data.to_rgb(np.zeros((1, 2, 2), dtype=object))


def test_pad_or_resize_pads_in_the_centre_and_keeps_dtype():
    images = np.full((2, 28, 28), 7, np.uint8)
    padded = data.pad_or_resize(images, 32, mode="pad")
    assert padded.shape == (2, 32, 32) and padded.dtype == np.uint8
    assert padded[:, 2:30, 2:30].min() == 7 and padded.sum() == images.sum()
    odd = data.pad_or_resize(np.ones((1, 2, 2, 3), np.float32), (5, 4), mode="pad", fill=0.5)
    assert odd.shape == (1, 5, 4, 3) and np.all(odd[0, 1:3, 1:3] == 1) and odd[0, 0, 0, 0] == 0.5
    with pytest.raises(ValueError, match="cannot pad images of 28x28 to the smaller 16x16"):
        data.pad_or_resize(images, 16, mode="pad")


def test_pad_or_resize_resizes_bilinearly_with_half_pixel_centres():
    x = np.array([[[0.0, 1.0]]])  # (1, 1, 2): one row
    out = data.pad_or_resize(x, (1, 4))
    np.testing.assert_allclose(out[0, 0], [0, 0.25, 0.75, 1])  # tf.image.resize / F.interpolate, align_corners=False
    assert out.dtype == np.float32
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 3), dtype=np.uint8)
    up = data.pad_or_resize(images, 32)
    assert up.shape == (3, 32, 32, 3) and up.dtype == np.uint8
    np.testing.assert_array_equal(data.pad_or_resize(images, 28), images)  # same size: unchanged
    flat = np.full((1, 5, 7), 200, np.uint8)
    assert np.all(data.pad_or_resize(flat, (9, 3)) == 200)  # a constant image stays constant


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((2, 8, 8)), {"size": 0}, "size must be a positive int"),
    (np.zeros((2, 8, 8)), {"size": (4, 2.5)}, "size must be a positive int"),
    (np.zeros((2, 8, 8)), {"size": 4, "mode": "crop"}, "mode must be 'resize' or 'pad'"),
    (np.zeros((8, 8)), {"size": 4}, r"pad_or_resize expects images \(N, H, W\)"),
    (np.zeros((2, 3, 8, 8)), {"size": 4}, "channels-last"),
])
def test_pad_or_resize_rejects_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.pad_or_resize(images, **kwargs)


def test_one_hot():
    out = data.one_hot(np.array([2, 0, 1]), 3)
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert data.one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.5, 1.0], [[0, 1]]])
def test_one_hot_rejects_bad_labels(labels):
    with pytest.raises(ValueError):
        data.one_hot(np.array(labels), 3)


# ----------------------------------------------------------------------------- sunspots


def test_load_sunspots_gives_the_yearly_series():
    years, values = data.load_sunspots()
    assert years.dtype == np.int64 and values.dtype == np.float64
    assert years.shape == values.shape == (309,)
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert values.min() == 0.0 and values.max() == pytest.approx(190.2)
    # the ~11-year solar cycle: the autocorrelation peaks near a lag of 11 years
    centred = values - values.mean()
    acf = [np.dot(centred[:-lag], centred[lag:]) / np.dot(centred, centred) for lag in range(1, 16)]
    assert 9 <= 1 + int(np.argmax(acf[7:])) + 7 <= 12


def test_load_sunspots_checks_its_file(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetMissingError, match="manifest.json"):
        data.load_sunspots()
    path = _copy_data(tmp_path, "sunspots.npz")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        data.load_sunspots()
    assert "sunspots.npz" in str(info.value) and "build_datasets.py" in str(info.value)
    (tmp_path / "manifest.json").write_text('{"files": {}}')
    with pytest.raises(DatasetError, match="lists no series sunspots.npz"):
        data.load_sunspots()


# ----------------------------------------------------------------------------- sequence loaders (lessons 05, 06)

SEQUENCE_LOADERS = {
    "italy_power_demand.npz": data.load_italy_power_demand,
    "japanese_vowels.npz": data.load_japanese_vowels,
    "pride_and_prejudice.txt.gz": data.load_pride_and_prejudice,
}


@pytest.mark.parametrize("name", SEQUENCE_LOADERS)
def test_sequence_loader_names_a_missing_file(monkeypatch, tmp_path, name):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    shutil.copy(REPO_DATASETS / "manifest.json", tmp_path)
    with pytest.raises(DatasetMissingError, match="build_datasets.py") as info:
        SEQUENCE_LOADERS[name]()
    assert name in str(info.value) and "is missing" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("name", SEQUENCE_LOADERS)
def test_sequence_loader_checks_manifest_and_checksum(monkeypatch, tmp_path, name):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    path = Path(shutil.copy(REPO_DATASETS / name, tmp_path))
    with pytest.raises(DatasetMissingError, match="manifest.json"):
        SEQUENCE_LOADERS[name]()
    shutil.copy(REPO_DATASETS / "manifest.json", tmp_path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        SEQUENCE_LOADERS[name]()
    assert name in str(info.value)
    (tmp_path / "manifest.json").write_text('{"files": {}, "series": {}}')
    with pytest.raises(DatasetError, match=f"lists no series {name}"):
        SEQUENCE_LOADERS[name]()


def test_load_italy_power_demand_keeps_labels_1_and_2():
    split = data.load_italy_power_demand()
    assert split["x_train"].shape == (67, 24) and split["x_test"].shape == (1029, 24)
    assert split["x_train"].dtype == np.float32 and split["y_train"].dtype == np.int64
    assert set(np.unique(split["y_train"])) == set(np.unique(split["y_test"])) == {1, 2}


def test_load_japanese_vowels_shapes_and_dtypes():
    split = data.load_japanese_vowels()
    assert split["x_train"].shape == (270, 29, 12) and split["x_test"].shape == (370, 29, 12)
    assert split["x_train"].dtype == np.float32
    for key in ("lengths_train", "y_train", "lengths_test", "y_test"):
        assert split[key].dtype == np.int64, key
    assert split["lengths_train"].min() >= 7 and split["lengths_test"].max() == 29


def test_load_pride_and_prejudice_is_the_novel():
    text = data.load_pride_and_prejudice()
    assert isinstance(text, str) and len(text) == 684_767
    assert text.startswith("PRIDE AND PREJUDICE") and "Mr. Darcy" in text
