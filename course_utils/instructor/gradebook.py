"""The course's nbgrader settings and the gradebooks, through nbgrader's API.

Only the grading process writes the class gradebook, one submission after another
(:func:`merge_into_gradebook`), so a crash or a timeout loses nothing already graded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CourseSettings:
    db_url: str            # the class gradebook
    source_directory: str  # nbgrader's source folder (the course's: solutions)


def course_settings(course: Path) -> CourseSettings:
    """The gradebook URL and source folder as nbgrader reads them from the course's nbgrader_config.py."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config() \
        if (course / "nbgrader_config.py").exists() else None
    coursedir = CourseDirectory(config=config) if config else CourseDirectory()
    coursedir.root = str(course)
    return CourseSettings(db_url=coursedir.db_url, source_directory=coursedir.source_directory)


def unreleased_lessons(db_url: str, lessons: list[str]) -> list[str]:
    """The lessons of ``lessons`` that the gradebook does not know (never released)."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        known = {a.name for a in gb.assignments}
    return [lesson for lesson in lessons if lesson not in known]


def expected_notebooks(template_db: Path, lesson: str) -> dict[str, set[str]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{template_db}") as gb:
        return {nb.name: {c.name for c in nb.grade_cells} | {c.name for c in nb.solution_cells}
                for nb in gb.find_assignment(lesson).notebooks}


def read_sandbox_grades(sandbox: Path, lesson: str, student: str) -> dict:
    """{notebook: {"grades": {name: (auto_score, needs_manual)}, "comments": {...}}} or {} if nbgrader recorded nothing."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{sandbox / 'gradebook.db'}") as gb:
        try:
            submission = gb.find_submission(lesson, student)
        except MissingEntry:
            return {}
        result = {}
        for nb in submission.notebooks:
            result[nb.name] = {"grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                               "comments": {c.name: c.auto_comment for c in nb.comments},
                               "timestamp": submission.timestamp}
        return result


def merge_into_gradebook(db_url: str, lesson: str, student: str, grades: dict | None, flags: list[str]) -> None:
    """Write one student's lesson into the class gradebook through nbgrader's API.

    ``grades`` None: give every grade of the lesson zero (nothing usable was submitted).
    """
    import warnings

    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes from nbgrader's add_submission
        gb.update_or_create_student(student)
        try:
            submission = gb.find_submission(lesson, student)
        except MissingEntry:
            submission = gb.add_submission(lesson, student)
        for nb in submission.notebooks:
            got = (grades or {}).get(nb.name)
            if got and got["timestamp"] is not None:
                submission.timestamp = got["timestamp"]
            for grade in nb.grades:
                score, manual = got["grades"].get(grade.name, (0, False)) if got else (0, False)
                grade.auto_score = score if score is not None or manual else 0
                grade.needs_manual_grade = bool(manual)
            for comment in nb.comments:
                if got:
                    comment.auto_comment = got["comments"].get(comment.name)
            nb.flagged = bool(flags)
        gb.db.commit()


def ensure_student(db_url: str, student: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
