"""How much a second grading worker speeds up autograding, on the fixture lesson of the tests.

    python3 tools/course.py run python benchmarks/grading_workers.py [--students 8]

Builds a throw-away course (tests/fixtures/grading), submits ``--students`` correct answers to
``lesson_a`` and grades them with ``python -m course_utils.instructor autograde`` once with one
worker and once with two, through the same sandbox as real grading. Prints both times, the
speed-up and the time per submission; checks that both runs give every student the same score.
Run it on an otherwise idle machine: the figures mean nothing while other work shares the cores.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "grading"))
import kit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        course = kit.make_course(Path(tmp) / "course", lessons=("lesson_a",))
        kit.instructor(course, "release", "lesson_a")
        release = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
        students = [f"s{i:02d}" for i in range(args.students)]
        for student in students:
            kit.write(kit.answered(release), course / "submitted" / student / "lesson_a" / "lesson_a.ipynb")
        times, scores = {}, {}
        for workers in (1, 2):
            log = kit.instructor(course, "autograde", "lesson_a", "--force", f"--workers={workers}",
                                 "--cell-timeout=30").stdout
            times[workers] = float(re.search(r"graded \d+ submission\(s\) in ([0-9.]+) s", log)[1])
            scores[workers] = kit.totals(course, "lesson_a")
        if scores[1] != scores[2]:
            sys.exit(f"the two runs disagree: {scores[1]} vs {scores[2]}")
    n = args.students
    print(f"{n} submissions: 1 worker {times[1]:.1f} s ({times[1] / n:.2f} s each), "
          f"2 workers {times[2]:.1f} s ({times[2] / n:.2f} s each), speed-up {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
