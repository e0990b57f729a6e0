"""nbgrader's own apps, each command line in a child process with a time limit.

The children are forked by :mod:`multiprocessing`'s fork server, which imports nbgrader once
(so each child starts at once) and is single-threaded (so forking is safe while the grader
runs threads). A child leads its own session: when it ends, or runs past its time limit, it is
killed with everything left in that session (the kernel dies with it too: ``--die-with-parent``).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
from pathlib import Path

PRELOAD = ["nbgrader.apps", "course_utils.instructor.runner"]


def venv_path(rest: str | None = None) -> str:
    """A PATH with this interpreter's ``bin/`` first, then ``rest`` (default: the current PATH).

    nbgrader runs the ``alembic`` executable found on PATH, so it must be the environment's.
    """
    rest = os.environ.get("PATH", "") if rest is None else rest
    return f"{Path(sys.executable).parent}{os.pathsep}{rest}"


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _child(cwd: str, argv: list[str], env: dict[str, str], log: str) -> None:
    """In the child: run the nbgrader command line ``argv`` in ``cwd`` with ``env``, output to ``log``."""
    code = 1
    try:
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        from jupyter_core.application import NoStart
        from nbgrader.apps import NbGraderApp

        app = NbGraderApp.instance()
        app.initialize(argv)
        try:
            app.start()
        except NoStart:  # how jupyter applications say that the subcommand finished
            pass
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # report anything, and never fall back into multiprocessing's code
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_nbgrader_logged(cwd: Path, argv: list[str], env: dict[str, str], log: Path, timeout: float) -> int | None:
    """Run ``nbgrader ARGV`` in ``cwd`` with exactly ``env``, its output into ``log``.

    Returns its exit code, or None when it ran past ``timeout`` seconds and was killed
    (with its whole session: the kernel too). Safe to call from several threads.
    """
    process = _context().Process(target=_child, args=(str(cwd), list(argv), dict(env), str(log)), daemon=False)
    process.start()
    process.join(timeout)
    code = process.exitcode
    # finished or not: nothing it started may outlive it (its session; the kernel dies with it, --die-with-parent)
    for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    process.join()
    return code


def run_nbgrader(cwd: Path, argv: list[str], timeout: float = 3600) -> tuple[int, str]:
    """Run one nbgrader command line in ``cwd`` (the environment's bin/ first on PATH); (exit code, log).

    The exit code is -1 when the command ran past ``timeout`` seconds.
    """
    env = {**os.environ, "PATH": venv_path()}
    with tempfile.TemporaryDirectory(prefix="nbgrader-log-") as tmp:
        log = Path(tmp) / "log"
        code = run_nbgrader_logged(cwd, argv, env, log, timeout)
        text = log.read_text(errors="replace") if log.exists() else ""
    return (-1 if code is None else code), text
