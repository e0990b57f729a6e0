"""The shipped weights of lesson 03, ``datasets/vgg_style_fashion.npz``: the file the manifest
and the README describe (checksum, size, provenance), found by the weights store without a
download, and the same network in both frameworks (same features for the same images)."""
import hashlib
import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import porting
from course_utils import tensorflow as tfu
from course_utils import torch as tu
from course_utils.data import load_mnist, pad_or_resize, to_rgb
from course_utils.weights import find_weights

REPO = Path(__file__).resolve().parents[2]
NPZ = REPO / "datasets" / "vgg_style_fashion.npz"


@pytest.fixture(scope="module")
def entry():
    return json.loads((REPO / "datasets" / "manifest.json").read_text())["weights"]["vgg_style_fashion"]


def test_the_file_matches_its_manifest_entry(entry):
    data = NPZ.read_bytes()
    assert entry["file"] == NPZ.name and entry["where"] == "datasets"
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(data) == entry["bytes"] < 1_000_000


def test_the_manifest_records_provenance(entry):
    training = entry["training"]
    assert training["script"] == "datasets/build_pretrained.py" and (REPO / training["script"]).is_file()
    assert {"framework", "seed", "optimizer", "data", "seconds", "val_accuracy", "test_accuracy"} <= set(training)
    assert 0.8 < training["test_accuracy"] < 1 and "MIT" in entry["license"] and "Fashion-MNIST" in entry["license"]
    assert tuple(entry["flatten_from"]) == (4, 4, 64)


def test_the_readme_gives_checksum_size_licence_and_rebuild(entry):
    readme = (REPO / "datasets" / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("`vgg_style_fashion.npz`"):]
    assert entry["sha256"] in section
    assert f"{entry['bytes']:,}" in section
    assert "MIT" in section and "python datasets/build_pretrained.py" in section
    assert re.search(r"seed\s+" + str(entry["training"]["seed"]), section)


def test_the_store_finds_it_shipped_and_never_uses_the_network(monkeypatch, entry):
    def no_network(*args, **kwargs):
        raise AssertionError("the weights store tried to use the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    found = find_weights("vgg_style_fashion")
    assert found.path.resolve() == NPZ.resolve() and found.source == "shipped"
    assert found.checksum == f"sha256:{entry['sha256']}"


def test_the_arrays_have_the_networks_shapes():
    keras_layout = porting.load_sequential_npz(NPZ, layout="keras")
    shapes = [w.shape for w in keras_layout]
    expected, c_in = [], 3
    for c_out, n in tu.VGG_STYLE_BLOCKS:
        for i in range(n):
            expected += [(3, 3, c_in if i == 0 else c_out, c_out), (c_out,)]
        c_in = c_out
    expected += [(1024, 10), (10,)]
    assert shapes == expected
    assert sum(w.size for w in keras_layout) == 119_258
    assert all(np.isfinite(w).all() and w.dtype == np.float32 for w in keras_layout)
    with np.load(NPZ, allow_pickle=False) as data:  # no pickles in the file
        assert tuple(data["input_shape"]) == (32, 32, 3)


def test_both_frameworks_load_it_and_give_the_same_features():
    digits = load_mnist().x_test[:32]
    x = to_rgb(pad_or_resize(digits, 32, mode="pad")).astype(np.float32) / 255  # (N, 32, 32, 3) in [0, 1]
    k_base = tfu.vgg_style_network(weights=NPZ, include_top=False)
    t_base = tu.vgg_style_network(weights=NPZ, include_top=False).eval()
    assert tfu.count_params(k_base) == tu.count_params(t_base) == 109_008
    k_features = np.asarray(k_base(x, training=False))
    with torch.no_grad():
        t_features = t_base(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert k_features.shape == (32, 4, 4, 64) and t_features.shape == (32, 64, 4, 4)
    assert k_features.std() > 0.05  # pretrained features, not zeros
    np.testing.assert_allclose(t_features.transpose(0, 2, 3, 1), k_features, rtol=1e-4, atol=1e-5)
    # the same features, not merely features of the same size: a random network differs
    random_base = tu.vgg_style_network(include_top=False).eval()
    with torch.no_grad():
        random_features = random_base(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert not np.allclose(random_features, t_features, atol=1e-3)
