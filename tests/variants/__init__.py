"""Right and wrong answers to each lesson's exercises, one module per lesson.

A module ``lesson_NN_topic.py`` defines ``LESSON`` (the folder name, e.g. ``"01_cnn"``) and
``VARIANTS``: tuples (framework, grade_id of the answer cell, a short name, the answer,
whether the tests must accept it). An answer is source code, or a :class:`Mutation` of the
lesson's own solution. ``tests/lessons/test_exercise_variants.py`` runs them all.
"""
import importlib
import pkgutil


class Mutation(list):
    """Replacements (old, new) applied to the solution's source; each old text must occur."""


def all_variants() -> dict[str, list[tuple]]:
    """{lesson folder: its variants} for every ``lesson_*`` module in this package."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("lesson_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found[module.LESSON] = module.VARIANTS
    return found
