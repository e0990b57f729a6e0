"""What a student's kernel may do: resource limits always, private namespaces where possible.

The sandbox's kernel spec starts the kernel through ``python -m course_utils.instructor.isolation
kernel [options] -- KERNEL ARGV`` (:func:`kernel_main`), which sets resource limits (address
space, CPU time, file size, no core dumps), kills the kernel with its grader and, when run as
root where ``unshare`` works (``namespace`` isolation), gives it its own mount and PID
namespaces in which the class's files (solutions, sources, gradebooks, submissions, other
sandboxes, tests, .git) are covered by empty read-only folders, and the data the lessons
read (``COURSE_DATA_DIR``, ``COURSE_WEIGHTS_DIR``) is mounted read-only.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from course_utils.instructor.report import REPORT

# Folders and files of a course that a student's kernel must not see.
PRIVATE = ["solutions", "source", "lessons", "submitted", "autograded", "feedback", "feedback_full",
           "downloaded", "tests", ".git", "gradebook.db", "gradebook.db-journal", REPORT]
MODULE = "course_utils.instructor.isolation"


@dataclass
class Limits:
    cell_timeout: int = 120      # s per cell (nbgrader's Execute.timeout)
    task_timeout: int = 900      # s for one student's lesson, all notebooks
    memory_mb: int = 8192        # address space of the kernel
    cpu_s: int = 1800            # CPU seconds of the kernel
    file_mb: int = 256           # largest file the kernel may write


def namespaces_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return probe.returncode == 0


MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384


def isolation_mode() -> str:
    """``namespace`` (root, unshare works) or ``limits``; COURSE_GRADING_ISOLATION=limits forces the latter."""
    if os.environ.get("COURSE_GRADING_ISOLATION") == "limits":
        return "limits"
    return "namespace" if namespaces_available() else "limits"


def _mount(source: str, target: str, fstype: str | None = None, flags: int = 0, options: str | None = None) -> None:
    """mount(2) itself: mount(8) would canonicalise /proc/self/fd/N into a covered path."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                  options.encode() if options else None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {source} on {target} failed")


def _hide(paths: list[str], keep: str) -> None:
    """In a private mount namespace: cover ``paths`` with empty read-only folders (files with
    /dev/null), and the folder holding ``keep`` with an empty one in which ``keep`` alone is
    mounted again at the same path."""
    keep_path = Path(keep)
    fd = os.open(keep_path, os.O_RDONLY | os.O_DIRECTORY)
    cwd = os.getcwd()
    _mount("tmpfs", str(keep_path.parent), "tmpfs", 0, "size=1m,mode=755")
    keep_path.mkdir()
    _mount(f"/proc/self/fd/{fd}", str(keep_path), None, MS_BIND)
    os.close(fd)
    empty = keep_path.parent / ".empty"
    empty.touch(mode=0o444)
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=4k,mode=555")
        elif os.path.isfile(path):  # an empty read-only file in its place
            _mount(str(empty), path, None, MS_BIND)
            _mount(str(empty), path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    empty.unlink()  # the mounts keep it
    os.chdir(cwd)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _read_only(paths: list[str]) -> None:
    """In a private mount namespace: make each folder of ``paths`` (and what is below it) read-only."""
    for path in paths:
        if os.path.isdir(path):
            _mount(path, path, None, MS_BIND | MS_REC)
            _mount(path, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def kernel_main(argv: list[str]) -> int:
    """``python -m course_utils.instructor.isolation kernel [options] -- KERNEL ARGV``: the kernel spec's command."""
    import argparse
    import resource

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE} kernel")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-s", type=int, default=0)
    parser.add_argument("--file-mb", type=int, default=0)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--read-only", action="append", default=[])
    parser.add_argument("--keep", default="")
    parser.add_argument("--in-namespace", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.in_namespace:
        _die_with_parent()
        if args.keep and os.environ.get("COURSE_GRADING_ISOLATION") == "namespace":
            again = [sys.executable, "-m", MODULE, "kernel", *argv]
            again.insert(again.index("--") if "--" in again else len(again), "--in-namespace")
            os.execvp("unshare", ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
                                  "--propagation", "private", *again])
    else:
        _read_only(args.read_only)
        _hide(args.hide, args.keep)
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb << 20), (resource.RLIMIT_CPU, args.cpu_s),
                         (resource.RLIMIT_FSIZE, args.file_mb << 20)):
        if value > 0:
            resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.execvp(command[0], command)
    return 1  # not reached


def kernel_spec(sandbox: Path, limits: Limits, hide: list[str], read_only: list[str] = ()) -> dict:
    """The kernel.json of a sandbox: ipykernel started through :func:`kernel_main` with ``limits``."""
    wrapper = [sys.executable, "-m", MODULE, "kernel", f"--memory-mb={limits.memory_mb}",
               f"--cpu-s={limits.cpu_s}", f"--file-mb={limits.file_mb}", f"--keep={sandbox}"]
    wrapper += [f"--hide={path}" for path in hide] + [f"--read-only={path}" for path in read_only]
    return {"argv": [*wrapper, "--", sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (grading sandbox)", "language": "python", "metadata": {"debugger": False}}


def private_paths(*roots: Path) -> list[str]:
    return sorted({str(root / name) for root in roots for name in PRIVATE if (root / name).exists()})


if __name__ == "__main__":
    if sys.argv[1:2] == ["kernel"]:
        sys.exit(kernel_main(sys.argv[2:]))
    sys.exit(f"usage: python -m {MODULE} kernel [--memory-mb N] ... -- KERNEL COMMAND")
