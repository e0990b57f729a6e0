"""Hostile submissions against `instructor autograde`: one class, one grading run (issue 16).

Blank answers plus an attack on the verdicts must score 0 (the pre-check does not run the
attacking cell); escapes must leave every private file unread and unchanged (the bubblewrap
sandbox); outputs stay bounded; hidden tests stay out of the feedback; a correct solution
still gets full marks. lesson_a: square (2 points), mean (3), clip (1).
"""
import hashlib
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

from course_utils.instructor import isolation  # noqa: E402
from tests.support import INSTALL_HINT, require  # noqa: E402

MODE = isolation.isolation_mode()
SANDBOXED = MODE.startswith("bwrap")


@pytest.fixture
def sandboxed():
    """The escape tests need the bubblewrap sandbox: skipped without it locally, failed on CI."""
    require(SANDBOXED, f"isolation {MODE}: no bubblewrap sandbox here ({INSTALL_HINT}; README, threat model)")

# one line of attack in the square answer, every exercise otherwise left blank
FORGERS = {
    "input_transformer": kit.INPUT_TRANSFORMER_ATTACK,
    "ast_transformer": ("import ast\nclass Empty(ast.NodeTransformer):\n    def visit_Module(self, node):\n"
                        "        node.body = []\n        return node\nget_ipython().ast_transformers.append(Empty())"),
    "post_run_hook": ("ip = get_ipython()\ndef clear(result):\n    result.error_in_exec = None\n"
                      "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
                      "ip.events.register('post_run_cell', clear)"),
    "custom_exc": "get_ipython().set_custom_exc((Exception,), lambda self, etype, value, tb, tb_offset=None: None)",
    "hex_ex": "get_ipython().ex(bytes.fromhex('{hex}').decode())",
    "bang_then_exec": "!true\nexec(\"get_ipython().input_transformers_post.append(lambda lines: ['pass\\\\n'])\")",
    "rebind_checks": "isclose = None\nimport math\nmath.isclose = lambda *a, **k: True",
    "aliased_eval": "e = eval\ne(\"__import__('math')\")",
    "code_swap": "def square(x):\n    return x\nsquare.__code__ = (lambda x: x * x).__code__",
    "ctypes": "import ctypes\nctypes.pythonapi",
    "unparseable": "def square(x:\n    return x * x",
    "alias_patch": "m = math\nm.isclose = lambda *a, **k: True",
    "magic_equality": "class Yes(int):\n    def __eq__(self, other):\n        return True\ndef square(x):\n    return Yes(0)",
    "patch_by_name": "import unittest.mock\nunittest.mock.patch('math.isclose', lambda *a, **k: True).start()",
    "builtins_by_self": "b = print.__self__\nb.type = lambda x: int",
    # code the pre-check cannot read, run by something that runs text: refused by the kernel's audit hook
    "hidden_in_a_string": ("import timeit\npayload = 'get_ip' + 'ython().input_transformers_post.append('\n"
                           "timeit.timeit(payload + 'lambda lines: [\"pass\\\\n\"])', number=1)"),
}
RUN_TIME = {"hidden_in_a_string"}  # the pre-check lets these run
FORGERS["hex_ex"] = FORGERS["hex_ex"].format(hex=kit.INPUT_TRANSFORMER_ATTACK.encode().hex())
LEAKER = ("get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))\n"
          "def square(x):\n    return x * x")


def escape_code(course: Path, victim: Path) -> str:
    """Read the private files, write into them, plant a link in /tmp, leave a process behind."""
    reads = [course / "solutions" / "lesson_a" / "lesson_a.ipynb", course / "gradebook.db",
             course / "nbgrader_config.py", kit.REPO / "solutions", kit.REPO / "lessons", kit.REPO / "README.md"]
    writes = [victim, course / "gradebook.db", course / "nbgrader_config.py", course / "solutions" / "lesson_a" / "x",
              kit.REPO / "course_utils" / "instructor" / "planted.py", course / "autograded" / "good" / "planted"]
    return ("import os, subprocess\nfound, wrote = [], []\n"
            f"for p in {[str(r) for r in reads]!r}:\n"
            "    try:\n"
            "        found.append(p) if os.path.isdir(p) and os.listdir(p) else open(p, 'rb').read(1) and found.append(p)\n"
            "    except OSError:\n        pass\n"
            f"for p in {[str(w) for w in writes]!r}:\n"
            "    try:\n"
            "        with open(p, 'a') as f:\n            f.write('\\nc.x = 1  # planted')\n"
            "        wrote.append(p)\n"
            "    except OSError:\n        pass\n"
            "for name in ('.grading_report.json.tmp', 'planted-link'):\n"
            "    try:\n        os.symlink('/etc/passwd', '/tmp/' + name)\n    except OSError:\n        pass\n"
            "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
            "print('FOUND:', found, 'WROTE:', wrote)\n"
            "def square(x):\n    return x * x")


FLOOD = ("print('x' * (8 << 20))\n"
         "for i in range(3):\n    open(f'big{i}.bin', 'wb').write(b'0' * (64 << 20))\n"
         "def square(x):\n    return x * x")


def digest(paths):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = kit.make_course(tmp_path_factory.mktemp("attacks") / "course", lessons=("lesson_a",))
    kit.instructor(course, "release", "lesson_a")
    release = course / "notebooks" / "lesson_a" / "lesson_a.ipynb"
    sub = course / "submitted"
    kit.write(kit.answered(release), sub / "good" / "lesson_a" / "lesson_a.ipynb")
    for name, attack in FORGERS.items():
        kit.write(kit.answered(release, answers={"square": attack}, blank=("mean", "clip")),
                  sub / name / "lesson_a" / "lesson_a.ipynb")
    kit.write(kit.answered(release, answers={"square": LEAKER}), sub / "leaker" / "lesson_a" / "lesson_a.ipynb")
    remarked = kit.answered(release)
    kit.cell(remarked, "mean_tests")["metadata"]["nbgrader"].update(solution=True, grade=False, locked=False)
    kit.cell(remarked, "mean_tests")["source"] = "pass"
    kit.write(remarked, sub / "remarked" / "lesson_a" / "lesson_a.ipynb")
    kit.write(kit.answered(release, answers={"square": FLOOD}), sub / "flood" / "lesson_a" / "lesson_a.ipynb")
    victim = sub / "good" / "lesson_a" / "lesson_a.ipynb"
    if SANDBOXED:  # without the sandbox the escape would succeed: it would plant files in this checkout and /tmp
        kit.write(kit.answered(release, answers={"square": escape_code(course, victim)}),
                  sub / "escape" / "lesson_a" / "lesson_a.ipynb")
    private = [victim, course / "nbgrader_config.py",  # (the gradebook changes by grading: checked below)
               *sorted((course / "solutions").rglob("*.ipynb")), *sorted((kit.REPO / "course_utils").rglob("*.py"))]
    before = digest(private)
    started = time.time()
    run = kit.instructor(course, "autograde", "--cell-timeout=20", "--timeout=300")
    return course, json.loads((course / "grading_report.json").read_text())["lesson_a"], before, private, started, run.stdout


def test_a_correct_solution_still_gets_full_marks(graded):
    assert kit.totals(graded[0], "lesson_a")["good"] == (6, 6)
    assert graded[1]["good"]["flags"] == []


@pytest.mark.parametrize("student", sorted(FORGERS))
def test_blank_answer_plus_an_attack_on_the_verdicts_scores_zero(graded, student):
    course, report = graded[0], graded[1]
    assert kit.totals(course, "lesson_a")[student] == (0, 6), report[student]
    why = "refused at run time" if student in RUN_TIME else "not run"  # by the audit hook; by the pre-check
    assert any(why in flag for flag in report[student]["flags"]), report[student]


def test_the_refused_cell_says_why(graded):
    text = (graded[0] / "autograded" / "input_transformer" / "lesson_a" / "lesson_a.ipynb").read_text()
    assert "GradingRefused" in text and "input_transformers_post" in text
    status = kit.instructor(graded[0], "status").stdout
    assert "input_transformer" in status and "not run" in status


def test_a_test_cell_re_marked_as_a_solution_is_restored(graded):
    assert kit.totals(graded[0], "lesson_a")["remarked"] == (6, 6)
    assert graded[1]["remarked"]["status"] == "graded"
    assert any("metadata changed" in n for n in graded[1]["remarked"]["notes"])


def test_feedback_never_carries_the_hidden_tests(graded):
    course = graded[0]
    kit.instructor(course, "feedback", "lesson_a", "--student", "leaker")
    page = html.unescape(re.sub(r"<[^>]+>", "", (course / "feedback" / "leaker" / "lesson_a" / "lesson_a.html").read_text()))
    for secret in ("square(-2) == 4", "mean([1, 2]) == 1.5", "clip(-1, 0, 3) == 0"):
        assert secret not in page
    assert kit.totals(course, "lesson_a")["leaker"][0] == 4  # its square cell was not run


def test_outputs_and_files_are_bounded(graded):
    course = graded[0]
    assert kit.totals(course, "lesson_a")["flood"] == (6, 6)
    folder = course / "autograded" / "flood" / "lesson_a"
    assert [p.name for p in folder.iterdir()] == ["lesson_a.ipynb"]
    assert (folder / "lesson_a.ipynb").stat().st_size < 2 << 20
    assert "output truncated by the grader" in (folder / "lesson_a.ipynb").read_text()


def test_escapes_leave_every_private_file_unread_and_unchanged(graded, sandboxed):
    course, report, before, private, started, _ = graded
    assert digest(private) == before
    assert b"planted" not in (course / "gradebook.db").read_bytes()
    assert not (kit.REPO / "course_utils" / "instructor" / "planted.py").exists()
    assert not (course / "solutions" / "lesson_a" / "x").exists()
    assert not (course / "autograded" / "good" / "planted").exists()
    text = (course / "autograded" / "escape" / "lesson_a" / "lesson_a.ipynb").read_text()
    assert "FOUND: [] WROTE: []" in text, text[-3000:]
    assert kit.totals(course, "lesson_a")["escape"] == (6, 6) and kit.totals(course, "lesson_a")["good"] == (6, 6)
    for name in (".grading_report.json.tmp", "planted-link"):
        assert not os.path.lexists(f"/tmp/{name}")


def test_no_process_of_a_submission_outlives_the_grading(graded, sandboxed):
    mine = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[:2] == [b"sleep", b"300"]:
            mine.append(pid)
    assert mine == []


def test_the_status_report_names_the_isolation(graded, sandboxed):
    assert all(o["isolation"] == MODE for o in graded[1].values())
