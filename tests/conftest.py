"""Markers by folder (the environment every run needs is set in the root ``conftest.py``).

The folders say what a test tests, and each gives its tests a marker of the same name:
``unit`` (course_utils and the data, in-process, seconds), ``lessons`` (the lessons'
exercises, release and cross-framework agreement), ``grading`` (the instructor's grading
tools on fixture lessons), ``e2e`` (servers: JupyterLab, a browser, JupyterHub). Anything
that executes a lesson notebook from top to bottom (nbval over ``solutions/``, the nbgrader
round trip of every lesson) is also marked ``notebooks``.
"""
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FOLDER_MARKERS = ("unit", "lessons", "grading", "e2e")


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
