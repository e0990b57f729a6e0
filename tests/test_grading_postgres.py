"""The gradebook on a real PostgreSQL server (for several graders at once) instead of SQLite.

The fixture starts a throw-away PostgreSQL cluster on 127.0.0.1 on a free port in a temporary
folder (Debian's `postgresql`, installed with apt-get when running as root and missing), points
the course's `db_url` at it with `postgresql+psycopg2://`, and runs release, autograde, export and
the summary there. Skipped, with the reason, where neither PostgreSQL nor root is available, or
where the driver `psycopg2` is not installed.
"""
import csv
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "grading"))
import kit  # noqa: E402

pytestmark = pytest.mark.notebooks


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 (pip install psycopg2-binary) is not installed")
    bindir = postgres_bin()
    root = os.geteuid() == 0
    if bindir is None and root and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, capture_output=True, timeout=900,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed and this is not root (apt-get install postgresql to run this test)")
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    # Not under pytest's own temporary folder: that one is private to this user, and the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="course-pg-")) / "cluster"
    data.mkdir()
    if root:
        os.chmod(data.parent, 0o755)
        shutil.chown(data, "postgres", "postgres")
    port = free_port()

    def run(*cmd):
        result = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "server.log"), "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook")
        yield f"postgresql+psycopg2://grader@127.0.0.1:{port}/gradebook"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data.parent, ignore_errors=True)


def test_release_autograde_export_on_postgresql(postgres, tmp_path):
    course = kit.make_course(tmp_path / "course", lessons=("lesson_a",),
                             config_extra=f"c.CourseDirectory.db_url = {postgres!r}")
    kit.instructor(course, "release", "lesson_a")
    release = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
    kit.write(kit.answered(release), course / "submitted" / "ann" / "lesson_a" / "lesson_a.ipynb")
    kit.write(kit.answered(release, wrong=("square", "clip")), course / "submitted" / "ben" / "lesson_a" / "lesson_a.ipynb")
    (course / "submitted" / "cy" / "lesson_a").mkdir(parents=True)
    (course / "submitted" / "cy" / "lesson_a" / "lesson_a.ipynb").write_text("")
    kit.instructor(course, "autograde", "--cell-timeout=20")
    kit.instructor(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(handle)}
    assert scores == {"ann": 6, "ben": 3, "cy": 0}
    assert not (course / "gradebook.db").exists(), "everything went to PostgreSQL, not SQLite"

    from nbgrader.api import Gradebook

    with Gradebook(postgres) as gb:
        assert {s.student.id: s.score for s in gb.find_assignment("lesson_a").submissions} == scores
    assert "square_tests" in kit.instructor(course, "summary").stdout
