"""Autograde a class one submission at a time, each in a throw-away course (:mod:`.sandbox`).

nbgrader's own ``autograde`` does the grading; this module decides what it sees and keeps
the books: every submission is pre-checked (:mod:`.precheck`), graded by nbgrader in its own
sandbox and child process, at most ``workers`` at a time with a wall-clock limit each
(:mod:`.runner`), and merged into the class gradebook by this process alone, one submission
after another (:mod:`.gradebook`), so a crash or a timeout loses nothing already graded.

Results land in the class gradebook, ``autograded/<student>/<lesson>/`` (for feedback) and
``grading_report.json`` (:mod:`.report`; grading again skips unchanged submissions).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from course_utils.instructor.audit import REFUSED
from course_utils.instructor.gradebook import (
    course_settings,
    ensure_student,
    expected_notebooks,
    merge_into_gradebook,
    read_sandbox_grades,
    unreleased_lessons,
)
from course_utils.instructor.guard import CHANGED_DURING_TEST, MIME, NO_RECEIPT
from course_utils.instructor.isolation import WHAT_IS_NOT_DEFENDED, Limits, isolation_mode
from course_utils.instructor.precheck import Reference, fingerprint, precheck
from course_utils.instructor.report import Outcome, Report, Run
from course_utils.instructor.runner import run_nbgrader_logged
from course_utils.instructor.sandbox import build_sandbox, course_config, data_locations, make_template, sandbox_env

TRIES = 2  # a grading that fails (nbgrader's error, a dead kernel) is run once more before it is reported
DEATH = re.compile(r"DeadKernelError|Kernel died|kernel.*(died|dead|restart)", re.IGNORECASE)


def grade_class(course: Path, lessons: list[str] | None = None, students: list[str] | None = None, *,
                workers: int = 2, limits: Limits | None = None, force: bool = False, db_url: str | None = None,
                keep_sandboxes: bool = False, log=print) -> Report:
    """Autograde every new or changed submission in ``course/submitted`` (or the selected ones); return the report."""
    course = course.resolve()
    limits = limits or Limits()
    settings = course_settings(course)
    db_url = db_url or settings.db_url
    submitted = course / "submitted"
    all_lessons = sorted({p.name for p in submitted.glob("*/*") if p.is_dir()})
    lessons = [x for x in (lessons or all_lessons) if x in all_lessons]
    isolation = isolation_mode()
    if WHAT_IS_NOT_DEFENDED[isolation]:
        log(f"WARNING: isolation {isolation}: {WHAT_IS_NOT_DEFENDED[isolation]} (README, 'Threat model of autograding')")
    config = course_config(course)  # read once, before any kernel starts
    missing = unreleased_lessons(db_url, lessons)
    if missing:
        raise SystemExit(f"not released into the gradebook ({db_url}): {', '.join(missing)}; run `release` first")
    report = Report.load(course)
    data = data_locations(course)
    base = Path(tempfile.mkdtemp(prefix="grading-"))
    os.chmod(base, 0o700)
    started, timings = time.monotonic(), []
    try:
        tasks, templates = [], {}
        for lesson in lessons:
            for folder in sorted(p for p in submitted.glob(f"*/{lesson}") if p.is_dir()):
                student = folder.parent.name
                if students and student not in students:
                    continue
                digest = fingerprint(folder, course / settings.source_directory / lesson)
                previous = report.get(lesson, student)
                if not force and previous and previous.fingerprint == digest and previous.status in ("graded", "zero"):
                    log(f"{lesson} {student}: unchanged since it was graded, skipped")
                    continue
                if lesson not in templates:
                    template = make_template(course, lesson, base, settings.source_directory, config)
                    work = template.parent
                    release = next(p for p in work.glob(f"*/{lesson}") if p.parent.name != settings.source_directory)
                    reference = Reference.from_folders(release, work / settings.source_directory / lesson)
                    templates[lesson] = template, expected_notebooks(template, lesson), reference
                tasks.append((lesson, student, folder, *templates[lesson], digest))
        started = time.monotonic()  # the grading itself, after the lessons' templates
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="grader") as pool:
            running = {}

            def start(lesson, student, notebooks, template, outcome, tries):
                sandbox = build_sandbox(base, course, lesson, student, notebooks, template, limits, list(data.values()),
                                        config=config, isolation=isolation)
                env = sandbox_env(sandbox, isolation, data)
                future = pool.submit(grade_in_sandbox, sandbox, lesson, student, env, limits.task_timeout)
                running[future] = (lesson, student, sandbox, outcome, notebooks, template, tries)

            for lesson, student, folder, template, expected, reference, digest in tasks:
                notebooks, notes, flags = precheck(folder, expected, reference)
                outcome = Outcome("graded", notes=notes, flags=flags, fingerprint=digest, isolation=isolation)
                if not notebooks:
                    outcome.status, outcome.reason = "zero", "no usable notebook"
                    merge_into_gradebook(db_url, lesson, student, None, flags)
                    report.put(lesson, student, outcome)
                    report.save(course)
                    log(f"{lesson} {student}: zero ({'; '.join(notes)})")
                    continue
                start(lesson, student, notebooks, template, outcome, 1)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    lesson, student, sandbox, outcome, notebooks, template, tries = running.pop(future)
                    code, seconds = future.result()
                    outcome.seconds = round(outcome.seconds + seconds, 2)
                    timed_out = code is None
                    if timed_out:
                        code, outcome.reason = -1, f"grading took longer than {limits.task_timeout} s and was stopped"
                    grades, log_text = sandbox_grades(sandbox, lesson, student, code)
                    if not grades and not timed_out and tries < TRIES:
                        # a failure that is not the student's (a kernel that could not start on a loaded machine)
                        # should not cost a grade; one that is (a crash) fails again, and is then reported
                        reason = failure_reason(log_text, code)
                        try:
                            start(lesson, student, notebooks, template, outcome, tries + 1)
                        except Exception as error:  # noqa: BLE001 - no second sandbox (a full disk): report the first
                            outcome.notes.append(f"grading failed ({reason}) and could not be run again: {error}")
                        else:
                            outcome.notes.append(f"grading failed once ({reason}) and was run again")
                            log(f"{lesson} {student}: grading failed ({reason}); running it again")
                            if not keep_sandboxes:
                                shutil.rmtree(sandbox, ignore_errors=True)
                            continue
                    timings.append(outcome.seconds)
                    finish(course, db_url, lesson, student, sandbox, outcome, code, grades, log_text, report, log)
                    if not keep_sandboxes:
                        shutil.rmtree(sandbox, ignore_errors=True)
    finally:
        if not keep_sandboxes:
            shutil.rmtree(base, ignore_errors=True)
    elapsed = time.monotonic() - started
    if WHAT_IS_NOT_DEFENDED[isolation]:
        log(f"WARNING: isolation {isolation}: {WHAT_IS_NOT_DEFENDED[isolation]}")
    if timings:
        log(f"graded {len(timings)} submission(s) in {elapsed:.1f} s with {workers} worker(s): "
            f"{elapsed / len(timings):.2f} s per submission (each {sum(timings) / len(timings):.2f} s on average); "
            f"isolation: {isolation}")
    report.add_run(Run(submissions=len(timings), seconds=round(elapsed, 2), workers=workers, isolation=isolation))
    report.save(course)
    return report


def grade_in_sandbox(sandbox: Path, lesson: str, student: str, env: dict[str, str], timeout: float) -> tuple[int | None, float]:
    """``nbgrader autograde`` of one student's lesson in its sandbox: (exit code or None after ``timeout``, seconds)."""
    t0 = time.monotonic()
    argv = ["autograde", lesson, f"--student={student}", "--force", "--log-level=INFO"]
    code = run_nbgrader_logged(sandbox, argv, env, sandbox / "autograde.log", timeout)
    return code, round(time.monotonic() - t0, 2)


def guard_flags(folder: Path, names) -> list[str]:
    """What the grading kernel (:mod:`.guard`) put back before or during a test, and what its audit hook
    (:mod:`.audit`) refused, from the graded notebooks."""
    found = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if not path.is_file() or path.is_symlink():
            continue
        nb = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        for cell in nb.get("cells", []):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", cell.get("id", "?"))
            for out in cell.get("outputs", []):
                data = out.get("data", {}).get(MIME) if isinstance(out.get("data"), dict) else None
                if isinstance(data, dict) and isinstance(data.get("flags"), list):
                    found.append(f"{name}.ipynb: before test {gid!r} the grader put back: "
                                 + "; ".join(str(f) for f in data["flags"][:8]))
                elif out.get("output_type") == "error" and out.get("ename") == "GradingRefused" and str(
                        out.get("evalue", "")).startswith((CHANGED_DURING_TEST, NO_RECEIPT)):
                    found.append(f"{name}.ipynb: test {gid!r}: {str(out.get('evalue'))[:300]}")
                elif out.get("output_type") == "error" and out.get("ename") == "PermissionError" and str(
                        out.get("evalue", "")).startswith(REFUSED):
                    found.append(f"{name}.ipynb: cell {gid!r}: refused at run time: {str(out.get('evalue'))[:300]}")
    return found


def sandbox_grades(sandbox: Path, lesson: str, student: str, code: int) -> tuple[dict, str]:
    """(the grades nbgrader recorded in the sandbox, or {} when it did not grade every notebook; its log)."""
    log = sandbox / "autograde.log"
    log_text = log.read_text(errors="replace") if log.exists() else ""
    if code != 0 or re.search(r"There was an error processing assignment|Failed to autograde|while processing", log_text):
        return {}, log_text
    return read_sandbox_grades(sandbox, lesson, student), log_text


def failure_reason(log_text: str, code: int) -> str:
    if DEATH.search(log_text):
        return "the kernel died while running the notebook (a hard exit, a crash or the memory limit)"
    if "CellTimeoutError" in log_text or "Timeout waiting for" in log_text:
        return "a cell could not be interrupted after its time limit"
    lines = [line for line in log_text.splitlines() if "[ERROR]" in line or "Error" in line]
    return (lines[-1].strip() if lines else f"nbgrader exited with {code}")[:300]


def finish(course: Path, db_url: str, lesson: str, student: str, sandbox: Path, outcome: Outcome, code: int,
           grades: dict, log_text: str, report: Report, log) -> None:
    """Move one finished sandbox's result (:func:`sandbox_grades`) into the class: gradebook, autograded/, report."""
    if not grades:
        outcome.status = "failed"
        outcome.reason = outcome.reason or failure_reason(log_text, code)
        ensure_student(db_url, student)  # listed in the export; earlier grades of the lesson are kept
    else:
        graded = sandbox / "autograded" / student / lesson
        outcome.flags = sorted(set(outcome.flags) | set(guard_flags(graded, grades)))
        merge_into_gradebook(db_url, lesson, student, grades, outcome.flags)
        target = course / "autograded" / student / lesson
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        for name in grades:  # the graded notebooks only: regular files, never a link
            source = graded / f"{name}.ipynb"
            if source.is_file() and not source.is_symlink():
                shutil.copyfile(source, target / source.name, follow_symlinks=False)
        if any("CellTimeoutError" in p.read_text(errors="replace") for p in target.glob("*.ipynb")):
            outcome.notes.append("a cell ran past its time limit and was interrupted (scored as failed)")
    report.put(lesson, student, outcome)
    report.save(course)
    extra = f": {outcome.reason}" if outcome.reason else ""
    flagged = f" [flagged: {'; '.join(outcome.flags)}]" if outcome.flags else ""
    log(f"{lesson} {student}: {outcome.status}{extra} ({outcome.seconds:.1f} s){flagged}")
