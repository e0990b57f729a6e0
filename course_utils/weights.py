"""Pretrained weights, found on this machine and never downloaded (framework-neutral).

Nothing can be fetched while a notebook runs (an offline laptop, a sandboxed autograder),
so every weights file is looked up where it may already be, checked, and otherwise named
with the place to put it:

``shipped``  a small file in ``datasets/`` (:func:`course_utils.data.data_dir`), e.g. the
             course's own pretrained VGG-style network; listed with its SHA-256.
``cached``   the large ImageNet files, in the frameworks' own caches: Keras
             ``$KERAS_HOME/models`` (default ``~/.keras/models``), torchvision
             ``$TORCH_HOME/hub/checkpoints`` (default ``$XDG_CACHE_HOME/torch`` or
             ``~/.cache/torch``), or first of all the folder ``$COURSE_WEIGHTS_DIR``.

The known files are listed under the ``"weights"`` key of ``datasets/manifest.json``.
Each entry has ``file``, ``where`` (``"datasets"``, ``"keras"`` or ``"torch"``) and the
checksum that is known: ``sha256``; or ``md5`` (Keras publishes only an MD5 for its
VGG16 file, read from ``keras.applications.vgg16``); or ``sha256_prefix`` (torchvision
names its files after the first 8 hex digits of their SHA-256, ``vgg16-397923af.pth``;
nobody here has the 528 MiB file, so only that prefix is known and verified).

    >>> from course_utils.weights import find_weights
    >>> found = find_weights("vgg16_imagenet_torchvision")   # WeightsMissingError offline
    >>> found.path, found.source                              # (PosixPath(...), "cached")
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .data import data_dir

__all__ = [
    "FoundWeights",
    "WeightsChecksumError",
    "WeightsError",
    "WeightsMissingError",
    "cache_dirs",
    "find_weights",
    "known_weights",
]

WEIGHTS_DIR_ENV = "COURSE_WEIGHTS_DIR"
_WHERE = ("datasets", "keras", "torch")


class WeightsError(Exception):
    """A weights file is unknown, missing or damaged."""


class WeightsMissingError(WeightsError, FileNotFoundError):
    """The weights file is in none of the places looked at (also a ``FileNotFoundError``)."""


class WeightsChecksumError(WeightsError, ValueError):
    """A file of the right name has the wrong checksum: damaged, truncated or another file."""


@dataclass(frozen=True)
class FoundWeights:
    """Where a weights file was found: ``path``, ``source`` (``"shipped"`` or ``"cached"``)
    and the checksum it was verified against (``"sha256:..."``, ``"md5:..."``,
    ``"sha256_prefix:..."``; ``"unverified"`` with ``verify=False``)."""

    name: str
    path: Path
    source: str
    checksum: str

    def describe(self) -> str:
        """One line for a notebook to print: which file, which path it took."""
        return f"{self.name}: {self.source} weights from {self.path} ({self.checksum})"


def known_weights() -> dict[str, dict]:
    """The ``"weights"`` entries of ``manifest.json`` in :func:`course_utils.data.data_dir`."""
    manifest = data_dir() / "manifest.json"
    try:
        entries = json.loads(manifest.read_text()).get("weights", {})
    except FileNotFoundError:
        raise WeightsMissingError(f"{manifest} is missing, so no weights file can be looked up or verified") from None
    except (ValueError, AttributeError) as err:
        raise WeightsError(f"{manifest} is not a valid manifest ({err})") from None
    if not isinstance(entries, dict):
        raise WeightsError(f"{manifest}: 'weights' should map names to entries")
    return entries


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def cache_dirs(where: str) -> list[Path]:
    """The folders searched, in order, for a file kept in ``where`` (``"keras"``,
    ``"torch"`` or ``"datasets"``), read from the environment at each call."""
    if where not in _WHERE:
        raise ValueError(f"where must be one of {', '.join(_WHERE)}, got {where!r}")
    if where == "datasets":
        return [data_dir()]
    dirs = [Path(os.environ[WEIGHTS_DIR_ENV])] if os.environ.get(WEIGHTS_DIR_ENV) else []
    if where == "keras":
        dirs.append(Path(os.environ.get("KERAS_HOME") or _home() / ".keras") / "models")
    else:
        torch_home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or _home() / ".cache") / "torch"
        dirs.append(Path(torch_home) / "hub" / "checkpoints")
    return dirs


_VERIFIED: dict[tuple, str] = {}  # (path, mtime_ns, size, algorithm) -> hex digest


def _digest(path: Path, algorithm: str) -> str:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, algorithm)
    if key not in _VERIFIED:  # a 528 MiB file takes seconds to hash: once per file version
        digest = hashlib.new(algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def _verify(name: str, path: Path, entry: dict) -> str:
    """Check ``path`` against the entry's checksum; return what it was checked against."""
    for field, algorithm in (("sha256", "sha256"), ("md5", "md5"), ("sha256_prefix", "sha256")):
        expected = str(entry.get(field) or "").lower()
        if not expected:
            continue
        actual = _digest(path, algorithm)
        matches = actual.startswith(expected) if field == "sha256_prefix" else actual == expected
        if not matches:
            raise WeightsChecksumError(
                f"{path} has {algorithm} {actual}, but {name} needs {field.replace('_', ' ')} {expected}: the file "
                f"is damaged, incomplete or a different file. Nothing is downloaded: replace it with the right "
                f"file {entry['file']} (or delete it to use the course's own weights)."
            )
        return f"{field}:{expected}"
    raise WeightsError(f"manifest entry {name!r} lists no checksum (sha256, md5 or sha256_prefix)")


def find_weights(name: str, verify: bool = True) -> FoundWeights:
    """Find the weights file ``name`` (a key of :func:`known_weights`) without downloading.

    Returns a :class:`FoundWeights` saying where it was and which path it took:
    ``"shipped"`` (in ``datasets/``) or ``"cached"`` (``$COURSE_WEIGHTS_DIR``, then the
    framework's cache, see :func:`cache_dirs`). The checksum is verified before the
    caller loads anything (``verify=False`` skips it).

    Raises:
        WeightsMissingError: the file is in none of those places; the message names the
            file, the folders looked in and where to put it.
        WeightsChecksumError: a file of that name is there but its checksum differs.
        WeightsError: ``name`` is not in the manifest.
    """
    entries = known_weights()
    if name not in entries:
        raise WeightsError(f"unknown weights {name!r}; the manifest lists {', '.join(sorted(entries)) or 'none'}")
    entry = entries[name]
    filename, where = entry.get("file"), entry.get("where")
    if not filename or where not in _WHERE:
        raise WeightsError(f"manifest entry {name!r} needs 'file' and 'where' (one of {', '.join(_WHERE)})")
    dirs = cache_dirs(where)
    for directory in dirs:
        path = directory / filename
        if path.is_file():
            checksum = _verify(name, path, entry) if verify else "unverified"
            return FoundWeights(name, path, "shipped" if where == "datasets" else "cached", checksum)
    looked = ", ".join(str(d) for d in dirs)
    if where == "datasets":
        hint = ("it ships with the course: restore it with `git checkout datasets/` or set COURSE_DATA_DIR to the "
                "clone's datasets/")
    else:
        origin = f" (published at {entry['url']})" if entry.get("url") else ""
        hint = (f"nothing is downloaded: copy {filename}{origin} into {dirs[-1]}, or into a folder named by "
                f"${WEIGHTS_DIR_ENV}")
    raise WeightsMissingError(f"{name}: {filename} was not found (looked in {looked}); {hint}")
