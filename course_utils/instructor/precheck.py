"""Every submitted file is read before nbgrader sees it.

Empty files, non-JSON and non-notebooks are left out (the notebook scores zero, the reason
is recorded); older nbformat versions are converted; duplicate or missing cell ids are
renumbered (nbgrader can abort a whole run on them, issues #1083/#1941); a duplicated answer
cell keeps nbgrader's metadata on its last copy only; a notebook under a wrong file name is
renamed when its nbgrader cells say which notebook it is; extra notebooks are left out;
suspicious answer code is flagged for review (:mod:`.flags`).

With the lesson's :class:`Reference` (its release and source, made by the grader): a test or
locked cell whose nbgrader metadata the student changed (re-marked as a solution, points,
type) gets the release's cell back, instead of nbgrader failing the whole notebook on
"Inconsistent checksums"; and every code cell the student wrote or changed (answer cells and
free cells) is read as IPython would run it (magics and ``!`` commands included,
:func:`~.flags.transform`): one that could forge the verdicts (:func:`~.flags.attacks`: the
shell's hooks and transformers, code objects, ``exec``, ``ctypes``, a rebinding of a name the
locked cells define, or code that still does not parse) is *not run*: it is replaced by a
cell that raises :data:`BLOCKED` with the reasons, so its exercise scores zero, the rest of the
notebook is graded, and the notebook is flagged with the reasons.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from pathlib import Path

from course_utils.instructor.flags import attacks, defined_names, loaded_names, suspicious, transform
from course_utils.instructor.guard import META, STUDENT, TEST, TRUSTED
from course_utils.instructor.judge import JUDGED, LESSON_META

BLOCKED = "GradingRefused"
TEMPLATE = ("raise RuntimeError({message!r})  # {blocked}: written by course_utils.instructor.precheck\n")


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


class Reference:
    """What the pre-check compares a submission with: the lesson's release (cells a student may leave
    as they are), its source's locked and test cells (the names they define and use), per notebook."""

    def __init__(self, release: dict, source: dict):
        import ast

        self.trusted = {name: {c.source for c in nb.cells if c.cell_type == "code"} for name, nb in release.items()}
        self.locked = {name: {nbgrader_meta(c)["grade_id"]: c for c in nb.cells
                              if nbgrader_meta(c).get("grade_id") and not nbgrader_meta(c).get("solution")}
                       for name, nb in release.items()}
        # for the grader's own run of judged tests (:mod:`.judge`): the release's set-up cell (its first
        # code cell) and the functions and classes the answer cells define
        self.setup = {name: next((c.source for c in nb.cells if c.cell_type == "code"), "") for name, nb in release.items()}
        self.answers = {name: sorted({n.name for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution")
                                      for n in getattr(_parsed(c.source), "body", [])
                                      if isinstance(n, (ast.FunctionDef, ast.ClassDef))})
                        for name, nb in source.items()}
        self.protected = {}
        for name, nb in source.items():
            defined, used = {}, set()
            for c in nb.cells:
                if c.cell_type != "code" or nbgrader_meta(c).get("solution"):
                    continue
                tree = _parsed(c.source)
                if tree is None:
                    continue
                for n, how in defined_names(tree).items():
                    defined.setdefault(n, set()).update(how)
                if nbgrader_meta(c).get("grade"):  # what a test reads but does not bind itself
                    used |= loaded_names(tree) - set(defined_names(tree))
            # what the tests use and the instructor's cells define; every module they import
            self.protected[name] = {n: how for n, how in defined.items()
                                    if n in used or any(h.startswith("import") for h in how)}

    @classmethod
    def from_folders(cls, release: Path, source: Path):
        import nbformat

        def read(folder):
            return {p.stem: nbformat.read(str(p), as_version=4) for p in sorted(folder.glob("*.ipynb"))}
        return cls(read(release), read(source))


def _parsed(source: str):
    """The cell's syntax tree after IPython's transforms; None where it still does not parse."""
    import ast

    try:
        return ast.parse(transform(source) or source)
    except SyntaxError:
        return None


def restore_locked(name: str, nb, reference: Reference) -> list[str]:
    """Give a test or locked cell whose metadata was changed its release cell back."""
    notes, locked = [], reference.locked.get(name, {})
    for index, cell in enumerate(nb.cells):
        gid = nbgrader_meta(cell).get("grade_id")
        original = locked.get(gid)
        if original is None or (cell.cell_type == original.cell_type and nbgrader_meta(cell) == nbgrader_meta(original)):
            continue
        restored = copy.deepcopy(original)
        restored.id = cell.get("id") or original.get("id")
        nb.cells[index] = restored
        notes.append(f"{name}.ipynb: cell {gid!r} had its nbgrader metadata changed; the release's cell was put back")
    return notes


def live_names(nb, trusted: set[str]) -> list[set[str]]:
    """For each cell, the names whose value at its end a later test cell reads: a test cell reads
    the name without binding it itself, and no trusted cell (release or test) in between binds it.
    A student's scratch ``x`` or ``model`` that the notebook sets again before any test reads it
    is harmless; rebinding a name the tests then read is not."""
    reads, binds = [], []
    for cell in nb.cells:
        read, bound = set(), set()
        if cell.cell_type == "code" and cell.source in trusted:
            tree = _parsed(cell.source)
            if tree is not None:
                bound = set(defined_names(tree))
                if nbgrader_meta(cell).get("grade"):
                    read = loaded_names(tree) - bound
        reads.append(read)
        binds.append(bound)
    live, ahead = [set() for _ in nb.cells], set()
    for index in range(len(nb.cells) - 1, -1, -1):  # walking back: what is read before it is bound again
        live[index] = set(ahead)
        ahead = (ahead - binds[index]) | reads[index]
    return live


def neutralise(name: str, nb, reference: Reference | None) -> list[str]:
    """Replace each changed code cell that could forge the verdicts by a cell that raises; the reasons."""
    trusted = reference.trusted.get(name, set()) if reference else set()
    protected = reference.protected.get(name, {}) if reference else {}
    live = live_names(nb, trusted)
    found = []
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or cell.source in trusted:  # "locked" is the student's to set
            continue
        # imports always; other names only where a later test reads the value this cell would leave
        why = attacks(cell.source, {n: how for n, how in protected.items()
                                    if n in live[index] or any(h.startswith("import") for h in how)})
        if why:
            label = meta.get("grade_id") or cell.get("id")
            message = f"{BLOCKED}: the grader did not run this cell ({'; '.join(why)})"
            cell.source = TEMPLATE.format(message=message, blocked=BLOCKED)
            found.append(f"{name}.ipynb: cell {label!r} not run (scores zero): {'; '.join(why)}")
    return found


def mark_roles(name: str, nb, reference: Reference | None) -> None:
    """Tell the grading kernel (:mod:`.guard`) which cells are the release's: a test (its source is
    put back by nbgrader whatever the student did), a trusted cell (unchanged), or the student's."""
    trusted = reference.trusted.get(name, set()) if reference else set()
    locked = reference.locked.get(name, {}) if reference else {}
    tests = {gid for gid, c in locked.items() if nbgrader_meta(c).get("grade")}
    nb.get("metadata", {}).pop(META, None)
    for cell in nb.cells:
        cell.get("metadata", {}).pop(META, None)  # only the grader says
        if cell.cell_type != "code":
            continue
        meta = nbgrader_meta(cell)
        role = TEST if meta.get("grade_id") in tests and meta.get("grade") else (
            TRUSTED if cell.source in trusted else STUDENT)
        cell.metadata[META] = {"role": role}
        if role == TEST and locked[meta["grade_id"]].get("metadata", {}).get(LESSON_META, {}).get(JUDGED) is True:
            cell.metadata[META][JUDGED] = True  # the release says so, whatever the submission's metadata
    if reference and any(c.get("metadata", {}).get(META, {}).get(JUDGED) for c in nb.cells):
        nb.metadata[META] = {"judge": {"setup": reference.setup.get(name, ""), "answers": reference.answers.get(name, [])}}


def grade_ids(nb) -> set[str]:
    return {c.metadata.nbgrader["grade_id"] for c in nb.cells
            if "grade_id" in c.get("metadata", {}).get("nbgrader", {})}


def read_notebook(path: Path):
    """(notebook as nbformat 4, notes) or (None, notes with the reason it is unusable)."""
    import nbformat

    data = path.read_bytes()
    if not data.strip():
        return None, [f"{path.name}: empty file"]
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"{path.name}: not a notebook (not JSON: {error})"]
    if not isinstance(raw, dict) or "nbformat" not in raw:
        return None, [f"{path.name}: not a notebook (JSON without 'nbformat')"]
    notes = []
    try:
        version = int(raw["nbformat"])
        nb = nbformat.reads(json.dumps(raw), as_version=4, capture_validation_error={})
    except Exception as error:  # nbformat raises many kinds for broken documents
        return None, [f"{path.name}: not a readable notebook ({type(error).__name__}: {error})"]
    if version != 4:
        notes.append(f"{path.name}: converted from nbformat {version} to 4")
    seen, renumbered = set(), 0
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for cell in nb.cells:
        if not cell.get("id") or cell.id in seen or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", str(cell.id)):
            cell.id = uuid.uuid4().hex[:12]
            renumbered += 1
        seen.add(cell.id)
    if renumbered:
        notes.append(f"{path.name}: {renumbered} missing or duplicate cell id(s) renumbered")
    counts: dict[str, int] = {}
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid:
            counts[gid] = counts.get(gid, 0) + 1
    for gid, n in sorted(counts.items()):
        if n > 1:  # keep nbgrader's metadata on the last copy only (nbgrader's own DeduplicateIds crashes here)
            copies = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
            for cell in copies[:-1]:
                del cell.metadata["nbgrader"]
            notes.append(f"{path.name}: cell {gid!r} appears {n} times (all run, the last one is graded)")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return None, notes + [f"{path.name}: invalid notebook ({error.message})"]
    return nb, notes


def precheck(folder: Path, expected: dict[str, set[str]], reference: Reference | None = None):
    """Check one student's submitted lesson folder.

    ``expected`` maps each notebook name of the lesson (without ``.ipynb``) to its nbgrader
    grade ids. Returns ``(notebooks, notes, flags)``: the usable notebooks by expected name,
    what was changed or left out, and suspicious answer code for review.
    """
    notebooks, notes, flags, strays = {}, [], [], []
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    for path in files:
        if path.name == "timestamp.txt":  # nbgrader's own
            continue
        if "ipynb" not in path.name:  # lesson_a.ipynb.txt and the like are still read
            notes.append(f"{path.name}: not a notebook, left out")
            continue
        nb, why = read_notebook(path)
        notes += why
        if nb is None:
            continue
        stem = path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.stem
        if stem in expected and stem not in notebooks:
            notebooks[stem] = nb
        else:
            strays.append((path.name, nb))
    for name, nb in strays:
        ids = grade_ids(nb)
        match = max(expected, key=lambda n: len(expected[n] & ids), default=None)
        if match and match not in notebooks and expected[match] & ids:
            notebooks[match] = nb
            notes.append(f"{name}: graded as {match}.ipynb (wrong file name)")
        else:
            notes.append(f"{name}: extra notebook, left out")
    notes += [f"{name}.ipynb: missing, scores zero" for name in sorted(set(expected) - set(notebooks))]
    for name, nb in notebooks.items():
        if reference is not None:
            notes += restore_locked(name, nb, reference)
        trusted = reference.trusted.get(name, set()) if reference else set()
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code" and not (meta.get("locked") and reference is None) and cell.source not in trusted:
                flags += [f"{name}.ipynb: {why}" for why in suspicious(transform(cell.source) or cell.source)]
        flags += neutralise(name, nb, reference)
        mark_roles(name, nb, reference)
    return notebooks, notes, sorted(set(flags))


def fingerprint(*folders: Path) -> str:
    """A hash of the files in ``folders`` (a submission and the lesson's source): unchanged means graded already."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()
