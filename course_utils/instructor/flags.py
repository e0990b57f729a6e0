"""Answer code that deserves a human look: monkey-patching, redefined built-ins, file and process access.

Flags change no score: ``autograde`` marks the notebook *flagged* in the gradebook and
``status`` lists the reasons (README, "Threat model of autograding").
"""
from __future__ import annotations

import ast

SUSPICIOUS_IMPORTS = {"subprocess", "ctypes", "socket", "shutil", "sqlite3", "signal", "gc", "inspect",
                      "importlib", "builtins", "pickle", "multiprocessing", "pty"}
SUSPICIOUS_CALLS = {"open", "eval", "exec", "compile", "__import__", "setattr", "delattr", "globals", "getattr"}
SUSPICIOUS_OS = {"system", "popen", "remove", "unlink", "rmdir", "rename", "replace", "kill", "killpg", "_exit",
                 "listdir", "scandir", "walk", "chdir", "fork", "execv", "execvp", "spawnv"}
SUSPICIOUS_WORDS = ("solutions", "gradebook", "submitted", "autograded", "hidden tests", "source/")
SHADOWED_BUILTINS = {"abs", "all", "any", "float", "int", "isinstance", "len", "max", "min", "print", "range",
                     "round", "sorted", "str", "sum", "type", "AssertionError", "Exception", "assert_"}


def suspicious(source: str) -> list[str]:
    """Why a piece of answer code deserves a human look (monkey-patching, file access...)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    modules = {"__builtins__", "builtins"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                modules.add((alias.asname or alias.name).split(".")[0])
    found = []

    def root_name(expr):
        while isinstance(expr, ast.Attribute | ast.Subscript):
            expr = expr.value
        return expr.id if isinstance(expr, ast.Name) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"imports {n}" for n in names if n.split(".")[0] in SUSPICIOUS_IMPORTS]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                name = root_name(target)
                if isinstance(target, ast.Attribute | ast.Subscript) and name in modules:
                    found.append(f"changes {ast.unparse(target)} (a module's attribute)")
                elif isinstance(target, ast.Name) and target.id in SHADOWED_BUILTINS:
                    found.append(f"redefines the built-in {target.id}")
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in SHADOWED_BUILTINS:
            found.append(f"redefines the built-in {node.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in SUSPICIOUS_CALLS:
                found.append(f"calls {func.id}()")
            elif isinstance(func, ast.Attribute) and root_name(func) == "os" and func.attr in SUSPICIOUS_OS:
                found.append(f"calls os.{func.attr}()")
            elif isinstance(func, ast.Attribute) and func.attr in {"read_text", "read_bytes", "write_text", "write_bytes"}:
                found.append(f"calls .{func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [f"mentions {word!r}" for word in SUSPICIOUS_WORDS if word in node.value.lower()]
    return sorted(set(found))
