"""nbgrader round trip in a throw-away course folder: release, submit, autograde, read the gradebook.

Three submissions per lesson: the solution notebooks (full marks), the untouched release
(zero on every autograded cell) and the release with every test cell edited to pass
(restored by nbgrader from the gradebook, so graded as if untouched).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_utils.instructor import authoring

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.notebooks


def nbgrader(course, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("COURSE_PROFILE", None)  # autograding must choose "smoke" by itself (NBGRADER_EXECUTION)
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def edit_tests_to_pass(path):
    nb = json.loads(path.read_text())
    edited = 0
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and cell["cell_type"] == "code":
            cell["source"] = ["assert True  # edited by the student\n"]
            edited += 1
    path.write_text(json.dumps(nb))
    return edited


@pytest.fixture(scope="module", params=authoring.lessons())
def graded(request, tmp_path_factory):
    lesson = request.param
    course = tmp_path_factory.mktemp(f"course-{lesson}")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / lesson, course / "solutions" / lesson)
    nbgrader(course, "generate_assignment", lesson, "--force")
    release = course / "notebooks" / lesson
    for student, origin in [("solver", course / "solutions" / lesson), ("idle", release), ("tamperer", release)]:
        target = course / "submitted" / student / lesson
        target.mkdir(parents=True)
        for nb in origin.glob("*.ipynb"):
            shutil.copy(nb, target / nb.name)
    for nb in (course / "submitted" / "tamperer" / lesson).glob("*.ipynb"):
        assert edit_tests_to_pass(nb) >= 4
    nbgrader(course, "autograde", lesson, "--force")
    grades = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("solver", "idle", "tamperer"):
            submission = gb.find_submission(lesson, student)
            grades[student] = {
                nb.name: {g.name: (g.auto_score, g.max_score) for g in nb.grades if g.cell_type == "code"}
                for nb in submission.notebooks
            }
    return lesson, course, grades


def test_solutions_get_full_marks(graded):
    lesson, _, grades = graded
    assert set(grades["solver"]) == {p.stem for p in (ROOT / "solutions" / lesson).glob("*.ipynb")}
    for notebook, cells in grades["solver"].items():
        assert len(cells) >= 4
        lost = {cell: score for cell, score in cells.items() if score[0] != score[1]}
        assert lost == {}, f"{notebook}: the solution loses points in {lost}"


def test_untouched_release_gets_zero_everywhere(graded):
    _, _, grades = graded
    for notebook, cells in grades["idle"].items():
        scored = {cell: score for cell, score in cells.items() if score[0] != 0}
        assert scored == {}, f"{notebook}: the untouched release scores in {scored}"


def test_tests_edited_to_pass_are_restored_and_score_zero(graded):
    lesson, course, grades = graded
    assert grades["tamperer"] == grades["idle"]
    for autograded in (course / "autograded" / "tamperer" / lesson).glob("*.ipynb"):
        sources = ["".join(c["source"]) for c in json.loads(autograded.read_text())["cells"]
                   if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c["cell_type"] == "code"]
        assert sources and not any("edited by the student" in s for s in sources)
        assert all("BEGIN HIDDEN TESTS" in s for s in sources), "the hidden tests are put back for grading"
