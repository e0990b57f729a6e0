"""The autograder's tests tell right answers from the usual wrong ones.

For each variant in ``tests/variants/``, the lesson's set-up cell, the variant answer and
the exercise's full test cell (hidden tests included) run in one namespace, as nbgrader
runs them: right answers must pass without writing to stderr, wrong ones must fail.
"""
import contextlib
import io
import json
from pathlib import Path

import pytest

from course_utils import authoring
from tests.variants import Mutation, all_variants

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = all_variants()


def notebook_cells(lesson, framework):
    nb = next((ROOT / "solutions" / lesson).glob(f"*_{framework}.ipynb"))
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
             for c in code if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    return "".join(code[0]["source"]), by_id


def answer_source(answer, solution):
    if not isinstance(answer, Mutation):
        return answer
    for old, new in answer:
        assert old in solution, f"the mutation expects {old!r} in the solution; update tests/variants"
        solution = solution.replace(old, new)
    return solution


def run_exercise(lesson, framework, exercise, answer):
    """Run set-up, answer and test cell; return (error or None, what went to stderr)."""
    setup, cells = notebook_cells(lesson, framework)
    answer = answer_source(answer, cells[exercise])
    namespace = {"__name__": "__main__"}
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup, "setup", "exec"), namespace)
        exec(compile(answer, "answer", "exec"), namespace)
        with contextlib.redirect_stderr(stderr):
            try:
                exec(compile(cells[f"{exercise}_tests"], f"{exercise}_tests", "exec"), namespace)
            except Exception as error:  # noqa: BLE001  (any failure is a failed test cell)
                return error, stderr.getvalue()
    return None, stderr.getvalue()


CASES = [pytest.param(lesson, *variant, id=f"{lesson}-{variant[0]}-{variant[1]}-{variant[2]}")
         for lesson, variants in VARIANTS.items() for variant in variants]


@pytest.mark.parametrize("lesson,framework,exercise,name,answer,accepted", CASES)
def test_tests_accept_right_and_reject_wrong_answers(lesson, framework, exercise, name, answer, accepted):
    error, stderr = run_exercise(lesson, framework, exercise, answer)
    if accepted:
        assert error is None, f"a right answer ({name}) fails: {type(error).__name__}: {error}"
        assert stderr == "", f"the test cell writes to stderr, which nbgrader scores as a failure: {stderr[:500]}"
    else:
        assert error is not None, f"a wrong answer ({name}) passes the tests"


def test_every_lesson_has_a_variants_module():
    missing = sorted(set(authoring.lessons()) - set(VARIANTS))
    assert missing == [], f"add tests/variants/lesson_<lesson>.py for {missing}"


@pytest.mark.parametrize("lesson", VARIANTS)
def test_every_exercise_has_right_and_wrong_variants(lesson):
    for framework in ("pytorch", "tensorflow"):
        _, cells = notebook_cells(lesson, framework)
        exercises = {gid for gid in cells if f"{gid}_tests" in cells}
        covered = {(v[1], v[4]) for v in VARIANTS[lesson] if v[0] == framework}
        missing = sorted(e for e in exercises for ok in (True, False) if (e, ok) not in covered)
        assert missing == [], f"{framework}: exercises without right or wrong variants: {missing}"


@pytest.mark.parametrize("lesson", VARIANTS)
def test_the_solutions_pass_their_own_tests(lesson):
    for framework in ("pytorch", "tensorflow"):
        _, cells = notebook_cells(lesson, framework)
        for exercise in [gid for gid in cells if f"{gid}_tests" in cells]:
            error, stderr = run_exercise(lesson, framework, exercise, cells[exercise])
            assert error is None and stderr == "", f"{framework} {exercise}: {error} {stderr}"
