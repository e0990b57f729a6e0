"""The lesson models the benchmark suite times, and their sizes (framework-neutral).

Each framework's worker builds the models from the lessons' own solution cells
(``benchmarks/workloads_torch.py``, ``benchmarks/workloads_tensorflow.py``); this module
only names them, so that the driver can check a request without importing a framework.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LessonModel:
    key: str            # the lesson folder, e.g. "01_cnn"
    model: str          # what is timed, in the lesson's words
    batch_size: int     # the lesson's batch size
    samples: int        # training samples per epoch in a normal run
    quick_samples: int  # ... with --quick (a smoke test of the suite, not a measurement)


LESSON_MODELS = (
    LessonModel("01_cnn", "build_cnn", 32, 1024, 64),
    LessonModel("02_pooling", "build_net() (max pooling)", 64, 1024, 128),
    LessonModel("03_transfer_vgg16", "vgg_style_network (frozen) + build_head", 32, 512, 64),
    LessonModel("04_rnn_bptt", "rnn_regressor(2, 32), adding problem T=50", 64, 1024, 128),
    LessonModel("05_lstm", "build_seed_classifier(24, 128)", 32, 512, 64),
    LessonModel("06_gru", "VowelGRU() / vowel_gru()", 32, 512, 64),
)
BY_KEY = {m.key: m for m in LESSON_MODELS}


def resolve(names: list[str] | None) -> list[LessonModel]:
    """Lesson models from names such as ``01``, ``01_cnn`` or ``cnn``; all of them for None/empty."""
    if not names:
        return list(LESSON_MODELS)
    chosen = []
    for name in names:
        matches = [m for m in LESSON_MODELS if name in (m.key, m.key[:2], m.key[3:])]
        if len(matches) != 1:
            known = ", ".join(f"{m.key} ({m.key[:2]})" for m in LESSON_MODELS)
            raise ValueError(f"unknown lesson {name!r}; the suite knows {known}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def first_n(n: int, *arrays):
    """The first ``n`` rows of each array, the whole array repeated as often as needed:
    a fixed number of samples per epoch, whatever the size of the shipped data set."""
    out = []
    for a in arrays:
        reps = -(-n // len(a))
        out.append(np.concatenate([np.asarray(a)] * reps)[:n] if reps > 1 else np.asarray(a)[:n])
    return out
