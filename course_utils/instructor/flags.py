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


# --- Attacks on the grader: an answer cell with any of these is not run (precheck.neutralise) ---
SHELL_ATTRIBUTES = {"input_transformers_post", "input_transformers_cleanup", "input_transformer_manager",
                    "ast_transformers", "events", "set_custom_exc", "ex", "ev", "run_cell", "run_cell_async",
                    "run_code", "run_ast_nodes", "showtraceback", "_showtraceback", "register_magic_function",
                    "register_magics", "user_ns", "user_global_ns", "kernel", "shell", "displayhook", "display_pub",
                    "settrace", "setprofile", "_getframe", "meta_path", "path_hooks", "modules", "excepthook",
                    "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "cr_frame", "tb_frame"}
DUNDERS = {"__code__", "__globals__", "__builtins__", "__dict__", "__subclasses__", "__bases__", "__mro__",
           "__closure__", "__defaults__", "__kwdefaults__", "__import__", "__loader__", "__spec__", "__getattribute__",
           "__setattr__", "__delattr__", "__reduce__", "__reduce_ex__", "__func__", "__wrapped__"}
ATTACK_CALLS = {"exec", "eval", "compile", "__import__", "globals", "vars", "breakpoint", "get_ipython"}
ATTACK_IMPORTS = {"ctypes", "cffi", "builtins", "importlib", "gc", "inspect", "IPython", "ipykernel", "traitlets",
                  "jupyter_client", "zmq", "runpy", "code", "codeop", "marshal", "pickle", "_pickle", "dill",
                  "cloudpickle", "shelve", "copyreg", "nbformat", "nbclient", "nbgrader", "_thread", "sys"}
ATTACK_NAMES = {"get_ipython", "__builtins__", "__IPYTHON__", "_ih", "_oh", "_dh", "__loader__", "__spec__"}
SAFE_MAGICS = {"matplotlib": False, "time": True, "timeit": True}  # magic -> whether its argument is code to check
COMMON_WORDS = {"events", "kernel", "shell", "modules", "ex", "ev"}
SAFE_SYS = {"stdout", "stderr", "version", "version_info", "platform", "maxsize", "float_info", "argv", "exit"}


def defined_names(tree) -> dict[str, set[str]]:
    """Top-level names a piece of code binds: {name: {how}} (``import:numpy``, ``assign``, ``def``)."""
    found: dict[str, set[str]] = {}
    for node in top_level(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                how = f"import:{node.module if isinstance(node, ast.ImportFrom) else ''}:{alias.name}"
                found.setdefault(name, set()).add(how)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.setdefault(node.name, set()).add("def")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            found.setdefault(node.id, set()).add("assign")
    return found


def top_level(tree):
    """The nodes of ``tree`` at module scope (not inside functions, classes, lambdas or comprehensions)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if node is not tree and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
                                           | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            continue
        todo.extend(ast.iter_child_nodes(node))


def loaded_names(tree) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def transform(source: str) -> str | None:
    """``source`` as IPython runs it (magics and ``!`` commands as ``get_ipython()`` calls), or None if that fails."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # IPython raises several kinds on broken input
        return None


def attacks(source: str, protected: dict[str, set[str]] | None = None, *, depth: int = 0) -> list[str]:
    """Why running ``source`` (an answer cell) could forge the verdicts: IPython's shell API, code
    objects, ``exec``/``eval``/``compile``, ``ctypes`` and the like, or a rebinding of a name the
    locked cells define (``protected``: as :func:`defined_names`). Empty: nothing found."""
    protected = protected or {}
    code = transform(source)
    try:
        tree = ast.parse(code if code is not None else source)
    except (SyntaxError, ValueError):
        return ["cannot be parsed as Python (even with IPython's syntax)"]
    found, magics = [], set()
    for node in ast.walk(tree):  # the magics IPython's transformer wrote: get_ipython().run_line_magic('time', '...')
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic") and isinstance(node.func.value, ast.Call)
                and isinstance(node.func.value.func, ast.Name) and node.func.value.func.id == "get_ipython"
                and node.args and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
            name = node.args[0].value
            if name in SAFE_MAGICS and depth < 2:
                magics.add(id(node.func.value.func))
                if SAFE_MAGICS[name]:
                    found += attacks(node.args[-1].value, protected, depth=depth + 1)
            else:
                found.append(f"uses the IPython magic %{name}")
                magics.add(id(node.func.value.func))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "system", "getoutput") and isinstance(node.func.value, ast.Call) and isinstance(
                node.func.value.func, ast.Name) and node.func.value.func.id == "get_ipython":
            found.append("runs a shell command (!)")
            magics.add(id(node.func.value.func))
    modules = {"builtins", "__builtins__"} | {n for n, how in protected.items() if any(h.startswith("import") for h in how)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for name in [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]:
                if name.split(".")[0] in ATTACK_IMPORTS and not (name == "sys" and isinstance(node, ast.Import)):
                    found.append(f"imports {name}")
            for alias in node.names:
                modules.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Name) and node.id in ATTACK_NAMES and id(node) not in magics:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Name) and node.id in ATTACK_CALLS:  # called or aliased (e = eval)
            if id(node) not in magics:
                found.append(f"uses {node.id}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value in DUNDERS or node.value in SHELL_ATTRIBUTES - COMMON_WORDS):
            found.append(f"names {node.value!r} in a string (getattr and the like)")
        elif isinstance(node, ast.Attribute):
            if node.attr in DUNDERS or (node.attr == "__class__" and isinstance(node.ctx, ast.Store)):
                found.append(f"uses .{node.attr}")
            elif node.attr in SHELL_ATTRIBUTES and not (
                    node.attr in ("kernel", "shell", "modules", "events") and not _rooted_in(node, modules)):
                found.append(f"uses .{node.attr} (the interpreter's or IPython's machinery)")
            elif isinstance(node.value, ast.Name) and node.value.id == "sys" and node.attr not in SAFE_SYS:
                found.append(f"uses sys.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and node.args and _root(node.args[0]) in (modules | set(protected)):
            found.append(f"calls {node.func.id}() on {_root(node.args[0])}")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            found += [f"declares {name} global (a name of the locked cells)" for name in node.names if name in protected]
    for node in top_level(tree):
        targets = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(sub.ctx, ast.Store | ast.Del) \
                        and _root(sub) in (modules | set(protected)):
                    found.append(f"changes {ast.unparse(sub)} (defined by the notebook or a module)")
    for name, how in defined_names(tree).items():
        if name in protected and not (how <= protected[name] and all(h.startswith("import") for h in how)):
            found.append(f"rebinds {name}, which the locked cells define")
    return sorted(set(found))


def _root(expr):
    while isinstance(expr, ast.Attribute | ast.Subscript | ast.Call):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _rooted_in(node, names) -> bool:
    root = _root(node)
    return root is None or root in names or root in ATTACK_NAMES
