#!/usr/bin/env python3
"""Prepare one server to serve the course with JupyterHub (run as root; standard library only).

    sudo -E python3 deploy/provision.py venv          # the hub's venv with the whole course ([hub] extra)
    sudo -E python3 deploy/provision.py server        # configs, data, exchange, state, grader account; private clone
    sudo -E python3 deploy/provision.py databases     # PostgreSQL roles and databases (local server)
    sudo systemctl start jupyterhub                   # deploy/jupyterhub.service
    sudo -E python3 deploy/provision.py enrol         # the roster -> gradebook + hub group nbgrader-<course>

Settings come from the same environment variables as jupyterhub_config.py (hubsettings.py;
keep them in /etc/cnn-rnn-course/hub.env). Every step can be repeated: what exists is kept.
tests/test_hub.py runs these functions on throw-away users, folders and a PostgreSQL cluster.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hubsettings  # noqa: E402
from hubsettings import DEPLOY, REPO, Settings  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"   # not a Python under /root (mode 700): students must be able to run it
LIGHT_CACHE = Path("/var/cache/cnn-rnn-course")
COMPLETE = "cnn-rnn-course-hub.ok"


def say(message: str) -> None:
    print(f"[provision] {message}", flush=True)


# ------------------------------------------------------------------ the hub's environment
def _pins() -> tuple[list[str], list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["dependencies"], project["optional-dependencies"]["hub"]


def light_requirements() -> list[str]:
    """What the hub needs without the course's frameworks: the [hub] extra plus the project's
    own jupyterlab and nbgrader pins (enough for framework-free lessons, i.e. the tests)."""
    dependencies, hub = _pins()
    wanted = ("jupyterlab", "nbgrader")
    return [*hub, *(d for d in dependencies if re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() in wanted)]


def light_venv_path(requirements: list[str] | None = None) -> Path:
    """A world-readable cache of the light venv, keyed by its pins and the system Python."""
    requirements = light_requirements() if requirements is None else requirements
    version = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.version)"], capture_output=True,
                             text=True, check=True).stdout
    key = hashlib.sha256("\n".join([*sorted(requirements), version]).encode()).hexdigest()[:12]
    return LIGHT_CACHE / f"hub-venv-{key}"


def ensure_venv(path: Path, requirements: list[str]) -> float:
    """Create the venv at ``path`` from the system Python and install ``requirements``, unless
    a complete one is there. Returns the seconds spent creating it (0.0 when reused).
    A lock file serialises concurrent callers; a half-made venv (no marker) is rebuilt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    marker = path / COMPLETE
    wanted = "\n".join(requirements) + "\n"
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == wanted:
            return 0.0
        start = time.monotonic()
        shutil.rmtree(path, ignore_errors=True)
        say(f"creating {path} from {SYSTEM_PYTHON}: {' '.join(requirements)}")
        old_umask = os.umask(0o022)   # readable by every account
        try:
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(path)], check=True)
            subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements], check=True)
        finally:
            os.umask(old_umask)
        marker.write_text(wanted)
        return time.monotonic() - start


def install_configs(s: Settings) -> None:
    """The global nbgrader config into ``<venv>/etc/jupyter`` and the students' Jupyter config
    (no formgrader) into ``<venv>/etc/cnn-rnn-course/student``: nothing outside the venv."""
    target = s.venv / "etc" / "jupyter" / "nbgrader_config.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY / "nbgrader_config_global.py", target)
    os.chmod(target, 0o644)
    shutil.copytree(DEPLOY / "jupyter" / "student", s.role_config_dir("student"), dirs_exist_ok=True)
    for folder, _, files in os.walk(s.role_config_dir("student").parent):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(Path(folder) / name, 0o644)


def install_data(s: Settings) -> None:
    """The clone's ``datasets/`` copied to the venv (``hubsettings.default_data_dir``), readable by
    everyone: kernels read the data there, so the clone need not be readable by students."""
    if s.data_dir != hubsettings.default_data_dir(s.venv):
        say(f"COURSE_DATA_DIR={s.data_dir}: left as it is (it must be readable by every account)")
        return
    shutil.copytree(REPO / "datasets", s.data_dir, dirs_exist_ok=True)
    for folder in (s.data_dir.parent, *(Path(p) for p, _, _ in os.walk(s.data_dir))):
        os.chmod(folder, 0o755)
    for path in s.data_dir.rglob("*"):
        if path.is_file():
            os.chmod(path, 0o644)


def install_course_package(venv: Path) -> None:
    """The course's own package (course_utils, without its frameworks) into a light venv: the
    formgrader grades through ``course_utils.instructor`` (nbgrader_config_grader.py).
    Installed again at every call, so the venv's copy follows the clone."""
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--force-reinstall", str(REPO)], check=True)


def protect_clone(repo: Path = REPO) -> None:
    """The clone the hub runs from holds ``solutions/`` and ``lessons/``: only root may enter it.
    Students use the venv's installed course, the data copied by :func:`install_data` and the
    released notebooks from the exchange; the grader has its own course folder."""
    mode = repo.stat().st_mode & 0o7777
    if mode & 0o077:
        os.chmod(repo, mode & ~0o077)
        say(f"{repo}: mode {mode:o} -> {mode & ~0o077:o} (students must not read the solutions)")


# ------------------------------------------------------------------ folders and accounts
def make_exchange(path: Path) -> None:
    """nbgrader's exchange: created by root, writable by everyone, with the sticky bit (1777,
    like /tmp): only a folder's owner may remove or rename it, so a student cannot move the
    course's folder aside and put a fake released assignment in its place. nbgrader sets the
    permissions of what it puts inside (inbound is write-only for students)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)


def make_state_dir(s: Settings) -> None:
    """The hub's private folder (cookie secret, proxy pid) and the formgrader service's token."""
    s.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(s.state_dir, 0o700)
    if not s.token_file.exists():
        s.token_file.write_text(secrets.token_hex(32) + "\n")
    os.chmod(s.token_file, 0o600)


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_user(name: str, password: str | None = None) -> None:
    """A Unix account with a private home (0700: students must not read each other's or the
    grader's files); a password only if given (the grader needs none, it never logs in)."""
    if not user_exists(name):
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name], check=True)
    os.chmod(hubsettings.home_of(name), 0o700)
    if password is not None:
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)


def chown_tree(path: Path, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True)


def setup_grader(s: Settings) -> None:
    """The grader account, its course folder and its nbgrader_config.py (course id, course
    root, the PostgreSQL gradebook). The course folder is a clone of this repository."""
    ensure_user(s.grader)
    s.course_root.mkdir(parents=True, exist_ok=True)
    chown_tree(s.course_root, s.grader)
    config = hubsettings.home_of(s.grader) / ".jupyter" / "nbgrader_config.py"
    config.parent.mkdir(exist_ok=True)
    settings = {"course_id": s.course_id, "course_root": str(s.course_root), "db_url": s.gradebook_url}
    template = (DEPLOY / "nbgrader_config_grader.py").read_text()
    line = next(line for line in template.splitlines() if line.startswith("SETTINGS = "))
    config.write_text(template.replace(line, f"SETTINGS = {settings!r}  # written by deploy/provision.py"))
    os.chmod(config, 0o600)   # the gradebook URL may hold a password
    chown_tree(config.parent, s.grader)


def setup_server(s: Settings) -> None:
    install_configs(s)
    install_data(s)
    protect_clone()
    make_exchange(s.exchange)
    make_state_dir(s)
    setup_grader(s)


# ------------------------------------------------------------------ PostgreSQL
def _db_and_role(url: str, default_role: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.path.lstrip("/"), parts.username or default_role


def create_databases(s: Settings, psql: list[str], hub_role: str = "root") -> None:
    """Roles and databases of the hub and the gradebook, if missing. ``psql`` is the command
    that reaches the server as a superuser, e.g. ``runuser -u postgres -- psql`` on a local
    Debian server (whose default peer authentication then lets root and the grader account
    in over the Unix socket without passwords, as the default URLs expect)."""
    def query(sql: str) -> str:
        result = subprocess.run([*psql, "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-tAc", sql],
                                capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"psql failed: {sql}\n{result.stderr}")
        return result.stdout.strip()

    for url, default_role in ((s.hub_db_url, hub_role), (s.gradebook_url, s.grader)):
        database, role = _db_and_role(url, default_role)
        if not query(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'"):
            query(f'CREATE ROLE "{role}" LOGIN')
        if not query(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"):
            query(f'CREATE DATABASE "{database}" OWNER "{role}"')
        say(f"database {database} (owner {role}) ready")


# ------------------------------------------------------------------ the roster
def grader_env(s: Settings) -> dict[str, str]:
    """The environment of the formgrader service, for nbgrader commands run as the grader:
    its token lets nbgrader's JupyterHubAuthPlugin put students into nbgrader-<course>."""
    home = hubsettings.home_of(s.grader)
    return {"HOME": str(home), "USER": s.grader, "LOGNAME": s.grader, "PATH": s.path, "LANG": "C.UTF-8",
            "COURSE_EXCHANGE": str(s.exchange), "JUPYTERHUB_API_URL": s.hub_api_url, "JUPYTERHUB_USER": s.grader,
            "JUPYTERHUB_SERVICE_NAME": s.service_name, "JUPYTERHUB_API_TOKEN": s.token_file.read_text().strip()}


def as_grader(s: Settings, *cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command as the grader account, in its home, with the service's environment."""
    account = pwd.getpwnam(s.grader)
    return subprocess.run(list(cmd), user=account.pw_uid, group=account.pw_gid, extra_groups=[],
                          env=grader_env(s), cwd=account.pw_dir, capture_output=True, text=True, timeout=timeout)


def enrol(s: Settings) -> None:
    """``nbgrader db student import`` of the roster as the grader: each student lands in the
    gradebook and in the hub's group nbgrader-<course>. The hub must be running, and each
    student must be a hub user (allowed_users, from the same roster) for the group to take them."""
    if not s.students:
        say("no students (COURSE_STUDENTS or COURSE_ROSTER)")
        return
    columns = ["id", "first_name", "last_name", "email"]
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        roster = Path(folder) / "roster.csv"
        with open(roster, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({c: row.get(c, "") for c in columns} for row in s.students)
        os.chmod(roster, 0o644)
        result = as_grader(s, "nbgrader", "db", "student", "import", str(roster))
    output = result.stdout + result.stderr
    if result.returncode or "NOT added" in output or "Traceback" in output:
        raise RuntimeError(f"enrolling failed:\n{output}")
    say(f"enrolled {len(s.students)} students in {s.course_id}")


# ------------------------------------------------------------------ command line
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    venv = sub.add_parser("venv", help="create the hub's venv ($COURSE_VENV) with the course and its [hub] extra")
    venv.add_argument("--light", action="store_true", help="only jupyterhub, jupyterlab, nbgrader, psycopg2 (no frameworks)")
    sub.add_parser("server", help="configs into the venv, exchange, state folder and token, grader account")
    databases = sub.add_parser("databases", help="PostgreSQL roles and databases of the hub and the gradebook")
    databases.add_argument("--psql", default="runuser -u postgres -- psql", help="how to reach the server as a superuser")
    sub.add_parser("enrol", help="the roster into the gradebook and the hub group (the hub must be running)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("provision.py creates accounts and system folders: run it as root")
    if "COURSE_VENV" not in os.environ:   # hubsettings' default (sys.prefix) only suits the hub itself
        sys.exit("set COURSE_VENV (e.g. /opt/cnn-rnn-course/venv: world-readable, not under /root), "
                 "or load /etc/cnn-rnn-course/hub.env: set -a; . /etc/cnn-rnn-course/hub.env; set +a")
    s = hubsettings.load()
    if args.command == "venv":
        requirements = light_requirements() if args.light else [f"{REPO}[hub]"]
        seconds = ensure_venv(s.venv, requirements)
        if args.light:
            install_course_package(s.venv)
        say(f"{s.venv}: " + (f"created in {seconds:.0f} s" if seconds else "already there"))
        install_configs(s)
    elif args.command == "server":
        setup_server(s)
        say(f"exchange {s.exchange}, state {s.state_dir}, grader {s.grader}, course folder {s.course_root}")
    elif args.command == "databases":
        import shlex

        create_databases(s, shlex.split(args.psql))
    elif args.command == "enrol":
        enrol(s)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
