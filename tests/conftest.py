"""Shared test set-up.

PyTorch's compiler stack (triton) must load before TensorFlow in a process that uses
both, or the process can segfault (see the README's "Known pitfalls"), so it is imported
here first. Notebook kernels started by nbval and nbgrader inherit COURSE_PROFILE=smoke.

The folders say what a test tests, and each gives its tests a marker of the same name:
``unit`` (course_utils and the data, in-process, seconds), ``lessons`` (the lessons'
exercises, release and cross-framework agreement), ``grading`` (the instructor's grading
tools on fixture lessons), ``e2e`` (servers: JupyterLab, a browser, JupyterHub). Anything
that executes a lesson notebook from top to bottom (nbval over ``solutions/``, the nbgrader
round trip of every lesson) is also marked ``notebooks``.
"""
import os

os.environ["COURSE_PROFILE"] = "smoke"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch._dynamo  # noqa: E402,F401  (before TensorFlow: see the module docstring)

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
