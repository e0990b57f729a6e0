"""PyTorch helpers. ``course_utils/tensorflow.py`` has the same names for the same ideas,
so ``from course_utils import torch as cu`` and ``from course_utils import tensorflow as cu``
make a lesson's two notebooks read alike.

Layouts: images are (N, C, H, W) here (PyTorch's layout), labels (N,) int64.
Histories are dicts ``{"loss": [...], "accuracy": [...], "val_loss": [...],
"val_accuracy": [...]}`` with one float per epoch, the format of Keras' ``History.history``.
"""
from __future__ import annotations

import os
import platform
import random
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from .data import to_float_images

FRAMEWORK = "pytorch"
_device: torch.device | None = None


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``COURSE_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    global _device
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        return torch.device(choice)
    if _device is None:
        if torch.cuda.is_available():
            _device = torch.device("cuda")
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            _device = torch.device("mps")
        else:
            _device = torch.device("cpu")
    return _device


def device_report() -> str:
    """One line per fact: framework version, the chosen device and what else is visible."""
    device = get_device()
    lines = [f"PyTorch {torch.__version__} on Python {platform.python_version()}", f"training device: {device}"]
    if device.type == "cuda":
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            lines.append(f"GPU {i}: {props.name}, {props.total_memory / 2**30:.0f} GiB")
    else:
        lines.append(f"CPU threads: {torch.get_num_threads()}")
    return "\n".join(lines)


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, numpy and PyTorch (all devices). ``deterministic=True`` also asks
    for deterministic kernels, which are slower on a GPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def to_tensor_images(images) -> torch.Tensor:
    """uint8 (N, H, W) images -> float32 (N, 1, H, W) in [0, 1]; float (N, C, H, W) passes through."""
    if isinstance(images, torch.Tensor):
        return images.float()
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return torch.from_numpy(to_float_images(images, channels_last=False))
    return torch.as_tensor(images, dtype=torch.float32)


class _DeviceLoader:
    """Batches of tensors that already live on one device (a GPU): no copies per step.

    Written here because ``DataLoader`` copies every batch from host memory; for data
    sets of MNIST's size, keeping them on the GPU is several times faster.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator(device=x.device).manual_seed(seed)
        self.dataset = TensorDataset(x, y)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, device=self.x.device, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            yield self.x[idx], self.y[idx]


class _AugmentedLoader:
    """A loader whose image batches pass through ``augment`` (x (B, C, H, W) -> same shape)."""

    def __init__(self, loader, augment):
        self.loader, self.augment, self.dataset = loader, augment, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield self.augment(x), y


def random_affine(degrees: float = 10.0, shift: float = 0.1, scale: float = 0.1):
    """A batch augmentation: every image gets its own random rotation (up to ``degrees``),
    shift (up to ``shift`` of its size) and zoom (up to ``scale``), on the batch's device.

    Returns a function x (B, C, H, W) -> (B, C, H, W). Written with ``affine_grid`` and
    ``grid_sample`` because torchvision's v2 transforms draw one set of parameters per
    call, so a batch would move as one. The TensorFlow twin uses Keras' random layers.
    """
    def augment(x: torch.Tensor) -> torch.Tensor:
        n = len(x)
        draw = lambda *shape: torch.rand(*shape, device=x.device) * 2 - 1  # noqa: E731 uniform in [-1, 1)
        angle = draw(n) * degrees * torch.pi / 180
        zoom = 1 / (1 + draw(n) * scale)  # the grid maps output to input: zooming in shrinks it
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0] = torch.cos(angle) * zoom
        theta[:, 0, 1] = -torch.sin(angle) * zoom
        theta[:, 1, 0] = torch.sin(angle) * zoom
        theta[:, 1, 1] = torch.cos(angle) * zoom
        theta[:, :, 2] = draw(n, 2) * shift * 2  # grid coordinates span [-1, 1]: twice the image
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    return augment


def make_loader(images, labels, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                augment=None, device: torch.device | str | None = None):
    """Batches of ``(x, y)``: x float32 (B, C, H, W) in [0, 1], y int64 (B,).

    On the CPU this is a plain ``torch.utils.data.DataLoader`` over a ``TensorDataset``
    (shuffled with a seeded generator). On a GPU the whole data set is copied there once
    and batches are sliced on the device. ``augment`` (e.g. :func:`random_affine`) is
    applied to every image batch, on the device.
    """
    x = to_tensor_images(images)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if len(x) != len(y):
        raise ValueError(f"images and labels differ in length: {len(x)} images, {len(y)} labels")
    device = torch.device(device) if device is not None else get_device()
    if device.type != "cpu":
        loader = _DeviceLoader(x.to(device), y.to(device), batch_size, shuffle, seed)
    else:
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)
    return loader if augment is None else _AugmentedLoader(loader, augment)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _run_epoch(model, loader, loss_fn, device, optimizer=None, clip_norm=None, amp=False, progress=None):
    """One pass over ``loader``; trains when ``optimizer`` is given. Returns (mean loss, accuracy).

    Sums stay on the device and are read once at the end, because a host sync per
    step (``loss.item()``) dominates the time of small models on a GPU.
    """
    training = optimizer is not None
    model.train(training)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    with torch.set_grad_enabled(training):
        for step, (x, y) in enumerate(loader):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast:
                logits = model(x)
                loss = loss_fn(logits, y)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimizer.step()
            loss_sum += loss.detach().float() * len(y)
            if logits.ndim == 2 and y.ndim == 1:
                correct += (logits.argmax(dim=1) == y).sum()
            seen += len(y)
            if progress is not None:
                progress.update(1)
                if step % 25 == 0 and device.type == "cpu":  # a CPU has no sync to avoid
                    progress.set_postfix(loss=f"{loss_sum.item() / seen:.4f}")
    return loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1)


def train(model: nn.Module, train_data, val_data=None, epochs: int = 1, optimizer=None,
          loss_fn=None, scheduler=None, clip_norm: float | None = None, amp: bool = False,
          verbose: bool = True) -> dict:
    """Train ``model`` for ``epochs`` with a tqdm progress bar; return a Keras-style history.

    train_data, val_data: loaders of ``(x, y)`` batches (see :func:`make_loader`).
    The model returns logits (B, classes); ``loss_fn`` defaults to cross-entropy on
    them and ``optimizer`` to Adam with PyTorch's defaults (those of Keras' Adam too).
    ``scheduler`` (a ``torch.optim.lr_scheduler``) is stepped once per epoch.
    ``clip_norm`` clips the gradients' global norm each step; ``amp`` runs the forward
    pass in bfloat16 (it helps large models on a GPU, not this course's small ones).
    History keys: loss, accuracy, val_loss, val_accuracy, epoch_time (seconds).
    """
    device = get_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "epoch_time": []}
    if val_data is not None:
        history.update(val_loss=[], val_accuracy=[])
    for epoch in range(epochs):
        start = time.perf_counter()
        with tqdm(total=len(train_data), desc=f"epoch {epoch + 1}/{epochs}", disable=not verbose,
                  leave=True, unit="batch") as bar:
            loss, acc = _run_epoch(model, train_data, loss_fn, device, optimizer, clip_norm, amp, bar)
            history["loss"].append(loss)
            history["accuracy"].append(acc)
            shown = {"loss": f"{loss:.4f}", "accuracy": f"{acc:.4f}"}
            if val_data is not None:
                val_loss, val_acc = _run_epoch(model, val_data, loss_fn, device, amp=amp)
                history["val_loss"].append(val_loss)
                history["val_accuracy"].append(val_acc)
                shown.update(val_loss=f"{val_loss:.4f}", val_accuracy=f"{val_acc:.4f}")
            bar.set_postfix(shown)
        if scheduler is not None:
            scheduler.step()
        history["epoch_time"].append(time.perf_counter() - start)
    return history


def evaluate(model: nn.Module, data, loss_fn=None) -> dict:
    """Mean loss and accuracy over a loader: ``{"loss": float, "accuracy": float}``."""
    device = get_device()
    model.to(device)
    loss, acc = _run_epoch(model, data, loss_fn or nn.CrossEntropyLoss(), device)
    return {"loss": loss, "accuracy": acc}


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, classes) as numpy, from the model's logits through softmax.

    images: uint8 (N, H, W) or float (N, C, H, W).
    """
    device = get_device()
    model.to(device).eval()
    x = to_tensor_images(images)
    out = [torch.softmax(model(x[i:i + batch_size].to(device)).float(), dim=1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def feature_maps(model: nn.Module, layer: nn.Module, images) -> np.ndarray:
    """The output of ``layer`` (a sub-module of ``model``) for ``images``, as numpy.

    Read with a forward hook, so any layer of any model works. For a conv layer the
    result is (N, C, H, W).
    """
    device = get_device()
    model.to(device).eval()
    captured = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach()))
    try:
        model(to_tensor_images(images).to(device))
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"layer {layer.__class__.__name__} was not called by the model's forward pass")
    return captured[0].float().cpu().numpy()


def conv_filters(layer: nn.Conv2d) -> np.ndarray:
    """A conv layer's kernels as numpy (out_channels, in_channels, kH, kW)."""
    return layer.weight.detach().float().cpu().numpy()
