"""Fast checks of the grading helpers: pre-check of submitted files, flags, feedback, stderr patterns."""
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from course_utils import feedback, grading_sandbox, instructor

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
    return grading_sandbox.precheck(folder, EXPECTED)


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
    assert any(flagged in why for why in grading_sandbox.suspicious(source)), grading_sandbox.suspicious(source)


def test_ordinary_answers_are_not_flagged():
    for name in kit.EXERCISES:
        assert grading_sandbox.suspicious(kit.EXERCISES[name][0]) == []
    assert grading_sandbox.suspicious("import numpy as np\nx = np.zeros(3)\nx[0] = 1\nclass M:\n    def f(self):\n"
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
    assert "course_utils.feedback.HideHiddenTests" in course_config().GenerateFeedback.preprocessors


@pytest.mark.parametrize("name, student, file_id", [("alice__lesson_a.ipynb", "alice", "lesson_a.ipynb"),
                                                    ("x/y/bob.smith__b_text.ipynb", "bob.smith", "b_text.ipynb")])
def test_zip_file_name_pattern(name, student, file_id):
    match = re.match(instructor.ZIP_PATTERN, name)
    assert match and match["student_id"] == student and match["file_id"] == file_id
