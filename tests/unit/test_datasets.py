"""The shipped data files match datasets/manifest.json and hold what the course promises."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import data

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
MANIFEST = json.loads((DATASETS / "manifest.json").read_text())
FILES = sorted(MANIFEST["files"])


def _load(name: str) -> dict[str, np.ndarray]:
    with np.load(DATASETS / name, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_manifest_lists_the_course_files():
    assert set(FILES) == {"mnist.npz", "fashion_mnist_test.npz", "fashion_mnist_train_subset.npz"}


def test_shipped_data_stays_small():
    total = sum((DATASETS / name).stat().st_size for name in FILES)
    assert total < 15e6, f"datasets/*.npz total {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", FILES)
def test_file_matches_manifest(name):
    entry = MANIFEST["files"][name]
    path = DATASETS / name
    assert path.is_file(), f"{path} is missing: run `python datasets/build_datasets.py`"
    blob = path.read_bytes()
    assert len(blob) == entry["bytes"]
    assert hashlib.sha256(blob).hexdigest() == entry["sha256"]

    arrays = _load(name)
    assert set(arrays) == set(entry["arrays"])
    for key, spec in entry["arrays"].items():
        assert list(arrays[key].shape) == spec["shape"], key
        assert str(arrays[key].dtype) == spec["dtype"], key
        assert hashlib.sha256(arrays[key].tobytes()).hexdigest() == spec["sha256"], key

    images, labels = arrays["images"], arrays["labels"]
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert labels.dtype == np.uint8 and len(labels) == len(images) == entry["num_samples"]
    assert labels.max() < len(entry["class_names"])
    counts = np.bincount(labels, minlength=len(entry["class_names"]))
    assert dict(zip(entry["class_names"], counts.tolist(), strict=True)) == entry["class_counts"]
    # Real images use the whole 0..255 range and are mostly background.
    assert images.min() == 0 and images.max() == 255
    assert 0.1 < (images > 0).mean() < 0.6


@pytest.mark.parametrize("name", FILES)
def test_manifest_records_provenance(name):
    source = MANIFEST["files"][name]["source"]
    for key in ("package", "version", "license", "copyright", "registry"):
        assert source.get(key), f"{name}: source.{key} is empty"
    assert source["license"] == "MIT"


def test_class_names_agree_with_course_utils():
    files = MANIFEST["files"]
    assert tuple(files["mnist.npz"]["class_names"]) == data.MNIST_CLASSES
    for name in ("fashion_mnist_test.npz", "fashion_mnist_train_subset.npz"):
        assert tuple(files[name]["class_names"]) == data.FASHION_MNIST_CLASSES


def test_mnist_has_about_1000_per_digit():
    labels = _load("mnist.npz")["labels"]
    counts = np.bincount(labels)
    assert len(labels) == 10_000 and len(counts) == 10
    assert counts.min() > 800 and counts.max() < 1200, counts
    # No image appears twice (a duplicate would leak between train and test).
    images = _load("mnist.npz")["images"]
    assert len({image.tobytes() for image in images}) == len(images)


def test_fashion_test_set_is_balanced():
    arrays = _load("fashion_mnist_test.npz")
    assert arrays["images"].shape == (10_000, 28, 28)
    assert np.bincount(arrays["labels"]).tolist() == [1000] * 10


def test_fashion_train_subset_is_stratified_and_shuffled():
    arrays = _load("fashion_mnist_train_subset.npz")
    labels, index = arrays["labels"], arrays["source_index"]
    assert np.bincount(labels).tolist() == [1200] * 10
    assert len(np.unique(index)) == len(index) and index.min() >= 0 and index.max() < 60_000
    # Shuffled across classes: the first 1,200 are not a single class.
    assert len(np.unique(labels[:1200])) == 10


def _debian_dir() -> Path:
    directory = data.fashion_mnist_dir()
    if not all((directory / f).is_file() for f in data.FASHION_MNIST_FILES.values()):
        pytest.skip(
            f"optional system package dataset-fashion-mnist not installed ({directory}); "
            "`apt-get install dataset-fashion-mnist` enables this check"
        )
    return directory


def test_shipped_fashion_matches_debian_files():
    directory = _debian_dir()
    test = _load("fashion_mnist_test.npz")
    np.testing.assert_array_equal(
        test["images"], data.read_idx(directory / "t10k-images-idx3-ubyte.gz")
    )
    np.testing.assert_array_equal(
        test["labels"], data.read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    )
    subset = _load("fashion_mnist_train_subset.npz")
    idx = subset["source_index"]
    train_x = data.read_idx(directory / "train-images-idx3-ubyte.gz")
    train_y = data.read_idx(directory / "train-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(subset["images"], train_x[idx])
    np.testing.assert_array_equal(subset["labels"], train_y[idx])


@pytest.mark.parametrize("name", FILES)
def test_readme_table_matches_manifest(name):
    readme = (DATASETS / "README.md").read_text()
    entry = MANIFEST["files"][name]
    row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}`")), None)
    assert row is not None, f"datasets/README.md has no table row for {name}"
    assert entry["sha256"] in row and entry["source"]["version"] in row
    assert f"{entry['bytes']:,}" in readme


# ----------------------------------------------------------------------------- time series

SERIES = MANIFEST.get("series", {})


def test_sunspots_series_matches_manifest_and_readme():
    entry = SERIES["sunspots.npz"]
    blob = (DATASETS / "sunspots.npz").read_bytes()
    assert len(blob) == entry["bytes"] and hashlib.sha256(blob).hexdigest() == entry["sha256"]
    arrays = _load("sunspots.npz")
    assert set(arrays) == set(entry["arrays"]) == {"year", "sunspots"}
    for key, spec in entry["arrays"].items():
        assert list(arrays[key].shape) == spec["shape"] and str(arrays[key].dtype) == spec["dtype"], key
        assert hashlib.sha256(arrays[key].tobytes()).hexdigest() == spec["sha256"], key
    assert entry["num_values"] == len(arrays["year"]) == 309
    np.testing.assert_array_equal(np.diff(arrays["year"]), 1)
    assert (arrays["sunspots"] >= 0).all()
    source = entry["source"]
    assert source["package"] == "statsmodels" and source["registry"] == "PyPI" and source["version"]
    assert source["license"] == "public domain"
    row = next((line for line in (DATASETS / "README.md").read_text().splitlines() if line.startswith("| `sunspots.npz`")), None)
    assert row is not None and entry["sha256"] in row and source["version"] in row


def test_series_and_image_files_are_disjoint_and_the_shipped_data_stays_small():
    assert not set(SERIES) & set(FILES)
    total = sum((DATASETS / name).stat().st_size for name in [*FILES, *SERIES])
    assert total < 15e6, f"datasets/ total {total / 1e6:.1f} MB"


# ----------------------------------------------------------------------------- sequences (lessons 05, 06)

SEQUENCE_FILES = ["italy_power_demand.npz", "japanese_vowels.npz", "pride_and_prejudice.txt.gz"]
README = (DATASETS / "README.md").read_text()


def test_manifest_lists_the_sequence_files():
    assert set(SERIES) == {"sunspots.npz", *SEQUENCE_FILES}


@pytest.mark.parametrize("name", sorted(SERIES))
def test_series_file_matches_manifest(name):
    entry = SERIES[name]
    path = DATASETS / name
    assert path.is_file(), f"{path} is missing: run `python datasets/build_datasets.py`"
    blob = path.read_bytes()
    assert len(blob) == entry["bytes"] and hashlib.sha256(blob).hexdigest() == entry["sha256"]
    if name.endswith(".npz"):
        arrays = _load(name)
        assert set(arrays) == set(entry["arrays"])
        for key, spec in entry["arrays"].items():
            assert list(arrays[key].shape) == spec["shape"] and str(arrays[key].dtype) == spec["dtype"], key
            assert hashlib.sha256(arrays[key].tobytes()).hexdigest() == spec["sha256"], key
    else:
        raw = gzip.decompress(blob)
        assert hashlib.sha256(raw).hexdigest() == entry["text_sha256"]


@pytest.mark.parametrize("name", sorted(SERIES))
def test_series_records_provenance_and_readme_row(name):
    entry = SERIES[name]
    source = entry["source"]
    for key in ("registry", "package", "version", "fetch", "files", "license", "copyright", "upstream"):
        assert source.get(key), f"{name}: source.{key} is empty"
    row = next((line for line in README.splitlines() if line.startswith(f"| `{name}`")), None)
    assert row is not None, f"datasets/README.md has no table row for {name}"
    assert entry["sha256"] in row and source["version"] in row
    assert f"{entry['bytes']:,}" in README


def test_italy_power_demand_counts_and_labels():
    entry, arrays = SERIES["italy_power_demand.npz"], _load("italy_power_demand.npz")
    assert arrays["x_train"].shape == (67, 24) and arrays["x_test"].shape == (1029, 24)
    assert arrays["x_train"].dtype == arrays["x_test"].dtype == np.float32
    assert entry["num_train"] == 67 and entry["num_test"] == 1029 and entry["class_labels"] == [1, 2]
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        assert len(y) == len(x) and set(np.unique(y)) == {1, 2}  # the original labels, not 0/1
        assert entry["class_counts"][part] == {"1": int((y == 1).sum()), "2": int((y == 2).sum())}
        # UCR series are z-normalised one by one
        np.testing.assert_allclose(x.mean(axis=1), 0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=1, ddof=1), 1, atol=1e-4)
    assert entry["class_counts"] == {"train": {"1": 34, "2": 33}, "test": {"1": 513, "2": 516}}
    assert "no licence" in entry["source"]["license"]  # the files state none; the README says so


def test_japanese_vowels_lengths_padding_and_speakers():
    entry, arrays = SERIES["japanese_vowels.npz"], _load("japanese_vowels.npz")
    assert entry["num_train"] == 270 and entry["num_test"] == 370 and entry["channels"] == 12
    assert entry["class_labels"] == list(range(1, 10))
    for part, n in (("train", 270), ("test", 370)):
        x, lengths, y = arrays[f"x_{part}"], arrays[f"lengths_{part}"], arrays[f"y_{part}"]
        assert x.shape == (n, 29, 12) and x.dtype == np.float32
        assert lengths.shape == y.shape == (n,)
        assert lengths.min() >= 7 and lengths.max() <= 29
        assert set(np.unique(y)) == set(range(1, 10))  # 9 speakers, labels as in the files
        steps = np.arange(29)[None, :]
        assert (x[steps >= lengths[:, None]] == 0).all(), "padding after each length is zeros"
        # the last real frame is not padding (a real LPC frame is never all zeros)
        assert (np.abs(x[np.arange(n), lengths - 1]).sum(axis=1) > 0).all()
    assert np.bincount(arrays["y_train"]).tolist() == [0] + [30] * 9
    all_lengths = np.concatenate([arrays["lengths_train"], arrays["lengths_test"]])
    assert all_lengths.min() == entry["min_length"] == 7 and all_lengths.max() == entry["max_length"] == 29


def test_pride_and_prejudice_text():
    entry = SERIES["pride_and_prejudice.txt.gz"]
    text = gzip.decompress((DATASETS / "pride_and_prejudice.txt.gz").read_bytes()).decode("utf-8")
    assert len(text) == entry["num_characters"] == 684_767
    assert len(set(text)) == entry["num_distinct_characters"] == 75
    assert text.count("\n") + 1 == entry["num_lines"] == 13_030
    assert text.startswith("PRIDE AND PREJUDICE") and "Mr. Darcy" in text
    assert "public domain" in entry["source"]["license"]


def test_build_keeps_other_manifest_keys(monkeypatch):
    """A partial rebuild (--only) keeps entries it did not rebuild and keys such as `weights`."""
    spec = importlib.util.spec_from_file_location("build_datasets", DATASETS / "build_datasets.py")
    build = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, build)  # its dataclasses look the module up
    spec.loader.exec_module(build)
    old = {"about": "x", "files": {"mnist.npz": {"a": 1}}, "series": {"sunspots.npz": {"b": 2}}, "weights": {"w.npz": {}}}
    merged = build.merged_manifest(old, {"series": {"pride_and_prejudice.txt.gz": {"c": 3}}})
    assert merged["weights"] == {"w.npz": {}} and merged["files"] == {"mnist.npz": {"a": 1}}
    assert list(merged["series"]) == ["sunspots.npz", "pride_and_prejudice.txt.gz"]
