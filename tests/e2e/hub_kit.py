"""Helpers of tests/e2e/test_hub.py: a JupyterHub process started from deploy/, its REST API as
users see it, and a clean-up that leaves no account, process or folder behind."""
from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from hubsettings import DEPLOY  # noqa: E402


class Hub:
    """A JupyterHub run with deploy/jupyterhub_config.py and ``env`` (the COURSE_* settings)."""

    def __init__(self, venv: Path, env: dict[str, str], state_dir: Path, url: str):
        self.venv, self.env, self.state_dir, self.url = venv, env, state_dir, url.rstrip("/")
        self.log = state_dir / "jupyterhub.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([str(self.venv / "bin" / "jupyterhub"), "-f", str(DEPLOY / "jupyterhub_config.py")],
                                         cwd=self.state_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, token: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"token {token}"}, timeout=120, **kwargs)

    def post(self, path: str, token: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, headers={"Authorization": f"token {token}"}, timeout=300, **kwargs)

    def put(self, path: str, token: str, **kwargs) -> requests.Response:
        return requests.put(self.url + path, headers={"Authorization": f"token {token}"}, timeout=120, **kwargs)

    def delete(self, path: str, token: str, **kwargs) -> requests.Response:
        return requests.delete(self.url + path, headers={"Authorization": f"token {token}"}, timeout=120, **kwargs)

    def login(self, user: str, password: str) -> str:
        """An API token of ``user``, asked for with the user's Unix password (PAM), as a
        script or a student's client would; it has the user's own permissions."""
        response = requests.post(f"{self.url}/hub/api/users/{user}/tokens", timeout=120,
                                 json={"auth": {"username": user, "password": password}, "note": "tests/e2e/test_hub.py"})
        assert response.status_code == 201, f"{user} could not log in: {response.status_code} {response.text}\n{self.tail()}"
        return response.json()["token"]

    def start_server(self, user: str, token: str) -> None:
        response = self.post(f"/hub/api/users/{user}/server", token)
        assert response.status_code in (201, 202), f"{user}'s server: {response.status_code} {response.text}"
        wait_until(f"{user}'s server", lambda: self.get(f"/hub/api/users/{user}", token).json()["servers"][""]["ready"],
                   150, log=self.log)

    def tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """Stop the hub: its managed service first (else the hub waits for it), then the hub,
        which stops its proxy and the servers it spawned."""
        if not self.alive():
            return
        for pid in children(self.proc.pid):
            if proc_uid(pid) not in (None, 0):   # the formgrader runs as the grader account
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def proc_uid(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}").stat().st_uid
    return None


def processes_of(uids: set[int]) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and proc_uid(int(e.name)) in uids]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def remove_users(names: list[str]) -> list[str]:
    """Kill what still runs as these (throw-away) accounts, by pid, then ``userdel -r`` them.
    Returns what could not be removed."""
    uids = set()
    for name in names:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    for _ in range(20):
        pids = processes_of(uids)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.25)
    problems = []
    for name in names:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            result = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
            # userdel warns (exit 12) when the mail spool it was asked to remove does not exist
            if result.returncode not in (0, 12):
                problems.append(f"userdel {name}: {result.returncode} {result.stderr.strip()}")
    return problems
