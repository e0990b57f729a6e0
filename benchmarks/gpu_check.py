"""The course's GPU path, checked and timed on one machine (GitHub issue 15).

    PYTHONPATH=. python benchmarks/gpu_check.py [--out report.json] [--quick] [--profile full]
        [--lessons 01_cnn 05_lstm] [--skip-notebooks] [--notebook-timeout 300] [--time-budget 290]

Needs only PyTorch, torchvision, numpy, matplotlib and tqdm: no TensorFlow, no Jupyter
(the notebooks are read with ``json`` and their code cells run in a plain subprocess), no
network. It checks and measures

1. that ``course_utils.torch.get_device()`` chooses CUDA when a GPU is visible;
2. one epoch of lesson 01's CNN (the lesson's own ``build_cnn``) with the course loop
   (``make_loader`` + ``train``) against a plain loop (a host ``DataLoader``, ``.to(device)``
   and ``loss.item()`` every step), at batch 32 and 256, after a warm-up epoch;
3. lesson 05's from-scratch ``lstm_forward`` against the fused ``nn.LSTM`` with the same
   weights: agreement and forward + backward time per batch;
4. that float32 results outside ``tf32(True)`` match float64 CPU references at 1e-5 (the
   exercises' tolerance), and how far they drift inside it;
5. every lesson's PyTorch solution notebook, run top to bottom in a profile (``full`` by
   default), each in its own subprocess with a time limit.

It prints a readable report and, with ``--out``, writes it as JSON. Exit status 1 when a
check fails or a package a bare GPU machine lacks was imported (performance goals are
reported, never failed). ``--time-budget`` (290 s) bounds the whole run: notebooks that
would start past it are skipped and reported so. Without a GPU it says "no GPU: CPU run"
and goes on, so ``--quick --profile smoke`` tests it on a laptop.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Packages a bare GPU machine lacks: importing any of them would fail there.
ABSENT_ON_GPU_MACHINE = ("tensorflow", "keras", "nbclient", "nbformat", "nbconvert", "jupyter", "jupyter_client",
                         "jupyter_core", "IPython", "ipykernel", "ipywidgets", "nbgrader")
LESSONS = ("01_cnn", "02_pooling", "03_transfer_vgg16", "04_rnn_bptt", "05_lstm", "06_gru")
GOALS = {"course_loop_speedup": 4.0, "course_notebooks_full_s": 600.0}
# Issue 15's measurements on one H100, for lesson 01's epoch of 60,000 images.
H100_REFERENCE_S = {32: {"plain": 4.50, "data_on_gpu": 2.92}, 256: {"plain": 0.80, "data_on_gpu": 0.33}}
EXACT_RTOL = 1e-5  # the exercises' float32 tolerance


def imported_absent_packages() -> list[str]:
    """Top-level modules of this process that a bare GPU machine would not have."""
    return sorted({name.split(".")[0] for name in sys.modules} & set(ABSENT_ON_GPU_MACHINE))


def say(line: str = "") -> None:
    print(line, flush=True)


# --- timing helpers ---

def synchronize(device) -> None:
    """Wait for the device's queued kernels, so that a host timer covers them."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(device, run, repeats: int = 1) -> float:
    """Seconds per call of ``run()``, the device's queue drained before and after."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def max_relative_error(got, reference) -> float:
    """max |got - reference| / max |reference|, in float64 on the CPU (a norm-wise error, so
    entries near zero do not dominate)."""
    got, reference = got.detach().double().cpu(), reference.detach().double().cpu()
    return float((got - reference).abs().max() / reference.abs().max().clamp_min(1e-30))


# --- 1. the device ---

def check_device() -> dict:
    import torch

    from course_utils import torch as cu

    device = cu.get_device()
    driver_gpus = Path("/proc/driver/nvidia/gpus")
    driver_sees_gpu = driver_gpus.is_dir() and any(driver_gpus.iterdir())
    result = {"chosen": str(device), "cuda_available": torch.cuda.is_available(), "driver_sees_gpu": driver_sees_gpu,
              "course_device_env": os.environ.get("COURSE_DEVICE"), "torch_cuda_build": torch.version.cuda,
              "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
              "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        result.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                      memory_gib=round(props.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version())
    if device.type == "cuda":
        tf32_off = not (result["matmul_allow_tf32"] or result["cudnn_allow_tf32"])
        result["status"] = "pass" if tf32_off else "fail"
        result["message"] = (f"get_device() chose cuda ({result['gpu']}, capability {result['capability']}); "
                             + ("TF32 off outside training" if tf32_off else "but TF32 is still on outside training"))
    elif torch.cuda.is_available():
        result.update(status="fail", message=f"a CUDA GPU is visible but get_device() chose {device}"
                      + (f" (COURSE_DEVICE={result['course_device_env']})" if result["course_device_env"] else ""))
    elif driver_sees_gpu:
        result.update(status="fail", message="the NVIDIA driver sees a GPU but torch.cuda.is_available() is False "
                      f"(torch {torch.__version__}, CUDA build {torch.version.cuda}): a CPU-only wheel?")
    elif device.type == "mps":
        result.update(status="pass", message="get_device() chose mps (Apple GPU)")
    else:
        result.update(status="cpu", message="no GPU: CPU run")
    return result


# --- 2. lesson 01: the course loop against a plain loop ---

def epoch_s(loop, workload, batch_size: int, device) -> dict:
    """The second epoch of one of the benchmark suite's loops (``benchmarks.workloads_torch``:
    the course's ``cu.train`` or the textbook loop with ``loss.item()`` every step); the first warms up."""
    times = loop(workload, batch_size, 2, device)
    return {"epoch_s": times[1], "warmup_s": times[0]}


def check_lesson01_epoch(n_images: int, batch_sizes: list[int]) -> dict:
    from benchmarks import workloads_torch
    from course_utils import torch as cu

    workload = workloads_torch.WORKLOADS["01_cnn"](n_images)  # the lesson's build_cnn, the shipped digits tiled
    device = cu.get_device()
    on_cuda = device.type == "cuda"  # the goal is about the loops on a GPU
    rows = []
    for batch in batch_sizes:
        plain = epoch_s(workloads_torch.plain_loop, workload, batch, device)
        course = epoch_s(workloads_torch.course_loop, workload, batch, device)
        speedup = plain["epoch_s"] / course["epoch_s"]
        row = {"batch": batch, "plain": plain, "course": course, "speedup_plain_over_course": speedup,
               "h100_reference_s": H100_REFERENCE_S.get(batch)}
        rows.append(row)
        say(f"  batch {batch:>3}: plain loop {plain['epoch_s']:7.2f} s, course loop {course['epoch_s']:7.2f} s "
            f"-> {speedup:4.1f}x" + _h100_note(batch))
    best = max(r["speedup_plain_over_course"] for r in rows)
    goal_met = best >= GOALS["course_loop_speedup"] if on_cuda else None
    return {"status": "pass", "images": n_images, "rows": rows, "best_speedup": best, "goal_speedup": GOALS[
        "course_loop_speedup"], "goal_met": goal_met,
        "message": f"best speedup {best:.1f}x; goal {GOALS['course_loop_speedup']:.0f}x on a GPU: "
                   + ("met" if goal_met else "not met" if goal_met is False else "not measured (no CUDA)")}


def _h100_note(batch: int) -> str:
    ref = H100_REFERENCE_S.get(batch)
    return f"   (H100: plain {ref['plain']:.2f} s, data on GPU {ref['data_on_gpu']:.2f} s)" if ref else ""


# --- 3. lesson 05: the fused LSTM against the from-scratch cell ---

LSTM_SIZES = {"batch": 32, "steps": 24, "inputs": 1, "units": 128}  # the lesson's section 7 (its classifier)


def lesson05_lstm_forward():
    """The lesson's own ``lstm_forward`` (solution cell). Its set-up cell sets one CPU thread
    on a CPU; the process's thread count is restored afterwards."""
    import torch

    from tests.harness import lesson_namespace

    threads = torch.get_num_threads()
    try:
        return lesson_namespace("05_lstm", "pytorch", "lstm_forward")["lstm_forward"]
    finally:
        torch.set_num_threads(threads)


def check_lstm(repeats: int, warmup: int) -> dict:
    import torch
    from torch import nn

    from course_utils import torch as cu

    lstm_forward = lesson05_lstm_forward()
    device = cu.get_device()
    s = LSTM_SIZES
    torch.manual_seed(0)
    lstm = nn.LSTM(s["inputs"], s["units"], batch_first=True).to(device)
    x = torch.randn(s["batch"], s["steps"], s["inputs"], device=device)
    zeros = torch.zeros(s["batch"], s["units"], device=device)
    weights = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)  # the lesson shares them so

    def fused():
        out = lstm(x)[0]
        out[:, -1].sum().backward()
        return out

    def scratch():
        out = lstm_forward(x, zeros, zeros, *weights)[0]
        out[:, -1].sum().backward()
        return out

    agreement = _lstm_agreement(lstm, fused, scratch)
    times = {}
    for name, run in (("fused_nn_lstm", fused), ("from_scratch", scratch)):
        for _ in range(warmup):  # the first calls pick kernels and allocate
            run()
        times[name] = timed(device, run, repeats)
    ratio = times["from_scratch"] / times["fused_nn_lstm"]
    say(f"  nn.LSTM {times['fused_nn_lstm'] * 1e3:.2f} ms, lstm_forward {times['from_scratch'] * 1e3:.2f} ms "
        f"per forward + backward ({ratio:.1f}x)")
    ok = agreement["outputs_rel_error"] <= EXACT_RTOL and agreement["grad_rel_error"] <= 1e-4
    return {"status": "pass" if ok else "fail", "device": str(device), "sizes": s, "repeats": repeats,
            "seconds_per_batch": times, "scratch_over_fused": ratio, **agreement,
            "message": f"outputs agree to {agreement['outputs_rel_error']:.1e} (limit {EXACT_RTOL:.0e}), weight "
                       f"gradients to {agreement['grad_rel_error']:.1e} (limit 1e-4); from scratch / fused: {ratio:.1f}x"}


def _lstm_agreement(lstm, fused, scratch) -> dict:
    """Outputs and weight gradients of the two with the same weights (float32, TF32 off)."""
    grads = {}
    outputs = {}
    for name, run in (("fused", fused), ("scratch", scratch)):
        lstm.zero_grad(set_to_none=True)
        outputs[name] = run().detach()
        grads[name] = lstm.weight_hh_l0.grad.detach().clone()
    lstm.zero_grad(set_to_none=True)
    return {"outputs_rel_error": max_relative_error(outputs["scratch"], outputs["fused"]),
            "grad_rel_error": max_relative_error(grads["scratch"], grads["fused"])}


# --- 4. float32 exactness outside TF32 ---

def check_float32_exact() -> dict:
    import torch
    from torch.nn import functional as F

    from course_utils import torch as cu

    device = cu.get_device()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(16, 16, 28, 28, dtype=torch.float64, generator=generator)
    kernels = torch.randn(32, 16, 3, 3, dtype=torch.float64, generator=generator)
    a = torch.randn(512, 512, dtype=torch.float64, generator=generator)
    b = torch.randn(512, 512, dtype=torch.float64, generator=generator)
    references = {"conv2d": F.conv2d(images, kernels, padding=1), "matmul": a @ b}  # float64 on the CPU

    def errors() -> dict:
        on_device = [t.float().to(device) for t in (images, kernels, a, b)]
        got = {"conv2d": F.conv2d(on_device[0], on_device[1], padding=1), "matmul": on_device[2] @ on_device[3]}
        synchronize(device)
        return {k: max_relative_error(got[k], references[k]) for k in got}

    flags_outside = {"matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                     "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32}
    outside = errors()  # get_device() turned TF32 off
    with cu.tf32(True):
        inside = errors()
    ok = all(e <= EXACT_RTOL for e in outside.values())
    fmt = lambda errs: ", ".join(f"{k} {v:.1e}" for k, v in errs.items())  # noqa: E731
    note = " (TF32 flags have no effect off CUDA)" if device.type != "cuda" else ""
    return {"status": "pass" if ok else "fail", "device": str(device), "rtol": EXACT_RTOL,
            "outside_tf32": outside, "inside_tf32": inside, "tf32_flags_outside": flags_outside,
            "tf32_hardware": device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8,
            "message": f"outside tf32(True): {fmt(outside)} (limit {EXACT_RTOL:.0e}); inside: {fmt(inside)}{note}"}


# --- 5. the notebooks, each in a subprocess ---

def ipython_free_source(source: str) -> tuple[str, int]:
    """A code cell's source without IPython syntax, and how many lines were changed.

    ``%%cell`` magics (``%%time`` ...) drop their first line and run the body; ``%time x`` and
    ``%timeit x`` run ``x``; other ``%`` and ``!`` lines become ``pass`` (keeping indentation)."""
    lines, changed = source.splitlines(), 0
    if lines and lines[0].lstrip().startswith("%%"):
        lines, changed = lines[1:], 1
    kept = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("%time ", "%timeit ")):
            kept.append(indent + stripped.split(None, 1)[1])
        elif stripped.startswith(("%", "!")):
            kept.append(indent + "pass")
        else:
            kept.append(line)
            continue
        changed += 1
    return "\n".join(kept), changed


def run_notebook_here(path: Path) -> dict:
    """Run a notebook's code cells in order in one ``__main__`` namespace, in this process
    (the child's side of :func:`run_notebook`). Stops at the first exception."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    namespace = {"__name__": "__main__"}  # as in a kernel: no __file__
    sys.path.insert(0, str(path.parent))  # a kernel's first path entry is the notebook's folder
    result = {"ok": True, "code_cells": 0, "changed_ipython_lines": 0, "cell_seconds": {}}
    start = time.perf_counter()
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source, changed = ipython_free_source("".join(cell["source"]))
        result["code_cells"] += 1
        result["changed_ipython_lines"] += changed
        print(f"[gpu_check] cell {index}", flush=True)  # in the output's tail if the process dies
        cell_start = time.perf_counter()
        try:
            exec(compile(source, f"<{path.name} cell {index}>", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001  (a failed cell, whatever it raised)
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            result.update(ok=False, failed_cell=index, failed_grade_id=grade_id,
                          exception=f"{type(error).__name__}: {error}", traceback=traceback.format_exc()[-4000:])
            break
        finally:
            result["cell_seconds"][index] = time.perf_counter() - cell_start
            _close_figures()
    result["seconds"] = time.perf_counter() - start
    result["absent_packages_imported"] = imported_absent_packages()
    return result


def _close_figures() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def notebook_environment(profile: str) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", COURSE_PROFILE=profile)
    env.pop("NBGRADER_EXECUTION", None)  # it would force the smoke profile
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_notebook(path: Path, profile: str, timeout_s: float) -> dict:
    """Run one notebook in a child process of this script, killed (its whole process group)
    after ``timeout_s``; its state dies with it."""
    with tempfile.TemporaryDirectory() as scratch:
        result_file = Path(scratch) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--run-notebook", str(path),
                   "--notebook-result", str(result_file)]
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=path.parent, env=notebook_environment(profile), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = child.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
                os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            timed_out = True
        wall_s = time.perf_counter() - start
        result = json.loads(result_file.read_text()) if result_file.exists() else {"ok": False}
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    result.update(notebook=str(shown), wall_s=wall_s, returncode=child.returncode,
                  timed_out=timed_out, output_tail=output.decode(errors="replace")[-3000:])
    if timed_out:
        result.update(ok=False, exception=f"timed out after {timeout_s:.0f} s")
    elif "exception" not in result and not result.get("ok"):
        result["exception"] = f"the child exited with status {child.returncode} without a result"
    result["cell_seconds"] = dict(sorted(result.get("cell_seconds", {}).items(), key=lambda kv: -kv[1])[:3])
    return result


def selected_lessons(wanted: list[str] | None) -> list[str]:
    if not wanted:
        return list(LESSONS)
    chosen = [lesson for lesson in LESSONS if any(lesson.startswith(w) for w in wanted)]
    unknown = [w for w in wanted if not any(lesson.startswith(w) for lesson in LESSONS)]
    if unknown:
        raise SystemExit(f"unknown lessons {unknown}; expected names from {', '.join(LESSONS)}")
    return chosen


def check_notebooks(lessons: list[str], profile: str, timeout_s: float, deadline: float) -> dict:
    from tests.harness import solution_notebook

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # leave the GPU's memory to the notebooks' processes
    runs, skipped = [], []
    for lesson in lessons:
        left = deadline - time.perf_counter()
        if left < 30:
            skipped.append(lesson)
            say(f"  {lesson}: skipped (time budget spent)")
            continue
        run = run_notebook(solution_notebook(lesson, "pytorch"), profile, min(timeout_s, left))
        run["lesson"] = lesson
        runs.append(run)
        state = "ok" if run["ok"] else f"FAILED at cell {run.get('failed_cell', '?')}: {run.get('exception')}"
        say(f"  {lesson}: {state} ({run.get('seconds', run['wall_s']):.1f} s in cells, {run['wall_s']:.1f} s wall)")
        if not run["ok"]:
            say("    " + "\n    ".join((run.get("traceback") or run["output_tail"]).strip().splitlines()[-4:]))
    total = sum(r["wall_s"] for r in runs)
    whole_course = profile == "full" and not skipped and len(runs) == len(LESSONS) and all(r["ok"] for r in runs)
    goal_met = total <= GOALS["course_notebooks_full_s"] if whole_course else None
    failed = [r["lesson"] for r in runs if not r["ok"]]
    return {"status": "fail" if failed else "pass", "profile": profile, "timeout_s": timeout_s, "runs": runs,
            "skipped": skipped, "total_wall_s": total, "goal_s": GOALS["course_notebooks_full_s"], "goal_met": goal_met,
            "message": f"{len(runs) - len(failed)}/{len(runs)} ok in {total:.0f} s"
                       + (f", failed: {', '.join(failed)}" if failed else "")
                       + (f", skipped (budget): {', '.join(skipped)}" if skipped else "")
                       + ("; whole course in full profile: goal 600 s " + ("met" if goal_met else "not met")
                          if goal_met is not None else "")}


# --- the report ---

def environment() -> dict:
    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            **{p: version(p) for p in ("torch", "torchvision", "numpy", "matplotlib", "tqdm")}}


def run_section(report: dict, key: str, title: str, check, *args) -> None:
    """Run one check, record its result (or the exception) and print its status line."""
    say(f"== {title} ==")
    start = time.perf_counter()
    try:
        result = check(*args)
    except Exception as error:  # noqa: BLE001  (one broken check must not hide the others)
        result = {"status": "fail", "message": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    result["section_s"] = time.perf_counter() - start
    report[key] = result
    say(f"{result['status'].upper():>5}  {result['message']}")
    if "traceback" in result:
        say(result["traceback"])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the report as JSON here (default: print only)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test this script on a CPU")
    parser.add_argument("--images", type=int, help="images per lesson-01 epoch (default 60,000; --quick 256)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--profile", default="full", choices=("smoke", "standard", "full"),
                        help="COURSE_PROFILE for the notebooks (default full)")
    parser.add_argument("--lessons", nargs="+", help=f"lessons whose notebook to run (default all: {' '.join(LESSONS)})")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--notebook-timeout", type=float, default=300, help="seconds per notebook (default 300)")
    parser.add_argument("--time-budget", type=float, default=290,
                        help="seconds for the whole script: notebooks that would start past it are skipped, and the "
                             "running one is cut at it (default 290)")
    parser.add_argument("--run-notebook", type=Path, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--notebook-result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # before anything imports matplotlib or course_utils
    here = Path(__file__).resolve().parent  # benchmarks/ would shadow names such as `report` or `run`
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (ROOT, here)]
    if args.run_notebook:
        args.notebook_result.write_text(json.dumps(run_notebook_here(args.run_notebook)))
        return 0
    lessons = [] if args.skip_notebooks else selected_lessons(args.lessons)
    deadline = time.perf_counter() + args.time_budget
    report = {"script": "benchmarks/gpu_check.py", "argv": sys.argv[1:], "environment": environment()}
    say(f"gpu_check: torch {report['environment']['torch']} on Python {report['environment']['python']}")
    run_section(report, "device", "1. device", check_device)
    run_section(report, "lesson01_epoch", "2. lesson 01: one epoch, course loop vs plain loop", check_lesson01_epoch,
                args.images or (256 if args.quick else 60_000), args.batch_sizes)
    run_section(report, "lstm", "3. lesson 05: nn.LSTM vs the from-scratch cell", check_lstm,
                3 if args.quick else 50, 1 if args.quick else 5)
    run_section(report, "float32_exact", "4. float32 exactness outside tf32(True)", check_float32_exact)
    if args.skip_notebooks:
        report["notebooks"] = {"status": "skipped", "message": "--skip-notebooks"}
    else:
        run_section(report, "notebooks", f"5. PyTorch notebooks, profile {args.profile}", check_notebooks, lessons,
                    args.profile, args.notebook_timeout, deadline)
    return finish(report, args.out)


def finish(report: dict, out: Path | None) -> int:
    report["absent_packages_imported"] = imported_absent_packages()
    sections = ("device", "lesson01_epoch", "lstm", "float32_exact", "notebooks")
    report["failures"] = [s for s in sections if report[s]["status"] == "fail"]
    say("== summary ==")
    say(f"failed checks: {', '.join(report['failures']) or 'none'}; packages a bare GPU machine lacks, imported: "
        f"{', '.join(report['absent_packages_imported']) or 'none'}")
    if out is not None:
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        say(f"report written to {out}")
    return 1 if report["failures"] or report["absent_packages_imported"] else 0


if __name__ == "__main__":
    sys.exit(main())
