"""Fast checks of the grading helpers: pre-check of submitted files, flags, feedback, stderr patterns,
the gradebook and settings helpers, the report, the sandbox's data locations and read-only data."""
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from course_utils.instructor import cli, feedback, flags, gradebook, isolation, precheck, report, sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"lesson_a": {"square_answer", "square_tests", "mean_answer", "mean_tests", "clip_answer", "clip_tests"}}


def solution_json() -> dict:
    return json.loads(nbformat.writes(kit.solution_notebook("lesson_a", ["square", "mean", "clip"])))


def check(tmp_path, files: dict[str, str | dict]):
    folder = tmp_path / "alice" / "lesson_a"
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return precheck.precheck(folder, EXPECTED)


@pytest.mark.parametrize("content, why", [("", "empty file"), ("{not json", "not JSON"), ("[1, 2]", "without 'nbformat'"),
                                          ('{"nbformat": 4, "cells": 7}', "not a readable notebook")])
def test_unusable_files_are_left_out_with_the_reason(tmp_path, content, why):
    notebooks, notes, _ = check(tmp_path, {"lesson_a.ipynb": content})
    assert notebooks == {}
    assert any(why in n for n in notes), notes
    assert "lesson_a.ipynb: missing, scores zero" in notes


def test_old_format_wrong_name_and_extra_files(tmp_path):
    v3 = nbformat.writes(nbformat.convert(kit.solution_notebook("lesson_a", ["square", "mean", "clip"]), 3), version=3)
    other = nbformat.writes(kit.solution_notebook("x", []))
    notebooks, notes, _ = check(tmp_path, {"Lesson A (copy).ipynb": v3, "notes.ipynb": other, "answers.txt": "hello"})
    assert set(notebooks) == {"lesson_a"}
    assert "Lesson A (copy).ipynb: converted from nbformat 3 to 4" in notes
    assert "Lesson A (copy).ipynb: graded as lesson_a.ipynb (wrong file name)" in notes
    assert "notes.ipynb: extra notebook, left out" in notes
    assert "answers.txt: not a notebook, left out" in notes


def test_duplicate_cells_keep_one_graded_copy_and_unique_ids(tmp_path):
    nb = solution_json()
    nb["cells"].insert(2, json.loads(json.dumps(nb["cells"][2])))  # same id, same grade id
    notebooks, notes, _ = check(tmp_path, {"lesson_a.ipynb": nb})
    cells = notebooks["lesson_a"].cells
    assert len({c.id for c in cells}) == len(cells)
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in cells].count("square_answer") == 1
    assert any("appears 2 times" in n for n in notes)


@pytest.mark.parametrize("source, flagged", [
    ("import math\nmath.isclose = lambda *a, **k: True", "changes math.isclose"),
    ("import numpy as np\nnp.testing.assert_allclose = print", "changes np.testing.assert_allclose"),
    ("def isinstance(a, b):\n    return True", "redefines the built-in isinstance"),
    ("import builtins\nbuiltins.abs = lambda x: 0", "changes builtins.abs"),
    ("data = open('../../../gradebook.db', 'rb').read()", "calls open()"),
    ("import subprocess\nsubprocess.run(['ls'])", "imports subprocess"),
    ("import os\nos.remove('x')", "calls os.remove()"),
])
def test_suspicious_answer_code_is_flagged(source, flagged):
    assert any(flagged in why for why in flags.suspicious(source)), flags.suspicious(source)


def test_ordinary_answers_are_not_flagged():
    for name in kit.EXERCISES:
        assert flags.suspicious(kit.EXERCISES[name][0]) == []
    assert flags.suspicious("import numpy as np\nx = np.zeros(3)\nx[0] = 1\nclass M:\n    def f(self):\n"
                                      "        self.w = 1") == []


def test_feedback_hides_hidden_tests_but_keeps_the_message():
    source = kit.EXERCISES["square"][1]
    cell = nbformat.v4.new_code_cell(source, metadata=kit.meta("square_tests", grade=True, solution=False, locked=True, points=2))
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="square(-2) should be 4",
                                           traceback=["\x1b[0;31mTraceback\x1b[0m", "assert square(-2) == 4", "AssertionError"])]
    nb = nbformat.v4.new_notebook(cells=[cell])
    out, _ = feedback.HideHiddenTests().preprocess(nb, {})
    text = json.dumps(out)
    assert "square(-2) == 4" not in text and "type(square(2))" not in text
    assert "assert square(3) == 9" in out.cells[0].source and feedback.HIDDEN_NOTE in out.cells[0].source
    assert out.cells[0].outputs[0]["traceback"] == ["AssertionError: square(-2) should be 4"]
    full, _ = feedback.HideHiddenTests(config=Config({"HideHiddenTests": {"enabled": False}}))(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, metadata=cell.metadata)]), {})
    assert "square(-2) == 4" in full.cells[0].source


def course_config() -> Config:
    config = Config()
    exec((ROOT / "nbgrader_config.py").read_text(), {"get_config": lambda: config})
    return config


@pytest.mark.parametrize("stderr", [
    "/tmp/ipykernel_1/2.py:4: UserWarning: square() will change\n  warnings.warn('square() will change', UserWarning)\n",
    "2026-11-26 12:00:00.123456: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.\n",
    "W1126 12:00:00.123456 140 gpu_device.cc:2342] Cannot dlopen some GPU libraries.\n",
    "WARNING:tensorflow:frame rate noise\nINFO:absl:more noise\n",
])
def test_harmless_stderr_is_ignored(stderr):
    config = course_config()
    assert config.IgnorePattern.enabled
    assert re.search(config.IgnorePattern.pattern, stderr)


@pytest.mark.parametrize("stderr", ["Traceback (most recent call last):\n", "something went wrong\n",
                                    "WARNING:tensorflow:noise\nreal trouble here\n"])
def test_other_stderr_still_fails_the_test(stderr):
    assert not re.search(course_config().IgnorePattern.pattern, stderr)


def test_feedback_preprocessor_is_the_course_default():
    assert "course_utils.instructor.feedback.HideHiddenTests" in course_config().GenerateFeedback.preprocessors


@pytest.mark.parametrize("name, student, file_id", [("alice__lesson_a.ipynb", "alice", "lesson_a.ipynb"),
                                                    ("x/y/bob.smith__b_text.ipynb", "bob.smith", "b_text.ipynb")])
def test_zip_file_name_pattern(name, student, file_id):
    match = re.match(cli.ZIP_PATTERN, name)
    assert match and match["student_id"] == student and match["file_id"] == file_id


def test_unreleased_lessons_are_the_ones_the_gradebook_does_not_know(tmp_path):
    from nbgrader.api import Gradebook

    db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        gb.add_assignment("lesson_a")
    assert gradebook.unreleased_lessons(db_url, ["lesson_a", "lesson_b"]) == ["lesson_b"]
    assert gradebook.unreleased_lessons(db_url, ["lesson_a"]) == []


def test_course_settings_are_named(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    settings = gradebook.course_settings(tmp_path)
    assert settings.source_directory == "solutions"
    assert settings.db_url.startswith("sqlite:///") and settings.db_url.endswith("gradebook.db")


def test_report_round_trips_through_the_json_file(tmp_path):
    saved = report.Report()
    saved.put("lesson_a", "alice", report.Outcome("graded", notes=["n"], flags=["f"], seconds=1.5, fingerprint="x",
                                                  isolation="limits"))
    saved.put("lesson_a", "bob", report.Outcome("failed", reason="the kernel died"))
    for n in range(25):
        saved.add_run(report.Run(submissions=n, seconds=1.0, workers=2, isolation="limits"))
    saved.save(tmp_path)
    data = json.loads((tmp_path / "grading_report.json").read_text())
    assert data["lesson_a"]["alice"]["fingerprint"] == "x" and data["lesson_a"]["bob"]["status"] == "failed"
    assert len(data["_runs"]) == 20 and data["_runs"][-1]["submissions"] == 24
    loaded = report.Report.load(tmp_path)
    assert loaded == saved
    assert [(lesson, s, o.status) for lesson, s, o in loaded.items()] == [("lesson_a", "alice", "graded"),
                                                                         ("lesson_a", "bob", "failed")]
    assert report.Report.load(tmp_path / "nowhere") == report.Report()


def test_the_sandbox_environment_names_the_data(tmp_path, monkeypatch):
    course, data, weights = tmp_path / "course", tmp_path / "data", tmp_path / "weights"
    for folder in (course / "datasets", data, weights):
        folder.mkdir(parents=True)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("COURSE_WEIGHTS_DIR", raising=False)
    assert sandbox.data_locations(course) == {"COURSE_DATA_DIR": str(course / "datasets")}
    monkeypatch.setenv("COURSE_DATA_DIR", str(data))
    monkeypatch.setenv("COURSE_WEIGHTS_DIR", str(weights))
    found = sandbox.data_locations(course)
    assert found == {"COURSE_DATA_DIR": str(data), "COURSE_WEIGHTS_DIR": str(weights)}
    env = sandbox.sandbox_env(tmp_path / "box", "limits", found)
    assert env["COURSE_DATA_DIR"] == str(data) and env["COURSE_WEIGHTS_DIR"] == str(weights)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


@pytest.mark.skipif(not isolation.isolation_mode().startswith("bwrap"), reason="needs bubblewrap and user namespaces")
def test_the_bwrap_sandbox_hides_the_course_and_keeps_the_data_read_only(tmp_path):
    import subprocess

    data, hidden, work, runtime = tmp_path / "data", tmp_path / "course", tmp_path / "work", tmp_path / "rt"
    for folder in (data, hidden, work, runtime):
        folder.mkdir()
    (data / "x.npz").write_text("data")
    (hidden / "secret").write_text("secret")
    probe = ("import os, pathlib, sys; p = pathlib.Path(sys.argv[1]); print(p.joinpath('x.npz').read_text())\n"
             "try:\n    p.joinpath('y').write_text('no')\nexcept OSError as e:\n    print('refused', e.errno)\n"
             "print(os.path.exists(sys.argv[2]), open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    hide, back = sandbox.hidden_paths(hidden, tmp_path / "base")  # the course, the checkout, the grader's home...
    argv = isolation.bwrap_argv(cwd=str(work), runtime=str(runtime), home=str(tmp_path / "home"), hide=hide,
                                read_only=[str(data), *back], limits=isolation.Limits(),
                                isolation=isolation.isolation_mode())
    python = str(Path(sys.prefix).resolve() / "bin" / "python")  # the venv, not through the covered checkout
    out = subprocess.run([*argv, "--", python, "-c", probe, str(data), str(hidden / "secret")],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["data", "refused", "30", "False", "0000000000000000"], out.stdout + out.stderr
    assert not (data / "y").exists()


def test_every_real_solution_passes_the_pre_check_clean():
    """The course's own solutions: no answer cell is refused or flagged as an attack."""
    import nbformat

    for lesson in sorted(p for p in (ROOT / "solutions").iterdir() if p.is_dir()):
        notebooks = {p.stem: nbformat.read(str(p), as_version=4) for p in sorted(lesson.glob("*.ipynb"))}
        reference = precheck.Reference(notebooks, notebooks)
        for name, nb in notebooks.items():
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
                    why = flags.attacks(cell.source, reference.protected[name])
                    assert why == [], f"{lesson.name}/{name}: {cell.metadata.nbgrader.get('grade_id')}: {why}"


@pytest.mark.parametrize("source, why", [
    ("!true\nexec('x = 1')", "uses exec()"),
    ("get_ipython().input_transformers_post.append(f)", "input_transformers_post"),
    ("ip = get_ipython()\nip.events.register('post_run_cell', f)", "get_ipython"),
    ("f.__code__ = g.__code__", "__code__"),
    ("import ctypes", "imports ctypes"),
    ("check_equal = lambda *a: None", "rebinds check_equal"),
    ("from math import isclose as check_equal", "rebinds check_equal"),
    ("def f(:\n  pass", "cannot be parsed"),
    ("%timeit eval('1')", "uses eval()"),
    ("import sys\nsys.settrace(None)", "settrace"),
    # spelled so that a list of forbidden names would miss them (found in a review of the pre-check)
    ("m = math\nm.isclose = lambda *a, **k: True", "changes m.isclose"),
    ("def f(x):\n    np.array_equal = lambda *a: True\n    return x", "changes np.array_equal"),
    ("def f(x):\n    import course_utils.checks as c\n    c.np = None", "changes c.np"),
    ("[math][0].isclose = abs", "changes [math][0].isclose"),
    ("for m in (math,):\n    m.isclose = abs", "changes m.isclose"),
    ("def f():\n    return math\nf().isclose = abs", "an object it does not name"),
    ("T = torch.Tensor\nT.allclose = lambda *a, **k: True", "changes T.allclose"),
    ("locals()['check_equal'] = print", "uses locals()"),
    ("g = getattr\ng(math, 'isclose')", "uses getattr other than"),
    ("setattr(m, name, f)", "uses setattr other than"),
    ("b = print.__self__", "uses .__self__"),
    ("x = getattr(print, '__self__')", "names '__self__'"),
    ("import unittest.mock\nunittest.mock.patch('numpy.isclose', abs).start()", "imports unittest.mock"),
    ("import pkgutil", "imports pkgutil"),
    ("from numpy import ctypeslib", "imports numpy.ctypeslib"),
    ("torch.library.Library('aten', 'IMPL')", "uses .library"),
    ("torch.utils.cpp_extension.load_inline('m', '')", "uses .cpp_extension"),
    ("import course_utils.instructor.guard", "imports course_utils.instructor.guard"),
    ("from course_utils import instructor", "imports course_utils.instructor"),
    ("import numpy as np\nfor np.isclose in [print]:\n    pass", "changes np.isclose"),
    ("import numpy as np\nwith ctx() as np.isclose:\n    pass", "changes np.isclose"),
    ("import numpy as np\n[0 for np.isclose in [print]]", "changes np.isclose"),
    ("class Yes(float):\n    pass", "subclasses float"),
    ("class T(torch.Tensor):\n    pass", "subclasses torch.Tensor"),
    ("class Yes:\n    def __eq__(self, other):\n        return True", "defines __eq__"),
    ("class Lazy:\n    def __array__(self, dtype=None):\n        return 0", "defines __array__"),
    ("class Sneaky:\n    def __torch_function__(self, *a):\n        return 0", "defines __torch_function__"),
    ("class M(type):\n    pass\nclass A(metaclass=M):\n    pass", "metaclass"),
    ("x.__subclasshook__", "uses .__subclasshook__"),
    ("lib = getattr(torch, 'library')", "looks up 'library'"),
    ("from matplotlib_inline import backend_inline as b\nip = b.get_ipython()", "uses .get_ipython"),
    ("import cProfile\ncProfile.run(text)", "imports cProfile"),
    ("import imp\nimp.load_source('m', path)", "imports imp"),
    ("x = torch.serialization.pickle.loads(data)", "uses .pickle"),
])
def test_attacks_on_the_verdicts_are_found(source, why):
    protected = {"check_equal": {"import:course_utils.checks:check_equal"}, "math": {"import::math"},
                 "np": {"import::numpy"}, "torch": {"import::torch"}}
    found = flags.attacks(source, protected)
    assert any(why in w for w in found), found


@pytest.mark.parametrize("source", ["%matplotlib inline\nimport numpy as np\nx = np.zeros(3)", "%timeit square(3)",
                                    "from course_utils.checks import check_equal\ny = check_equal(1, 1)",
                                    "model.eval()\nmodel.compile(optimizer='adam')", "import sys\nprint(1, file=sys.stderr)",
                                    # what a correct answer may well do
                                    "base = keras.applications.VGG16(include_top=False)\nbase.trainable = False",
                                    "for p in model.parameters():\n    p.requires_grad = False",
                                    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.fc = nn.Linear(3, 2)\n    def forward(self, x):\n"
                                    "        return self.fc(x)",
                                    "class Data(torch.utils.data.Dataset):\n    def __len__(self):\n        return 3\n"
                                    "    def __getitem__(self, i):\n        return i",
                                    "out = np.zeros((2, 3))\nout[:, 0] = 1.0\nout[1] += 2",
                                    "w = getattr(layer, 'weight')\nprint(type(w).__name__, hasattr(layer, 'bias'))",
                                    "import functools, operator\nn = functools.reduce(operator.mul, (2, 3), 1)",
                                    "from collections import OrderedDict\nimport itertools, math\nx = math.prod([2, 3])",
                                    "model.fc.weight.data.copy_(torch.zeros(2, 3))\noptimizer.param_groups[0]['lr'] = 0.1",
                                    "h = np.pi * 2\nfor layer in model.layers:\n    layer.trainable = False",
                                    "print('os', 'sys', 'library')",
                                    "import timeit, typing\nt = timeit.timeit(lambda: f(2), number=3)\nx: typing.List[int] = []"])
def test_ordinary_code_is_not_an_attack(source):
    protected = {"check_equal": {"import:course_utils.checks:check_equal"}, "math": {"import::math"},
                 "np": {"import::numpy"}, "torch": {"import::torch"}, "nn": {"import:torch:nn"}}
    assert flags.attacks(source, protected) == []


def test_a_name_a_test_cell_binds_itself_may_be_reused_by_the_student():
    """Scratch variables like ``x`` or ``out`` are reassigned by the test cell before it reads
    them: a student's answer that also uses them is run; the checks the tests only read are protected."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def cell(source, **meta):
        return new_code_cell(source, metadata={"nbgrader": {"grade_id": meta.pop("gid"), **meta}})

    nb = new_notebook(cells=[
        cell("from course_utils.checks import check_equal", gid="setup", locked=True, grade=False, solution=False),
        cell("def square(v):\n    return v * v", gid="square", solution=True, grade=False, locked=False),
        cell("x = 3\ncheck_equal(square(x), 9)", gid="square_tests", grade=True, points=1, locked=True, solution=False),
    ])
    reference = precheck.Reference({"lesson": nb}, {"lesson": nbformat.from_dict(nb)})
    assert "x" not in reference.protected["lesson"] and "check_equal" in reference.protected["lesson"]
    assert flags.attacks("x = 5\ndef square(v):\n    return v * v\nprint(square(x))", reference.protected["lesson"]) == []
    assert flags.attacks("check_equal = print", reference.protected["lesson"]) != []


def test_rebinding_is_refused_only_where_a_later_test_reads_the_value():
    """``data`` is read by the test as the set-up cell left it: rebinding it in the answer is
    refused. ``model`` is set again by a locked cell before the test reads it: reusing the
    name in the answer is harmless and runs."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def cell(source, gid, **meta):
        return new_code_cell(source, metadata={"nbgrader": {"grade_id": gid, "solution": False, "grade": False,
                                                            "locked": True, **meta}})

    def notebook(answer):
        return new_notebook(cells=[
            cell("from course_utils.checks import check_equal\ndata = [1, 2]", "setup"),
            cell(answer, "total", solution=True, locked=False),
            cell("model = total", "build"),
            cell("check_equal(model(data), 3)", "total_tests", grade=True, points=1),
        ])

    source = notebook("def total(v):\n    return sum(v)")
    reference = precheck.Reference({"lesson": source}, {"lesson": nbformat.from_dict(source)})
    harmless = notebook("model = None\ndef total(v):\n    return sum(v)")
    assert precheck.neutralise("lesson", harmless, reference) == []
    forged = notebook("data = [3]\ndef total(v):\n    return v[0]")
    found = precheck.neutralise("lesson", forged, reference)
    assert len(found) == 1 and "rebinds data" in found[0], found


def test_pickles_may_name_listed_data_classes_and_public_names_of_listed_modules_only():
    from course_utils.instructor.audit import allowed_pickle

    allowed = [("numpy", "ndarray"), ("torch", "float32"), ("torch._utils", "_rebuild_tensor_v2"),
               ("numpy.dtypes", "Float64DType"), ("collections", "OrderedDict")]
    refused = [("os", "system"), ("torch", "_C"), ("torch", "hub.load"), ("torch._utils", "_import_dotted_name"),
               ("numpy", "load"), ("builtins", "eval"), ("numpy.dtypes", "_x")]
    assert [allowed_pickle(m, n) for m, n in allowed] == [True] * len(allowed)
    assert [allowed_pickle(m, n) for m, n in refused] == [False] * len(refused)


def test_library_files_are_judged_after_resolving_dots():
    from course_utils.instructor.audit import in_library

    libraries = ("/venv/lib/python3.11/site-packages/",)
    assert in_library("/venv/lib/python3.11/site-packages/numpy/core.py", libraries)
    assert not in_library("/venv/lib/python3.11/site-packages/../../../../tmp/evil.py", libraries)
    assert not in_library("/venv/lib/python3.11/site-packages-evil/x.py", libraries)


def test_a_failed_grading_is_run_again_once_and_reported_when_it_cannot_be(tmp_path, monkeypatch):
    """A grading that fails is run once more; when the second sandbox cannot be made, the first failure
    is reported for that student, and the other student's gradings are not lost."""
    from course_utils.instructor import autograde

    course = kit.make_course(tmp_path / "course", lessons=("lesson_b",))
    kit.instructor(course, "release")
    for student in ("s1", "s2"):
        for name in ("b_text", "b_lists"):
            kit.write(kit.answered(course / "notebooks" / "lesson_b" / f"{name}.ipynb"),
                      course / "submitted" / student / "lesson_b" / f"{name}.ipynb")
    built, real_build = [], autograde.build_sandbox

    def build(*args, **kwargs):
        built.append(args[3])  # the student
        if args[3] == "s1" and built.count("s1") == 2:
            raise OSError("no space left on device")
        return real_build(*args, **kwargs)

    monkeypatch.setattr(autograde, "build_sandbox", build)
    monkeypatch.setattr(autograde, "grade_in_sandbox", lambda *args: (1, 0.5))  # nbgrader failing, every time
    result = autograde.grade_class(course, workers=1, log=lambda line: None)
    s1, s2 = result.get("lesson_b", "s1"), result.get("lesson_b", "s2")
    assert built.count("s1") == 2 and built.count("s2") == 2
    assert s1.status == "failed" and any("could not be run again: no space left" in n for n in s1.notes), s1.notes
    assert s2.status == "failed" and any(n.startswith("grading failed once") for n in s2.notes), s2.notes
    assert s2.seconds == 1.0  # both tries
