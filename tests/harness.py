"""How the tests read a lesson's notebooks: the conventions every lesson follows.

* A lesson ``NN_topic`` has one solution notebook per framework in ``solutions/NN_topic/``,
  named ``<topic>_pytorch.ipynb`` and ``<topic>_tensorflow.ipynb``.
* The first code cell is the set-up cell (imports, seeds, the profile); it runs before any
  exercise.
* An exercise is an answer cell with nbgrader grade id ``<exercise>`` followed by a locked
  test cell with grade id ``<exercise>_tests`` (visible tests, then the hidden ones).

Test modules import these helpers from here, never from one another.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("pytorch", "tensorflow")


def solution_notebook(lesson: str, framework: str) -> Path:
    """solutions/<lesson>/<topic>_<framework>.ipynb."""
    found = sorted((ROOT / "solutions" / lesson).glob(f"*_{framework}.ipynb"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one solutions/{lesson}/*_{framework}.ipynb, found {[p.name for p in found]}")
    return found[0]


def notebook_cells(lesson: str, framework: str) -> tuple[str, dict[str, str]]:
    """(source of the set-up cell, {grade_id: source} of the graded and answer code cells)."""
    cells = json.loads(solution_notebook(lesson, framework).read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
             for c in code if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    return "".join(code[0]["source"]), by_id


def exercises(lesson: str, framework: str) -> list[str]:
    """The grade ids of the answer cells that have a ``<id>_tests`` cell."""
    _, cells = notebook_cells(lesson, framework)
    return [gid for gid in cells if f"{gid}_tests" in cells]


def lesson_namespace(lesson: str, framework: str, *cells_to_run: str) -> dict:
    """The set-up cell and the given solution cells of a lesson, run in a fresh namespace."""
    setup, cells = notebook_cells(lesson, framework)
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for name, source in (("setup", setup), *((c, cells[c]) for c in cells_to_run)):
            exec(compile(source, f"{lesson}/{framework}/{name}", "exec"), namespace)
    return namespace


def judged_tests(lesson: str, framework: str) -> set[str]:
    """The grade ids of the test cells the grader runs itself (``course={"judged": true}``: course_utils.instructor.judge)."""
    cells = json.loads(solution_notebook(lesson, framework).read_text(encoding="utf-8"))["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"] for c in cells
            if c.get("metadata", {}).get("course", {}).get("judged") and "nbgrader" in c.get("metadata", {})}


def run_exercise(lesson: str, framework: str, exercise: str, answer: str) -> tuple[BaseException | None, str]:
    """Run the set-up cell, ``answer`` and the exercise's full test cell as nbgrader runs them (in
    one namespace; a judged test in a namespace of its own, calling the answer's functions with data,
    after its static checks ran beside the answer); return (the test cell's exception or None, what
    went to stderr)."""
    import ast

    from course_utils.instructor import judge

    setup, cells = notebook_cells(lesson, framework)
    test = cells[f"{exercise}_tests"]
    judged = f"{exercise}_tests" in judged_tests(lesson, framework)
    namespace = {"__name__": "__main__"}
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup, "setup", "exec"), namespace)
        exec(compile(answer, "answer", "exec"), namespace)
        with contextlib.redirect_stderr(stderr):
            try:
                if not judged:
                    exec(compile(test, f"{exercise}_tests", "exec"), namespace)
                    return None, stderr.getvalue()
                exec(compile(judge.static_part(test), f"{exercise}_tests (static)", "exec"), namespace)
                grader = {"__name__": "__main__"}
                exec(compile(setup, "setup", "exec"), grader)
                # the judge's crossing without a kernel: the same requests and answers (data only)
                call = functools.partial(judge.call_without_kernel, namespace, classes=judge.test_classes(test),
                                         imports=judge.imports_of(setup))
                for node in ast.parse(cells[exercise]).body:  # the solution's functions and classes, as the grader names them
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        grader[node.name] = judge.Remote(node.name, call)
                with judge.grading():
                    exec(compile(test, f"{exercise}_tests", "exec"), grader)
            except Exception as error:  # noqa: BLE001  (any failure is a failed test cell)
                return error, stderr.getvalue()
    return None, stderr.getvalue()
