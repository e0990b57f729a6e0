"""One benchmark worker: one framework, one thread count, determinism on or off, one device.

    python -m benchmarks.worker --framework pytorch --threads 1 [--deterministic] [--device cpu]
                                --lessons 01_cnn 04_rnn_bptt --epochs 3 [--quick]

Started by the driver (``python -m benchmarks``), one process per configuration: thread
counts and determinism are process-wide settings that must be made before the framework
runs anything, and TensorFlow and PyTorch must not share a process (that can segfault).
Prints one JSON object on its last line of stdout; whatever the lessons' code prints goes
to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback

from .lessons import resolve


def _start_pytorch(threads: int, deterministic: bool):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    from . import workloads_torch
    workloads_torch.DETERMINISTIC = deterministic
    return workloads_torch


def _start_tensorflow(threads: int, deterministic: bool):
    from course_utils import tensorflow as cu  # quiets TensorFlow's native log first

    cu.tf.config.threading.set_intra_op_parallelism_threads(threads)
    cu.tf.config.threading.set_inter_op_parallelism_threads(threads)
    if deterministic:
        cu.tf.config.experimental.enable_op_determinism()
    from . import workloads_tensorflow
    workloads_tensorflow.DETERMINISTIC = deterministic
    return workloads_tensorflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--framework", choices=("pytorch", "tensorflow"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--lessons", nargs="*")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs, after one warm-up epoch")
    parser.add_argument("--quick", action="store_true", help="tiny data sets")
    parser.add_argument("--loops", nargs="*", help="pytorch: course and/or plain (default: both)")
    args = parser.parse_args(argv)
    lessons = resolve(args.lessons)
    os.environ["COURSE_DEVICE"] = args.device  # course_utils' get_device() honours it
    stdout = sys.stdout
    config = {"framework": args.framework, "threads": args.threads, "deterministic": args.deterministic,
              "device": args.device}
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON
        start = (_start_pytorch if args.framework == "pytorch" else _start_tensorflow)
        workloads = start(args.threads, args.deterministic)
        loops = args.loops or (["course", "plain"] if args.framework == "pytorch" else ["keras"])
        records = []
        for lesson in lessons:
            samples = lesson.quick_samples if args.quick else lesson.samples
            base = {**config, "lesson": lesson.key, "model": lesson.model, "samples": samples,
                    "batch_size": lesson.batch_size}
            began = time.perf_counter()
            try:
                for record in workloads.run(lesson, samples, args.epochs, loops, args.device, args.threads):
                    records.append({**base, **record, "error": None})
            except Exception as error:  # noqa: BLE001  (one failing model must not hide the others)
                traceback.print_exc()
                records += [{**base, "loop": loop, "error": f"{type(error).__name__}: {error}"} for loop in loops]
            print(f"[worker {args.framework} threads={args.threads} det={args.deterministic} {args.device}] "
                  f"{lesson.key}: {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        facts = workloads.facts()
    print(json.dumps({"config": config, "facts": facts, "records": records}), file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
