"""The weights store: found where a file already is, verified, never downloaded.

Small stand-in files in temporary folders play the weights; HOME, TORCH_HOME, KERAS_HOME,
XDG_CACHE_HOME and COURSE_WEIGHTS_DIR are pointed at temporary folders.
"""
import hashlib
import json
import shutil
import socket
from pathlib import Path

import pytest

from course_utils import weights
from course_utils.weights import WeightsChecksumError, WeightsError, WeightsMissingError, find_weights

REPO = Path(__file__).resolve().parents[2]
CONTENT = b"stand-in weights"
SHA256 = hashlib.sha256(CONTENT).hexdigest()
MD5 = hashlib.md5(CONTENT).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data folder with a manifest of stand-in entries, and an empty home."""
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    manifest = {"files": {}, "weights": {
        "small_net": {"file": "small_net.npz", "where": "datasets", "sha256": SHA256},
        "big_keras": {"file": "big_keras.h5", "where": "keras", "md5": MD5, "url": "https://example.org/big_keras.h5"},
        "big_torch": {"file": f"big_torch-{SHA256[:8]}.pth", "where": "torch", "sha256_prefix": SHA256[:8]},
    }}
    (data / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    monkeypatch.setenv("HOME", str(home))
    for name in ("TORCH_HOME", "KERAS_HOME", "XDG_CACHE_HOME", "COURSE_WEIGHTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    weights._VERIFIED.clear()

    def no_network(*args, **kwargs):
        raise AssertionError("the weights store tried to use the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return data, home


def put(path: Path, content: bytes = CONTENT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_the_shipped_path(env):
    data, _ = env
    path = put(data / "small_net.npz")
    found = find_weights("small_net")
    assert (found.path, found.source, found.checksum) == (path, "shipped", f"sha256:{SHA256}")
    assert "shipped" in found.describe() and str(path) in found.describe()


def test_the_cached_paths_default_to_the_home_folders(env):
    _, home = env
    keras_file = put(home / ".keras" / "models" / "big_keras.h5")
    torch_file = put(home / ".cache" / "torch" / "hub" / "checkpoints" / f"big_torch-{SHA256[:8]}.pth")
    assert (find_weights("big_keras").path, find_weights("big_keras").source) == (keras_file, "cached")
    found = find_weights("big_torch")
    assert (found.path, found.source, found.checksum) == (torch_file, "cached", f"sha256_prefix:{SHA256[:8]}")


def test_torch_home_keras_home_and_course_weights_dir_are_honoured(env, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    torch_file = put(tmp_path / "th" / "hub" / "checkpoints" / f"big_torch-{SHA256[:8]}.pth")
    keras_file = put(tmp_path / "kh" / "models" / "big_keras.h5")
    assert find_weights("big_torch").path == torch_file
    assert find_weights("big_keras").path == keras_file
    monkeypatch.setenv("COURSE_WEIGHTS_DIR", str(tmp_path / "mine"))
    mine = put(tmp_path / "mine" / "big_keras.h5")
    assert find_weights("big_keras").path == mine  # the course's folder comes first
    assert weights.cache_dirs("torch") == [tmp_path / "mine", tmp_path / "th" / "hub" / "checkpoints"]


def test_a_wrong_checksum_is_a_clear_error_and_nothing_else_is_tried(env):
    data, home = env
    put(data / "small_net.npz", b"something else")
    with pytest.raises(WeightsChecksumError, match=r"small_net.npz has sha256 .* needs sha256 .*Nothing is downloaded"):
        find_weights("small_net")
    put(home / ".keras" / "models" / "big_keras.h5", b"truncated")
    with pytest.raises(WeightsChecksumError, match="needs md5 " + MD5):
        find_weights("big_keras")
    put(home / ".cache" / "torch" / "hub" / "checkpoints" / f"big_torch-{SHA256[:8]}.pth", b"x")
    with pytest.raises(WeightsChecksumError, match=f"needs sha256 prefix {SHA256[:8]}"):
        find_weights("big_torch")
    assert find_weights("big_torch", verify=False).checksum == "unverified"


def test_a_missing_file_names_it_and_where_to_put_it(env, tmp_path):
    _, home = env
    with pytest.raises(WeightsMissingError) as missing:
        find_weights("big_torch")
    message = str(missing.value)
    assert f"big_torch-{SHA256[:8]}.pth was not found" in message
    assert str(home / ".cache" / "torch" / "hub" / "checkpoints") in message and "COURSE_WEIGHTS_DIR" in message
    with pytest.raises(FileNotFoundError, match=r"big_keras.h5 \(published at https://example.org/big_keras.h5\)"):
        find_weights("big_keras")
    with pytest.raises(WeightsMissingError, match="small_net.npz was not found.*git checkout datasets/"):
        find_weights("small_net")
    with pytest.raises(WeightsError, match="unknown weights 'vgg19'; the manifest lists big_keras, big_torch, small_net"):
        find_weights("vgg19")


def test_the_repository_manifest_lists_the_imagenet_files(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    known = weights.known_weights()
    keras_entry, torch_entry = known["vgg16_imagenet_keras_notop"], known["vgg16_imagenet_torchvision"]
    assert keras_entry["file"] == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" and keras_entry["where"] == "keras"
    assert torch_entry["file"] == "vgg16-397923af.pth" and torch_entry["sha256_prefix"] == "397923af"
    for entry in known.values():
        assert entry["where"] in ("datasets", "keras", "torch")
        assert any(entry.get(k) for k in ("sha256", "md5", "sha256_prefix"))
        if entry["where"] == "datasets":  # shipped files are in the repository with their full checksum
            assert len(entry["sha256"]) == 64 and (REPO / "datasets" / entry["file"]).is_file()
    # a stand-in of the torchvision file with the wrong content is refused, not replaced
    data = tmp_path / "data"
    shutil.copytree(REPO / "datasets", data, ignore=lambda d, names: [n for n in names if n != "manifest.json"])
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.delenv("COURSE_WEIGHTS_DIR", raising=False)
    fake = put(tmp_path / "th" / "hub" / "checkpoints" / "vgg16-397923af.pth", b"not vgg16")
    with pytest.raises(WeightsChecksumError, match="needs sha256 prefix 397923af"):
        find_weights("vgg16_imagenet_torchvision")
    assert fake.read_bytes() == b"not vgg16"
