"""Markers by folder (the environment every run needs is set in the root ``conftest.py``).

The folders say what a test tests, and each gives its tests a marker of the same name:
``unit`` (course_utils and the data, in-process, seconds), ``lessons`` (the lessons'
exercises, release and cross-framework agreement), ``grading`` (the instructor's grading
tools on fixture lessons), ``e2e`` (servers: JupyterLab, a browser, JupyterHub). Anything
that executes a lesson notebook from top to bottom (nbval over ``solutions/``, the nbgrader
round trip of every lesson) is also marked ``notebooks``.

``make test`` runs the tests on two pytest-xdist workers. The slowest kinds are handed out
first (sorted here), so that neither worker is left with a long test at the end while the
other idles; how tests are grouped into units of work is in the root ``conftest.py``.
"""
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FOLDER_MARKERS = ("unit", "lessons", "grading", "e2e")


# Handed out in this order (by marker; a stable sort keeps each file's tests together).
FIRST_TO_LAST = ("notebooks", "e2e", "grading", "lessons", "unit")


def _rank(item) -> int:
    return next((i for i, name in enumerate(FIRST_TO_LAST) if item.get_closest_marker(name)), len(FIRST_TO_LAST))


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebooks)
            continue
        try:
            folder = path.relative_to(TESTS).parts[0]
        except ValueError:
            continue
        if folder in FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))
    items.sort(key=_rank)
