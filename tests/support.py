"""Helpers shared by the end-to-end tests: free ports, prerequisites, a throw-away PostgreSQL."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

INSTALL_HINT = "sudo make system-deps (or run make test as root: it installs them)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check, timeout: float, *, process: subprocess.Popen | None = None,
               log: Path | None = None, interval: float = 0.5):
    """Call ``check()`` until it returns something true (connection errors, KeyError and
    ValueError count as "not yet") and return that; fail with the log's tail when ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    error = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, KeyError, ValueError) as exc:   # requests' errors are OSErrors too
            error = exc
        tail = log.read_text(errors="replace")[-6000:] if log and log.exists() else ""
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited ({process.returncode}) first\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {error})\n{tail}")
        time.sleep(interval)


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """Terminate, then kill what does not stop within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def require(condition: bool, reason: str) -> None:
    """Skip a test whose prerequisite is missing on a developer's machine, but fail it on CI
    (CI=true), where `make test` runs as root and installs every prerequisite: a skip there
    would hide a broken install step."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is missing a prerequisite: {reason}")
    pytest.skip(reason)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def postgres_cluster(superuser: str = "grader", databases: tuple[str, ...] = ()):
    """A PostgreSQL server on 127.0.0.1 (a free port, trust authentication) in a temporary
    folder, with `databases` created; yields the port. As root the server runs as the
    `postgres` account (PostgreSQL refuses root). Stopped and removed on exit."""
    bindir = postgres_bin()
    require(bindir is not None, f"PostgreSQL is not installed: {INSTALL_HINT}")
    root = os.geteuid() == 0
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    # Not under pytest's own temporary folder: that one is private to this user.
    data = Path(tempfile.mkdtemp(prefix="course-pg-")) / "cluster"
    data.mkdir()
    if root:
        os.chmod(data.parent, 0o755)
        shutil.chown(data, "postgres", "postgres")
    port = free_port()

    def run(*cmd):
        result = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", superuser, "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "server.log"), "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        for database in databases:
            run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", superuser, database)
        yield port
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data.parent, ignore_errors=True)
