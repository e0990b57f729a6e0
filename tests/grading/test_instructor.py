"""The instructor's workflow end to end on a fixture lesson, through `python -m course_utils.instructor`:
release, collect a folder, zip-collect downloads, autograde, grade one student again, feedback
(hidden tests hidden by default, shown with --full), export to CSV, the per-exercise summary."""
import csv
import html
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402


def page_text(path: Path) -> str:
    """The visible text of an HTML page (syntax highlighting splits code into many tags)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


HIDDEN = ("square(-2) == 4", "type(square(2)) is int", "mean([1, 2]) == 1.5", "BEGIN HIDDEN TESTS")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("instructor")
    course = kit.make_course(root / "course", lessons=("lesson_a",))
    kit.instructor(course, "release", "lesson_a")
    release = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
    assert release.exists() and "BEGIN SOLUTION" not in release.read_text()

    incoming = root / "incoming"
    kit.write(kit.answered(release), incoming / "alice" / "lesson_a" / "lesson_a.ipynb")
    kit.write(kit.answered(release, wrong=("mean",)), incoming / "bob" / "lesson_a" / "lesson_a.ipynb")
    out = kit.instructor(course, "collect", str(incoming)).stdout
    assert "collected 2 submission(s)" in out

    archive = root / "downloads.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lesson_a/carol__lesson_a.ipynb", json.dumps(kit.answered(release, wrong=("square",))))
        zf.writestr("lesson_a/dave__lesson_a.ipynb", json.dumps(kit.answered(release, blank=("clip",))))
        zf.writestr("lesson_a/readme.txt", "not a submission")
    out = kit.instructor(course, "zip-collect", "lesson_a", str(archive)).stdout
    assert "carol" in out and "dave" in out

    log = kit.instructor(course, "autograde", "--cell-timeout=20").stdout
    return course, log


def test_collected_and_zip_collected_students_are_graded(course):
    course, log = course
    assert (course / "submitted" / "carol" / "lesson_a" / "lesson_a.ipynb").exists()
    assert kit.totals(course, "lesson_a") == {"alice": (6, 6), "bob": (3, 6), "carol": (4, 6), "dave": (5, 6)}
    assert "per submission" in log


def test_one_student_graded_again(course):
    course, _ = course
    report = json.loads((course / "grading_report.json").read_text())["lesson_a"]
    release = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
    kit.write(kit.answered(release), course / "submitted" / "bob" / "lesson_a" / "lesson_a.ipynb")
    kit.instructor(course, "autograde", "lesson_a", "--student", "bob", "--cell-timeout=20")
    assert kit.totals(course, "lesson_a")["bob"] == (6, 6)
    again = json.loads((course / "grading_report.json").read_text())["lesson_a"]
    assert again["bob"]["fingerprint"] != report["bob"]["fingerprint"]
    assert {s: again[s] for s in ("alice", "carol", "dave")} == {s: report[s] for s in ("alice", "carol", "dave")}


def test_feedback_shows_results_but_not_hidden_tests(course):
    course, _ = course
    kit.instructor(course, "feedback", "lesson_a")
    text = page_text(course / "feedback" / "carol" / "lesson_a" / "lesson_a.html")
    assert [hidden for hidden in HIDDEN if hidden in text] == []
    assert "assert square(3) == 9" in text  # the visible test
    assert "AssertionError" in text and "hidden tests: not shown" in text
    assert re.search(r"Score:\s*0(\.0)?\s*/\s*2", text), "the failed exercise's score"


def test_full_feedback_for_instructors_keeps_the_hidden_tests(course):
    course, _ = course
    kit.instructor(course, "feedback", "lesson_a", "--full")
    assert "square(-2) == 4" in page_text(course / "feedback_full" / "carol" / "lesson_a" / "lesson_a.html")


def test_export_and_summary(course):
    course, _ = course
    kit.instructor(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        rows = {r["student_id"]: r for r in csv.DictReader(handle)}
    assert {s: float(r["score"]) for s, r in rows.items()} == {"alice": 6, "bob": 6, "carol": 4, "dave": 5}
    assert all(r["grading_status"] == "graded" for r in rows.values())
    out = kit.instructor(course, "summary", "--csv", "summary.csv").stdout
    with open(course / "summary.csv", newline="") as handle:
        summary = {r["exercise"]: r for r in csv.DictReader(handle)}
    assert summary["square_tests"]["failed"] == "1" and summary["clip_tests"]["failed"] == "1"
    assert summary["mean_tests"]["failed"] == "0" and float(summary["square_tests"]["mean"]) == 1.5
    assert "square_tests" in out and "failed" in out
