"""Figures shared by both frameworks. Every function takes numpy arrays (or
tensors, converted with :func:`course_utils.checks.to_numpy`) and returns the
matplotlib ``Figure``; notebooks end the cell with ``plt.show()``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .checks import to_numpy


def _grid(n: int, ncols: int, cell: float = 1.3, title_space: float = 0.35):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, (cell + title_space) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def _as_2d_image(image) -> np.ndarray:
    """One image, grey (H, W), (H, W, 1), (1, H, W) or colour (H, W, 3), (3, H, W), as
    something imshow draws: (H, W) or (H, W, 3), float colour clipped to [0, 1]."""
    img = to_numpy(image)
    if img.ndim == 3 and img.shape[-1] not in (1, 3) and img.shape[0] in (1, 3):
        img = np.moveaxis(img, 0, -1)  # PyTorch's (C, H, W)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] != 3):
        raise ValueError(
            "an image should be grey (H, W), (H, W, 1), (1, H, W) or colour (H, W, 3), (3, H, W); "
            f"got shape {img.shape}"
        )
    if img.ndim == 3 and img.dtype != np.uint8:
        img = np.clip(img.astype(np.float32), 0, 1)  # imshow wants colour floats in [0, 1]
    return img


def _label_text(i: int, labels, predictions, class_names) -> tuple[str, str]:
    name = (lambda k: str(class_names[int(k)])) if class_names is not None else (lambda k: str(int(k)))
    if labels is None and predictions is None:
        return "", "black"
    if predictions is None:
        return name(labels[i]), "black"
    if labels is None:
        return f"pred {name(predictions[i])}", "black"
    right = int(labels[i]) == int(predictions[i])
    return f"{name(predictions[i])} ({name(labels[i])})", "green" if right else "red"


def show_images(images, labels=None, predictions=None, class_names: Sequence[str] | None = None,
                ncols: int = 10, title: str | None = None, cmap: str = "gray"):
    """A grid of images with their labels; with ``predictions`` too, titles read
    ``predicted (true)``, green when right and red when wrong.

    images: grey (N, H, W) or grey or colour (N, H, W, C) or (N, C, H, W) with C 1 or 3
    (uint8 0..255, or floats in [0, 1]); ``cmap`` applies to grey images only.
    labels, predictions: (N,) ints.
    """
    images = to_numpy(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images should be a batch (N, H, W), (N, H, W, C) or (N, C, H, W); got shape {images.shape}")
    labels = None if labels is None else to_numpy(labels)
    predictions = None if predictions is None else to_numpy(predictions)
    fig, axes = _grid(len(images), ncols)
    for i, ax in enumerate(axes):
        if i >= len(images):
            break
        image = _as_2d_image(images[i])
        ax.imshow(image, cmap=cmap if image.ndim == 2 else None)
        text, color = _label_text(i, labels, predictions, class_names)
        if text:
            ax.set_title(text, fontsize=8, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(histories, metrics: Sequence[str] = ("loss", "accuracy")):
    """Training curves of one history or several on shared axes.

    histories: a history dict as Keras' ``History.history`` and the course's
    PyTorch ``train`` return it (``{"loss": [...], "val_loss": [...], ...}``,
    one value per epoch), or a mapping ``{run name: history}``.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("plot_history needs a history dict or a non-empty {name: history} dict")
    if all(isinstance(v, Sequence) or isinstance(v, np.ndarray) for v in histories.values()):
        histories = {"": histories}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for run, (name, hist) in enumerate(histories.items()):
            color = f"C{run}"
            for key, style, kind in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
                if key in hist and len(hist[key]):
                    values = np.asarray(hist[key], dtype=float)
                    label = f"{name} {kind}".strip()
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=color, marker="o", ms=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_filters(kernels, ncols: int = 8, title: str = "learned filters"):
    """Convolution kernels as small images, one per filter, on a shared colour scale.

    kernels: (F, kH, kW) (one input channel each) or (F, C, kH, kW) (channel 0 is shown).
    Blue is negative, red positive, white zero.
    """
    k = to_numpy(kernels)
    if k.ndim == 4:
        k = k[:, 0]
    if k.ndim != 3:
        raise ValueError(f"kernels should be (F, kH, kW) or (F, C, kH, kW); got shape {k.shape}")
    bound = float(np.abs(k).max()) or 1.0
    fig, axes = _grid(len(k), ncols, cell=1.0, title_space=0.1)
    for i, ax in enumerate(axes):
        if i < len(k):
            ax.imshow(k[i], cmap="bwr", vmin=-bound, vmax=bound)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps, ncols: int = 8, channels_last: bool = False, title: str = "feature maps",
                      image=None):
    """The channels of one example's feature maps as images.

    maps: (C, H, W), or (H, W, C) with ``channels_last=True`` (TensorFlow's layout); a
    batch of one, (1, C, H, W) or (1, H, W, C), is accepted too. ``image``: the input
    the maps were computed from, grey or colour (as :func:`show_images` takes one), drawn
    first for comparison.
    """
    m = to_numpy(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(
            f"feature maps of one example should be 3-D ({'H, W, C' if channels_last else 'C, H, W'}) or a batch "
            f"of one; got shape {m.shape}"
        )
    if channels_last:
        m = np.moveaxis(m, -1, 0)
    shown = [] if image is None else [_as_2d_image(image[0] if to_numpy(image).ndim == 4 else image)]
    fig, axes = _grid(len(m) + len(shown), ncols, cell=1.2, title_space=0.25 if shown else 0.1)
    for i, ax in enumerate(axes):
        if i < len(shown):
            ax.imshow(shown[0], cmap="gray" if shown[0].ndim == 2 else None)
            ax.set_title("input", fontsize=8)
        elif i < len(m) + len(shown):
            ax.imshow(m[i - len(shown)], cmap="viridis")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    t, p = to_numpy(y_true).astype(np.int64).ravel(), to_numpy(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred need the same length; got {t.size} and {p.size}")
    n = num_classes or int(max(t.max(initial=0), p.max(initial=0)) + 1)
    if (t < 0).any() or (p < 0).any() or (t >= n).any() or (p >= n).any():
        raise ValueError(f"labels must lie in 0..{n - 1}")
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n)


def plot_confusion_matrix(y_true, y_pred, class_names: Sequence[str] | None = None):
    """The confusion matrix as a heat map with counts; the diagonal holds the right answers."""
    n = len(class_names) if class_names is not None else None
    cm = confusion_matrix(y_true, y_pred, n)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(cm))]
    fig, ax = plt.subplots(figsize=(0.55 * len(cm) + 2, 0.55 * len(cm) + 1.5))
    ax.imshow(cm, cmap="Blues")
    for i in range(len(cm)):
        for j in range(len(cm)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(cm)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(cm)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(cm) / max(1, cm.sum())
    ax.set_title(f"confusion matrix (accuracy {accuracy:.2%})")
    fig.tight_layout()
    return fig


def show_misclassified(images, y_true, y_pred, class_names: Sequence[str] | None = None, n: int = 20,
                       ncols: int = 10):
    """The first ``n`` wrongly classified images, titled ``predicted (true)``."""
    t, p = to_numpy(y_true).ravel(), to_numpy(y_pred).ravel()
    wrong = np.flatnonzero(t != p)[:n]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified examples", ha="center", va="center")
        return fig
    return show_images(to_numpy(images)[wrong], t[wrong], p[wrong], class_names, ncols=ncols,
                       title=f"{int((t != p).sum())} misclassified; first {len(wrong)}: predicted (true)")
