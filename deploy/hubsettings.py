"""The settings of the course's JupyterHub, read from environment variables.

Shared by ``jupyterhub_config.py`` (which JupyterHub loads) and ``provision.py`` (which
prepares the server), so both agree on names, paths and URLs. Standard library only.

Every setting has a default for one server that serves one course; set the variable to
change it (deploy/README.md lists them, e.g. in the systemd unit's ``Environment=``).
"""
from __future__ import annotations

import csv
import os
import pwd
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
PROXY = DEPLOY / "node_modules" / ".bin" / "configurable-http-proxy"   # npm ci --prefix deploy


def _names(value: str) -> list[str]:
    """'ann, ben cy' -> ['ann', 'ben', 'cy'] (commas and/or white space)."""
    return [name for name in value.replace(",", " ").split() if name]


def read_roster(path: Path) -> list[dict[str, str]]:
    """Students of a roster file: nbgrader's CSV (a header with ``id`` and optionally
    ``first_name``, ``last_name``, ``email``), or one user name per line (``#`` comments)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    header = [cell.strip() for cell in lines[0].split(",")]
    if "id" in header:
        rows = csv.DictReader(lines, skipinitialspace=True)
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in rows if (row.get("id") or "").strip()]
    return [{"id": line.split(",")[0].strip()} for line in lines]


def home_of(user: str) -> Path:
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        return Path("/home") / user


@dataclass
class Settings:
    course_id: str = "cnn-rnn-course"
    grader: str = ""                 # the account that runs the formgrader and owns the course folder
    instructors: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)
    students: list[dict[str, str]] = field(default_factory=list)   # roster rows, "id" at least
    venv: Path = Path(sys.prefix)    # the environment with jupyterhub, jupyterlab, nbgrader (and the course)
    state_dir: Path = Path("/srv/jupyterhub")            # cookie secret, proxy pid, the service token
    exchange: Path = Path("/srv/nbgrader/exchange")
    course_root: Path = Path()       # the grader's course folder (a clone of this repository)
    data_dir: Path = Path()          # the shipped data, for every kernel: a copy in the venv (provision.py server)
    hub_db_url: str = "postgresql+psycopg2:///jupyterhub"   # Unix socket, role = the hub's account (root)
    gradebook_url: str = ""          # PostgreSQL, role = the grader account
    bind_url: str = "http://:8000"   # where people connect (put TLS in front, or set ssl_cert/key)
    hub_bind_url: str = "http://127.0.0.1:8081"
    proxy_api_url: str = "http://127.0.0.1:8001"
    formgrader_port: int = 9999
    formgrader_default_url: str = "/formgrader"

    @property
    def service_name(self) -> str:
        """The formgrader service; nbgrader's course list requires it to be the course id."""
        return self.course_id

    @property
    def staff_group(self) -> str:
        return f"formgrade-{self.course_id}"

    @property
    def student_group(self) -> str:
        return f"nbgrader-{self.course_id}"

    @property
    def student_ids(self) -> list[str]:
        return [row["id"] for row in self.students]

    @property
    def token_file(self) -> Path:
        return self.state_dir / f"formgrader-{self.course_id}.token"

    @property
    def path(self) -> str:
        """PATH of the hub, its services and servers: nbgrader runs ``alembic`` from PATH."""
        return f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"

    @property
    def hub_api_url(self) -> str:
        return self.hub_bind_url.rstrip("/") + "/hub/api"

    def role_config_dir(self, role: str) -> Path:
        """Extra Jupyter config of a role (``JUPYTER_CONFIG_PATH``), installed by provision.py."""
        return self.venv / "etc" / "cnn-rnn-course" / role


def default_data_dir(venv: Path) -> Path:
    """Where provision.py copies the clone's ``datasets/``: world-readable, inside the venv, so
    that the clone itself (which holds ``solutions/`` and ``lessons/``) can stay private."""
    return venv / "share" / "cnn-rnn-course" / "datasets"


def load(environ=None) -> Settings:
    env = os.environ if environ is None else environ
    course_id = env.get("COURSE_ID", "cnn-rnn-course")
    grader = env.get("COURSE_GRADER") or f"grader-{course_id}"
    students = [{"id": name} for name in _names(env.get("COURSE_STUDENTS", ""))]
    roster = env.get("COURSE_ROSTER", "")
    if roster and Path(roster).exists():
        known = {row["id"] for row in students}
        students += [row for row in read_roster(Path(roster)) if row["id"] not in known]
    venv = Path(env.get("COURSE_VENV") or sys.prefix)
    settings = Settings(
        course_id=course_id,
        grader=grader,
        instructors=_names(env.get("COURSE_INSTRUCTORS", "")),
        admins=_names(env.get("COURSE_ADMINS", "")),
        students=students,
        venv=venv,
        state_dir=Path(env.get("COURSE_STATE_DIR", "/srv/jupyterhub")),
        exchange=Path(env.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")),
        course_root=Path(env.get("COURSE_ROOT") or home_of(grader) / course_id),
        data_dir=Path(env.get("COURSE_DATA_DIR") or default_data_dir(venv)),
        hub_db_url=env.get("COURSE_HUB_DB_URL", "postgresql+psycopg2:///jupyterhub"),
        gradebook_url=env.get("COURSE_GRADEBOOK_URL") or f"postgresql+psycopg2:///gradebook_{course_id.replace('-', '_')}",
        bind_url=env.get("COURSE_HUB_BIND_URL", "http://:8000"),
        hub_bind_url=env.get("COURSE_HUB_API_URL", "http://127.0.0.1:8081"),
        proxy_api_url=env.get("COURSE_PROXY_API_URL", "http://127.0.0.1:8001"),
        formgrader_port=int(env.get("COURSE_FORMGRADER_PORT", "9999")),
        formgrader_default_url=env.get("COURSE_FORMGRADER_DEFAULT_URL", "/formgrader"),
    )
    for name in settings.student_ids:
        if name in settings.instructors or name == grader:
            raise ValueError(f"{name} is both a student and staff")
    return settings
