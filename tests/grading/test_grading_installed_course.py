"""SLOW (a real lesson, a few minutes): lesson 04's solutions graded through the sandbox by a
course installed the way the JupyterHub deployment installs it (``pip install .``, not editable).

An installed ``course_utils`` has no ``datasets/`` beside it, so the kernel finds the data only
through ``COURSE_DATA_DIR``, which the grader resolves (here: the course's ``datasets/``) and
passes into the sandbox's reduced environment (read-only under namespace isolation). Without
it the exercises still score full marks (they need no data) but the sunspot cells raise
``DatasetMissingError``: the test also asserts that the graded notebooks hold no error.

The install needs no download: a fresh venv sees the course venv's packages through a ``.pth``
line (the editable finder's own ``.pth`` there is not processed: that folder is no site dir),
and pip installs the course from a copy of its sources without an index or build isolation.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LESSON = "04_rnn_bptt"
pytestmark = [pytest.mark.notebooks]


def installed_course(tmp: Path) -> Path:
    """A venv in ``tmp`` with the course installed non-editable; returns its python."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "course-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_utils", source / "course_utils", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--no-cache-dir", str(source)], check=True, cwd=tmp, capture_output=True)
    where = subprocess.run([str(python), "-c", "import course_utils; print(course_utils.__file__)"], cwd=tmp,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where  # not the clone's editable copy
    assert not (Path(where).parents[1] / "datasets").exists()
    return python


def instructor(python: Path, course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATA_DIR", "COURSE_PROFILE", "PYTHONPATH")}
    env["PATH"] = f"{python.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([str(python), "-m", "course_utils.instructor", "--course", str(course), *args],
                            cwd=course, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"instructor {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def test_lesson_04_graded_from_a_non_editable_install(tmp_path):
    python = installed_course(tmp_path)
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / LESSON, course / "solutions" / LESSON)
    (course / "datasets").symlink_to(ROOT / "datasets", target_is_directory=True)
    instructor(python, course, "release", LESSON)
    shutil.copytree(course / "solutions" / LESSON, course / "submitted" / "solver" / LESSON)
    log = instructor(python, course, "autograde", "--timeout=1200").stdout
    score, max_score = kit.totals(course, LESSON)["solver"]
    assert score == max_score > 0, log
    # Full marks alone would not show it: the graded exercises need no data, the sunspot cells do.
    graded = sorted((course / "autograded" / "solver" / LESSON).glob("*.ipynb"))
    assert len(graded) == 2
    for notebook in graded:
        cells = json.loads(notebook.read_text())["cells"]
        errors = [f"{o.get('ename')}: {o.get('evalue', '')[:300]}" for c in cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert errors == [], f"{notebook.name}: {errors}"
        assert any("load_sunspots" in "".join(c["source"]) for c in cells)
    status = instructor(python, course, "status", "--all").stdout
    assert f"{LESSON}\tsolver\tgraded" in status, status
