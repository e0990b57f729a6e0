"""What a student's kernel may do: resource limits always, a bubblewrap sandbox where possible.

The sandbox's kernel spec starts the kernel through ``python -m course_utils.instructor.isolation
kernel [options] -- KERNEL ARGV`` (:func:`kernel_main`), which sets resource limits (address
space, CPU time, file size, no core dumps) and, in ``bwrap`` isolation, runs the kernel under
`bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian's ``bubblewrap``):

* as root, the kernel runs as ``nobody`` (uid/gid 65534, no supplementary groups): the launcher
  drops to that user *before* starting ``bwrap``, so the kernel is 65534 outside its user
  namespace too (not root mapped to 65534). Where ``nobody`` cannot read the interpreter (a
  Python under ``/root``), ``bwrap-root``: 65534 inside, root without capabilities outside;
  without root it keeps the grader's uid (``bwrap-same-uid``) and the same file-system view;
* no capabilities (``--cap-drop ALL``, no_new_privs), its own user, PID, IPC, UTS and network
  namespaces (``--unshare-all``: no network, not even 127.0.0.1), killed with its grader
  (``--die-with-parent``), a new session (no TIOCSTI into the grader's terminal);
* the whole file system read-only (``--ro-bind / /``) except three size-capped private tmpfs
  folders, ``/tmp``, ``HOME`` and its working folder (the notebook's ``autograded/`` folder
  as the grader sees it: what the kernel writes there never reaches the grader), and the
  folder of its connection file, where its ``ipc`` sockets are (jupyter's ``ipc`` transport:
  there is no network);
* the course, the checkout the package is imported from (its ``.venv`` and ``course_utils``
  mounted back read-only), the grader's home, the grading folder and ``/run`` are covered by
  empty folders; the data the lessons read (``COURSE_DATA_DIR``, ``COURSE_WEIGHTS_DIR``) is
  mounted back read-only.

Without bubblewrap or user namespaces (``limits`` isolation) only the limits apply: README,
"Threat model of autograding".
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MODULE = "course_utils.instructor.isolation"
NOBODY = 65534


@dataclass
class Limits:
    cell_timeout: int = 120      # s per cell (nbgrader's Execute.timeout)
    task_timeout: int = 900      # s for one student's lesson, all notebooks
    memory_mb: int = 8192        # address space of the kernel
    cpu_s: int = 1800            # CPU seconds of the kernel
    file_mb: int = 256           # largest file the kernel may write
    work_mb: int = 512           # the kernel's working folder (tmpfs)
    tmp_mb: int = 256            # its /tmp and its HOME (tmpfs, each)
    cell_output_kb: int = 1024   # outputs kept per cell (bytes of text and data)
    output_kb: int = 8192        # outputs kept per notebook


def bwrap() -> str | None:
    return shutil.which("bwrap")


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def interpreter_under_tmp() -> list[str]:
    """This Python's folders that lie under /tmp (a venv made there): the sandbox's empty /tmp
    would hide them, so they are mounted back read-only."""
    found = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, Path(sys.executable).parent)}
    return sorted(p for p in found if Path(p).is_relative_to("/tmp"))


def bwrap_works(as_nobody: bool) -> bool:
    """Whether ``bwrap`` makes its namespaces here and this Python runs in them (as ``nobody``:
    unprivileged user namespaces, and an interpreter that ``nobody`` may read)."""
    if not sys.platform.startswith("linux") or not bwrap():
        return False
    probe = [bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-all",
             "--die-with-parent", "--cap-drop", "ALL"]
    for path in interpreter_under_tmp():
        probe += ["--ro-bind", path, path]
    if os.geteuid() == 0 and not as_nobody:
        probe += ["--uid", str(NOBODY), "--gid", str(NOBODY)]
    try:
        result = subprocess.run([*probe, "--", sys.executable, "-P", "-c", "import ipykernel"], capture_output=True,
                                timeout=60, preexec_fn=_drop_to_nobody if as_nobody else None)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def isolation_mode() -> str:
    """How kernels are isolated here: ``bwrap`` (root: the kernel runs as nobody, really), ``bwrap-root``
    (root, but ``nobody`` cannot reach the interpreter, e.g. a Python under /root: the kernel is nobody
    inside its user namespace, root without capabilities outside it), ``bwrap-same-uid`` (not root:
    the grader's own uid in user namespaces) or ``limits`` (no sandbox).

    COURSE_GRADING_ISOLATION=limits forces the last (for debugging: it defends nothing but resources).
    """
    if os.environ.get("COURSE_GRADING_ISOLATION") == "limits":
        return "limits"
    if os.geteuid() == 0:
        if bwrap_works(as_nobody=True):
            return "bwrap"
        return "bwrap-root" if bwrap_works(as_nobody=False) else "limits"
    return "bwrap-same-uid" if bwrap_works(as_nobody=False) else "limits"


# What each mode leaves open (``autograde`` prints it; README, "Threat model of autograding").
WHAT_IS_NOT_DEFENDED = {
    "bwrap": "",
    "bwrap-root": "the kernel is root without capabilities outside its user namespace (nobody cannot read this "
                  "Python): files it can see and that root owns are readable (the course, /root, /home, /var, "
                  "/etc/shadow and /run are covered; all is read-only)",
    "bwrap-same-uid": "the kernel runs as the grader's own user (in a read-only bubblewrap sandbox without the course)",
    "limits": "NO SANDBOX (bubblewrap or user namespaces unavailable): a kernel can read and write whatever the "
              "grader's user can, the network included; only time, memory and file-size limits apply",
}


# Covered in every bwrap mode (root-owned secrets matter in ``bwrap-root``; others need no more).
SYSTEM_PRIVATE = ["/root", "/home", "/var", "/srv", "/mnt", "/media", "/etc/shadow", "/etc/gshadow", "/etc/shadow-",
                  "/etc/gshadow-", "/etc/ssh", "/etc/sudoers", "/etc/sudoers.d", "/boot", "/lost+found"]


def bwrap_argv(*, cwd: str, runtime: str, home: str, hide: list[str], read_only: list[str], limits: Limits,
               isolation: str = "bwrap") -> list[str]:
    """The ``bwrap`` command line (without the kernel's own) of :func:`kernel_main`."""
    argv = [bwrap() or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp", "--tmpfs", "/run"]
    hide = [*hide, *(p for p in SYSTEM_PRIVATE if os.path.lexists(p) and not os.path.islink(p))]
    for path in sorted(set(hide), key=lambda p: (len(Path(p).parts), p)):
        if not os.path.lexists(path) or Path(path).is_relative_to("/tmp"):
            continue  # the new /tmp is empty already
        if os.path.isdir(path) and not os.path.islink(path):
            argv += ["--perms", "0555", "--size", "4096", "--tmpfs", path]
        else:
            argv += ["--ro-bind", "/dev/null", path]
    for path in [*read_only, *interpreter_under_tmp()]:  # after the covers: data, package, a venv under /tmp
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    argv += ["--perms", "0700", "--size", str(limits.tmp_mb << 20), "--tmpfs", home,
             "--perms", "0700", "--size", str(limits.work_mb << 20), "--tmpfs", cwd,
             "--bind", runtime, runtime,
             "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
             "--unsetenv", "JPY_PARENT_PID",  # its parent is bwrap's pid 1: ipykernel would think it orphaned
             "--setenv", "HOME", home, "--setenv", "TMPDIR", "/tmp", "--chdir", cwd]
    if os.geteuid() == 0 or isolation == "bwrap-root":
        argv += ["--uid", str(NOBODY), "--gid", str(NOBODY)]
    return argv


def kernel_main(argv: list[str]) -> int:
    """``python -m course_utils.instructor.isolation kernel [options] -- KERNEL ARGV``: the kernel spec's command."""
    import argparse
    import resource
    import signal

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE} kernel")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-s", type=int, default=0)
    parser.add_argument("--file-mb", type=int, default=0)
    parser.add_argument("--work-mb", type=int, default=512)
    parser.add_argument("--tmp-mb", type=int, default=256)
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--read-only", action="append", default=[])
    parser.add_argument("--home", default="")
    parser.add_argument("--connection-file", default="")
    parser.add_argument("--runtime", default="")
    parser.add_argument("--isolation", default="limits")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with nbgrader
    except (OSError, AttributeError):
        pass
    for limit, value in ((resource.RLIMIT_AS, args.memory_mb << 20), (resource.RLIMIT_CPU, args.cpu_s),
                         (resource.RLIMIT_FSIZE, args.file_mb << 20)):
        if value > 0:
            resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if args.isolation.startswith("bwrap"):
        import tempfile

        # The connection file jupyter wrote stays private; the kernel gets a copy (mkstemp: no planted link
        # is followed) in the runtime folder, where its ipc sockets go (KernelManager.ip points there).
        runtime = args.runtime
        nobody = os.geteuid() == 0 and args.isolation == "bwrap"
        fd, copy = tempfile.mkstemp(prefix="conn-", suffix=".json", dir=runtime)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Path(args.connection_file).read_bytes())
        if nobody:  # the kernel (nobody) reads its connection file and makes its sockets beside it
            os.chown(runtime, NOBODY, NOBODY)
            os.chown(copy, NOBODY, NOBODY)
        command = [copy if arg == args.connection_file else arg for arg in command]
        limits = Limits(work_mb=args.work_mb, tmp_mb=args.tmp_mb)
        wrapper = bwrap_argv(cwd=os.getcwd(), runtime=runtime, home=args.home, hide=args.hide,
                             read_only=args.read_only, limits=limits, isolation=args.isolation)
        if nobody:
            _drop_to_nobody()
        os.execv(wrapper[0], [*wrapper, "--", *command])
    os.execvp(command[0], command)
    return 1  # not reached


def kernel_spec(sandbox: Path, limits: Limits, hide: list[str], read_only: list[str] = (), isolation: str = "limits",
                runtime: Path | None = None) -> dict:
    """The kernel.json of a sandbox: the grading kernel (:mod:`.guard`) started through :func:`kernel_main`
    with ``limits``.

    ``python -P``: the kernel's working folder is not on ``sys.path`` (no module written there is importable).
    """
    wrapper = [sys.executable, "-m", MODULE, "kernel", f"--memory-mb={limits.memory_mb}", f"--cpu-s={limits.cpu_s}",
               f"--file-mb={limits.file_mb}", f"--work-mb={limits.work_mb}", f"--tmp-mb={limits.tmp_mb}",
               f"--home={sandbox / 'home'}", "--connection-file={connection_file}", f"--isolation={isolation}",
               f"--runtime={runtime or sandbox / 'runtime'}"]
    wrapper += [f"--hide={path}" for path in hide] + [f"--read-only={path}" for path in read_only]
    python = Path(sys.prefix).resolve() / "bin" / Path(sys.executable).name  # the venv's, through no covered link
    python = str(python if python.exists() else sys.executable)
    return {"argv": [*wrapper, "--", python, "-P", "-m", "course_utils.instructor.guard", "-f", "{connection_file}"],
            "display_name": "Python 3 (grading sandbox)", "language": "python", "metadata": {"debugger": False},
            # bwrap does not pass signals on (and the kernel leads its own session): interrupt by message
            "interrupt_mode": "message"}


if __name__ == "__main__":
    if sys.argv[1:2] == ["kernel"]:
        sys.exit(kernel_main(sys.argv[2:]))
    sys.exit(f"usage: python -m {MODULE} kernel [--memory-mb N] ... -- KERNEL COMMAND")
