#!/usr/bin/env python3
"""The course's command line: set-up, JupyterLab, tests and the release.

Standard library only, because it runs before the environment exists. Each command
first makes sure the environment is there and current (``setup``), then acts:

    python3 tools/course.py lab       # JupyterLab with nbgrader, on the course folder
    python3 tools/course.py test      # the whole test suite
    python3 tools/course.py sync      # lessons/*.py (jupytext) -> solutions/*.ipynb
    python3 tools/course.py release   # solutions/ -> notebooks/ with nbgrader
    python3 tools/course.py system-deps   # Debian/npm packages of the end-to-end tests

The environment is a venv at ``$COURSE_VENV``, else ``.venv`` in the project root. It is
re-installed only when pyproject.toml (or this file) changed since the last install.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = "course-install.sha256"


def venv_dir() -> Path:
    return Path(os.environ.get("COURSE_VENV") or ROOT / ".venv").expanduser().resolve()


def venv_bin(name: str) -> Path:
    return venv_dir() / "bin" / name


def install_fingerprint() -> str:
    """What the install depends on: the packaging part of pyproject.toml (not the
    [tool.*] settings of pytest and ruff), this file, the Python version, and where this
    checkout is: the editable install points at one checkout, so a second clone sharing
    the environment (CI's) re-points it, or its notebooks would import the other's code."""
    packaging = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("\n[tool.", 1)[0]
    digest = hashlib.sha256(packaging.encode())
    digest.update(str(ROOT).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def say(message: str) -> None:
    print(f"[course] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    subprocess.run(cmd, check=True, **kwargs)


def create_venv(path: Path) -> None:
    say(f"creating the environment {path}")
    try:
        run([sys.executable, "-m", "venv", str(path)])
    except subprocess.CalledProcessError:
        # Debian's python3 ships venv without ensurepip until python3-venv is installed.
        shutil.rmtree(path, ignore_errors=True)
        if os.geteuid() == 0 and shutil.which("apt-get"):
            say("installing Debian's python3-venv")
            run(["apt-get", "update", "-qq"])
            run(["apt-get", "install", "-y", "-qq", f"python3.{sys.version_info.minor}-venv"])
            run([sys.executable, "-m", "venv", str(path)])
        else:
            sys.exit("[course] cannot create a virtual environment: install python3-venv "
                     "(sudo apt-get install python3-venv) and run again")


def setup(force: bool = False) -> None:
    """Create the venv if missing and install the course into it if anything changed."""
    path = venv_dir()
    if not venv_bin("python").exists():
        create_venv(path)
    stamp = path / STAMP
    fingerprint = install_fingerprint()
    if not force and stamp.exists() and stamp.read_text().strip() == fingerprint:
        return
    say("installing the course's packages (first time: several minutes, torch and TensorFlow are large)")
    pip = [str(venv_bin("python")), "-m", "pip"]
    run([*pip, "install", "--quiet", "--upgrade", "pip"])
    run([*pip, "install", "--quiet", "-e", f"{ROOT}[dev]"])
    stamp.write_text(fingerprint + "\n")
    say("environment ready")


# What the end-to-end tests need beyond Python packages: Debian package -> a path it installs.
SYSTEM_PACKAGES = {
    "chromium": "/usr/bin/chromium",  # tests/e2e/test_browser.py (Playwright drives it)
    "postgresql": "/usr/lib/postgresql",  # the gradebook and the hub's database
    "npm": "/usr/bin/npm",  # JupyterHub's proxy, configurable-http-proxy, from deploy/package.json
    "dataset-fashion-mnist": "/usr/share/datasets/fashion-mnist",  # the data comparison test
    "bubblewrap": "/usr/bin/bwrap",  # the grading sandbox (course_utils.instructor.isolation; README, threat model)
}
PROXY = ROOT / "deploy" / "node_modules" / ".bin" / "configurable-http-proxy"


def missing_system_deps() -> list[str]:
    missing = [name for name, path in SYSTEM_PACKAGES.items()
               if not Path(path).exists() and not (name == "npm" and shutil.which("npm"))]
    if not PROXY.exists():
        missing.append("configurable-http-proxy (npm)")
    return missing


def system_deps(*, quiet_if_unable: bool = False) -> None:
    """Install the Debian and npm packages of the end-to-end tests (apt-get needs root).
    Without root, say what is missing: those tests are then skipped with the same hint."""
    apt = [name for name in missing_system_deps() if name in SYSTEM_PACKAGES]
    if apt and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"installing Debian's {' '.join(apt)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        run(["apt-get", "install", "-y", "-qq", *apt], env=env, stdout=subprocess.DEVNULL)
    if not PROXY.exists() and shutil.which("npm"):
        say("installing configurable-http-proxy into deploy/node_modules (npm ci)")
        run(["npm", "ci", "--prefix", str(ROOT / "deploy"), "--no-audit", "--no-fund", "--loglevel=error"])
    missing = missing_system_deps()
    if missing:
        say(f"not installed: {', '.join(missing)}; the browser and JupyterHub tests need them "
            "(sudo make system-deps)")
        if not quiet_if_unable:
            sys.exit(1)


def env_with_venv() -> dict[str, str]:
    """The environment of an activated venv: nbgrader runs ``alembic`` from PATH."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv_dir())
    env["PATH"] = f"{venv_dir() / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def in_venv(args: list[str]) -> int:
    """Replace this process by ``args`` in the environment, so that signals (Ctrl-C, a
    test's terminate) reach JupyterLab or pytest directly."""
    os.chdir(ROOT)
    sys.stdout.flush()
    os.execve(args[0], args, env_with_venv())
    return 1  # not reached


def cmd_lab(extra: list[str]) -> int:
    args = [str(venv_bin("jupyter")), "lab", f"--notebook-dir={ROOT}"]
    if os.geteuid() == 0:
        args.append("--allow-root")  # jupyter refuses root otherwise (containers, CI)
    return in_venv(args + extra)


def cmd_test(extra: list[str]) -> int:
    return in_venv([str(venv_bin("python")), "-m", "pytest", *extra])


def cmd_tool(module: str, extra: list[str]) -> int:
    return in_venv([str(venv_bin("python")), "-m", module, *extra])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, extra = argv[0], argv[1:]
    if command == "system-deps":
        system_deps()
        return 0
    if command == "setup":
        setup(force="--force" in extra)
        return 0
    setup()
    if command == "lab":
        return cmd_lab(extra)
    if command == "test":
        system_deps(quiet_if_unable=True)
        return cmd_test(extra)

    if command == "sync":
        return cmd_tool("course_utils.instructor.authoring", ["sync", *extra])
    if command == "release":
        return cmd_tool("course_utils.instructor.authoring", ["release", *extra])
    if command == "run":
        if not extra:
            print("usage: course.py run COMMAND [ARGS...]", file=sys.stderr)
            return 2
        found = shutil.which(extra[0], path=str(venv_dir() / "bin")) or shutil.which(extra[0])
        if found is None:
            print(f"no command {extra[0]!r} in the environment or on PATH", file=sys.stderr)
            return 2
        return in_venv([found, *extra[1:]])
    print(f"unknown command {command!r}; expected setup, lab, test, sync, release, system-deps or run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
