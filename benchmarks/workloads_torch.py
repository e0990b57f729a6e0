"""The PyTorch side of the suite: each lesson's model and data, and the two loops timed.

* **course**: ``course_utils.torch.train`` over ``make_loader`` / ``make_sequence_loader``
  (sums kept on the device, read once per epoch);
* **plain**: the loop a student writes first: ``DataLoader`` over a ``TensorDataset``,
  batches copied to the device, ``loss.item()`` after every step.

Both get a fresh model (same seed), the same samples, batch size, loss and optimizer.
Imports PyTorch: run it only in a worker process (see ``benchmarks/worker.py``).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from course_utils import sequences
from course_utils import torch as cu
from course_utils.data import load_fashion_mnist, load_italy_power_demand, load_japanese_vowels, load_mnist

from .lesson_code import lesson_definitions
from .lessons import LessonModel, first_n

SEED = 42
DETERMINISTIC = False  # set by benchmarks.worker (course_utils' default would turn it on for the CPU)


@dataclass
class Workload:
    build: Callable[[], tuple[nn.Module, Callable, torch.optim.Optimizer]]  # fresh (model, loss_fn, optimizer)
    x: torch.Tensor          # inputs in PyTorch's layout, float32
    y: torch.Tensor          # targets as the loss takes them
    sequences: bool          # make_sequence_loader (True) or make_loader (False)
    clip_norm: float | None = None


def _adam(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def _image_classifier(lesson: str, builder: str, load, n: int) -> Workload:
    """A lesson whose model is ``builder()`` on images, trained with cross-entropy and Adam."""
    ns = lesson_definitions(lesson, "pytorch", builder)
    split = load()
    x, y = first_n(n, split.x_train, split.y_train)

    def build():
        model = ns[builder]()
        return model, nn.CrossEntropyLoss(), _adam(model)
    return Workload(build, cu.to_tensor_images(x), torch.from_numpy(y), sequences=False)


def _lesson01(n: int) -> Workload:
    return _image_classifier("01_cnn", "build_cnn", load_mnist, n)


def _lesson02(n: int) -> Workload:
    return _image_classifier("02_pooling", "build_net", load_fashion_mnist, n)


def _lesson03(n: int) -> Workload:
    ns = lesson_definitions("03_transfer_vgg16", "pytorch", "build_head", "freeze_base", "prepare", "found")
    mnist = load_mnist()
    x, y = first_n(n, mnist.x_train, mnist.y_train)

    def build():  # the pretrained base frozen, the lesson text's head on its (64, 4, 4) output
        base = ns["freeze_base"](cu.vgg_style_network(weights=ns["found"].path, include_top=False))
        model = nn.Sequential(base, ns["build_head"]((64, 4, 4)))
        return model, nn.CrossEntropyLoss(), _adam(model)
    return Workload(build, ns["prepare"](x), torch.from_numpy(y), sequences=False)


def _lesson04(n: int) -> Workload:
    ns = lesson_definitions("04_rnn_bptt", "pytorch", "one_bias")
    x, y = sequences.adding_problem(n, 50, seed=SEED)

    def build():  # the adding-problem run: Adam 3e-3, MSE, global norm clipped to 1
        model = ns["one_bias"](cu.rnn_regressor(2, 32))
        return model, nn.MSELoss(), _adam(model, 3e-3)
    return Workload(build, torch.from_numpy(x), torch.from_numpy(y), sequences=True, clip_norm=1.0)


def _lesson05(n: int) -> Workload:
    ns = lesson_definitions("05_lstm", "pytorch", "build_seed_classifier", "prepare_italy")
    data = ns["prepare_italy"](load_italy_power_demand())
    x, y = first_n(n, data["x_train"], data["y_train"])
    return Workload(lambda: ns["build_seed_classifier"](timesteps=24, units=128), torch.from_numpy(x),
                    torch.from_numpy(y), sequences=True)


def _cross_entropy_any_dtype(logits, y):
    # make_sequence_loader hands targets over as float32; the class indices are whole numbers
    return F.cross_entropy(logits, y.long())


def _lesson06(n: int) -> Workload:
    ns = lesson_definitions("06_gru", "pytorch", "VowelGRU", "standardise")
    vowels = load_japanese_vowels()
    x, y = first_n(n, ns["standardise"](vowels["x_train"], vowels["lengths_train"]), vowels["y_train"] - 1)

    def build():  # the lesson's vowel classifiers: Adam 3e-3, cross-entropy
        model = ns["VowelGRU"]()
        return model, _cross_entropy_any_dtype, _adam(model, 3e-3)
    return Workload(build, torch.from_numpy(x), torch.from_numpy(y), sequences=True)


WORKLOADS = {"01_cnn": _lesson01, "02_pooling": _lesson02, "03_transfer_vgg16": _lesson03,
             "04_rnn_bptt": _lesson04, "05_lstm": _lesson05, "06_gru": _lesson06}


def course_loop(w: Workload, batch_size: int, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of ``cu.train``, warm-up epoch included (the caller drops it)."""
    cu.seed_everything(SEED, deterministic=DETERMINISTIC)
    model, loss_fn, optimizer = w.build()
    if w.sequences:
        loader = cu.make_sequence_loader(w.x, w.y, batch_size=batch_size, shuffle=True, seed=SEED, device=device)
    else:
        loader = cu.make_loader(w.x, w.y, batch_size=batch_size, shuffle=True, seed=SEED, device=device)
    history = cu.train(model, loader, epochs=epochs, optimizer=optimizer, loss_fn=loss_fn, clip_norm=w.clip_norm,
                       verbose=False)
    return history["epoch_time"]


def plain_loop(w: Workload, batch_size: int, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of the textbook loop, warm-up epoch included. TF32 is allowed as
    ``cu.train`` allows it (it matters on a GPU only), so only the loop differs."""
    cu.seed_everything(SEED, deterministic=DETERMINISTIC)
    model, loss_fn, optimizer = w.build()
    model.to(device)
    loader = DataLoader(TensorDataset(w.x, w.y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(SEED))
    times = []
    with cu.tf32(True):
        for _ in range(epochs):
            start = time.perf_counter()
            model.train()
            total = 0.0
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                if w.clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), w.clip_norm)
                optimizer.step()
                total += loss.item()  # a host sync every step, as in most tutorials
            times.append(time.perf_counter() - start)
    return times


def run(lesson: LessonModel, samples: int, epochs: int, loops: list[str], device: str, threads: int) -> list[dict]:
    """Time ``loops`` ("course", "plain") on one lesson model: one record per loop."""
    records = []
    workload = WORKLOADS[lesson.key](samples)
    for loop in loops:
        torch.set_num_threads(threads)  # again: some lessons' set-up cells pin their own thread count
        timed = {"course": course_loop, "plain": plain_loop}[loop]
        times = timed(workload, lesson.batch_size, epochs + 1, torch.device(device))
        records.append({"loop": loop, "warmup_s": times[0], "epoch_s": times[1:],
                        "median_s": statistics.median(times[1:]), "threads_in_effect": torch.get_num_threads()})
    return records


def facts() -> dict:
    return {"torch": torch.__version__, "numpy": np.__version__, "cuda_available": torch.cuda.is_available(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "interop_threads": torch.get_num_interop_threads()}
