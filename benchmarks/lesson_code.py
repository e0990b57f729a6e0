"""Names defined by a lesson's solution notebook, without running the notebook's training.

``tests.harness.lesson_namespace`` runs whole graded cells. Some of the models the
benchmarks time live in ungraded cells that also train (lesson 02's ``build_net`` shares
its cell with the experiment's training loop), so this module picks single top-level
statements instead: the ``def``, ``class``, assignment or import that defines each
requested name, plus, transitively, the statements defining the names those use. They run
after the set-up cell, in notebook order, so the benchmark times the lesson's own code,
never a copy of it.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import symtable
from dataclasses import dataclass

from tests.harness import solution_notebook

_DEFINING = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Import,
             ast.ImportFrom)


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a code cell: its position, source and the names it binds."""

    position: tuple[int, int]  # (code cell, statement) in notebook order
    source: str
    defines: frozenset[str]
    uses: frozenset[str]


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _global_uses(source: str) -> set[str]:
    """Names a statement reads from the module's namespace, in any nested scope.

    ``symtable`` applies Python's own scoping rules, so a function's locals and
    parameters (``out``, ``x``) are not mistaken for the notebook's globals of that name.
    """
    used: set[str] = set()

    def visit(table: symtable.SymbolTable, top: bool) -> None:
        for symbol in table.get_symbols():
            if not symbol.is_referenced():
                continue
            if (top and not symbol.is_assigned() and not symbol.is_imported()) or \
                    (not top and symbol.is_global() and not symbol.is_declared_global()):
                used.add(symbol.get_name())
        for child in table.get_children():
            visit(child, top=False)

    visit(symtable.symtable(source, "<cell>", "exec"), top=True)
    return used


def _statements(cells: list[str]) -> list[Statement]:
    found = []
    for c, cell in enumerate(cells):
        for s, node in enumerate(ast.parse(cell).body):
            if isinstance(node, _DEFINING):
                source = ast.get_source_segment(cell, node)
                found.append(Statement((c, s), source, frozenset(_bound_names(node)), frozenset(_global_uses(source))))
    return found


def _code_cells(lesson: str, framework: str) -> list[str]:
    notebook = json.loads(solution_notebook(lesson, framework).read_text(encoding="utf-8"))
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def select_statements(lesson: str, framework: str, names: tuple[str, ...]) -> tuple[str, list[Statement]]:
    """(the set-up cell, the statements defining ``names`` and what they need, in notebook order).

    A requested name is taken from its first definition in the notebook; a name a selected
    statement needs, from the last definition before that statement. Names the set-up
    cell defines are left to it.
    """
    setup, *rest = _code_cells(lesson, framework)
    statements = _statements(rest)
    from_setup = {name for st in _statements([setup]) for name in st.defines}
    chosen: dict[tuple[int, int], Statement] = {}
    pending: list[tuple[str, tuple[int, int] | None]] = [(name, None) for name in names]
    while pending:
        name, before = pending.pop()
        candidates = [st for st in statements if name in st.defines and (before is None or st.position < before)]
        if not candidates:
            if before is None:
                raise LookupError(f"solutions/{lesson}: the {framework} notebook defines no top-level {name!r}")
            continue  # a builtin, or a name the set-up cell or Python itself provides
        statement = candidates[0] if before is None else candidates[-1]
        if statement.position in chosen:
            continue
        chosen[statement.position] = statement
        pending += [(used, statement.position) for used in statement.uses
                    if used not in from_setup and used not in statement.defines]
    return setup, [chosen[key] for key in sorted(chosen)]


def lesson_definitions(lesson: str, framework: str, *names: str) -> dict:
    """A fresh namespace holding the set-up cell's names and ``names`` (with what they need),
    defined by the solution notebook's own statements; their printed output is discarded."""
    setup, statements = select_statements(lesson, framework, names)
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup, f"{lesson}/{framework}/setup", "exec"), namespace)
        for st in statements:
            exec(compile(st.source, f"{lesson}/{framework}/cell{st.position[0] + 1}", "exec"), namespace)
    return namespace
