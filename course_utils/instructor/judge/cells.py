"""Judged test cells as source: which run in the grader, what of them the student's kernel still runs
(the static checks), the imports and classes a call needs."""
from __future__ import annotations

import ast

JUDGED = "judged"            # the lesson's test-cell metadata: {"course": {"judged": true}}
LESSON_META = "course"
STATIC_CHECKS = {"check_from_scratch"}  # what of a judged cell still runs in the student's kernel
KERNEL_PLACEHOLDER = "# the grader runs this test itself, calling your functions (course_utils.instructor.judge)"


def imports_of(source: str) -> str:
    """The import statements of a cell (the set-up's), as source."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return ""
    return "\n".join(ast.unparse(s) for s in body if _is_import(s))


def _is_import(statement) -> bool:
    return isinstance(statement, (ast.Import, ast.ImportFrom))


def test_classes(source: str) -> dict[str, str]:
    """The classes a test cell defines, as source: the kernel needs them to make the models the test passes."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return {}
    return {s.name: ast.unparse(s) for s in body if isinstance(s, ast.ClassDef)}


def static_part(source: str, used_later=frozenset()) -> str:
    """What of a judged test cell the student's kernel runs: its imports, the functions and classes it
    defines that later cells of the notebook use (``used_later``; defining computes nothing), and its
    static checks of the answer's code (:data:`STATIC_CHECKS`) with the statements that make what
    they use. Never a reference value: that is computed in the grader only."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return KERNEL_PLACEHOLDER
    checks = [s for s in body if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in STATIC_CHECKS
                                     for n in ast.walk(s))]
    definitions = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    keep = {id(s) for s in checks} | {id(s) for s in body if _is_import(s)
                                      or (isinstance(s, definitions) and s.name in used_later)}
    needed = {n.id for s in checks for n in ast.walk(s) if isinstance(n, ast.Name)}  # what a definition uses runs later, if ever
    grew = True
    while grew:  # the statements that make the names the checks use, and the names those use
        grew = False
        for s in body:
            if id(s) not in keep and not isinstance(s, definitions) and _defined(s) & needed:
                keep.add(id(s))
                needed |= {n.id for n in ast.walk(s) if isinstance(n, ast.Name)}
                grew = True
    kept = "\n".join(ast.unparse(s) for s in body if id(s) in keep)
    return kept or KERNEL_PLACEHOLDER


def names_used_after(sources: list[str]) -> list[set[str]]:
    """For each cell, the names the cells after it read (cells that do not parse read nothing)."""
    after, ahead = [set() for _ in sources], set()
    for index in range(len(sources) - 1, -1, -1):
        after[index] = set(ahead)
        try:
            ahead |= {n.id for n in ast.walk(ast.parse(sources[index])) if isinstance(n, ast.Name)}
        except SyntaxError:
            pass
    return after


def _defined(statement) -> set[str]:
    """The names a statement binds or changes anywhere in it (``x = ...``, ``x += ...``, ``x.append(...)``)."""
    found = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.attr in ("append", "extend", "insert", "update", "add", "setdefault"):
            found.add(node.func.value.id)
    return found
