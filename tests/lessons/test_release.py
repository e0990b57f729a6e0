"""The student release is what nbgrader makes of the solutions, and leaks nothing."""
import json
import re
from pathlib import Path

import pytest

from course_utils.instructor import authoring

ROOT = Path(__file__).resolve().parents[2]
LESSONS = authoring.lessons()
FRAMEWORKS = ("pytorch", "tensorflow")


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def grade_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def split_regions(text):
    """(public lines, secret lines) of a solution cell: secret lines lie between the
    solution or hidden-test markers, stripped, without blanks and comments."""
    public, secret, inside = [], [], False
    for line in text.splitlines():
        if "BEGIN SOLUTION" in line or "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END SOLUTION" in line or "END HIDDEN TESTS" in line:
            inside = False
        elif line.strip() and not line.strip().startswith("#"):
            (secret if inside else public).append(line.strip())
    return public, secret


def test_there_are_lessons_with_both_frameworks():
    assert "01_cnn" in LESSONS
    for lesson in LESSONS:
        names = sorted(p.name for p in (ROOT / "solutions" / lesson).glob("*.ipynb"))
        assert any(n.endswith("_pytorch.ipynb") for n in names) and any(n.endswith("_tensorflow.ipynb") for n in names), names


def test_solutions_are_in_sync_with_their_jupytext_sources():
    assert authoring.sync(check=True) == [], "run `make sync` and commit solutions/"


@pytest.mark.nbgrader
@pytest.mark.parametrize("lesson", LESSONS)
def test_release_is_a_fresh_nbgrader_release(lesson):
    assert authoring.release_differences(lesson) == [], "run `make release` and commit notebooks/"


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_leaks_no_solution_and_no_hidden_test(lesson):
    for solution in sorted((ROOT / "solutions" / lesson).glob("*.ipynb")):
        released = ROOT / "notebooks" / lesson / solution.name
        text = released.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{released}: contains {marker}"
        public, secret = set(), []
        for cell in cells(solution):
            cell_public, cell_secret = split_regions(source(cell))
            public.update(cell_public)
            secret += cell_secret
        # lines that also appear openly elsewhere in the lesson (an import, a layer) give nothing away
        secret = [line for line in secret if line not in public and len(line) > 12]
        assert len(secret) > 20, "the lesson should have solutions and hidden tests to protect"
        released_lines = {line.strip() for c in cells(released) for line in source(c).splitlines()}
        leaked = [line for line in secret if line in released_lines]
        assert leaked == [], f"{released.name} shows lines of the solutions or hidden tests: {leaked[:5]}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_release_and_solutions_carry_no_outputs(lesson):
    for folder in ("solutions", "notebooks"):
        for nb in (ROOT / folder / lesson).glob("*.ipynb"):
            with_outputs = [i for i, c in enumerate(cells(nb))
                            if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
            assert with_outputs == [], f"{nb}: cells {with_outputs} carry outputs"


@pytest.mark.parametrize("lesson", LESSONS)
def test_both_frameworks_have_the_same_exercises_and_headings(lesson):
    per_framework = {}
    for fw in FRAMEWORKS:
        nb = next((ROOT / "solutions" / lesson).glob(f"*_{fw}.ipynb"))
        graded = [(grade_meta(c)["grade_id"], grade_meta(c).get("points")) for c in cells(nb) if grade_meta(c).get("grade_id")]
        headings = [re.sub(r"\(.*?\)", "", line).strip() for c in cells(nb) if c["cell_type"] == "markdown"
                    for line in source(c).splitlines() if line.startswith("## ")]
        per_framework[fw] = graded, headings
    assert per_framework["pytorch"] == per_framework["tensorflow"]


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_has_an_answer_and_a_locked_test_with_hidden_tests(lesson):
    for nb in (ROOT / "solutions" / lesson).glob("*.ipynb"):
        answers = [c for c in cells(nb) if grade_meta(c).get("solution") and not grade_meta(c).get("grade")]
        tests = [c for c in cells(nb) if grade_meta(c).get("grade") and not grade_meta(c).get("solution")]
        assert len(answers) >= 4, f"{nb.name}: {len(answers)} exercises"
        assert len(tests) >= len(answers)
        for test in tests:
            assert grade_meta(test).get("locked"), f"{nb.name}: test cell {grade_meta(test)['grade_id']} is not locked"
            assert "BEGIN HIDDEN TESTS" in source(test), f"{nb.name}: {grade_meta(test)['grade_id']} has no hidden tests"
            visible = source(test).split("### BEGIN HIDDEN TESTS")[0]
            assert "assert" in visible or "check_" in visible, f"{grade_meta(test)['grade_id']} has no visible test"
