"""Authoring commands for instructors: jupytext sources -> solution notebooks -> release.

The solution notebooks are written as jupytext percent scripts in ``lessons/NN_topic/``
(reviewable diffs; nbgrader's cell metadata lives in each cell header). They stay out
of ``solutions/`` because nbgrader copies every non-notebook file of a lesson folder
into the release, which would leak the answers.

    python -m course_utils.instructor.authoring sync [--check]     lessons/*.py -> solutions/*.ipynb
    python -m course_utils.instructor.authoring release [--check] [LESSON ...]   solutions/ -> notebooks/

``--check`` changes nothing and exits 1, naming the files, when they are out of date.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from course_utils.instructor.runner import venv_path

ROOT = Path(__file__).resolve().parents[2]  # the clone (make sync and make release run from it)


def lesson_sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "lessons").glob("[0-9][0-9]_*/*.py"))


def notebook_from_source(source: Path) -> str:
    """The solution notebook's JSON text for one jupytext source, byte-for-byte stable.

    Cell ids are derived from nbgrader's grade_id (else the cell's position), because
    jupytext draws random ones and the committed notebooks must not churn.
    """
    import jupytext
    import nbformat

    nb = jupytext.read(source)
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.id = grade_id or f"{source.stem}-{index:03d}"
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def solution_path(source: Path, root: Path = ROOT) -> Path:
    return root / "solutions" / source.parent.name / f"{source.stem}.ipynb"


def sync(check: bool, root: Path = ROOT) -> list[str]:
    """Write (or with ``check``, compare) every solution notebook; return the stale ones."""
    stale = []
    for source in lesson_sources(root):
        target, text = solution_path(source, root), notebook_from_source(source)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(str(target.relative_to(root)))
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return stale


def lessons(root: Path = ROOT) -> list[str]:
    return sorted(p.name for p in (root / "solutions").glob("[0-9][0-9]_*") if p.is_dir())


def generate_release(lesson: str, course_root: Path) -> Path:
    """Run ``nbgrader generate_assignment`` for one lesson in ``course_root``; return its release folder.

    Runs nbgrader as its own process with the environment's bin/ on PATH, since
    nbgrader calls the ``alembic`` executable to create the gradebook.
    """
    env = {**os.environ, "PATH": venv_path()}
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", lesson, "--force", "--log-level=ERROR"],
        cwd=course_root, env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {lesson} failed:\n{result.stdout}{result.stderr}")
    return course_root / "notebooks" / lesson


def release_differences(lesson: str, root: Path = ROOT) -> list[str]:
    """Files of ``notebooks/<lesson>`` that differ from a fresh release (missing, extra or changed)."""
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", course)
        shutil.copytree(root / "solutions" / lesson, course / "solutions" / lesson)
        fresh, committed = generate_release(lesson, course), root / "notebooks" / lesson
        differences = []
        compare = filecmp.dircmp(fresh, committed) if committed.exists() else None
        if compare is None:
            return [f"notebooks/{lesson}/ is missing"]
        stack = [(compare, Path("notebooks") / lesson)]
        while stack:
            cmp, rel = stack.pop()
            differences += [f"{rel / n} is missing" for n in cmp.left_only]
            differences += [f"{rel / n} is not in a fresh release" for n in cmp.right_only]
            _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
            differences += [f"{rel / n} differs from a fresh release" for n in mismatch + errors]
            stack += [(sub, rel / name) for name, sub in cmp.subdirs.items()]
        return differences


def release(selected: list[str], check: bool, root: Path = ROOT) -> list[str]:
    """Release the lessons into ``notebooks/`` and return their folders (with ``check``: change
    nothing and return what is out of date)."""
    found = []
    for lesson in selected or lessons(root):
        if not (root / "solutions" / lesson).is_dir():
            raise SystemExit(f"no lesson {lesson!r} in solutions/; lessons: {', '.join(lessons(root))}")
        if check:
            found += release_differences(lesson, root)
        else:
            found.append(str(generate_release(lesson, root).relative_to(root)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.instructor.authoring", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="lessons/*.py -> solutions/*.ipynb")
    p_sync.add_argument("--check", action="store_true")
    p_release = sub.add_parser("release", help="solutions/ -> notebooks/ (nbgrader generate_assignment)")
    p_release.add_argument("--check", action="store_true")
    p_release.add_argument("lessons", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "sync":
        stale = sync(args.check)
        hint = "run `make sync`" if args.check else "written"
    else:
        stale = release(args.lessons, args.check)
        hint = "run `make release`" if args.check else "released"
    for line in stale:
        print(f"{line}: {hint}" if args.check else f"{hint}: {line}")
    if args.check and not stale:
        print("solutions/ in sync with lessons/" if args.command == "sync" else "notebooks/ in sync with solutions/")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
