"""The grading kernel (course_utils.instructor.guard) on its own, without the pre-check in front.

Each notebook is executed the way the grader executes it (``BoundedExecute``, cells marked by
role as the pre-check marks them) with answer code that the pre-check might not recognise:
a patch of what the tests call, made in a student's cell or while a test runs, must not turn
a wrong answer into a passing test, and must be reported. A kernel without the guard gets no
receipt, so every test cell fails.
"""
import json
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.instructor.execute import BoundedExecute
from course_utils.instructor.guard import META, MIME, STUDENT, TEST, TRUSTED

SETUP = "import math\nimport statistics\nfrom fractions import Fraction"
TEST_MEAN = "assert math.isclose(mean([1, 2]), 1.5) and abs(mean([3]) - 3) < 1e-9, 'mean([1, 2]) should be 1.5'"
TEST_SQUARE = "assert square(3) == 9"
WRONG_MEAN = "def mean(xs):\n    return 0.0"
ATTACKS = {  # a wrong mean plus a patch spelled in ways a reader of the code might miss
    "alias": WRONG_MEAN + "\nm = math\nm.isclose = lambda *a, **k: True",
    "in_function": "def mean(xs):\n    m = [math][0]\n    m.isclose = lambda *a, **k: True\n    return 0.0",
    "rebind_by_namespace": WRONG_MEAN + "\nclass Yes:\n    @staticmethod\n    def isclose(*a, **k):\n"
                           "        return True\nlocals()['math'] = Yes",
    "builtin": "def mean(xs):\n    return 1.5\nb = print.__self__\nb.abs = lambda x: 0",
    "class_method": "import fractions\nF = fractions.Fraction\nF.__eq__ = lambda *a: True\n"
                    "def mean(xs):\n    return Fraction(0)",
    "code_object": WRONG_MEAN + "\ng = lambda *a, **k: 1.5\nstatistics.mean.__code__ = g.__code__",
    "shell_hook": WRONG_MEAN + "\nip = get_ipython()\nip.set_custom_exc((BaseException,), lambda *a, **k: None)",
    "transformer": WRONG_MEAN + "\nget_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
}


def notebook(answer: str, roles=(TRUSTED, STUDENT, TEST, STUDENT, TEST)):
    cells = [new_code_cell(SETUP), new_code_cell(answer), new_code_cell(TEST_MEAN),
             new_code_cell("def square(x):\n    return x * x"), new_code_cell(TEST_SQUARE)]
    for cell, role in zip(cells, roles):
        cell.metadata[META] = {"role": role}
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    """Two kernel specs: the grading kernel and plain ipykernel (no guard, so no receipts)."""
    for name, module in (("guarded", "course_utils.instructor.guard"), ("plain", "ipykernel_launcher")):
        folder = tmp_path / "kernels" / name
        folder.mkdir(parents=True)
        (folder / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-P", "-m", module, "-f", "{connection_file}"],
            "display_name": name, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return tmp_path


def run(nb, kernel="guarded"):
    executor = BoundedExecute(kernel_name=kernel, timeout=60, allow_errors=True, interrupt_on_timeout=True)
    executor.preprocess(nb, {"metadata": {"path": "."}})
    return nb


def errors(cell):
    return [out for out in cell.outputs if out.output_type == "error"]


def flags(nb):
    return [f for cell in nb.cells for out in cell.outputs if out.output_type == "display_data"
            for f in out.get("data", {}).get(MIME, {}).get("flags", [])]


def test_an_honest_notebook_passes_unflagged_without_receipts_left_in_it(kernels):
    nb = run(notebook("def mean(xs):\n    return sum(xs) / len(xs)"))
    assert [errors(c) for c in nb.cells] == [[]] * 5
    assert flags(nb) == []
    assert MIME not in json.dumps(nbformat.from_dict(nb))


def test_a_wrong_answer_still_fails(kernels):
    nb = run(notebook(WRONG_MEAN))
    assert errors(nb.cells[2]) and not errors(nb.cells[4])
    assert flags(nb) == []


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_patch_made_in_a_students_cell_is_put_back_before_the_test(kernels, attack):
    nb = run(notebook(ATTACKS[attack]))
    assert errors(nb.cells[2]), f"{attack}: the wrong mean passed its test"
    assert not errors(nb.cells[4]), f"{attack}: the next, honest test was broken: {nb.cells[4].outputs}"
    refused = [e for e in errors(nb.cells[2]) if e.ename == "GradingRefused"]  # a patch made while the test ran
    assert flags(nb) or refused, f"{attack}: not reported"


def test_a_patch_made_while_a_test_runs_fails_that_test(kernels):
    answer = "def mean(xs):\n    m = math\n    m.isclose = lambda *a, **k: True\n    return 1.5"
    nb = run(notebook(answer))
    (error,) = [e for e in errors(nb.cells[2]) if e.ename == "GradingRefused"]
    assert "math.isclose" in error.evalue
    assert not errors(nb.cells[4])


def test_a_kernel_without_the_guard_gets_no_receipt_so_its_tests_fail(kernels):
    nb = run(notebook("def mean(xs):\n    return sum(xs) / len(xs)"), kernel="plain")
    for index in (2, 4):
        assert [e.ename for e in errors(nb.cells[index])] == ["GradingRefused"]
    assert not errors(nb.cells[1])


def test_a_receipt_printed_by_the_students_code_counts_for_nothing(kernels):
    nb = notebook("def mean(xs):\n    return sum(xs) / len(xs)")
    nb.cells[2].source = ("from IPython.display import display\n"
                          f"display({{'{MIME}': {{'receipt': '0' * 64}}}}, raw=True)\n" + TEST_MEAN)
    run(nb, kernel="plain")
    assert [e.ename for e in errors(nb.cells[2])] == ["GradingRefused"]


def test_what_the_guard_put_back_flags_the_graded_notebook(kernels, tmp_path):
    from course_utils.instructor.autograde import guard_flags

    nb = run(notebook(ATTACKS["alias"]))
    nb.cells[2].metadata["nbgrader"] = {"grade_id": "mean_tests"}
    during = run(notebook("def mean(xs):\n    m = math\n    m.isclose = lambda *a, **k: True\n    return 1.5"))
    nbformat.write(nb, str(tmp_path / "a.ipynb"))
    nbformat.write(during, str(tmp_path / "b.ipynb"))
    found = guard_flags(tmp_path, ["a", "b", "missing"])
    assert any(f.startswith("a.ipynb: before test 'mean_tests'") and "math.isclose" in f for f in found), found
    assert any(f.startswith("b.ipynb: test ") and "math.isclose" in f for f in found), found
