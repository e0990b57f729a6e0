"""Feedback that keeps hidden tests hidden.

nbgrader's ``generate_feedback`` renders the autograded notebook, and autograding put the
hidden tests back into every test cell, so by default the feedback shows their source
(nbgrader issues #917 and #1363). :class:`HideHiddenTests` runs as one more feedback
preprocessor (see ``nbgrader_config.py``): in every autograded test cell it replaces the
lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` by one comment, and
shortens each error to its last line (``AssertionError: ...``), because a traceback quotes
the failing hidden line. The cell's score, pass or fail, and error message stay. Whatever a
cell printed (a hook of the student's can print a test cell's own source): every output, in
any cell, that holds a line of the notebook's hidden tests is replaced by :data:`LEAK_NOTE`.

Instructors get the full version with ``python -m course_utils.instructor feedback --full``
(``--HideHiddenTests.enabled=False``).
"""
from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_output
from traitlets import Bool, Unicode

HIDDEN_NOTE = "# (hidden tests: not shown; their result is in this cell's score and output)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEAK_NOTE = "(output removed: it quoted the hidden tests)\n"


def hidden_lines(source: str, begin: str = "### BEGIN HIDDEN TESTS", end: str = "### END HIDDEN TESTS") -> set[str]:
    """The hidden tests' lines of ``source`` worth looking for (stripped, not too short)."""
    found, hidden = set(), False
    for line in source.splitlines():
        if begin in line:
            hidden = True
        elif end in line:
            hidden = False
        elif hidden and len(line.strip()) >= 8:
            found.add(line.strip())
    return found


def output_text(output) -> str:
    parts = [output.get("text", ""), output.get("evalue", "")]
    parts += [v if isinstance(v, str) else "".join(v) if isinstance(v, list) else "" for v in output.get("data", {}).values()]
    parts += output.get("traceback", []) or []
    return ANSI.sub("", "\n".join(p if isinstance(p, str) else "".join(p) for p in parts))


def strip_hidden_tests(source: str, begin: str = "### BEGIN HIDDEN TESTS", end: str = "### END HIDDEN TESTS",
                       note: str = HIDDEN_NOTE) -> str:
    """``source`` with each hidden-test region (markers included) replaced by ``note``."""
    kept, hidden = [], False
    for line in source.splitlines():
        if begin in line:
            hidden = True
            kept.append(line[: len(line) - len(line.lstrip())] + note)
        elif end in line:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept)


def short_error(output) -> list[str]:
    """An error output's message without the traceback: ``['AssertionError: why']``."""
    message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".rstrip(": ")
    return [ANSI.sub("", message)]


def is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


class HideHiddenTests(Preprocessor):
    """Feedback preprocessor: hidden test code out, pass/fail and error messages in."""

    enabled = Bool(True, help="Hide the hidden tests (False: the full feedback)").tag(config=True)
    begin_test_delimeter = Unicode("### BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("### END HIDDEN TESTS").tag(config=True)

    def preprocess(self, nb, resources):
        self._hidden = set()
        if self.enabled:
            for cell in nb.cells:
                if is_test_cell(cell):
                    source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
                    self._hidden |= hidden_lines(source, self.begin_test_delimeter, self.end_test_delimeter)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
            if self.begin_test_delimeter in source:
                cell.source = strip_hidden_tests(source, self.begin_test_delimeter, self.end_test_delimeter)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = short_error(output)
        hidden = getattr(self, "_hidden", set())
        if hidden and cell.get("cell_type") == "code":
            for i, output in enumerate(cell.get("outputs", [])):
                text = output_text(output)
                if any(line in text for line in hidden):
                    if output.get("output_type") == "error":
                        output.update(evalue="(message removed: it quoted the hidden tests)",
                                      traceback=[f"{output.get('ename', 'Error')}: (message removed)"])
                    else:
                        cell.outputs[i] = new_output("stream", name="stdout", text=LEAK_NOTE)
        return cell, resources
