"""Epoch time of lesson 01's CNN with the course's PyTorch helpers, on every device here.

    PYTHONPATH=. python benchmarks/lesson01_epoch_time.py [--images 60000] [--epochs 2]

Trains the lesson's model (Conv2d 32 3x3, MaxPool, Linear 128, Linear 10; Adam; batch 32)
through ``course_utils.torch.train`` on MNIST-shaped data: the 7,000 shipped training digits
repeated up to ``--images``. Prints which device ``get_device()`` chose and, per device
(CPU, and CUDA when present; with and without bf16 autocast there), the mean time of an
epoch after a warm-up epoch and the accuracy reached, so CPU and GPU can be compared on one
machine. Needs only PyTorch and numpy (no TensorFlow), so it runs on a bare GPU box.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

from course_utils import torch as cu
from course_utils.data import load_mnist
from tests.harness import lesson_namespace


def lesson_cnn() -> nn.Module:
    """The lesson's own ``build_cnn`` (its solution cell in solutions/01_cnn), not a copy."""
    return lesson_namespace("01_cnn", "pytorch", "build_cnn")["build_cnn"]()


def measure(device: str, images: np.ndarray, labels: np.ndarray, epochs: int, batch_size: int, amp: bool) -> dict:
    cu.seed_everything(0)
    model = lesson_cnn()
    loader = cu.make_loader(images, labels, batch_size=batch_size, shuffle=True, device=device)
    start = time.perf_counter()
    history = cu.train(model, loader, epochs=epochs + 1, amp=amp, verbose=False)  # epoch 1 warms up
    return {"device": device, "amp": amp, "batch": batch_size, "epoch_s": float(np.mean(history["epoch_time"][1:])),
            "first_epoch_s": history["epoch_time"][0], "accuracy": history["accuracy"][-1],
            "total_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--cpu", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    split = load_mnist()
    reps = int(np.ceil(args.images / len(split.x_train)))
    images = np.tile(split.x_train, (reps, 1, 1))[: args.images]
    labels = np.tile(split.y_train, reps)[: args.images]
    print(cu.device_report())
    os.environ.pop("COURSE_DEVICE", None)
    print(f"get_device() chose: {cu.get_device()}; {len(images):,} images per epoch")
    runs = [("cpu", b, False) for b in args.batch_sizes] if args.cpu else []
    if torch.cuda.is_available():
        runs += [("cuda", b, amp) for b in args.batch_sizes for amp in (False, True)]
    for device, batch, amp in runs:
        os.environ["COURSE_DEVICE"] = device  # get_device() honours it: time the CPU path on a GPU machine too
        r = measure(device, images, labels, args.epochs, batch, amp)
        print(f"{r['device']:>4} batch {r['batch']:>3} amp {str(r['amp']):>5}: {r['epoch_s']:.2f} s/epoch "
              f"(first {r['first_epoch_s']:.2f} s), train accuracy {r['accuracy']:.4f}", flush=True)


if __name__ == "__main__":
    main()
