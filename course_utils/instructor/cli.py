"""The instructor's grading commands, thin over nbgrader's own apps and API.

    python -m course_utils.instructor release [LESSON ...]            solutions/ -> notebooks/ (+ gradebook)
    python -m course_utils.instructor collect FOLDER [--lesson L]     FOLDER/<student>/<lesson>/*.ipynb -> submitted/
    python -m course_utils.instructor zip-collect LESSON ZIP ...      nbgrader zip_collect, files <student>__<notebook>.ipynb
    python -m course_utils.instructor autograde [LESSON ...] [--student S] [--force] [--workers N]
    python -m course_utils.instructor status                          who was not graded, and why; flags
    python -m course_utils.instructor feedback [LESSON ...] [--student S] [--full]
    python -m course_utils.instructor export [--to grades.csv]        nbgrader export + a status column
    python -m course_utils.instructor summary [LESSON ...] [--csv F]  per exercise: mean score, how many failed

Run from the course root (or pass ``--course DIR``) inside the environment, e.g.
``python3 tools/course.py run python -m course_utils.instructor autograde 01_cnn``.
The modules behind it: :mod:`course_utils.instructor`.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
from pathlib import Path

from course_utils.instructor.autograde import grade_class
from course_utils.instructor.gradebook import course_settings
from course_utils.instructor.isolation import Limits
from course_utils.instructor.report import Report
from course_utils.instructor.runner import run_nbgrader

# <student>__<notebook>.ipynb anywhere in the zip; the student id may not contain "__" or "/".
ZIP_PATTERN = r"^(?:.*/)?(?P<student_id>[A-Za-z0-9][A-Za-z0-9._-]*?)__(?P<file_id>[^/]+\.ipynb)$"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def nbgrader(course: Path, *args: str) -> str:
    """Run one nbgrader command line in ``course`` (``nbgrader ARGS``, with the environment's bin/ on
    PATH for alembic) in a forked process, so that nbgrader is imported once; return its log."""
    code, log = run_nbgrader(course, list(args))
    if code != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{log[-3000:]}")
    return log


def db_args(args) -> list[str]:
    return [f"--db={args.db}"] if args.db else []


def cmd_release(args) -> int:
    course, source = args.course, course_settings(args.course).source_directory
    for lesson in args.lessons or sorted(p.name for p in (course / source).iterdir() if p.is_dir()):
        if not (course / source / lesson).is_dir():
            raise SystemExit(f"no lesson {lesson!r} in {course / source}")
        nbgrader(course, "generate_assignment", lesson, "--force", "--log-level=ERROR", *db_args(args))
        print(f"released {lesson} -> notebooks/{lesson}/ (gradebook updated)")
    return 0


def cmd_collect(args) -> int:
    """Copy a folder of <student>/<lesson>/* into submitted/, replacing what each student had there."""
    source, copied = Path(args.folder), 0
    for lesson_dir in sorted(p for p in source.glob("*/*") if p.is_dir()):
        student, lesson = lesson_dir.parent.name, lesson_dir.name
        if args.lesson and lesson != args.lesson:
            continue
        if not STUDENT_ID.match(student):
            print(f"skipped {lesson_dir}: {student!r} is not a usable student id", file=sys.stderr)
            continue
        target = args.course / "submitted" / student / lesson
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(lesson_dir, target)
        copied += 1
    print(f"collected {copied} submission(s) into submitted/")
    return 0 if copied else 1


def cmd_zip_collect(args) -> int:
    archive = args.course / "downloaded" / args.lesson / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        shutil.copy(path, archive / Path(path).name)
    log = nbgrader(args.course, "zip_collect", args.lesson, "--force", f"--FileNameCollectorPlugin.named_regexp={args.pattern}",
                   "--ZipCollectApp.extractor_plugin=course_utils.instructor.zipsafe.SafeExtractor")
    for line in log.splitlines():
        if "did not match" in line or "not collected:" in line:
            print(f"not collected: {line.split('not collected:')[-1].strip()}", file=sys.stderr)
    students = sorted(p.parent.name for p in (args.course / "submitted").glob(f"*/{args.lesson}"))
    print(f"collected {args.lesson} for {len(students)} student(s): {', '.join(students)}")
    return 0


def cmd_autograde(args) -> int:
    limits = Limits(cell_timeout=args.cell_timeout, task_timeout=args.timeout, memory_mb=args.memory_mb, cpu_s=args.cpu_s)
    report = grade_class(args.course, args.lessons, args.student, workers=args.workers, limits=limits,
                         force=args.force or bool(args.student), db_url=args.db, keep_sandboxes=args.keep_sandboxes)
    failed = [(lesson, student) for lesson, student, outcome in report.items() if outcome.status == "failed"]
    if failed:
        print(f"{len(failed)} submission(s) not graded: see `python -m course_utils.instructor status`", file=sys.stderr)
    return 0


def cmd_status(args) -> int:
    for lesson, student, outcome in Report.load(args.course).items():
        if outcome.status == "graded" and not outcome.notes and not outcome.flags and not args.all:
            continue
        print(f"{lesson}\t{student}\t{outcome.status}\t{outcome.reason}")
        for note in outcome.notes:
            print(f"\t\tnote: {note}")
        for flag in outcome.flags:
            print(f"\t\tflagged for review: {flag}")
    return 0


def cmd_feedback(args) -> int:
    extra = ["--HideHiddenTests.enabled=False", "--CourseDirectory.feedback_directory=feedback_full"] if args.full else []
    folder = "feedback_full" if args.full else "feedback"
    for lesson in args.lessons or sorted({p.name for p in (args.course / "autograded").glob("*/*") if p.is_dir()}):
        student = [f"--student={args.student}"] if args.student else []
        nbgrader(args.course, "generate_feedback", lesson, "--force", *student, *extra, *db_args(args))
        print(f"feedback for {lesson} in {folder}/<student>/{lesson}/")
    return 0


def cmd_export(args) -> int:
    target = Path(args.to)
    target = target if target.is_absolute() else args.course / target
    nbgrader(args.course, "export", f"--to={target}", *db_args(args))
    report = Report.load(args.course)
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fields = list(rows[0].keys()) + ["grading_status"] if rows else []
    for row in rows:
        outcome = report.get(row["assignment"], row["student_id"])
        if outcome is None:
            row["grading_status"] = "not submitted"
            continue
        reason = f": {outcome.reason}" if outcome.reason else ""
        row["grading_status"] = f"{outcome.status}{reason}{' (flagged)' if outcome.flags else ''}"
    with open(target, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"exported {len(rows)} row(s) to {target}")
    return 0


def exercise_summary(db_url: str, lessons: list[str] | None = None) -> list[dict]:
    """One row per autograded test cell: lesson, notebook, cell, points, graded, mean, failed, zero."""
    from nbgrader.api import Grade, Gradebook

    rows = []
    with Gradebook(db_url) as gb:
        for assignment in gb.assignments:
            if lessons and assignment.name not in lessons:
                continue
            for notebook in assignment.notebooks:
                for cell in notebook.grade_cells:
                    if cell.cell_type != "code":
                        continue
                    scores = [g.score for g in gb.db.query(Grade).filter(Grade.cell_id == cell.id)
                              if g.auto_score is not None or g.manual_score is not None]
                    rows.append({"lesson": assignment.name, "notebook": notebook.name, "exercise": cell.name,
                                 "points": cell.max_score, "graded": len(scores),
                                 "mean": round(sum(scores) / len(scores), 3) if scores else None,
                                 "failed": sum(s < cell.max_score for s in scores), "zero": sum(s == 0 for s in scores)})
    return rows


def cmd_summary(args) -> int:
    db_url = args.db or course_settings(args.course).db_url
    rows = exercise_summary(db_url, args.lessons)
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["lesson"])
            writer.writeheader()
            writer.writerows(rows)
    print(f"{'lesson':<14} {'notebook':<24} {'exercise':<24} {'points':>6} {'graded':>6} {'mean':>6} {'failed':>6}")
    for r in sorted(rows, key=lambda r: (r["lesson"], -(r["failed"] / r["graded"] if r["graded"] else 0))):
        mean = "-" if r["mean"] is None else f"{r['mean']:.2f}"
        print(f"{r['lesson']:<14} {r['notebook']:<24} {r['exercise']:<24} {r['points']:>6g} {r['graded']:>6} {mean:>6} "
              f"{r['failed']:>6}")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m course_utils.instructor", description=__doc__.split("\n")[0])
    main.add_argument("--course", type=Path, default=Path("."), help="the course root (nbgrader_config.py); default: .")
    main.add_argument("--db", help="gradebook URL (default: the course's db_url, sqlite:///gradebook.db)")
    sub = main.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="nbgrader generate_assignment for one lesson or all")
    p.add_argument("lessons", nargs="*")
    p.set_defaults(run=cmd_release)
    p = sub.add_parser("collect", help="copy FOLDER/<student>/<lesson>/* into submitted/")
    p.add_argument("folder")
    p.add_argument("--lesson")
    p.set_defaults(run=cmd_collect)
    p = sub.add_parser("zip-collect", help="nbgrader zip_collect of downloaded zips or files")
    p.add_argument("lesson")
    p.add_argument("files", nargs="+")
    p.add_argument("--pattern", default=ZIP_PATTERN, help="named_regexp with student_id and file_id groups")
    p.set_defaults(run=cmd_zip_collect)
    p = sub.add_parser("autograde", help="grade each submission in its own sandbox")
    p.add_argument("lessons", nargs="*")
    p.add_argument("--student", action="append", help="only this student (again: implies --force); repeatable")
    p.add_argument("--force", action="store_true", help="grade unchanged submissions again")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--cell-timeout", type=int, default=120, help="seconds per cell (default 120)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per student and lesson (default 900)")
    p.add_argument("--memory-mb", type=int, default=8192, help="address-space limit of a kernel")
    p.add_argument("--cpu-s", type=int, default=1800, help="CPU-time limit of a kernel")
    p.add_argument("--keep-sandboxes", action="store_true", help="keep the sandboxes (debugging)")
    p.set_defaults(run=cmd_autograde)
    p = sub.add_parser("status", help="submissions not graded, notes and flags")
    p.add_argument("--all", action="store_true")
    p.set_defaults(run=cmd_status)
    p = sub.add_parser("feedback", help="HTML feedback without the hidden tests (--full: with them)")
    p.add_argument("lessons", nargs="*")
    p.add_argument("--student")
    p.add_argument("--full", action="store_true", help="instructors' version, hidden tests shown, in feedback_full/")
    p.set_defaults(run=cmd_feedback)
    p = sub.add_parser("export", help="grades to CSV (nbgrader export) with a grading_status column")
    p.add_argument("--to", default="grades.csv")
    p.set_defaults(run=cmd_export)
    p = sub.add_parser("summary", help="per exercise: mean score and how many failed")
    p.add_argument("lessons", nargs="*")
    p.add_argument("--csv")
    p.set_defaults(run=cmd_summary)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.course = args.course.resolve()
    return args.run(args)

