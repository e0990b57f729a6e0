"""A class of 12 students over the two fixture lessons, graded in one command (24 submissions).

Students cycle through correct, partly correct, empty (the untouched release) and broken
(not JSON) submissions. Every student must appear in the export with the expected score;
grading again must change nothing; the time per submission is printed (run with -s to see it)
and kept in grading_report.json. The speed-up of a second worker is a measurement, not a test:
benchmarks/grading_workers.py.
"""
import csv
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

STUDENTS = 12  # 3 of each kind; the throughput is measured in benchmarks/grading_workers.py
KINDS = ["correct", "partial", "empty", "broken"]
WRONG = {"lesson_a": ("mean",), "lesson_b": ("running_sum",)}


def expected_score(kind: str, lesson: str) -> float:
    exercises = [e for names in kit.LESSONS[lesson].values() for e in names]
    if kind == "correct":
        return kit.score(exercises)
    if kind == "partial":
        return kit.score(exercises, wrong=WRONG[lesson])
    return 0


def make_class(course: Path) -> dict:
    expected = {}
    for i in range(STUDENTS):
        student, kind = f"s{i:02d}", KINDS[i % len(KINDS)]
        for lesson, notebooks in kit.LESSONS.items():
            for name in notebooks:
                release = course / "notebooks" / lesson / f"{name}.ipynb"
                target = course / "submitted" / student / lesson / f"{name}.ipynb"
                if kind == "broken":
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text('{"cells": [')
                elif kind == "empty":
                    kit.write(json.loads(release.read_text()), target)
                else:
                    kit.write(kit.answered(release, wrong=WRONG[lesson] if kind == "partial" else ()), target)
            expected[(lesson, student)] = expected_score(kind, lesson)
    return expected


def export(course: Path) -> dict:
    kit.instructor(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        return {(r["assignment"], r["student_id"]): r for r in csv.DictReader(handle)}


def why_different(course: Path, log: str, keys: set) -> str:
    """What the grading said about these (lesson, student): its log lines and the report's outcome."""
    report = json.loads((course / "grading_report.json").read_text())
    lines = [line for line in log.splitlines() if any(line.startswith(f"{lesson} {student}:") for lesson, student in keys)]
    outcomes = {f"{lesson} {student}": report.get(lesson, {}).get(student) for lesson, student in sorted(keys)}
    return "\n".join(["log:", *lines, f"report: {json.dumps(outcomes, indent=1)}"])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = kit.make_course(tmp_path_factory.mktemp("scale") / "course")
    kit.instructor(course, "release")
    expected = make_class(course)
    start = time.monotonic()
    first = kit.instructor(course, "autograde", "--workers=2", "--cell-timeout=30")
    seconds = time.monotonic() - start
    print(f"\n[scale] {len(expected)} submissions graded in {seconds:.1f} s (2 workers): "
          f"{seconds / len(expected):.2f} s per submission\n{first.stdout.splitlines()[-1]}")
    return course, expected, first.stdout, export(course)


def test_every_student_has_the_expected_score(graded):
    course, expected, log, rows = graded
    got = {key: float(rows[key]["score"]) for key in expected}
    assert got == expected, why_different(course, log, {key for key in expected if got[key] != expected[key]})
    statuses = {rows[key]["grading_status"].split(":")[0] for key in expected}
    assert statuses == {"graded", "zero"}
    assert "per submission" in log


def test_grading_again_changes_nothing(graded):
    course, expected, _, rows = graded
    gradebook = (course / "gradebook.db").read_bytes()
    again = kit.instructor(course, "autograde", "--workers=2").stdout
    graded_again = [line for line in again.splitlines() if line.startswith(("lesson_a ", "lesson_b "))
                    and not line.endswith("unchanged since it was graded, skipped")]
    assert again.count("unchanged since it was graded, skipped") == len(expected), graded_again
    assert (course / "gradebook.db").read_bytes() == gradebook
    assert export(course) == rows

