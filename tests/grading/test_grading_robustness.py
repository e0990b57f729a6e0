"""Grading survives broken and dishonest submissions: one class, one `instructor autograde` run.

Every case is a real submission file made from the fixture release (tests/fixtures/grading/kit.py),
graded together with the others; each test asserts its grades, status and messages, and that the
rest of the class was graded. lesson_a: square (2 points), mean (3), clip (1); lesson_b: two
notebooks, count_vowels (2) and running_sum (2).
"""
import copy
import csv
import hashlib
import json
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

from course_utils.instructor.isolation import isolation_mode  # noqa: E402

A = ["square", "mean", "clip"]

NOISY = {
    "square": ("import sys, warnings\nprint('answer cell chatter on stderr', file=sys.stderr)\n"
               "def square(x):\n    warnings.warn('square() will change in a future version', UserWarning)\n"
               "    sys.stderr.write('2026-11-26 12:00:00.123456: I tensorflow/core/util/port.cc:153] oneDNN custom "
               "operations are on.\\n')\n    return x * x"),
    "mean": ("import logging, sys\nlogging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
             "def mean(xs):\n    logging.getLogger('tensorflow').warning('frame rate noise')\n    return sum(xs) / len(xs)"),
}
CHEAT_PATCH = {"mean": "import math\nmath.isclose = lambda *a, **k: True\ndef mean(xs):\n    return 0"}


def cheat_read(course: Path) -> str:
    targets = [course / "solutions" / "lesson_a" / "lesson_a.ipynb", course / "gradebook.db",
               kit.REPO / "solutions", kit.REPO / "lessons", "../../../gradebook.db", "../../../../"]
    return ("import os\nfound = []\n"
            f"for path in {[str(t) for t in targets]!r}:\n"
            "    try:\n"
            "        if os.path.isdir(path):\n"
            "            found += [n for n in os.listdir(path) if not n.startswith(('lesson_a--', 'k'))]\n"
            "        else:\n"
            "            data = open(path, 'rb').read()\n"
            "            found += [w for w in ('BEGIN SOLUTION', 'BEGIN HIDDEN TESTS') if w.encode() in data]\n"
            "    except OSError:\n"
            "        pass\n"
            "print('LEAKED:', sorted(found) if found else 'nothing')\n"
            "def square(x):\n    return x * x")


def cheat_write(course: Path) -> str:
    victim = course / "submitted" / "good" / "lesson_a" / "lesson_a.ipynb"
    return ("import os\nwritten = []\n"
            f"for path in [{str(victim)!r}, {str(course / 'gradebook.db')!r}, '../good/lesson_a/lesson_a.ipynb',"
            " '../../../gradebook.db']:\n"
            "    try:\n"
            "        with open(path, 'w') as f:\n"
            "            f.write('overwritten')\n"
            "        written.append(path)\n"
            "    except OSError:\n"
            "        pass\n"
            "print('WROTE:', written)\n"
            "def square(x):\n    return x * x")


def build_class(course: Path) -> dict:
    """Write every case's submission into submitted/; return the sha256 of the good student's file."""
    release_a = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
    sub = course / "submitted"

    def put(student, nb, name="lesson_a.ipynb", lesson="lesson_a"):
        return kit.write(nb, sub / student / lesson / name)

    put("good", kit.answered(release_a))
    put("loop", kit.answered(release_a, answers={"square": "def square(x):\n    while True:\n        pass"}))
    put("exit", kit.answered(release_a, answers={"mean": "import os\nos._exit(3)"}))
    put("segfault", kit.answered(release_a, answers={"mean": "import os\nos.kill(os.getpid(), 11)"}))  # SIGSEGV, as a crash
    (sub / "notjson" / "lesson_a").mkdir(parents=True)
    (sub / "notjson" / "lesson_a" / "lesson_a.ipynb").write_text('{"cells": [ this is not json')
    (sub / "empty" / "lesson_a").mkdir(parents=True)
    (sub / "empty" / "lesson_a" / "lesson_a.ipynb").write_text("")
    v3 = nbformat.convert(nbformat.reads(json.dumps(kit.answered(release_a)), as_version=4), 3)
    (sub / "v3" / "lesson_a").mkdir(parents=True)
    (sub / "v3" / "lesson_a" / "lesson_a.ipynb").write_text(nbformat.writes(v3, version=3))
    put("wrongname", kit.answered(release_a), name="lesson_a (1).ipynb")

    edited = kit.answered(release_a, wrong=("square",))
    kit.cell(edited, "square_tests")["source"] = "assert True  # edited by the student"
    put("edited_test", edited)
    deleted = kit.answered(release_a, wrong=("clip",))
    deleted["cells"] = [c for c in deleted["cells"] if c.get("id") not in ("mean_tests", "clip_tests")]
    put("deleted_test", deleted)
    duplicated = kit.answered(release_a)
    index = duplicated["cells"].index(kit.cell(duplicated, "square_answer"))
    duplicated["cells"].insert(index, copy.deepcopy(duplicated["cells"][index]))  # same cell id, same grade id
    put("duplicated", duplicated)
    split = kit.answered(release_a, answers={"square": "def _times(a, b):\n    return a * b"})
    index = split["cells"].index(kit.cell(split, "square_answer"))
    second = copy.deepcopy(split["cells"][index])
    second["id"], second["source"] = "split-2", "def square(x):\n    return _times(x, x)"
    split["cells"].insert(index + 1, second)
    put("split", split)
    celltype = kit.answered(release_a)
    test_cell = kit.cell(celltype, "square_tests")
    test_cell.update(cell_type="markdown")
    test_cell.pop("outputs", None)
    test_cell.pop("execution_count", None)
    put("celltype", celltype)
    points = kit.answered(release_a, wrong=("clip",))
    kit.cell(points, "clip_tests")["metadata"]["nbgrader"]["points"] = 100
    put("points", points)

    put("noisy", kit.answered(release_a, answers=NOISY))
    put("raises", kit.answered(release_a, answers={"square": "def square(x):\n    raise ValueError('not done')"}))
    put("cheat_patch", kit.answered(release_a, answers=CHEAT_PATCH))
    if isolation_mode().startswith("bwrap"):  # without the sandbox these would really read and overwrite
        put("cheat_read", kit.answered(release_a, answers={"square": cheat_read(course)}))
        put("cheat_write", kit.answered(release_a, answers={"square": cheat_write(course)}))
    put("memory", kit.answered(release_a, answers={"square": "hog = bytearray(64 * 2**30)\ndef square(x):\n    return x * x"}))

    release_b = course / "notebooks" / "lesson_b"
    put("good", kit.answered(release_b / "b_text.ipynb"), "b_text.ipynb", "lesson_b")
    put("good", kit.answered(release_b / "b_lists.ipynb"), "b_lists.ipynb", "lesson_b")
    put("missing", kit.answered(release_b / "b_text.ipynb"), "b_text.ipynb", "lesson_b")
    for name in ("b_text.ipynb", "b_lists.ipynb"):
        put("extra", kit.answered(release_b / name), name, "lesson_b")
    put("extra", kit.answered(release_b / "b_text.ipynb", wrong=("count_vowels",)), "scratch copy.ipynb", "lesson_b")
    return {"good": hashlib.sha256((sub / "good" / "lesson_a" / "lesson_a.ipynb").read_bytes()).hexdigest()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = kit.make_course(tmp_path_factory.mktemp("robust") / "course")
    kit.instructor(course, "release")
    hashes = build_class(course)
    run = kit.instructor(course, "autograde", "--cell-timeout=8", "--timeout=120", "--memory-mb=4096")
    report = json.loads((course / "grading_report.json").read_text())
    return course, report, hashes, run.stdout + run.stderr


def export(graded):
    """The CSV of `instructor export`, by (lesson, student)."""
    course = graded[0]
    if not (course / "grades.csv").exists():
        kit.instructor(course, "export")
    with open(course / "grades.csv", newline="") as handle:
        return {(r["assignment"], r["student_id"]): r for r in csv.DictReader(handle)}


def outcome(graded, student, lesson="lesson_a"):
    return graded[1][lesson][student]


def total(graded, student, lesson="lesson_a"):
    return kit.totals(graded[0], lesson)[student]


def test_every_student_is_in_the_report_and_the_gradebook(graded):
    course, report, _, log = graded
    students = {p.parent.name for p in (course / "submitted").glob("*/lesson_a")}
    assert set(report["lesson_a"]) == students
    assert students <= {s for (lesson, s) in export(graded) if lesson == "lesson_a"}
    assert total(graded, "good") == (6, 6)
    assert "graded" in log and "per submission" in log


def test_infinite_loop_times_out_scores_zero_and_the_rest_is_graded(graded):
    assert kit.cell_scores(graded[0], "lesson_a", "loop") == {"square_tests": (0, 2), "mean_tests": (3, 3), "clip_tests": (1, 1)}
    assert outcome(graded, "loop")["status"] == "graded"
    assert any("time limit" in note for note in outcome(graded, "loop")["notes"])


@pytest.mark.parametrize("student", ["exit", "segfault"])
def test_kernel_crash_is_reported_and_nothing_else_is_lost(graded, student):
    result = outcome(graded, student)
    assert result["status"] == "failed"
    assert "kernel died" in result["reason"]
    assert any(n.startswith("grading failed once (the kernel died") for n in result["notes"]), result["notes"]
    assert f"lesson_a {student}: grading failed (the kernel died" in graded[3]  # run twice before it is reported
    assert student not in kit.totals(graded[0], "lesson_a")  # no half-written submission in the gradebook
    assert total(graded, "good") == (6, 6) and total(graded, "noisy") == (6, 6)
    row = export(graded)[("lesson_a", student)]
    assert float(row["score"]) == 0 and "kernel died" in row["grading_status"]


@pytest.mark.parametrize("student, note", [("notjson", "not JSON"), ("empty", "empty file")])
def test_unreadable_files_score_zero_with_the_reason(graded, student, note):
    result = outcome(graded, student)
    assert result["status"] == "zero" and result["reason"] == "no usable notebook"
    assert any(note in n for n in result["notes"])
    assert total(graded, student) == (0, 6)


def test_an_older_notebook_format_is_converted_and_graded(graded):
    assert total(graded, "v3") == (6, 6)
    assert any("converted from nbformat 3" in n for n in outcome(graded, "v3")["notes"])


def test_a_wrong_file_name_is_recognised_by_its_cells(graded):
    assert total(graded, "wrongname") == (6, 6)
    assert "lesson_a (1).ipynb: graded as lesson_a.ipynb (wrong file name)" in outcome(graded, "wrongname")["notes"]


def test_missing_and_extra_notebooks(graded):
    assert total(graded, "missing", "lesson_b") == (2, 4)
    assert "b_lists.ipynb: missing, scores zero" in outcome(graded, "missing", "lesson_b")["notes"]
    assert total(graded, "extra", "lesson_b") == (4, 4)
    assert "scratch copy.ipynb: extra notebook, left out" in outcome(graded, "extra", "lesson_b")["notes"]


def test_tampering_gains_nothing_and_stops_nobody(graded):
    course = graded[0]
    assert kit.cell_scores(course, "lesson_a", "edited_test")["square_tests"] == (0, 2)  # the test was restored
    assert kit.cell_scores(course, "lesson_a", "deleted_test") == {
        "square_tests": (2, 2), "mean_tests": (3, 3), "clip_tests": (0, 1)}  # put back and run
    assert total(graded, "duplicated") == (6, 6)
    assert any("appears 2 times" in n for n in outcome(graded, "duplicated")["notes"])
    assert any("appears 2 times" in n for n in outcome(graded, "split")["notes"])
    assert total(graded, "split") == (6, 6)
    assert total(graded, "celltype") == (6, 6)  # the test cell is code again and ran
    assert kit.cell_scores(course, "lesson_a", "points")["clip_tests"] == (0, 1)  # points restored
    assert total(graded, "points") == (5, 6)


def test_stderr_noise_costs_nothing_but_errors_do(graded):
    assert total(graded, "noisy") == (6, 6)
    assert kit.cell_scores(graded[0], "lesson_a", "raises")["square_tests"] == (0, 2)


def test_redefined_checks_gain_nothing_and_are_flagged(graded):
    assert kit.cell_scores(graded[0], "lesson_a", "cheat_patch")["mean_tests"] == (0, 3)
    flags = outcome(graded, "cheat_patch")["flags"]
    assert any("math.isclose" in f and "not run" in f for f in flags)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded[0] / 'gradebook.db'}") as gb:
        assert all(nb.flagged for nb in gb.find_submission("lesson_a", "cheat_patch").notebooks)


def autograded_text(course, student):
    return (course / "autograded" / student / "lesson_a" / "lesson_a.ipynb").read_text()


NO_NAMESPACES = "file-system isolation needs bubblewrap and user namespaces; here only limits apply (README)"


def test_answers_cannot_read_solutions_or_gradebooks(graded):
    course = graded[0]
    if "cheat_read" not in graded[1]["lesson_a"]:
        pytest.skip(NO_NAMESPACES)
    text = autograded_text(course, "cheat_read")
    assert "LEAKED: nothing" in text, text
    assert outcome(graded, "cheat_read")["flags"]


def test_answers_cannot_touch_other_students_or_the_gradebook(graded):
    course, _, hashes, _ = graded
    if "cheat_write" not in graded[1]["lesson_a"]:
        pytest.skip(NO_NAMESPACES)
    victim = course / "submitted" / "good" / "lesson_a" / "lesson_a.ipynb"
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == hashes["good"]
    assert total(graded, "good") == (6, 6) and total(graded, "cheat_write") == (6, 6)
    wrote = autograded_text(course, "cheat_write").rsplit("WROTE: ", 1)[1].split("\\n")[0]  # the printed output
    assert str(victim) not in wrote and str(course / "gradebook.db") not in wrote, wrote  # relative: its private /tmp


def test_memory_limit_fails_the_cell_not_the_class(graded):
    assert kit.cell_scores(graded[0], "lesson_a", "memory")["square_tests"] == (0, 2)
    assert total(graded, "memory") == (4, 6)


def test_grading_a_crashed_student_again_loses_nothing(graded):
    course = graded[0]
    before = kit.totals(course, "lesson_a")
    kit.instructor(course, "autograde", "lesson_a", "--student", "segfault", "--cell-timeout=8")
    assert kit.totals(course, "lesson_a") == before
    assert json.loads((course / "grading_report.json").read_text())["lesson_a"]["segfault"]["status"] == "failed"
