"""Shared test set-up.

PyTorch's compiler stack (triton) must load before TensorFlow in a process that uses
both, or the process can segfault (see DESIGN.md), so it is imported here first.
Notebook kernels started by nbval and nbgrader inherit COURSE_PROFILE=smoke.
"""
import os

os.environ["COURSE_PROFILE"] = "smoke"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch._dynamo  # noqa: E402,F401  (before TensorFlow: see the module docstring)


def pytest_collection_modifyitems(config, items):
    """Mark every executed notebook (nbval items) as slow 'notebooks' tests."""
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.notebooks)
