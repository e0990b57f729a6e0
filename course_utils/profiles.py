"""Run profiles: how big a notebook's data, model and training are.

``smoke``    seconds per notebook: CI and nbgrader's autograder.
``standard`` a student's CPU: a few minutes per notebook, real accuracy.
``full``     a GPU: the best results.

``COURSE_PROFILE`` chooses one. Without it the default is ``full`` when a GPU is
visible and ``standard`` otherwise; ``smoke`` whenever ``NBGRADER_EXECUTION`` is
set, so that autograding never trains for minutes.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PROFILES = ("smoke", "standard", "full")


class _SameAsStandard:
    """The default of :func:`pick`'s ``full``: "the standard value" (so that ``None``
    stays an ordinary value a profile can pick)."""

    def __repr__(self) -> str:
        return "<same as standard>"


SAME_AS_STANDARD = _SameAsStandard()


def gpu_available() -> bool:
    """Whether a GPU is visible, asking an already-imported framework first.

    This module imports neither framework: it only consults one that the
    notebook has imported, and otherwise looks for the NVIDIA driver.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        mps = getattr(torch.backends, "mps", None)
        return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "config"):
        return bool(tf.config.list_physical_devices("GPU"))
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def current_profile() -> str:
    """The active profile's name, read from the environment at each call."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return "smoke"
    chosen = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not chosen:
        return "full" if gpu_available() else "standard"
    if chosen not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE={chosen!r} is not a profile; expected one of {', '.join(PROFILES)}"
        )
    return chosen


def pick(smoke, standard, full=SAME_AS_STANDARD, *, profile: str | None = None):
    """The value for the active profile: ``EPOCHS = pick(smoke=1, standard=5, full=15)``.

    ``full`` defaults to ``standard`` when left out; any value given, ``None`` included,
    is used as it is. ``profile`` overrides the environment.
    """
    name = profile or current_profile()
    if name not in PROFILES:
        raise ValueError(f"profile {name!r} is not one of {', '.join(PROFILES)}")
    return {"smoke": smoke, "standard": standard, "full": standard if full is SAME_AS_STANDARD else full}[name]
