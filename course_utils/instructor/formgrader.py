"""The formgrader's *Autograde* button, graded the way ``python -m course_utils.instructor autograde``
grades: pre-check, sandbox, bounded outputs (:func:`.autograde.grade_class`), not plain nbgrader.

nbgrader's formgrader calls ``NbGraderAPI.autograde``, which builds nbgrader's ``Autograde``
converter by name and runs it in the formgrader's own process, with the grader's rights and
no sandbox. nbgrader has no setting for that class, so the grader account's
``nbgrader_config.py`` (``deploy/nbgrader_config_grader.py``) calls :func:`install`, which puts
:class:`SandboxedAutograde` in its place. Everything else in the formgrader is nbgrader's own.
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.converters import Autograde


class SandboxedAutograde(Autograde):
    """One student's lesson (the formgrader always names both) through :func:`.autograde.grade_class`."""

    def start(self) -> None:
        from course_utils.instructor.autograde import grade_class

        lesson, student = self.coursedir.assignment_id, self.coursedir.student_id
        if not lesson or lesson == "*" or not student or student == "*":
            raise ValueError(f"the formgrader grades one student's lesson; got lesson {lesson!r}, student {student!r}")
        report = grade_class(Path(self.coursedir.root), [lesson], [student], workers=1, force=True,
                             db_url=self.coursedir.db_url, log=self.log.info)
        outcome = report.get(lesson, student)
        if outcome is None:
            raise FileNotFoundError(f"no submission of {student!r} for {lesson!r} in "
                                    f"{Path(self.coursedir.root) / 'submitted' / student / lesson}: collect it first")
        for flag in outcome.flags:
            self.log.warning("%s %s flagged for review: %s", lesson, student, flag)
        if outcome.status not in ("graded", "zero"):
            raise RuntimeError(f"{lesson} {student}: not graded ({outcome.status}): {outcome.reason}")
        self.log.info("%s %s: %s (isolation: %s)", lesson, student, outcome.status, outcome.isolation)


def install() -> None:
    """Make the formgrader (this process's ``NbGraderAPI``) grade through :class:`SandboxedAutograde`."""
    import nbgrader.apps.api as api

    api.Autograde = SandboxedAutograde
