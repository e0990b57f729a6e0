#!/usr/bin/env python3
"""Pretrain the course's own VGG-style network on Fashion-MNIST and ship it as an ``.npz``.

No package in the registries this course can reach ships ImageNet weights for VGG16, and
nothing may be downloaded while a notebook runs, so lesson 03 transfers from a network the
course trains itself: the same block pattern as VGG16 (3x3 convolutions with "same"
padding and ReLU, each block ending in 2x2 max pooling), small enough for a laptop CPU.

    input (32, 32, 3)                        Fashion-MNIST 28x28, zero-padded to 32x32,
                                             grey copied to 3 channels, scaled to [0, 1]
    block1  2 x Conv 16 3x3 + ReLU, MaxPool  -> (16, 16, 16)
    block2  2 x Conv 32 3x3 + ReLU, MaxPool  -> (8, 8, 32)
    block3  3 x Conv 64 3x3 + ReLU, MaxPool  -> (4, 4, 64)
    Flatten (1,024), Dropout 0.3, Dense 10   (the source task's classifier)

109,008 parameters in the convolutions, 119,258 in all. The source task is Fashion-MNIST
(the full Debian set of 60,000 training images when it is installed, else the shipped
12,000-image subset); lesson 03's target task is MNIST digits, a different domain.

Training: PyTorch on the CPU with one thread, seeded, deterministic algorithms; Adam with a
one-cycle learning rate (peak 3e-3), batch 64, a fixed budget of ``--images`` training
images (58,000 by default: one epoch of the full set, about five of the subset). The
weights are saved once with :func:`course_utils.porting.save_sequential_npz` (Keras'
layout; both frameworks load it through ``load_sequential_npz``), with the zip entries
dated 1980-01-01 so that a rebuild gives the same bytes, and its SHA-256 is written to the
``"weights"`` key of ``manifest.json`` (the other keys are kept).

Usage::

    python datasets/build_pretrained.py            # train, write vgg_style_fashion.npz + manifest entry
    python datasets/build_pretrained.py --check    # train in memory, compare with the committed file

Takes about 3 minutes on one busy CPU core.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from course_utils import porting  # noqa: E402
from course_utils.data import FASHION_MNIST_CLASSES, load_fashion_mnist, pad_or_resize, to_rgb  # noqa: E402

NAME = "vgg_style_fashion"
FILE = f"{NAME}.npz"
CHANNELS = (16, 32, 64)
CONVS = (2, 2, 3)
INPUT_SHAPE = (32, 32, 3)
FLATTEN_FROM = (4, 4, 64)
SEED = 20260301
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def build_network() -> nn.Sequential:
    """The VGG-style network (PyTorch layout), blocks named ``block1`` .. ``block3``."""
    blocks, c_in = OrderedDict(), INPUT_SHAPE[2]
    for b, (c_out, n) in enumerate(zip(CHANNELS, CONVS), start=1):
        layers = []
        for i in range(n):
            layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        blocks[f"block{b}"] = nn.Sequential(*layers)
        c_in = c_out
    blocks["flatten"] = nn.Flatten()
    blocks["dropout"] = nn.Dropout(0.3)
    blocks["classifier"] = nn.Linear(int(np.prod(FLATTEN_FROM)), 10)
    return nn.Sequential(blocks)


def prepare(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 3, 32, 32) in [0, 1]: zero-padded, grey in 3 channels."""
    x = to_rgb(pad_or_resize(images, 32, mode="pad")).astype(np.float32) / 255
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    model.eval()
    predicted = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)]).numpy()
    return float(np.mean(predicted == y))


def train(images: int, threads: int) -> tuple[nn.Sequential, dict]:
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    split = load_fashion_mnist(n_val=2000, seed=0)
    x_train, y_train = prepare(split.x_train), torch.from_numpy(split.y_train)
    model = build_network()
    batch, steps = 64, images // 64
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    generator = torch.Generator().manual_seed(SEED)
    order = torch.cat([torch.randperm(len(x_train), generator=generator) for _ in range(images // len(x_train) + 1)])
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        idx = order[step * batch:(step + 1) * batch]
        loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step + 1}/{steps}  loss {loss.item():.4f}  {time.perf_counter() - start:.0f} s", flush=True)
    seconds = time.perf_counter() - start
    info = {
        "data": split.name,
        "train_images": len(x_train),
        "images_seen": steps * batch,
        "seconds": round(seconds, 1),
        "val_accuracy": accuracy(model, prepare(split.x_val), split.y_val),
        "test_accuracy": accuracy(model, prepare(split.x_test), split.y_test),
    }
    return model, info


def npz_bytes(model: nn.Sequential, info: dict) -> bytes:
    """The file: save_sequential_npz's arrays, re-zipped with fixed dates (same bytes each build)."""
    params = [p.detach().numpy() for p in model.parameters()]
    keras_weights = porting.torch_sequential_weights_to_keras(params, flatten_from=FLATTEN_FROM)
    raw = io.BytesIO()
    porting.save_sequential_npz(
        raw, keras_weights, flatten_from=FLATTEN_FROM,
        input_shape=np.array(INPUT_SHAPE, np.int64), channels=np.array(CHANNELS, np.int64),
        convs_per_block=np.array(CONVS, np.int64), class_names=np.array(FASHION_MNIST_CLASSES),
        preprocessing=np.array("uint8 28x28 zero-padded to 32x32 (2 pixels each side), grey copied to 3 channels, "
                               "divided by 255; no mean subtraction"),
        source_task=np.array(info["data"]), test_accuracy=np.array(info["test_accuracy"], np.float64),
    )
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            dst.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME), src.read(name))
    return out.getvalue()


def manifest_entry(data: bytes, info: dict) -> dict:
    return {
        "file": FILE,
        "where": "datasets",
        "framework": "neutral (npz, Keras layout; course_utils.porting.load_sequential_npz)",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "description": ("The course's VGG-style network (blocks of 3x3 'same' convolutions + ReLU, each ending in "
                        "2x2 max pooling: 16-16 | 32-32 | 64-64-64 channels; Flatten 1,024, Dense 10), input "
                        "(32, 32, 3) in [0, 1]; 119,258 parameters (109,008 in the convolutions), pretrained on "
                        "Fashion-MNIST by datasets/build_pretrained.py for lesson 03."),
        "flatten_from": list(FLATTEN_FROM),
        "training": {
            "script": "datasets/build_pretrained.py",
            "framework": f"PyTorch {torch.__version__.split('+')[0]}, CPU, 1 thread, deterministic algorithms",
            "seed": SEED,
            "optimizer": "Adam, one-cycle learning rate peaking at 3e-3, batch 64, cross-entropy, dropout 0.3",
            **info,
        },
        "license": "MIT (the course's own weights); trained on Fashion-MNIST (MIT, Zalando SE)",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=58_000, help="training images seen (default 58,000)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1: steady under load)")
    parser.add_argument("--check", action="store_true", help="compare with the committed file; write nothing")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)
    model, info = train(args.images, args.threads)
    data = npz_bytes(model, info)
    entry = manifest_entry(data, info)
    print(f"{info['data']}: {info['images_seen']:,} images in {info['seconds']} s; "
          f"val accuracy {info['val_accuracy']:.4f}, test accuracy {info['test_accuracy']:.4f}")
    print(f"{FILE}: {len(data):,} bytes, sha256 {entry['sha256']}")
    path, manifest_path = args.out_dir / FILE, args.out_dir / "manifest.json"
    if args.check:
        same = path.is_file() and path.read_bytes() == data
        print("OK: the rebuild equals the committed file" if same else f"MISMATCH: {path} differs from the rebuild")
        return 0 if same else 1
    path.write_bytes(data)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("weights", {})[NAME] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {path} and the weights entry {NAME!r} of {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
