"""The TensorFlow side of the suite: each lesson's Keras model, compiled as the lesson
compiles it, fitted through ``course_utils.tensorflow.train`` on the course's
``make_loader`` / ``make_sequence_loader`` datasets.

Same samples, batch size and seed as the PyTorch side. Imports TensorFlow: run it only in
a worker process (see ``benchmarks/worker.py``), never beside PyTorch.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np

from course_utils import sequences
from course_utils import tensorflow as cu
from course_utils.data import load_fashion_mnist, load_italy_power_demand, load_japanese_vowels, load_mnist

from .lesson_code import lesson_definitions
from .lessons import LessonModel, first_n

keras = cu.keras
SEED = 42
DETERMINISTIC = False  # set by benchmarks.worker (course_utils' default would turn it on for the CPU)
Workload = tuple[Callable[[], "keras.Model"], Callable[[], object]]  # (compiled model, dataset), each built fresh


def _lesson01(n: int, batch: int) -> Workload:
    ns = lesson_definitions("01_cnn", "tensorflow", "build_cnn")
    mnist = load_mnist()
    x, y = first_n(n, mnist.x_train, mnist.y_train)
    return ns["build_cnn"], lambda: cu.make_loader(x, y, batch, shuffle=True, seed=SEED, num_classes=10)


def _lesson02(n: int, batch: int) -> Workload:
    ns = lesson_definitions("02_pooling", "tensorflow", "build_net")
    fashion = load_fashion_mnist()
    x, y = first_n(n, fashion.x_train, fashion.y_train)
    return ns["build_net"], lambda: cu.make_loader(x, y, batch, shuffle=True, seed=SEED)


def _lesson03(n: int, batch: int) -> Workload:
    ns = lesson_definitions("03_transfer_vgg16", "tensorflow", "build_head", "freeze_base", "prepare",
                            "course_base", "with_head", "compiled")
    mnist = load_mnist()
    x, y = first_n(n, mnist.x_train, mnist.y_train)
    images = ns["prepare"](x)

    def build():  # frozen before compiling (Keras ignores a later change until it compiles again)
        base = ns["freeze_base"](ns["course_base"]())
        return ns["compiled"](ns["with_head"](base, ns["build_head"]((4, 4, 64))))
    return build, lambda: cu.make_loader(images, y, batch, shuffle=True, seed=SEED, num_classes=10)


def _lesson04(n: int, batch: int) -> Workload:
    x, y = sequences.adding_problem(n, 50, seed=SEED)

    def build():  # the lesson's adding-problem run (its compile is inline in a training loop)
        model = cu.rnn_regressor(2, 32)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3, global_clipnorm=1.0), loss="mse")
        return model
    return build, lambda: cu.make_sequence_loader(x, y, batch, shuffle=True, seed=SEED)


def _lesson05(n: int, batch: int) -> Workload:
    ns = lesson_definitions("05_lstm", "tensorflow", "build_seed_classifier", "prepare_italy")
    data = ns["prepare_italy"](load_italy_power_demand())
    x, y = first_n(n, data["x_train"], data["y_train"])
    return (lambda: ns["build_seed_classifier"](timesteps=24, units=128),
            lambda: cu.make_sequence_loader(x, y, batch, shuffle=True, seed=SEED))


def _lesson06(n: int, batch: int) -> Workload:
    ns = lesson_definitions("06_gru", "tensorflow", "vowel_gru", "standardise")
    vowels = load_japanese_vowels()
    x, y = first_n(n, ns["standardise"](vowels["x_train"], vowels["lengths_train"]), vowels["y_train"] - 1)

    def build():  # compiled as the lesson compiles its vowel classifiers
        model = ns["vowel_gru"]()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model
    return build, lambda: cu.make_sequence_loader(x, y, batch, shuffle=True, seed=SEED)


WORKLOADS = {"01_cnn": _lesson01, "02_pooling": _lesson02, "03_transfer_vgg16": _lesson03,
             "04_rnn_bptt": _lesson04, "05_lstm": _lesson05, "06_gru": _lesson06}


def run(lesson: LessonModel, samples: int, epochs: int, loops: list[str], device: str, threads: int) -> list[dict]:
    """Time Keras ``fit`` (through ``cu.train``) on one lesson model: one record."""
    build, dataset = WORKLOADS[lesson.key](samples, lesson.batch_size)
    cu.seed_everything(SEED, deterministic=DETERMINISTIC)
    model = build()
    times = cu.train(model, dataset(), epochs=epochs + 1, verbose=False)["epoch_time"]
    return [{"loop": "keras", "warmup_s": times[0], "epoch_s": times[1:], "median_s": statistics.median(times[1:]),
             "threads_in_effect": cu.tf.config.threading.get_intra_op_parallelism_threads()}]


def facts() -> dict:
    tf = cu.tf
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
