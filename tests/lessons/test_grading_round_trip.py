"""Every lesson graded the way an instructor grades it, once per lesson, in a throw-away course:
``python -m course_utils.instructor`` release, autograde (pre-check, sandbox, nbgrader), feedback.

One grading run per lesson grades three submissions together:

* ``solver``: the solution notebooks. Full marks on every graded cell, no flag, and no cell
  of the notebook ends in an error (this is the lesson's ``smoke`` execution that CI relies
  on: nbval over ``solutions/`` would run the same notebooks again, so ``make test`` leaves
  it to ``make test-notebooks``). Its feedback shows the results but never a hidden test.
* ``solver_again``: one of the lesson's two notebooks once more (PyTorch's in lessons 01, 03, 05,
  TensorFlow's in 02, 04, 06: both frameworks' seeding, at half the cost), to show that a seeded
  ``smoke`` run prints the same numbers every time (timings aside).
* ``tamperer``: the release's other notebook (TensorFlow's in lessons 01, 03, 05, PyTorch's in
  02, 04, 06) with every test cell edited to pass. nbgrader puts the release's test cells back,
  so this *is* the untouched release when it is graded: zero on every graded cell proves both
  that the blank release scores nothing and that editing the tests gains nothing. (Every
  exercise's stub of both notebooks fails its tests in tests/lessons/test_exercise_variants.py.)
"""
import html
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course_utils.instructor import authoring

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STUDENTS = ("solver", "solver_again", "tamperer")
AGAIN = {lesson: ("pytorch", "tensorflow")[i % 2] for i, lesson in enumerate(authoring.lessons())}
pytestmark = pytest.mark.notebooks


def edit_tests_to_pass(path: Path) -> int:
    nb = json.loads(path.read_text())
    edited = 0
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and cell["cell_type"] == "code":
            cell["source"] = ["assert True  # edited by the student\n"]
            edited += 1
    path.write_text(json.dumps(nb))
    return edited


@pytest.fixture(scope="module", params=authoring.lessons())  # each lesson a unit of work of its own under xdist (conftest.py)
def graded(request, tmp_path_factory):
    lesson = request.param
    course = tmp_path_factory.mktemp(f"course-{lesson}")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / lesson, course / "solutions" / lesson)
    kit.instructor(course, "release", lesson)
    release = course / "notebooks" / lesson
    for student, origin in [("solver", course / "solutions" / lesson), ("solver_again", course / "solutions" / lesson),
                            ("tamperer", release)]:
        shutil.copytree(origin, course / "submitted" / student / lesson)
    for nb in (course / "submitted" / "solver_again" / lesson).glob("*.ipynb"):
        if not nb.stem.endswith("_" + AGAIN[lesson]):
            nb.unlink()  # graded as missing: scores zero, which no test of solver_again looks at
    for nb in (course / "submitted" / "tamperer" / lesson).glob("*.ipynb"):
        if nb.stem.endswith("_" + AGAIN[lesson]):
            nb.unlink()  # graded as missing (zero); the other framework's release is tampered with
        else:
            assert edit_tests_to_pass(nb) >= 4
    log = kit.instructor(course, "autograde", lesson, "--timeout=900").stdout
    grades = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            submission = gb.find_submission(lesson, student)
            grades[student] = {
                nb.name: {g.name: (g.auto_score, g.max_score) for g in nb.grades if g.cell_type == "code"}
                for nb in submission.notebooks
            }
    report = json.loads((course / "grading_report.json").read_text())[lesson]
    return lesson, course, grades, report, log


def autograded(course: Path, student: str, lesson: str) -> dict[str, dict]:
    found = {p.stem: json.loads(p.read_text()) for p in (course / "autograded" / student / lesson).glob("*.ipynb")}
    assert found, f"no autograded notebooks for {student}"
    return found


def test_solutions_get_full_marks(graded):
    lesson, _, grades, report, log = graded
    assert set(grades["solver"]) == {p.stem for p in (ROOT / "solutions" / lesson).glob("*.ipynb")}
    for notebook, cells in grades["solver"].items():
        assert len(cells) >= 4
        lost = {cell: score for cell, score in cells.items() if score[0] != score[1]}
        assert lost == {}, f"{notebook}: the solution loses points in {lost}\n{log[-3000:]}"
    assert report["solver"]["flags"] == [], "the pre-check must not flag the course's own solutions"


def test_every_cell_of_the_solutions_runs_without_error(graded):
    lesson, course, _, _, _ = graded
    for name, nb in autograded(course, "solver", lesson).items():
        errors = [(i, out.get("ename"), out.get("evalue", "")[:300]) for i, cell in enumerate(nb["cells"])
                  if cell["cell_type"] == "code" for out in cell.get("outputs", []) if out["output_type"] == "error"]
        assert errors == [], f"{name}: cells end in errors (index, exception, message): {errors}"
        unrun = [i for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code" and cell["source"]
                 and cell.get("execution_count") is None]
        assert unrun == [], f"{name}: code cells not executed: {unrun}"


# What may differ between two runs of the same seeded notebook: durations (and estimates and
# speed-ups made from them), memory addresses, progress-bar redraws and the grading sandbox's
# own folder. Everything else printed must match.
VOLATILE = [
    (re.compile(r"/tmp/[^\s'\")]*"), "<sandbox path>"),
    (re.compile(r"\d+(\.\d+)?\s*(s|ms|µs|us|sec|secs|seconds?|min|minutes?|h|hours?|days?|it/s|s/it|batch/s|s/batch)\b"),
     "<time>"),
    (re.compile(r"\b\d+(\.\d+)?x\b"), "<ratio>"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "<address>"),
    (re.compile(r"\d\d:\d\d(:\d\d)?"), "<clock>"),
]


def printed(nb: dict) -> list[str]:
    """Each code cell's text output (stdout and results; stderr carries progress bars), timings masked."""
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = ""
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream" and out.get("name") == "stdout":
                text += "".join(out["text"])
            elif out["output_type"] in ("execute_result", "display_data"):
                text += "".join(out.get("data", {}).get("text/plain", ""))
        for pattern, mask in VOLATILE:
            text = pattern.sub(mask, text)
        text = re.sub(r"[ \t]+", " ", text)  # columns aligned to a time's width (" 12.3 ms" / "123.4 ms")
        texts.append(text)
    return texts


def test_two_seeded_runs_print_the_same_numbers(graded):
    lesson, course, _, _, _ = graded
    first, again = autograded(course, "solver", lesson), autograded(course, "solver_again", lesson)
    assert set(again) and set(again) <= set(first)
    for name in again:
        a, b = printed(first[name]), printed(again[name])
        assert len(a) == len(b)
        differ = [(i, x[-400:], y[-400:]) for i, (x, y) in enumerate(zip(a, b)) if x != y]
        assert differ == [], f"{name}: two seeded smoke runs printed different text in cells (index, run 1, run 2): {differ}"
        assert any(re.search(r"\d\.\d", text) for text in a), f"{name}: no number printed to compare"


def test_edited_tests_are_restored_and_the_release_scores_zero(graded):
    lesson, course, grades, _, _ = graded
    assert set(grades["tamperer"]) == set(grades["solver"])
    for notebook, cells in grades["tamperer"].items():  # the missing notebook scores zero too
        assert {cell: max_score for cell, (_, max_score) in cells.items()} == \
            {cell: max_score for cell, (_, max_score) in grades["solver"][notebook].items()}
        scored = {cell: score for cell, score in cells.items() if score[0] != 0}
        assert scored == {}, f"{notebook}: the release (its tests edited, then restored) scores in {scored}"
    for name, nb in autograded(course, "tamperer", lesson).items():
        sources = ["".join(c["source"]) for c in nb["cells"]
                   if c.get("metadata", {}).get("nbgrader", {}).get("grade") and c["cell_type"] == "code"]
        assert sources and not any("edited by the student" in s for s in sources), name
        assert all("BEGIN HIDDEN TESTS" in s for s in sources), f"{name}: the hidden tests are put back for grading"


def hidden_lines(notebook: Path) -> set[str]:
    """The hidden tests' lines, read here and not with course_utils.instructor.feedback.hidden_lines:
    the test must not share the code whose output it checks."""
    lines, hidden = set(), False
    for cell in json.loads(notebook.read_text())["cells"]:
        for line in "".join(cell["source"]).splitlines():
            hidden = (hidden or "BEGIN HIDDEN TESTS" in line) and "END HIDDEN TESTS" not in line
            if hidden and len(line.strip()) > 12 and "HIDDEN TESTS" not in line:
                lines.add(line.strip())
    return lines


def test_feedback_shows_no_hidden_test(graded):
    lesson, course, _, _, _ = graded
    kit.instructor(course, "feedback", lesson, "--student", "solver")
    solutions = sorted((course / "solutions" / lesson).glob("*.ipynb"))
    secret = set().union(*(hidden_lines(nb) for nb in solutions))
    # Lines the student sees anyway (in the release, or in the solver's answers) are no secret: super().__init__(), ...
    visible = "".join(nb.read_text() for nb in (course / "notebooks" / lesson).glob("*.ipynb"))
    visible += "".join("".join(cell["source"]) for nb in solutions for cell in json.loads(nb.read_text())["cells"]
                       if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    secret = {line for line in secret if json.dumps(line)[1:-1] not in visible and line not in visible}
    assert secret, "every lesson has hidden tests"
    pages = sorted((course / "feedback" / "solver" / lesson).glob("*.html"))
    assert len(pages) == len(solutions)
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert "hidden tests: not shown" in text
        assert [line for line in secret if line in text] == [], page.name
