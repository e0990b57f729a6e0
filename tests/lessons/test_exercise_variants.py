"""The autograder's tests tell right answers from the usual wrong ones.

For each variant in ``tests/variants/``, the lesson's set-up cell, the variant answer and
the exercise's full test cell (hidden tests included) run in one namespace, as nbgrader
runs them: right answers must pass without writing to stderr, wrong ones must fail.
"""
import json

import pytest

from course_utils.instructor import authoring
from tests.harness import FRAMEWORKS, ROOT, exercises, notebook_cells, run_exercise
from tests.variants import Mutation, all_variants

VARIANTS = all_variants()


def answer_source(answer, solution):
    if not isinstance(answer, Mutation):
        return answer
    for old, new in answer:
        assert old in solution, f"the mutation expects {old!r} in the solution; update tests/variants"
        solution = solution.replace(old, new)
    return solution


CASES = [pytest.param(lesson, *variant, id=f"{lesson}-{variant[0]}-{variant[1]}-{variant[2]}")
         for lesson, variants in VARIANTS.items() for variant in variants]


@pytest.mark.parametrize("lesson,framework,exercise,name,answer,accepted", CASES)
def test_tests_accept_right_and_reject_wrong_answers(lesson, framework, exercise, name, answer, accepted):
    _, cells = notebook_cells(lesson, framework)
    error, stderr = run_exercise(lesson, framework, exercise, answer_source(answer, cells[exercise]))
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
    for framework in FRAMEWORKS:
        covered = {(v[1], v[4]) for v in VARIANTS[lesson] if v[0] == framework}
        missing = sorted(e for e in exercises(lesson, framework) for ok in (True, False) if (e, ok) not in covered)
        assert missing == [], f"{framework}: exercises without right or wrong variants: {missing}"


@pytest.mark.parametrize("lesson", VARIANTS)
def test_the_released_stubs_fail_every_test(lesson):
    """The blank release scores nothing, exercise by exercise (the round trip grades one notebook of it)."""
    for framework in FRAMEWORKS:
        (release,) = (ROOT / "notebooks" / lesson).glob(f"*_{framework}.ipynb")
        stubs = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in json.loads(release.read_text())["cells"]
                 if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")}
        for exercise in exercises(lesson, framework):
            error, _ = run_exercise(lesson, framework, exercise, stubs[exercise])
            assert error is not None, f"{framework} {exercise}: the released stub passes its tests"


@pytest.mark.parametrize("lesson", VARIANTS)
def test_the_solutions_pass_their_own_tests(lesson):
    for framework in FRAMEWORKS:
        _, cells = notebook_cells(lesson, framework)
        for exercise in exercises(lesson, framework):
            error, stderr = run_exercise(lesson, framework, exercise, cells[exercise])
            assert error is None and stderr == "", f"{framework} {exercise}: {error} {stderr}"
