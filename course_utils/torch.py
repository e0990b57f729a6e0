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


# --- sequences (lesson 04) ---
# Recurrent models and truncated BPTT, shared by the RNN, LSTM and GRU lessons. Sequence
# batches are (B, T, D), PyTorch's batch_first layout; weights come in the neutral layout
# of course_utils.sequences.

_RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNRegressor(nn.Module):
    """A recurrent layer and a linear head: x (B, T, D) -> (B, O) from the last step, or
    (B, T, O) at every step with ``return_sequences=True``.

    ``forward(x, state=None, return_state=False)``: ``state`` is the initial hidden state
    (1, B, H) (an ``(h, c)`` pair for an LSTM); with ``return_state`` the final state is
    returned too, so that a caller can carry it into the next chunk of a long series.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int = 1,
                 return_sequences: bool = False, cell: str = "rnn"):
        super().__init__()
        if cell not in _RECURRENT:
            raise ValueError(f"cell must be one of {', '.join(_RECURRENT)}, got {cell!r}")
        self.rnn = _RECURRENT[cell](input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)
        self.return_sequences = return_sequences

    def forward(self, x, state=None, return_state: bool = False):
        out, state = self.rnn(x, state)
        y = self.head(out if self.return_sequences else out[:, -1])
        return (y, state) if return_state else y


def rnn_regressor(input_size: int, hidden_size: int, output_size: int = 1, return_sequences: bool = False,
                  cell: str = "rnn", batch_size: int | None = None) -> RNNRegressor:
    """The course's recurrent regressor (see :class:`RNNRegressor`): ``nn.RNN`` (tanh),
    ``nn.LSTM`` or ``nn.GRU`` with ``hidden_size`` units, then ``nn.Linear(hidden_size,
    output_size)``. ``batch_size`` is accepted for symmetry with the Keras twin, whose
    stateful models need it; a PyTorch model carries its state through :func:`train_truncated_bptt`."""
    return RNNRegressor(input_size, hidden_size, output_size, return_sequences, cell)


def set_rnn_weights(model: RNNRegressor, weights: dict) -> None:
    """Copy neutral-layout weights (see :func:`course_utils.sequences.random_rnn_weights`:
    ``W_xh (D, H)``, ``W_hh (H, H)``, ``b_h (H,)``, optionally ``W_hy (H, O)``, ``b_y (O,)``)
    into a simple-RNN :class:`RNNRegressor`, in its dtype and on its device."""
    from .sequences import keras_rnn_to_torch

    if not isinstance(getattr(model, "rnn", None), nn.RNN):
        raise ValueError("set_rnn_weights needs an RNNRegressor with cell='rnn'")
    state = keras_rnn_to_torch(weights["W_xh"], weights["W_hh"], weights["b_h"])
    if "W_hy" in weights:
        state.update({"head.weight": np.asarray(weights["W_hy"]).T, "head.bias": np.asarray(weights["b_y"])})
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            target = params[name if name.startswith("head.") else f"rnn.{name}"]
            if tuple(target.shape) != value.shape:
                raise ValueError(f"{name}: the model has shape {tuple(target.shape)}, the weights {value.shape}")
            target.copy_(torch.as_tensor(value))


def make_sequence_loader(x, y, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                         device: torch.device | str | None = None) -> _DeviceLoader:
    """Batches of ``(x, y)`` for sequence regression: x float32 (B, T, D), y float32
    (B, O) or (B, T, O), on the training device (the data sets of these lessons are
    small enough to live there whole). Unlike :func:`make_loader`, targets stay floats."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, T, D), got {tuple(x.shape)}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} sequences, {len(y)} targets")
    device = torch.device(device) if device is not None else get_device()
    return _DeviceLoader(x.to(device), y.to(device), batch_size, shuffle, seed)


def _detach_state(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def train_truncated_bptt(model: RNNRegressor, x_chunks, y_chunks, epochs: int = 1, optimizer=None,
                         loss_fn=None, clip_norm: float | None = None, verbose: bool = True) -> dict:
    """Truncated BPTT over the chunks of one long series (see
    :func:`course_utils.sequences.truncated_bptt_chunks`).

    x_chunks, y_chunks: (K, B, L, D) and (K, B, L, O); chunk k + 1 continues chunk k. Each
    epoch starts from a zero state; after each chunk the final hidden state is **carried**
    into the next chunk and **detached**, so gradients flow back at most L steps. The
    model must return every step (``return_sequences=True``). Returns a history
    ``{"loss": [...], "epoch_time": [...]}``, the mean chunk loss per epoch.
    """
    device = get_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.MSELoss()
    x_chunks = torch.as_tensor(np.asarray(x_chunks), dtype=torch.float32, device=device)
    y_chunks = torch.as_tensor(np.asarray(y_chunks), dtype=torch.float32, device=device)
    if x_chunks.ndim != 4 or y_chunks.shape[:3] != x_chunks.shape[:3]:
        raise ValueError(f"expected chunks (K, B, L, D) and (K, B, L, O), got {tuple(x_chunks.shape)} "
                         f"and {tuple(y_chunks.shape)}")
    history: dict[str, list[float]] = {"loss": [], "epoch_time": []}
    model.train()
    for _ in tqdm(range(epochs), desc="truncated BPTT", disable=not verbose, unit="epoch"):
        start, state = time.perf_counter(), None
        total = torch.zeros((), device=device)
        for x, y in zip(x_chunks, y_chunks):
            prediction, state = model(x, state, return_state=True)
            loss = loss_fn(prediction, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            state = _detach_state(state)
            total += loss.detach()
        history["loss"].append(total.item() / len(x_chunks))
        history["epoch_time"].append(time.perf_counter() - start)
    return history


@torch.no_grad()
def predict_steps(model: RNNRegressor, x) -> np.ndarray:
    """The model's outputs for sequences x (N, T, D), from a zero initial state, as numpy:
    (N, T, O) for a ``return_sequences`` model, else (N, O)."""
    device = get_device()
    model.to(device).eval()
    return model(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)).float().cpu().numpy()
