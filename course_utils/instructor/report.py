"""``grading_report.json``: what happened to each submission, for ``status``, ``export`` and re-grading.

One :class:`Outcome` per lesson and student, and the last runs' timings. The file keeps its
format: ``{lesson: {student: {status, reason, notes, flags, seconds, fingerprint, isolation}},
"_runs": [...]}``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

REPORT = "grading_report.json"
RUNS = "_runs"  # the key of the runs in the file (no lesson name starts with "_")
KEEP_RUNS = 20


@dataclass
class Outcome:
    """One student's lesson: ``graded`` (by nbgrader), ``zero`` (nothing usable) or ``failed`` (not graded)."""

    status: str
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: str = ""        # of the submission and the lesson's source: unchanged means graded already
    isolation: str = ""          # bwrap | bwrap-same-uid | limits

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Run:
    submissions: int
    seconds: float
    workers: int
    isolation: str


@dataclass
class Report:
    outcomes: dict[str, dict[str, Outcome]] = field(default_factory=dict)   # lesson -> student -> outcome
    runs: list[Run] = field(default_factory=list)

    def get(self, lesson: str, student: str) -> Outcome | None:
        return self.outcomes.get(lesson, {}).get(student)

    def put(self, lesson: str, student: str, outcome: Outcome) -> None:
        self.outcomes.setdefault(lesson, {})[student] = outcome

    def items(self):
        """(lesson, student, outcome), sorted."""
        for lesson in sorted(self.outcomes):
            for student, outcome in sorted(self.outcomes[lesson].items()):
                yield lesson, student, outcome

    def add_run(self, run: Run) -> None:
        self.runs = [*self.runs, run][-KEEP_RUNS:]

    def to_json(self) -> dict:
        data: dict = {lesson: {s: asdict(o) for s, o in students.items()} for lesson, students in self.outcomes.items()}
        data[RUNS] = [asdict(run) for run in self.runs]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Report:
        outcomes = {lesson: {s: Outcome.from_json(o) for s, o in students.items()}
                    for lesson, students in data.items() if lesson != RUNS}
        return cls(outcomes, [Run(**run) for run in data.get(RUNS, [])])

    @classmethod
    def load(cls, course: Path) -> Report:
        path = course / REPORT
        return cls.from_json(json.loads(path.read_text())) if path.exists() else cls()

    def save(self, course: Path) -> None:
        """Write the report through a new temporary file (``mkstemp``: no fixed name to plant a link at)."""
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{REPORT}.", dir=course)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(self.to_json(), indent=1, sort_keys=True))
            os.replace(tmp, course / REPORT)
        except BaseException:
            os.unlink(tmp)
            raise
