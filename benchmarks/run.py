"""The course's benchmark suite: seconds per epoch of every lesson's model, per training loop.

    python -m benchmarks [--lessons 01 04] [--threads 1 2] [--epochs 3] [--quick] [--out DIR]
    make bench                      # the same; make bench ARGS="--lessons 01" or QUICK=1

For each lesson model (built by the lesson's own solution cells) and the same samples and
batch size, it times the course's PyTorch loop (``course_utils.torch.train``), a plain
PyTorch loop (``DataLoader``, ``loss.item()`` every step) and Keras ``fit`` (through
``course_utils.tensorflow.train``), with 1 and 2 CPU threads, and the two course loops
again with deterministic ops; on CUDA too when PyTorch sees a GPU. Each configuration runs
in its own worker process (``benchmarks/worker.py``), one after another. Prints one table
per lesson model and saves them as JSON beside a PNG plot in ``--out``.

Timings taken while other work runs on the machine are not comparable with one another.
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import report
from .lessons import resolve

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results"


def _configs(threads: list[int], deterministic: bool, device: str = "cpu") -> list[dict]:
    frameworks = ("pytorch",) if device == "cuda" else ("pytorch", "tensorflow")
    modes = (False, True) if deterministic else (False,)
    return [{"framework": fw, "threads": n, "deterministic": det, "device": device}
            for n in threads for det in modes for fw in frameworks]


def _worker_env(config: dict, omp_wait_policy: str | None = None) -> dict:
    env = dict(os.environ)
    # thread pools are sized when a library loads: set them before the framework starts
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(config["threads"])
    if omp_wait_policy:
        env["OMP_WAIT_POLICY"] = omp_wait_policy
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if config["framework"] == "tensorflow":
        env["CUDA_VISIBLE_DEVICES"] = ""  # Keras rows are CPU rows, also on a GPU machine
    if config["deterministic"]:
        env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # cuBLAS' condition for deterministic results
    return env


def _run_streaming(cmd: list[str], env: dict, timeout: float) -> tuple[str, str, int]:
    """Run a worker; pass its progress lines on as they come (a long run shows it is alive).
    Returns (stdout, the tail of stderr, exit code)."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        stopped = threading.Event()
        timer = threading.Timer(timeout, lambda: (stopped.set(), process.kill()))
        timer.start()
        tail: collections.deque[str] = collections.deque(maxlen=60)
        try:
            for line in process.stderr:
                tail.append(line)
                if line.startswith("[worker"):
                    print("    " + line.rstrip(), flush=True)
            code = process.wait()
        finally:
            timer.cancel()
        if stopped.is_set():
            tail.append(f"worker stopped after {timeout:.0f} s (--worker-timeout)\n")
        out.seek(0)
        return out.read(), "".join(tail), code


def run_worker(config: dict, args: argparse.Namespace, lessons: list[str]) -> dict:
    """Start one worker, wait for it, return its JSON (or an error record per lesson)."""
    cmd = [sys.executable, "-m", "benchmarks.worker", "--framework", config["framework"],
           "--threads", str(config["threads"]), "--device", config["device"], "--epochs", str(args.epochs),
           "--lessons", *lessons, *(["--deterministic"] if config["deterministic"] else []),
           *(["--quick"] if args.quick else [])]
    if config["framework"] == "pytorch" and config["deterministic"]:
        cmd += ["--loops", "course"]  # determinism is measured on the course's loops
    start = time.perf_counter()
    stdout, stderr, code = _run_streaming(cmd, _worker_env(config, args.omp_wait_policy), args.worker_timeout)
    wall = time.perf_counter() - start
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        loops = ["keras"] if config["framework"] == "tensorflow" else (
            ["course"] if config["deterministic"] else ["course", "plain"])
        error = f"worker failed (exit code {code}): {(stderr or '').strip().splitlines()[-1:]}"
        result = {"config": config, "facts": {}, "records": [
            {**config, "lesson": lesson, "loop": loop, "error": error} for lesson in lessons for loop in loops]}
    result["wall_s"] = wall
    result["exit_code"] = code
    if code != 0:
        result["stderr_tail"] = (stderr or "")[-3000:]
    return result


def _describe(config: dict) -> str:
    return (f"{config['framework']:<10} {config['device']} threads={config['threads']} "
            f"{'deterministic' if config['deterministic'] else 'default'}")


def _run_all(configs: list[dict], args: argparse.Namespace, lessons: list[str]) -> list[dict]:
    def one(item):
        i, config = item
        result = run_worker(config, args, lessons)
        failed = sum(1 for r in result["records"] if r.get("error"))
        print(f"[{i}/{len(configs)}] {_describe(config)}: {result['wall_s']:.0f} s"
              + (f", {failed} failed" if failed else ""), flush=True)
        return result
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(one, enumerate(configs, start=1)))


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _machine() -> dict:
    return {"cpu_count": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "load_average_start": list(os.getloadavg())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", nargs="+", metavar="LESSON",
                        help="lesson models to time: 01 .. 06 or their folder names (default: all)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--epochs", type=int, default=None, help="measured epochs after the warm-up (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny data, one measured epoch: a check that it runs")
    parser.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                        help="skip the runs with deterministic ops")
    parser.add_argument("--no-cuda", dest="cuda", action="store_false", help="CPU rows only, even with a GPU")
    parser.add_argument("--jobs", type=int, default=1,
                        help="workers at once (default 1; more is faster but the timings are then meaningless)")
    parser.add_argument("--omp-wait-policy", choices=("PASSIVE", "ACTIVE"),
                        help="OMP_WAIT_POLICY for the workers (default: unset, what a notebook gets); PASSIVE "
                             "stops idle OpenMP threads from spinning, which helps PyTorch on a busy machine")
    parser.add_argument("--worker-timeout", type=float, default=1800, help="seconds before a worker is stopped")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for the JSON and PNG (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    try:
        args.lesson_models = resolve(args.lessons)
    except ValueError as error:
        parser.error(str(error))
    if args.epochs is None:
        args.epochs = 1 if args.quick else 3
    for name, value in (("--epochs", args.epochs), ("--jobs", args.jobs), *(("--threads", n) for n in args.threads)):
        if value < 1:
            parser.error(f"{name} must be at least 1, got {value}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    lessons = [m.key for m in args.lesson_models]
    started, clock = dt.datetime.now().astimezone(), time.perf_counter()
    machine = _machine()
    if args.jobs > 1:
        print(f"note: {args.jobs} workers at once: the timings of this run are not comparable", flush=True)
    cores = machine["usable_cpus"] or machine["cpu_count"] or 1
    if machine["load_average_start"][0] > cores / 2:
        print(f"note: the machine is busy (load average {machine['load_average_start'][0]:.1f} on {cores} cores): "
              "these timings are not comparable, and runs with several PyTorch threads may take many times "
              "longer than on a quiet machine", flush=True)
    results = _run_all(_configs(args.threads, args.deterministic), args, lessons)
    if args.cuda and any(r["facts"].get("cuda_available") for r in results):
        results += _run_all(_configs([max(args.threads)], args.deterministic, device="cuda"), args, lessons)
    machine["load_average_end"] = list(os.getloadavg())
    records = [r for result in results for r in result["records"]]
    tables = report.tables(records)
    print()
    for table in tables.values():
        print(report.markdown(table), end="\n\n")
    versions = {k: v for result in results for k, v in result["facts"].items()
                if k in ("torch", "tensorflow", "keras", "numpy", "cuda_device")}
    document = {
        "created": started.isoformat(timespec="seconds"), "command": " ".join(["python -m benchmarks", *argv]),
        "settings": {"lessons": lessons, "threads": args.threads, "epochs": args.epochs, "quick": args.quick,
                     "deterministic": args.deterministic, "jobs": args.jobs,
                     "omp_wait_policy": args.omp_wait_policy},
        "machine": {**machine, "versions": versions, "git_commit": _git_commit()},
        "wall_s": time.perf_counter() - clock,
        "workers": [{k: v for k, v in r.items() if k != "records"} for r in results],
        "records": records, "tables": tables,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{started:%Y%m%d-%H%M%S}"
    stem.with_suffix(".json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    report.plot(tables, stem.with_suffix(".png"))
    print(f"saved {stem}.json and {stem}.png ({document['wall_s']:.0f} s; load average "
          f"{machine['load_average_start'][0]:.2f} at the start, {machine['load_average_end'][0]:.2f} at the end)")
    return 1 if any(r.get("error") for r in records) else 0
