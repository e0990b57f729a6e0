"""pytest set-up for every run, whatever paths it is given (``solutions/`` alone included).

It lives at the project root because pytest reads a ``conftest.py`` only from the folders of
what it collects and their parents: in ``tests/`` it would not apply to ``pytest solutions``,
whose notebooks would then run in the ``standard`` profile.

* Notebook kernels started by nbval and nbgrader inherit ``COURSE_PROFILE=smoke``.
* PyTorch's compiler stack (triton) must load before TensorFlow in a process that uses both,
  or the process can segfault (README, "Known pitfalls"), so it is imported here first.
"""
import os

os.environ["COURSE_PROFILE"] = "smoke"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch._dynamo  # noqa: E402,F401  (before TensorFlow: see the module docstring)
