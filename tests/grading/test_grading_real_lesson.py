"""The real lesson 01_cnn through the sandboxed grading: the kernel limits and hidden folders must
not break TensorFlow, PyTorch or the shipped data, and its feedback must not show its hidden tests."""
import html
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "grading"))
import kit  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LESSON = "01_cnn"
pytestmark = pytest.mark.notebooks


def hidden_lines(notebook: Path) -> set[str]:
    lines, hidden = set(), False
    for cell in json.loads(notebook.read_text())["cells"]:
        for line in "".join(cell["source"]).splitlines():
            hidden = (hidden or "BEGIN HIDDEN TESTS" in line) and "END HIDDEN TESTS" not in line
            if hidden and len(line.strip()) > 12 and "HIDDEN TESTS" not in line:
                lines.add(line.strip())
    return lines


def test_real_lesson_in_the_sandbox(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / LESSON, course / "solutions" / LESSON)
    kit.instructor(course, "release", LESSON)
    shutil.copytree(course / "solutions" / LESSON, course / "submitted" / "solver" / LESSON)
    log = kit.instructor(course, "autograde", "--timeout=600").stdout
    score, max_score = kit.totals(course, LESSON)["solver"]
    assert score == max_score > 0, log  # (the untouched release scoring zero: tests/lessons/test_grading_round_trip.py)

    kit.instructor(course, "feedback", LESSON, "--student", "solver")
    secret = set().union(*(hidden_lines(nb) for nb in (course / "solutions" / LESSON).glob("*.ipynb")))
    # Lines the student sees anyway (in the release, or in the solver's answers) are no secret: super().__init__(), ...
    visible = "".join(nb.read_text() for nb in (course / "notebooks" / LESSON).glob("*.ipynb"))
    visible += "".join("".join(cell["source"]) for nb in (course / "solutions" / LESSON).glob("*.ipynb")
                       for cell in json.loads(nb.read_text())["cells"]
                       if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    secret = {line for line in secret if json.dumps(line)[1:-1] not in visible and line not in visible}
    assert secret
    pages = sorted((course / "feedback" / "solver" / LESSON).glob("*.html"))
    assert len(pages) == 2
    for page in pages:
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert "hidden tests: not shown" in text
        assert [line for line in secret if line in text] == []
