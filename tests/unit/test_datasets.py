"""The shipped data files match datasets/manifest.json and hold what the course promises."""

from __future__ import annotations

import hashlib
import json
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
