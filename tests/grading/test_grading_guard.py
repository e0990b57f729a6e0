"""The grading kernel (course_utils.instructor.guard) on its own, without the pre-check in front.

Each notebook is executed the way the grader executes it (``BoundedExecute``, cells marked by
role as the pre-check marks them) with answer code that the pre-check might not recognise:
a patch of what the tests call, made in a student's cell or while a test runs, must not turn
a wrong answer into a passing test, and must be reported. A kernel without the guard gets no
receipt, so every test cell fails.
"""
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import course_utils
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
    "constant": WRONG_MEAN + "\ndef library():\n    return math\nlibrary().pi = 3.0",
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
    stopped = [e for e in errors(nb.cells[1]) if e.ename == "PermissionError"]  # refused by the audit hook
    assert flags(nb) or refused or stopped, f"{attack}: not reported"


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


# Code the pre-check cannot read: each of these would run hidden code with the kernel's power
HIDDEN_CODE = {
    "string_to_timeit": "import timeit\ntimeit.timeit('get_ip' + 'ython().ex(\"pass\")', number=1)",
    "string_to_eval": "eval('get_ip' + 'ython()')",
    "module_file": ("import importlib.util, tempfile, pathlib\npath = pathlib.Path(tempfile.mkdtemp()) / 'hubconf.py'\n"
                    "path.write_text('x = 1')\nspec = importlib.util.spec_from_file_location('hubconf', path)\n"
                    "spec.loader.exec_module(importlib.util.module_from_spec(spec))"),
    "pickle": ("import pickle\nclass Run:\n    def __reduce__(self):\n        return (eval, ('1 + 1',))\n"
               "pickle.loads(pickle.dumps(Run()))"),
    "gc_walk": "import gc\ngc.get_objects()",
    "process_memory": "open('/proc/self/mem', 'rb')",
    "ctypes": "import ctypes\nctypes.string_at(id(1), 8)",
    "string_annotation": "import typing\ndef f(x: 'get_ipython()'):\n    pass\ntyping.get_type_hints(f)",
    "current_frame": "import inspect\ninspect.currentframe()",
    "stack": "import inspect\ninspect.stack()",
    "library_text_runner": "import dataclasses\ndataclasses._create_fn('f', (), ['return 1'], globals={})",
    "pickled_text_runner": "import pickle\npickle.loads(b'cnumpy.testing._private.utils\\nrunstring\\n(Vx=1\\n(dtR.')",
    "timeit_template": "import timeit\ntimeit.timeit(\"def inner(_it, _timer=print('x')): pass\", number=1)",
    "generator_frame": "def g():\n    yield 1\ng().gi_frame",
}
ALLOWED = ("import timeit, pickle, collections, dataclasses, fractions, inspect, logging, warnings\n"
           "logging.getLogger('answer').warning('a warning from an answer')\nwarnings.warn('careful', stacklevel=2)\n"
           "assert list(inspect.signature(lambda a, b=1: a).parameters) == ['a', 'b']\n"
           "import traceback, torch\ndef where():\n    return traceback.format_stack()\nassert where()\n"
           "assert pickle.loads(pickle.dumps(torch.ones(2, dtype=torch.float64))).sum() == 2\n"
           "timeit.timeit(lambda: sum(range(10)), number=3)\n"
           "Point = collections.namedtuple('Point', 'x y')\n"
           "@dataclasses.dataclass\nclass Box:\n    size: int = 1\n"
           "assert pickle.loads(pickle.dumps({'a': [1, 2.5, Point(1, 2)], 'f': fractions.Fraction(1, 3)}))['a'][2].y == 2\n"
           "assert Box().size == 1")


def test_code_the_pre_check_cannot_read_is_refused_while_answers_run(kernels):
    nb = notebook(WRONG_MEAN)
    attempts = [new_code_cell(code, metadata={META: {"role": STUDENT}}) for code in HIDDEN_CODE.values()]
    allowed = new_code_cell(ALLOWED, metadata={META: {"role": STUDENT}})
    nb.cells[2:2] = [*attempts, allowed]
    run(nb)
    for name, cell in zip(HIDDEN_CODE, attempts):
        assert [e.ename for e in errors(cell)] == ["PermissionError"], f"{name}: {cell.outputs}"
        assert "the grader does not let answer code" in errors(cell)[0].evalue
    assert not errors(allowed), allowed.outputs
    assert errors(nb.cells[-3]), "the wrong mean passed its test"
    assert not errors(nb.cells[-1])


def test_a_kernel_whose_environment_is_reached_through_a_link_loads_its_libraries(kernels, tmp_path):
    """A venv reached through a symbolic link (a checkout's ``.venv``): torch's shared objects, found by their
    resolved paths, are still the installed libraries."""
    pytest.importorskip("torch")
    link = tmp_path / "linked-env"
    link.symlink_to(Path(sys.prefix).resolve())
    python = link / "bin" / Path(sys.executable).name
    folder = kernels / "kernels" / "linked"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-P", "-m", "course_utils.instructor.guard", "-f", "{connection_file}"],
        "display_name": "linked", "language": "python",  # (the course's folder only: torch from the linked venv)
        "env": {"PYTHONPATH": str(Path(course_utils.__file__).resolve().parent.parent)}}))
    nb = notebook("import torch\ndef mean(xs):\n    return float(torch.tensor(xs, dtype=torch.float64).mean())")
    run(nb, kernel="linked")
    assert [errors(c) for c in nb.cells] == [[]] * 5, [errors(c) for c in nb.cells]


def test_the_same_code_in_a_set_up_cell_is_not_refused(kernels):
    nb = notebook("def mean(xs):\n    return sum(xs) / len(xs)")
    nb.cells[0].source += "\n" + HIDDEN_CODE["string_to_eval"] + "\n" + HIDDEN_CODE["gc_walk"]
    run(nb)
    assert [errors(c) for c in nb.cells] == [[]] * 5


def test_an_answer_that_drops_the_tests_error_on_its_way_out_fails_the_test(kernels):
    # The zmq socket the kernel's IOPub thread sends with (``iopub_socket.send_multipart = f`` sets it there
    # too, and an ``f`` that hands the parts back to ``iopub_socket`` schedules them again on that thread:
    # a loop that can stall the kernel's output for good, so the executor, not the guard, fails the cell).
    answer = ("def mean(xs):\n    sock = get_ipython().kernel.iopub_thread.socket\n    real = type(sock).send_multipart\n"
              "    def send(parts, *a, **k):\n        if not any(b'ename' in bytes(p) for p in parts):\n"
              "            return real(sock, parts, *a, **k)\n    sock.send_multipart = send\n    return 0.0")
    nb = run(notebook(answer))
    assert [e.ename for e in errors(nb.cells[2])] == ["GradingRefused"], nb.cells[2].outputs
    assert "send_multipart was set" in errors(nb.cells[2])[0].evalue
    assert not errors(nb.cells[4])


def test_a_request_from_another_process_cannot_claim_to_be_the_releases(kernels):
    """A child process with the kernel's connection file sends a cell marked as the release's:
    the kernel runs it as the student's, so the name it rebinds is put back before the test."""
    forged = ("class Yes:\n    @staticmethod\n    def isclose(*a, **k):\n        return True\nmath = Yes")
    child = ("import sys\nfrom jupyter_client import BlockingKernelClient\n"
             "kc = BlockingKernelClient(connection_file=sys.argv[1])\nkc.load_connection_file()\nkc.start_channels()\n"
             "content = {'code': sys.argv[2], 'silent': False, 'store_history': False, 'user_expressions': {},"
             " 'allow_stdin': False, 'stop_on_error': True}\n"
             f"msg = kc.session.msg('execute_request', content, metadata={{'{META}': {{'role': '{TRUSTED}'}}}})\n"
             "kc.shell_channel.send(msg)\nkc.get_shell_msg(timeout=30)\n")
    answer = (WRONG_MEAN + "\nimport subprocess, sys, time\nfrom ipykernel import get_connection_file\n"
              f"subprocess.Popen([sys.executable, '-c', {child!r}, get_connection_file(), {forged!r}])\ntime.sleep(4)")
    nb = run(notebook(answer))
    assert not errors(nb.cells[1]), nb.cells[1].outputs
    assert errors(nb.cells[2]), "the wrong mean passed: the forged request was run as the release's"
    assert any("math was rebound" in f for f in flags(nb)), flags(nb)


def test_a_module_the_tests_import_is_recorded_before_the_student_imports_and_patches_it(kernels):
    answer = WRONG_MEAN + "\nimport cmath\nlibrary = (lambda: cmath)()\nlibrary.isclose = lambda *a, **k: True"
    nb = notebook(answer)
    nb.cells[2].source = "import cmath\nassert cmath.isclose(mean([1, 2]), 1.5)"
    run(nb)
    assert errors(nb.cells[2]), "the patch of a module first imported by the student's cell was taken as the baseline"
    assert any("cmath.isclose" in f for f in flags(nb)), flags(nb)
