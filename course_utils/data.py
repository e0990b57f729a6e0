"""Real data sets for the course, as numpy arrays (no TensorFlow, no PyTorch).

The files live in ``datasets/`` (see ``datasets/README.md``) and are checked against the
SHA-256 sums in ``datasets/manifest.json`` when loaded. Every loader returns a
:class:`Split`: images ``uint8 (N, 28, 28)`` with values 0..255 and labels ``int64 (N,)``,
already divided into shuffled, class-stratified train / validation / test parts.

    >>> from course_utils.data import load_mnist, to_float_images
    >>> split = load_mnist()                      # 7,000 / 1,000 / 2,000 digits
    >>> x = to_float_images(split.x_train)        # float32 (7000, 28, 28, 1) in [0, 1]
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [  # DATA_DIR is left out: a star import would freeze it; call data_dir()
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "DatasetError",
    "DatasetMissingError",
    "Split",
    "data_dir",
    "fashion_mnist_dir",
    "load_fashion_mnist",
    "load_mnist",
    "load_sunspots",
    "load_npz",
    "one_hot",
    "pad_or_resize",
    "read_idx",
    "stratified_split",
    "to_float_images",
    "to_rgb",
]

_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "datasets"


def __getattr__(name: str):
    """``DATA_DIR`` is :func:`data_dir` read at each access (``$COURSE_DATA_DIR`` may change
    after import); every loader calls :func:`data_dir` itself."""
    if name == "DATA_DIR":
        return data_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_REBUILD = (
    "run `python datasets/build_datasets.py` to rebuild it, "
    "or `git checkout datasets/` to restore the committed copy "
    "(course_utils installed outside the repository: set COURSE_DATA_DIR to the clone's datasets/)"
)
_APT_HINT = "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu)"


class DatasetError(Exception):
    """A data file is missing, unreadable, corrupted or not of the expected shape."""


class DatasetMissingError(DatasetError, FileNotFoundError):
    """A data file does not exist (also catchable as ``FileNotFoundError``)."""


def data_dir() -> Path:
    """The data directory now: ``$COURSE_DATA_DIR`` if set, else the repository's ``datasets/``."""
    return Path(os.environ.get("COURSE_DATA_DIR") or _DEFAULT_DATA_DIR)


def fashion_mnist_dir() -> Path:
    """Where the full Debian Fashion-MNIST files are: ``$FASHION_MNIST_DIR`` or the apt path."""
    return Path(os.environ.get("FASHION_MNIST_DIR") or FASHION_MNIST_SYSTEM_DIR)


# ----------------------------------------------------------------------------- Split


@dataclass(frozen=True, eq=False)  # eq=False: `==` on arrays is elementwise, not a bool
class Split:
    """Train / validation / test parts of one data set.

    ``x_*``: images ``uint8 (N, 28, 28)``, 0..255. ``y_*``: labels ``int64 (N,)`` in
    ``0 .. num_classes - 1``. Each part is shuffled and stratified by class, so its first
    ``n`` samples are close to stratified too (see :meth:`subset`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if len(x) != len(y):
                raise ValueError(f"{part}: {len(x)} images but {len(y)} labels")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        """Number of samples per part, e.g. ``{"train": 7000, "val": 1000, "test": 2000}``."""
        return {part: len(getattr(self, f"y_{part}")) for part in ("train", "val", "test")}

    def subset(
        self, train: int | None = None, val: int | None = None, test: int | None = None
    ) -> Split:
        """A smaller Split with the first ``n`` samples of each part (``None``: keep all)."""
        sizes = self.sizes()
        changes = {}
        for part, n in (("train", train), ("val", val), ("test", test)):
            if n is None:
                continue
            if not 0 <= n <= sizes[part]:
                raise ValueError(
                    f"subset({part}={n}): the {part} part of {self.name} has {sizes[part]} "
                    f"samples; ask for 0 to {sizes[part]}"
                )
            changes[f"x_{part}"] = getattr(self, f"x_{part}")[:n]
            changes[f"y_{part}"] = getattr(self, f"y_{part}")[:n]
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes().items())
        return f"Split({self.name!r}, {sizes}, classes={self.num_classes})"


# ----------------------------------------------------------------------------- splitting


def _requested_counts(sizes: Mapping[str, float], n: int) -> dict[str, int]:
    """Turn counts or fractions of ``n`` into counts, checking that they fit."""
    if not sizes:
        raise ValueError("sizes is empty: give e.g. {'train': 800, 'val': 200}")
    for part, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
            raise ValueError(f"size of {part!r} must be a count or a fraction, got {size!r}")
        if size < 0:
            raise ValueError(f"size of {part!r} is negative ({size})")
    if all(isinstance(s, (int, np.integer)) for s in sizes.values()):
        counts = {part: int(s) for part, s in sizes.items()}
    else:
        if any(s > 1 for s in sizes.values()) or sum(sizes.values()) > 1 + 1e-9:
            raise ValueError(
                f"fractions must each be in [0, 1] and sum to at most 1: {dict(sizes)}"
            )
        # Largest remainder, so fractions summing to 1 use every sample exactly once.
        exact = np.array([float(s) * n for s in sizes.values()])
        counts_arr = np.floor(exact + 1e-9).astype(int)
        extra = int(round(exact.sum())) - counts_arr.sum()
        counts_arr[np.argsort(-(exact - counts_arr), kind="stable")[: max(extra, 0)]] += 1
        counts = dict(zip(sizes, counts_arr.tolist(), strict=True))
    if sum(counts.values()) > n:
        raise ValueError(
            f"sizes {counts} sum to {sum(counts.values())}, but there are only {n} samples"
        )
    return counts


def _allocate(class_counts: np.ndarray, size: int) -> np.ndarray:
    """Split ``size`` across classes in proportion to ``class_counts`` (each <= its count).

    Floors of the exact shares, topped up by largest remainder; every available class gets
    at least one sample whenever ``size`` allows it.
    """
    total = class_counts.sum()
    exact = size * class_counts / total if total else np.zeros(len(class_counts))
    take = np.floor(exact).astype(np.int64)
    available = class_counts > 0
    if size >= available.sum():
        take[available] = np.maximum(take[available], 1)
    while take.sum() > size:  # the minimum of one overshot: trim the most over-served class
        over = np.where(take > 1, take - exact, -np.inf)
        take[np.argmax(over)] -= 1
    while take.sum() < size:
        short = np.where(take < class_counts, exact - take, -np.inf)
        take[np.argmax(short)] += 1
    return take


def stratified_split(labels, sizes: Mapping[str, float], seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint, class-stratified index sets, e.g. for train / validation / test.

    Args:
        labels: class labels, shape ``(N,)`` (any values; typically ints ``0..K-1``).
        sizes: ``{part: count}`` with ints, or ``{part: fraction of N}`` with floats.
            Samples not requested are left out.
        seed: the same seed and labels always give the same indices.

    Returns:
        ``{part: indices}``, each ``int64 (size,)``, shuffled. Each part's class
        proportions match those of ``labels`` up to rounding, and each part holds every
        class at least once when it is big enough.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {labels.shape}")
    counts = _requested_counts(sizes, len(labels))
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    # RandomState's stream is frozen by numpy, so splits stay the same across versions.
    rng = np.random.RandomState(seed)
    pools = [rng.permutation(np.flatnonzero(codes == c)) for c in range(codes.max(initial=-1) + 1)]
    left = np.array([len(p) for p in pools], dtype=np.int64)
    start = np.zeros_like(left)
    result = {}
    for part, size in counts.items():
        # Shares of what is left (not of the whole), so later parts stay feasible.
        take = _allocate(left, size)
        chosen = [pools[c][start[c] : start[c] + take[c]] for c in range(len(pools))]
        start += take
        left -= take
        result[part] = rng.permutation(
            np.concatenate(chosen or [np.zeros(0, np.int64)]).astype(np.int64)
        )
    return result


# ----------------------------------------------------------------------------- loading files

_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256 seen


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_entry(directory: Path, filename: str) -> dict:
    path = directory / "manifest.json"
    if not path.exists():
        raise DatasetMissingError(
            f"{path} is missing, so {filename} cannot be verified; {_REBUILD}"
        )
    try:
        entry = json.loads(path.read_text())["files"].get(filename)
    except (ValueError, KeyError, AttributeError) as err:
        raise DatasetError(f"{path} is not a valid manifest ({err}); {_REBUILD}") from None
    if entry is None:
        raise DatasetError(f"{filename} is not listed in {path}; {_REBUILD}")
    return entry


def _verify_checksum(path: Path, expected: str) -> None:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _VERIFIED.get(key) == expected:
        return  # already hashed and unchanged since: keeps repeated loads fast
    actual = _sha256_file(path)
    if actual != expected.lower():
        raise DatasetError(
            f"{path}: checksum mismatch (sha256 {actual}, expected {expected}); the file is "
            f"corrupted or out of date: {_REBUILD}"
        )
    _VERIFIED[key] = expected


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], spec: dict) -> None:
    for key, want in spec.items():
        if key not in arrays:
            raise DatasetError(f"{path}: array {key!r} is missing; {_REBUILD}")
        got = arrays[key]
        if list(got.shape) != want["shape"] or str(got.dtype) != want["dtype"]:
            raise DatasetError(
                f"{path}: wrong shape or dtype for {key!r}: got {got.dtype} {got.shape}, expected "
                f"{want['dtype']} {tuple(want['shape'])}; {_REBUILD}"
            )


def load_npz(
    name: str, expected_sha256: str | None = None, verify: bool = True
) -> dict[str, np.ndarray]:
    """Load a shipped ``.npz`` from :func:`data_dir` as ``{array name: array}``.

    Args:
        name: file name with or without ``.npz``, e.g. ``"mnist"``.
        expected_sha256: checksum to insist on; by default the one in ``manifest.json``.
        verify: check the checksum, and the shapes and dtypes the manifest lists.
            The checksum is computed once per file version (path, mtime, size).

    Raises:
        DatasetMissingError: the file (or the manifest needed to verify it) is absent.
        DatasetError: the checksum differs, the file is not a valid npz, or an array has
            the wrong shape or dtype. The message names the file and how to fix it.
    """
    filename = name if name.endswith(".npz") else f"{name}.npz"
    directory = data_dir()
    path = directory / filename
    if not path.is_file():
        raise DatasetMissingError(f"{path} is missing; {_REBUILD}")
    entry = _manifest_entry(directory, filename) if verify and expected_sha256 is None else None
    if verify:
        _verify_checksum(path, expected_sha256 or entry["sha256"])
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise DatasetError(f"{path} is not a valid npz file ({err}); {_REBUILD}") from None
    if entry is not None:
        _check_arrays(path, arrays, entry.get("arrays", {}))
    return arrays


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file of unsigned bytes (``.gz`` or plain), e.g. the MNIST formats.

    Returns ``uint8`` with the shape in the header: ``(N, 28, 28)`` for images
    (magic ``0x00000803``), ``(N,)`` for labels (magic ``0x00000801``).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DatasetMissingError(f"{path} is missing") from None
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path} cannot be read ({err})") from None
    if len(raw) < 8 or raw[:3] != b"\x00\x00\x08" or raw[3] not in (1, 3):
        raise DatasetError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    body = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


# ----------------------------------------------------------------------------- data sets


def _make_split(images, labels, parts: dict[str, np.ndarray], test, class_names, name) -> Split:
    """Assemble a Split; ``test`` is ``(images, labels)`` or None to use ``parts["test"]``."""
    labels = labels.astype(np.int64)
    x_test, y_test = test if test is not None else (images[parts["test"]], labels[parts["test"]])
    return Split(
        x_train=images[parts["train"]],
        y_train=labels[parts["train"]],
        x_val=images[parts["val"]],
        y_val=labels[parts["val"]],
        x_test=x_test,
        y_test=np.asarray(y_test).astype(np.int64),
        class_names=tuple(class_names),
        name=name,
    )


def load_mnist(n_val: int = 1000, n_test: int = 2000, seed: int = 0) -> Split:
    """The course's 10,000 real MNIST digits, split stratified by class.

    With the defaults: train 7,000, val 1,000, test 2,000. Images ``uint8 (N, 28, 28)``,
    labels ``int64 (N,)`` in 0..9. The same seed always gives the same split.
    """
    data = load_npz("mnist")
    images, labels = data["images"], data["labels"]
    n_train = len(labels) - n_val - n_test
    if n_val < 0 or n_test < 0 or n_train < 0:
        raise ValueError(
            f"n_val={n_val}, n_test={n_test}: need both >= 0 and at most {len(labels)} together"
        )
    parts = stratified_split(labels, {"train": n_train, "val": n_val, "test": n_test}, seed)
    return _make_split(images, labels, parts, None, MNIST_CLASSES, "mnist")


def _fashion_full_available(directory: Path) -> bool:
    return all((directory / f).is_file() for f in FASHION_MNIST_FILES.values())


def _fashion_full() -> tuple[np.ndarray, ...]:
    directory = fashion_mnist_dir()
    missing = [f for f in FASHION_MNIST_FILES.values() if not (directory / f).is_file()]
    if missing:
        raise DatasetMissingError(
            f"the full Fashion-MNIST is not in {directory} (missing {', '.join(missing)}); "
            f"{_APT_HINT}, or set FASHION_MNIST_DIR, or use source='shipped'"
        )
    arrays = {key: read_idx(directory / f) for key, f in FASHION_MNIST_FILES.items()}
    for part in ("train", "test"):
        x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(
                f"{directory}: {part} images {x.shape} do not match labels {y.shape}"
            )
    return (
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
    )


def load_fashion_mnist(n_val: int = 2000, seed: int = 0, source: str = "auto") -> Split:
    """Fashion-MNIST (Zalando): test = the official 10,000 test images.

    Args:
        n_val: validation images, taken stratified from the training images.
        seed: fixes the train/validation split and its order.
        source: ``"shipped"``: the 12,000-image training subset in ``datasets/``
            (10,000 train / 2,000 val). ``"full"``: the Debian package's 60,000 training
            images from :func:`fashion_mnist_dir` (58,000 / 2,000). ``"auto"``: full when
            installed, else shipped. ``Split.name`` says which was used.

    Returns:
        A Split of images ``uint8 (N, 28, 28)``, labels ``int64 (N,)`` in 0..9.
    """
    if source not in ("auto", "shipped", "full"):
        raise ValueError(f"source must be 'auto', 'shipped' or 'full', got {source!r}")
    if source == "auto":
        source = "full" if _fashion_full_available(fashion_mnist_dir()) else "shipped"
    if source == "full":
        x_train, y_train, x_test, y_test = _fashion_full()
        name = "fashion_mnist (full Debian set)"
    else:
        train, test = load_npz("fashion_mnist_train_subset"), load_npz("fashion_mnist_test")
        x_train, y_train, x_test, y_test = (
            train["images"],
            train["labels"],
            test["images"],
            test["labels"],
        )
        name = "fashion_mnist (shipped subset)"
    if not 0 <= n_val <= len(y_train):
        raise ValueError(f"n_val={n_val}: the training images number {len(y_train)}")
    parts = stratified_split(y_train, {"train": len(y_train) - n_val, "val": n_val}, seed)
    return _make_split(x_train, y_train, parts, (x_test, y_test), FASHION_MNIST_CLASSES, name)


SUNSPOTS_FILE = "sunspots.npz"
"""The yearly sunspot series in ``datasets/`` (listed under ``series`` in ``manifest.json``)."""


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """The yearly mean sunspot numbers 1700-2008 (public domain, shipped by statsmodels).

    Returns ``(years, sunspots)``: years ``int64 (309,)``, consecutive from 1700 to 2008;
    sunspots ``float64 (309,)``, the mean number of sunspots of each year (0 to 190.2).
    statsmodels ships no monthly series, so this yearly one is the course's.

    The file is checked against its checksum, shapes and dtypes in ``manifest.json``
    (its ``series`` section); a missing or damaged file raises :class:`DatasetError`.
    """
    directory = data_dir()
    path = directory / SUNSPOTS_FILE
    manifest = directory / "manifest.json"
    try:
        entry = json.loads(manifest.read_text())["series"][SUNSPOTS_FILE]
    except FileNotFoundError:
        raise DatasetMissingError(f"{manifest} is missing, so {SUNSPOTS_FILE} cannot be verified; {_REBUILD}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{manifest} lists no series {SUNSPOTS_FILE} ({err!r}); {_REBUILD}") from None
    arrays = load_npz(SUNSPOTS_FILE, expected_sha256=entry["sha256"])
    _check_arrays(path, arrays, entry["arrays"])
    return arrays["year"].astype(np.int64), arrays["sunspots"]


# ----------------------------------------------------------------------------- conversions


def to_float_images(images: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """``uint8`` images 0..255 -> ``float32`` in [0, 1] with a channel axis.

    images: grey ``(N, H, W)`` or ``(N, H, W, C)`` (numpy's layout, C = 1 or 3).
    Returns ``(N, H, W, C)`` (TensorFlow's layout) or, with ``channels_last=False``,
    ``(N, C, H, W)`` (PyTorch's); grey images get C = 1.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            "expected uint8 images of shape (N, H, W) or (N, H, W, C) with C 1 or 3, "
            f"got {images.dtype} of shape {images.shape}"
        )
    scaled = images.astype(np.float32) / np.float32(255)
    if scaled.ndim == 3:
        scaled = scaled[..., None]
    return scaled if channels_last else np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def _images_nhwc(images, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"{what} expects images (N, H, W) or (N, H, W, C) with C 1 or 3 (numpy's channels-last "
            f"layout; move a PyTorch batch's channels last first), got shape {images.shape}"
        )
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise ValueError(f"{what} expects numeric images, got {images.dtype}")
    return images


def to_rgb(images) -> np.ndarray:
    """Grey images ``(N, H, W)`` or ``(N, H, W, 1)`` -> ``(N, H, W, 3)`` with the grey value
    in all three channels (what ImageNet networks such as VGG16 take); colour
    ``(N, H, W, 3)`` passes through. Keeps the dtype."""
    images = _images_nhwc(images, "to_rgb")
    return images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)


def _bilinear_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear resizing along one axis, with half-pixel
    centres (what ``tf.image.resize`` and ``F.interpolate(align_corners=False)`` do)."""
    centre = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    centre = np.clip(centre, 0, n_in - 1)
    low = np.floor(centre).astype(np.int64)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, (centre - low).astype(np.float64)


def pad_or_resize(images, size, mode: str = "resize", fill=0) -> np.ndarray:
    """Images ``(N, H, W)`` or ``(N, H, W, C)`` brought to ``size`` = (height, width) (or
    one int for a square); the channel axis, when there is one, is kept.

    ``mode="resize"``: bilinear interpolation with half-pixel centres and no antialiasing,
    as ``tf.image.resize(..., "bilinear")`` and ``F.interpolate(..., "bilinear",
    align_corners=False)``. ``mode="pad"``: the image unchanged in the centre of a
    ``fill``-valued frame (extra odd pixel at the bottom and right); the size may not be
    smaller than the image. Padding keeps the dtype; resizing keeps uint8 (rounded) and
    makes other types float32.

    VGG16 needs at least 32x32 and 3 channels: ``to_rgb(pad_or_resize(x, 32, "pad"))``.
    """
    grey = np.asarray(images).ndim == 3
    x = _images_nhwc(images, "pad_or_resize")
    if mode not in ("resize", "pad"):
        raise ValueError(f"mode must be 'resize' or 'pad', got {mode!r}")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
    height, width = int(height), int(width)
    _, h, w, _ = x.shape
    if mode == "pad":
        if height < h or width < w:
            raise ValueError(f"cannot pad images of {h}x{w} to the smaller {height}x{width}; use mode='resize'")
        top, left = (height - h) // 2, (width - w) // 2
        out = np.full((len(x), height, width, x.shape[-1]), fill, dtype=x.dtype)
        out[:, top:top + h, left:left + w] = x
    else:
        rows_lo, rows_hi, dy = _bilinear_weights(h, height)
        cols_lo, cols_hi, dx = _bilinear_weights(w, width)
        f = x.astype(np.float64)
        rows = f[:, rows_lo] * (1 - dy)[None, :, None, None] + f[:, rows_hi] * dy[None, :, None, None]
        out = rows[:, :, cols_lo] * (1 - dx)[None, None, :, None] + rows[:, :, cols_hi] * dx[None, None, :, None]
        if x.dtype == np.uint8:
            out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        else:
            out = out.astype(np.float32)
    return out[..., 0] if grey else out


def one_hot(labels, num_classes: int) -> np.ndarray:
    """Integer labels ``(N,)`` in ``0..num_classes-1`` -> ``float32 (N, num_classes)``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"expected integer labels of shape (N,), got {labels.dtype} of shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in 0..{num_classes - 1}, "
            f"got values from {labels.min()} to {labels.max()}"
        )
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


# ----------------------------------------------------------------------------- sequences (lessons 05 and 06)

__all__ += [
    "load_italy_power_demand",
    "load_japanese_vowels",
    "load_pride_and_prejudice",
]

ITALY_POWER_DEMAND_FILE = "italy_power_demand.npz"
JAPANESE_VOWELS_FILE = "japanese_vowels.npz"
PRIDE_AND_PREJUDICE_FILE = "pride_and_prejudice.txt.gz"


def _series_entry(filename: str) -> dict:
    """The file's entry in the ``series`` section of ``manifest.json``, the file present.

    Raises DatasetMissingError when the file or the manifest is absent, DatasetError when
    the manifest does not list the file.
    """
    directory = data_dir()
    path, manifest = directory / filename, directory / "manifest.json"
    if not path.is_file():
        raise DatasetMissingError(f"{path} is missing; {_REBUILD}")
    try:
        return json.loads(manifest.read_text())["series"][filename]
    except FileNotFoundError:
        raise DatasetMissingError(f"{manifest} is missing, so {filename} cannot be verified; {_REBUILD}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetError(f"{manifest} lists no series {filename} ({err!r}); {_REBUILD}") from None


def _load_series_npz(filename: str) -> dict[str, np.ndarray]:
    """A ``series`` npz, checked against its checksum, shapes and dtypes in the manifest."""
    entry = _series_entry(filename)
    arrays = load_npz(filename, expected_sha256=entry["sha256"])
    _check_arrays(data_dir() / filename, arrays, entry["arrays"])
    return arrays


def load_italy_power_demand() -> dict[str, np.ndarray]:
    """ItalyPowerDemand (UCR archive): one day of Italian electricity demand per series.

    Returns ``{"x_train", "y_train", "x_test", "y_test"}``:

    - ``x_train`` ``float32 (67, 24)``, ``x_test`` ``float32 (1029, 24)``: 24 hourly
      demand values per day, z-normalised per series in the source (each row has mean 0
      and standard deviation 1), so they have no unit.
    - ``y_train`` ``int64 (67,)``, ``y_test`` ``int64 (1029,)``: the labels **1 or 2 as in
      the original files** (days of October to March vs April to September). Map them to
      0/1 with ``y - 1`` for a binary classifier.

    The file is checked against its checksum in ``manifest.json``; a missing or damaged
    file raises :class:`DatasetError` (:class:`DatasetMissingError` when missing).
    """
    arrays = _load_series_npz(ITALY_POWER_DEMAND_FILE)
    return {
        "x_train": arrays["x_train"],
        "y_train": arrays["y_train"].astype(np.int64),
        "x_test": arrays["x_test"],
        "y_test": arrays["y_test"].astype(np.int64),
    }


def load_japanese_vowels() -> dict[str, np.ndarray]:
    """Japanese Vowels (UCI): utterances of 9 male speakers, to be told apart by speaker.

    Returns ``{"x_train", "lengths_train", "y_train", "x_test", "lengths_test", "y_test"}``:

    - ``x_train`` ``float32 (270, 29, 12)``, ``x_test`` ``float32 (370, 29, 12)``:
      ``(utterance, time step, channel)``; each time step is a frame of 12 LPC cepstrum
      coefficients (no unit). Utterances last 7 to 29 frames; the rows after an
      utterance's length are zeros (padding at the end).
    - ``lengths_train`` ``int64 (270,)``, ``lengths_test`` ``int64 (370,)``: the true
      number of frames, 7..29 (use them to mask or pack the padding).
    - ``y_train`` ``int64 (270,)``, ``y_test`` ``int64 (370,)``: the speaker, **1..9 as in
      the original files**; ``y - 1`` gives 0..8. Training has 30 utterances per speaker,
      the test set 24 to 88.

    The file is checked against its checksum in ``manifest.json``; a missing or damaged
    file raises :class:`DatasetError` (:class:`DatasetMissingError` when missing).
    """
    arrays = _load_series_npz(JAPANESE_VOWELS_FILE)
    return {
        key: arrays[key] if key.startswith("x_") else arrays[key].astype(np.int64)
        for key in ("x_train", "lengths_train", "y_train", "x_test", "lengths_test", "y_test")
    }


def load_pride_and_prejudice() -> str:
    """Jane Austen's *Pride and Prejudice* (1813, public domain) as one string.

    684,767 characters (75 distinct, ASCII only), the 13,030 lines of the text joined
    with ``"\\n"``, as the R package janeaustenr ships them. The gzip file is checked
    against its checksum in ``manifest.json``; a missing or damaged file raises
    :class:`DatasetError` (:class:`DatasetMissingError` when missing).
    """
    entry = _series_entry(PRIDE_AND_PREJUDICE_FILE)
    path = data_dir() / PRIDE_AND_PREJUDICE_FILE
    _verify_checksum(path, entry["sha256"])
    try:
        text = gzip.decompress(path.read_bytes()).decode(entry.get("encoding", "utf-8"))
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} cannot be read as gzip-compressed text ({err}); {_REBUILD}") from None
    if len(text) != entry["num_characters"]:
        raise DatasetError(
            f"{path}: {len(text)} characters, the manifest says {entry['num_characters']}; {_REBUILD}"
        )
    return text
