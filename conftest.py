"""pytest set-up for every run, whatever paths it is given (``solutions/`` alone included).

It lives at the project root because pytest reads a ``conftest.py`` only from the folders of
what it collects and their parents: in ``tests/`` it would not apply to ``pytest solutions``,
whose notebooks would then run in the ``standard`` profile.

* Notebook kernels started by nbval and nbgrader inherit ``COURSE_PROFILE=smoke``.
* PyTorch's compiler stack (triton) must load before TensorFlow in a process that uses both,
  or the process can segfault (README, "Known pitfalls"), so it is imported here first.
* Under pytest-xdist (``make test``: ``-n 2``) a unit of work is a test file, so its module
  fixtures are built once, except in the files of ``SPLIT_BY_LESSON``, whose lessons are
  units of their own (one nbgrader round trip per lesson can then run beside another).
"""
import os
import re

import pytest

os.environ["COURSE_PROFILE"] = "smoke"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch._dynamo  # noqa: E402,F401  (before TensorFlow: see the module docstring)

SPLIT_BY_LESSON = ("tests/lessons/test_grading_round_trip.py",)
LESSON_PARAM = re.compile(r"\[(\d\d_\w+?)[\]-]")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown to pytest without it
def pytest_xdist_make_scheduler(config, log):
    """Units of work: files, and lessons within SPLIT_BY_LESSON, in collection order.

    Written here because pytest-xdist's own ``--dist loadgroup`` marks cannot be used: it
    renames test ids through an attribute that pytest 9 no longer reads."""
    from xdist.scheduler import LoadScopeScheduling

    class FileOrLesson(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            lesson = LESSON_PARAM.search(nodeid) if path in SPLIT_BY_LESSON else None
            return f"{path}[{lesson[1]}]" if lesson else path

    config.option.loadscopereorder = False  # keep the order of tests/conftest.py: slowest kinds first
    return FileOrLesson(config, log)
