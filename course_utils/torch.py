"""PyTorch helpers. ``course_utils/tensorflow.py`` has the same names for the same ideas,
so ``from course_utils import torch as cu`` and ``from course_utils import tensorflow as cu``
make a lesson's two notebooks read alike.

Layouts: images are (N, C, H, W) here (PyTorch's layout), labels (N,) int64.
Histories are dicts ``{"loss": [...], "accuracy": [...], "val_loss": [...],
"val_accuracy": [...]}`` with one float per epoch, the format of Keras' ``History.history``.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import threading
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from tqdm.auto import tqdm

from .data import to_float_images, to_rgb  # noqa: F401  (to_rgb: re-exported for notebooks)

FRAMEWORK = "pytorch"
_device: torch.device | None = None
_cpu_threads_set = False


def _leave_a_core_free() -> None:
    """On the CPU, run PyTorch with one thread fewer than its default (one core: one thread),
    or ``COURSE_TORCH_THREADS`` threads, or leave the number ``OMP_NUM_THREADS`` chose;
    done once per process.

    PyTorch's OpenMP threads meet at a barrier after every parallel operation, so when
    another process (the notebook's kernel and browser, a test suite) takes one core,
    every thread waits for the descheduled one: measured on 2 cores under load, an epoch
    of lesson 01 took 90-190 s with 2 threads and 10-12 s with 1. TensorFlow's thread
    pool does not stall that way.
    """
    global _cpu_threads_set
    if _cpu_threads_set:
        return
    _cpu_threads_set = True
    chosen = os.environ.get("COURSE_TORCH_THREADS")
    if chosen:
        torch.set_num_threads(int(chosen))
    elif not os.environ.get("OMP_NUM_THREADS") and torch.get_num_threads() > 1:
        torch.set_num_threads(torch.get_num_threads() - 1)


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``COURSE_DEVICE``) forces one, e.g. ``"cpu"``.

    On the CPU, PyTorch then uses one thread fewer than the machine's cores (at least one),
    so that a busy core elsewhere does not stall every step; ``COURSE_TORCH_THREADS`` (or
    ``OMP_NUM_THREADS``) sets the number instead.

    On a CUDA GPU this also turns TF32 **off** for matrix products and cuDNN (PyTorch
    allows it for convolutions by default), so that float32 results outside training
    (checks, exercises, :func:`predict`) match a CPU at ``rtol=1e-5``. :func:`train` and
    :func:`train_truncated_bptt` turn TF32 on for their own loop only (see :func:`tf32`).
    """
    global _device
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cpu":
            _leave_a_core_free()
        return device
    if _device is None:
        if torch.cuda.is_available():
            _device = torch.device("cuda")
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
            torch.backends.cuda.matmul.allow_tf32 = False  # exact float32 outside training
            torch.backends.cudnn.allow_tf32 = False
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            _device = torch.device("mps")
        else:
            _device = torch.device("cpu")
            _leave_a_core_free()
    return _device


@contextlib.contextmanager
def tf32(enabled: bool = True):
    """A block with TF32 (float32 matrix products and convolutions on tensor cores, with
    a 10-bit mantissa) allowed or not; the flags are restored afterwards, even on error.

    Training uses it (faster on Ampere and later GPUs, and training noise dwarfs the
    rounding); comparisons of float32 results at ``rtol=1e-5`` must run outside it.
    The flags only matter on a CUDA GPU; on a CPU they are set and restored all the same.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


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


def seed_everything(seed: int = 0, deterministic: bool | None = None) -> None:
    """Seed Python, numpy and PyTorch (all devices), so that a seeded run prints the same
    numbers twice on the same machine.

    ``deterministic``: ask for deterministic kernels (``torch.use_deterministic_algorithms``,
    warning where an op has none) or not. ``None``, the default, leaves them off: on the CPU
    PyTorch's kernels give the same numbers run after run without them (the grading tests run
    every notebook twice and compare), and asking for them made the lessons' models 15-75%
    slower per epoch at one thread (``make bench``, column ``det. / default``). On a GPU,
    where atomic adds make runs differ, ``True`` opts in (slower). The TensorFlow twin's
    ``None`` turns them on for the CPU, where TensorFlow needs them to repeat its numbers.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)


def to_tensor_images(images) -> torch.Tensor:
    """Images as float32 (N, C, H, W), PyTorch's layout.

    uint8 images (values 0..255) are numpy's layout, grey (N, H, W) or colour (N, H, W, C)
    with C 1 or 3 (see :func:`course_utils.data.to_rgb`, :func:`course_utils.data.pad_or_resize`),
    and are scaled to [0, 1]. Float arrays and tensors are taken as already scaled and in
    PyTorch's layout, (N, C, H, W); a float (N, H, W) gets a channel axis.
    """
    if not isinstance(images, torch.Tensor):
        images = np.asarray(images)
        if images.dtype == np.uint8:
            return torch.from_numpy(to_float_images(images, channels_last=False))
        if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
            raise ValueError(f"images should be uint8 or float, got {images.dtype}")
    images = torch.as_tensor(images).float()
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"float images should be (N, C, H, W) or (N, H, W), got shape {tuple(images.shape)}")
    return images


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
        if x.device.type == "cpu":
            grid = _affine_grid_cpu(theta, x.shape[-2], x.shape[-1])
        else:
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    return augment


def _affine_grid_cpu(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, height, width), align_corners=False)`` by broadcasting:
    (B, height, width, 2). Written here because on a CPU ``affine_grid`` runs a batched
    matrix product with an inner size of 3, which took most of an augmentation's time."""
    xs = (torch.arange(width, dtype=theta.dtype) * 2 + 1) / width - 1  # pixel centres in [-1, 1]
    ys = ((torch.arange(height, dtype=theta.dtype) * 2 + 1) / height - 1)[:, None]
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs + t[:, :, 1] * ys + t[:, :, 2]  # (B, 2, height, width)
    return grid.permute(0, 2, 3, 1)


def make_loader(images, labels, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                augment=None, *, device: torch.device | str | None = None):
    """Batches of ``(x, y)``: x float32 (B, C, H, W) in [0, 1], y int64 (B,).

    images: as :func:`to_tensor_images` takes them (uint8 grey (N, H, W) or colour
    (N, H, W, C), or float (N, C, H, W)).

    On the CPU this is a ``torch.utils.data.DataLoader`` over a ``TensorDataset`` (shuffled
    with a seeded generator) that reads each batch with one index into the tensors, not
    image by image; its batches and seeded order are those of ``DataLoader(TensorDataset(x,
    y), batch_size, shuffle, generator=torch.Generator().manual_seed(seed))``. On a GPU the
    whole data set is copied there once and batches are sliced on the device. ``augment`` (e.g. :func:`random_affine`) is
    applied to every image batch, on the device. ``device`` (PyTorch only: the Keras twin
    lets TensorFlow place the data) overrides :func:`get_device`.
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
        dataset = TensorDataset(x, y)
        order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        # A sampler of index lists and batch_size=None: TensorDataset then gathers a whole batch
        # at once, where automatic batching reads B samples and stacks them. The loader draws
        # its base seed from the same generator, so the order is that of the plain DataLoader.
        loader = DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                            generator=generator)
    return loader if augment is None else _AugmentedLoader(loader, augment)


_AUTOGRAD_REFUSED = threading.local()  # .open: this thread's refuse_autograd messages, innermost last (modes are per thread)


def _refusals() -> list[str]:
    if not hasattr(_AUTOGRAD_REFUSED, "open"):
        _AUTOGRAD_REFUSED.open = []
    return _AUTOGRAD_REFUSED.open


class _RefuseAutograd(torch.overrides.TorchFunctionMode):
    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def __enter__(self):
        _refusals().append(self.message)
        return super().__enter__()

    def __exit__(self, *exc):
        _refusals().pop()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.backward, torch.autograd.grad, torch.autograd.backward):
            raise AssertionError(self.message)
        return func(*args, **(kwargs or {}))


def refuse_autograd(message: str) -> torch.overrides.TorchFunctionMode:
    """A block in which autograd (``backward``, ``torch.autograd.grad``) raises ``AssertionError(message)``,
    however it is reached (a method, an alias): ``with cu.refuse_autograd("...by hand"): got = answer(...)``.
    The grader applies it in the student's kernel too when it calls an answer from such a block."""
    return _RefuseAutograd(message)


def autograd_refused() -> str | None:
    """The message of the innermost :func:`refuse_autograd` block now open, if any."""
    refusals = _refusals()
    return refusals[-1] if refusals else None


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


def train(model: nn.Module, train_data, val_data=None, epochs: int = 1, verbose: bool = True, *,
          optimizer=None, loss_fn=None, scheduler=None, clip_norm: float | None = None,
          amp: bool = False) -> dict:
    """Train ``model`` for ``epochs`` with a tqdm progress bar; return a Keras-style history.

    train_data, val_data: loaders of ``(x, y)`` batches (see :func:`make_loader`).
    The model returns logits (B, classes); ``loss_fn`` defaults to cross-entropy on
    them and ``optimizer`` to Adam with PyTorch's defaults (those of Keras' Adam too).
    ``scheduler`` (a ``torch.optim.lr_scheduler``) is stepped once per epoch.
    ``clip_norm`` clips the gradients' global norm each step; ``amp`` runs the forward
    pass in bfloat16 (it helps large models on a GPU, not this course's small ones).
    These five are keyword-only and PyTorch's own: Keras takes them in ``model.compile``
    (clipping as the optimizer's ``global_clipnorm``) and its schedules as callbacks.
    TF32 is allowed for the loop (see :func:`tf32`) and restored afterwards.
    History keys: loss, accuracy, val_loss, val_accuracy, epoch_time (seconds).
    """
    device = get_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "epoch_time": []}
    if val_data is not None:
        history.update(val_loss=[], val_accuracy=[])
    with tf32(True):
        for epoch in range(epochs):
            _train_epoch(model, train_data, val_data, epoch, epochs, optimizer, loss_fn, scheduler, clip_norm,
                         amp, verbose, device, history)
    return history


def _train_epoch(model, train_data, val_data, epoch, epochs, optimizer, loss_fn, scheduler, clip_norm, amp,
                 verbose, device, history) -> None:
    """One epoch of :func:`train`: fit, validate, step the scheduler, append to ``history``."""
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


def evaluate(model: nn.Module, data, *, loss_fn=None) -> dict:
    """Mean loss and accuracy over a loader: ``{"loss": float, "accuracy": float}``.

    ``loss_fn`` (PyTorch only; Keras uses the compiled loss) defaults to cross-entropy."""
    device = get_device()
    model.to(device)
    loss, acc = _run_epoch(model, data, loss_fn or nn.CrossEntropyLoss(), device)
    return {"loss": loss, "accuracy": acc}


@torch.no_grad()
def predict(model: nn.Module, images, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, classes) as numpy, rows summing to 1, in both frameworks.

    The course's PyTorch classifiers return logits, so softmax is applied to the output,
    unless the model is an ``nn.Sequential`` ending in ``nn.Softmax`` (then its output is
    returned as it is). images: as :func:`to_tensor_images` takes them.
    """
    device = get_device()
    model.to(device).eval()
    x = to_tensor_images(images)
    ends_in_softmax = isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Softmax)
    outputs = []
    for i in range(0, len(x), batch_size):
        out = model(x[i:i + batch_size].to(device)).float()
        outputs.append((out if ends_in_softmax else torch.softmax(out, dim=1)).cpu())
    return torch.cat(outputs).numpy()


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
    """Recurrent layers and a linear head: x (B, T, D) -> (B, O) from the last step, or
    (B, T, O) at every step with ``return_sequences=True``.

    ``num_layers`` stacked layers of ``hidden_size`` units; ``bidirectional`` runs each
    layer forwards and backwards and concatenates the two (2 * hidden_size features).
    The last-step output of a bidirectional model is, as in Keras' ``Bidirectional``, the
    forward direction's output at the last step beside the backward direction's output
    at the **first** step (where the backward pass ends).

    ``forward(x, state=None, return_state=False)``: ``state`` is the initial hidden state
    (num_layers * directions, B, H) (an ``(h, c)`` pair for an LSTM); with
    ``return_state`` the final state is returned too, so that a caller can carry it into
    the next chunk of a long series. ``batch_size`` (optional) is the batch size the
    model is meant for in :func:`train_truncated_bptt`, which then checks it.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int = 1,
                 return_sequences: bool = False, cell: str = "rnn", num_layers: int = 1,
                 bidirectional: bool = False, batch_size: int | None = None):
        super().__init__()
        if cell not in _RECURRENT:
            raise ValueError(f"cell must be one of {', '.join(_RECURRENT)}, got {cell!r}")
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        self.rnn = _RECURRENT[cell](input_size, hidden_size, num_layers=int(num_layers), batch_first=True,
                                    bidirectional=bool(bidirectional))
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), output_size)
        self.cell, self.return_sequences, self.batch_size = cell, return_sequences, batch_size

    def forward(self, x, state=None, return_state: bool = False):
        out, state = self.rnn(x, state)
        if self.return_sequences:
            features = out
        elif self.rnn.bidirectional:
            hidden = self.rnn.hidden_size
            features = torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=-1)
        else:
            features = out[:, -1]
        y = self.head(features)
        return (y, state) if return_state else y


def rnn_regressor(input_size: int, hidden_size: int, output_size: int = 1, return_sequences: bool = False,
                  cell: str = "rnn", batch_size: int | None = None, num_layers: int = 1,
                  bidirectional: bool = False) -> RNNRegressor:
    """The course's recurrent regressor (see :class:`RNNRegressor`): ``nn.RNN`` (tanh),
    ``nn.LSTM`` or ``nn.GRU`` with ``hidden_size`` units, ``num_layers`` deep, optionally
    bidirectional, then ``nn.Linear``. Same arguments as the Keras twin.

    ``batch_size``: the batch size of truncated BPTT. The Keras twin needs it to build a
    stateful model; here the state is carried explicitly by :func:`train_truncated_bptt`,
    which refuses chunks of another batch size. Other helpers accept any batch size."""
    return RNNRegressor(input_size, hidden_size, output_size, return_sequences, cell, num_layers, bidirectional,
                        batch_size)


def _neutral_layers(weights: dict) -> list:
    """The recurrent weights of a neutral-layout dict as a list of Keras-layout triples
    ``(kernel, recurrent_kernel, bias)``: ``weights["layers"]`` (ordered layer 0 forward,
    layer 0 backward, layer 1 forward, ...), or the one triple ``W_xh, W_hh, b_h``."""
    if "layers" in weights:
        layers = [tuple(np.asarray(a) for a in triple) for triple in weights["layers"]]
        if any(len(triple) != 3 for triple in layers):
            raise ValueError("weights['layers'] must hold (kernel, recurrent_kernel, bias) triples")
        return layers
    missing = [k for k in ("W_xh", "W_hh", "b_h") if k not in weights]
    if missing:
        raise ValueError(f"the weights need 'layers' or W_xh, W_hh and b_h; missing {', '.join(missing)}")
    return [(np.asarray(weights["W_xh"]), np.asarray(weights["W_hh"]), np.asarray(weights["b_h"]))]


def set_rnn_weights(model: RNNRegressor, weights: dict) -> None:
    """Copy neutral-layout (Keras-layout) weights into an :class:`RNNRegressor` of any cell,
    depth and direction, in its dtype and on its device.

    weights: ``W_xh (D, G*H)``, ``W_hh (H, G*H)``, ``b_h`` for a one-layer model (see
    :func:`course_utils.sequences.random_rnn_weights`; G = 1 for rnn, 4 for lstm, 3 for
    gru, whose ``b_h`` is Keras' (2, 3H) ``reset_after`` bias), or ``layers``: a list of
    such ``(kernel, recurrent_kernel, bias)`` triples ordered layer 0 forward, layer 0
    backward, layer 1 forward, ...; optionally ``W_hy (H * directions, O)``, ``b_y (O,)``
    for the head. Gate orders are converted by :mod:`course_utils.porting`.
    """
    from .porting import keras_rnn_weights_to_torch_state

    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, tuple(_RECURRENT.values())):
        raise ValueError("set_rnn_weights needs an RNNRegressor (a model with an nn.RNN, nn.LSTM or nn.GRU .rnn)")
    kind = next(name for name, layer_type in _RECURRENT.items() if type(rnn) is layer_type)
    layers = _neutral_layers(weights)
    directions = 2 if rnn.bidirectional else 1
    if len(layers) != rnn.num_layers * directions:
        raise ValueError(f"the model has {rnn.num_layers} layer(s) x {directions} direction(s) = "
                         f"{rnn.num_layers * directions} weight triples, the weights {len(layers)}")
    state = {f"rnn.{k}": v for k, v in
             keras_rnn_weights_to_torch_state(kind, layers, rnn.num_layers, rnn.bidirectional).items()}
    if "W_hy" in weights:
        state.update({"head.weight": np.asarray(weights["W_hy"]).T, "head.bias": np.asarray(weights["b_y"])})
    params = dict(model.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise ValueError(f"the model has no parameters {', '.join(unknown)}")
    for name, value in state.items():
        if tuple(params[name].shape) != np.shape(value):
            raise ValueError(f"{name}: the model has shape {tuple(params[name].shape)}, the weights {np.shape(value)}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(torch.as_tensor(np.asarray(value)))


def make_sequence_loader(x, y, batch_size: int = 64, shuffle: bool = False, seed: int = 0, *,
                         device: torch.device | str | None = None) -> _DeviceLoader:
    """Batches of ``(x, y)`` for sequence regression: x float32 (B, T, D), y float32
    (B, O) or (B, T, O), on the training device (the data sets of these lessons are
    small enough to live there whole). Unlike :func:`make_loader`, targets stay floats.
    ``device`` (PyTorch only) overrides :func:`get_device`."""
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


def train_truncated_bptt(model: RNNRegressor, x_chunks, y_chunks, epochs: int = 1, verbose: bool = True, *,
                         optimizer=None, loss_fn=None, clip_norm: float | None = None) -> dict:
    """Truncated BPTT over the chunks of one long series (see
    :func:`course_utils.sequences.truncated_bptt_chunks`).

    x_chunks, y_chunks: (K, B, L, D) and (K, B, L, O); chunk k + 1 continues chunk k. Each
    epoch starts from a zero state; after each chunk the final hidden state is **carried**
    into the next chunk and **detached**, so gradients flow back at most L steps. The
    model must return every step (``return_sequences=True``). Returns a history
    ``{"loss": [...], "epoch_time": [...]}``, the mean chunk loss per epoch.
    ``optimizer`` (Adam), ``loss_fn`` (MSE) and ``clip_norm`` are keyword-only and
    PyTorch's own (Keras compiles them into the model). TF32 is allowed for the loop.
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
    expected_batch = getattr(model, "batch_size", None)
    if expected_batch is not None and x_chunks.shape[1] != expected_batch:
        raise ValueError(f"the model was built for batch_size={expected_batch}, the chunks have batch size "
                         f"{x_chunks.shape[1]}")
    history: dict[str, list[float]] = {"loss": [], "epoch_time": []}
    model.train()
    with tf32(True):
        _truncated_bptt_epochs(model, x_chunks, y_chunks, epochs, verbose, optimizer, loss_fn, clip_norm, device,
                               history)
    return history


def _truncated_bptt_epochs(model, x_chunks, y_chunks, epochs, verbose, optimizer, loss_fn, clip_norm, device,
                           history) -> None:
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


@torch.no_grad()
def predict_steps(model: RNNRegressor, x) -> np.ndarray:
    """The model's outputs for sequences x (N, T, D), from a zero initial state, as numpy:
    (N, T, O) for a ``return_sequences`` model, else (N, O)."""
    device = get_device()
    model.to(device).eval()
    return model(torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)).float().cpu().numpy()


# --- transfer learning (lesson 03) ---
# The course's own VGG-style network, the same in both frameworks; its pretrained weights
# ship as datasets/vgg_style_fashion.npz (see datasets/build_pretrained.py).

VGG_STYLE_BLOCKS = ((16, 2), (32, 2), (64, 3))
"""(channels, convolutions) of each block of :func:`vgg_style_network`."""


def vgg_style_network(weights=None, include_top: bool = True) -> nn.Sequential:
    """The course's VGG-style network: (N, 3, 32, 32) images in [0, 1] -> (N, 10) logits.

    Three blocks of 3x3 "same" convolutions with ReLU, each ending in 2x2 max pooling
    (16-16 | 32-32 | 64-64-64 channels), named ``block1`` .. ``block3`` (each an
    ``nn.Sequential``), then ``flatten`` (1,024 features from (64, 4, 4)), ``dropout`` (0.3)
    and ``classifier`` (``nn.Linear(1024, 10)``): 119,258 parameters, 109,008 in the blocks.
    ``include_top=False`` keeps only the blocks: (N, 3, 32, 32) -> (N, 64, 4, 4).

    weights: ``None`` (PyTorch's default initialisation) or the path of a file saved by
    :func:`course_utils.porting.save_sequential_npz` (e.g. ``find_weights("vgg_style_fashion").path``),
    loaded through ``load_sequential_npz(path, layout="torch")``; without the top only the
    convolutions' weights are used.
    """
    from collections import OrderedDict

    from .porting import load_sequential_npz

    parts, c_in = OrderedDict(), 3
    for b, (c_out, n) in enumerate(VGG_STYLE_BLOCKS, start=1):
        layers = []
        for i in range(n):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
        parts[f"block{b}"] = nn.Sequential(*layers, nn.MaxPool2d(2))
        c_in = c_out
    if include_top:
        parts.update(flatten=nn.Flatten(), dropout=nn.Dropout(0.3), classifier=nn.Linear(c_in * 4 * 4, 10))
    model = nn.Sequential(parts)
    if weights is not None:
        arrays = load_sequential_npz(weights, layout="torch")
        params = list(model.parameters())
        if len(arrays) < len(params):
            raise ValueError(f"{weights} holds {len(arrays)} arrays; the network needs {len(params)}")
        with torch.no_grad():
            for p, w in zip(params, arrays):
                if tuple(p.shape) != w.shape:
                    raise ValueError(f"{weights}: an array of shape {w.shape} does not fit a parameter {tuple(p.shape)}")
                p.copy_(torch.from_numpy(w))
    return model
