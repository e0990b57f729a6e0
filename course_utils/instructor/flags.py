"""Answer code that deserves a human look: monkey-patching, redefined built-ins, file and process access.

Flags change no score: ``autograde`` marks the notebook *flagged* in the gradebook and
``status`` lists the reasons (README, "Threat model of autograding").
"""
from __future__ import annotations

import ast
import re

SUSPICIOUS_IMPORTS = {"subprocess", "ctypes", "socket", "shutil", "sqlite3", "signal", "gc", "inspect",
                      "importlib", "builtins", "pickle", "multiprocessing", "pty"}
SUSPICIOUS_CALLS = {"open", "eval", "exec", "compile", "__import__", "setattr", "delattr", "globals", "getattr"}
SUSPICIOUS_OS = {"system", "popen", "remove", "unlink", "rmdir", "rename", "replace", "kill", "killpg", "_exit",
                 "listdir", "scandir", "walk", "chdir", "fork", "execv", "execvp", "spawnv"}
# keyword arguments that let a loader unpickle (and so call) whatever the file names
SUSPICIOUS_KEYWORDS = {("allow_pickle", True), ("weights_only", False), ("safe_mode", False)}
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
            found += [f"passes {k.arg}={k.value.value} (unpickling runs code)" for k in node.keywords
                      if isinstance(k.value, ast.Constant) and (k.arg, k.value.value) in SUSPICIOUS_KEYWORDS]
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
ATTACK_CALLS = {"exec", "eval", "compile", "__import__", "globals", "vars", "locals", "breakpoint", "get_ipython"}
ATTACK_IMPORTS = {"ctypes", "cffi", "builtins", "importlib", "gc", "inspect", "IPython", "ipykernel", "traitlets",
                  "jupyter_client", "zmq", "runpy", "code", "codeop", "marshal", "pickle", "_pickle", "dill",
                  "cloudpickle", "shelve", "copyreg", "nbformat", "nbclient", "nbgrader", "_thread", "sys",
                  # ways to reach any object by its dotted name, or to run code later or elsewhere
                  "pkgutil", "pydoc", "unittest", "types", "weakref", "atexit", "threading", "concurrent", "asyncio",
                  "signal", "faulthandler", "sysconfig", "site", "comm", "ipywidgets", "course_utils.instructor",
                  # ways to load a module from a path, or to run code given as text
                  "imp", "zipimport", "cProfile", "profile", "pdb", "bdb", "trace", "doctest",
                  # threads that would run between cells, while the kernel's audit hook is off
                  "multiprocessing.pool", "multiprocessing.dummy"}
# Attributes that lead to the interpreter, native code or the dispatcher, whatever object they hang on
# (torch.sys, numpy.ctypeslib, torch.library, torch.utils.cpp_extension, tf.load_op_library...).
ATTACK_ATTRIBUTES = {"sys", "os", "builtins", "importlib", "ctypes", "ctypeslib", "_C", "library", "cpp_extension",
                     "load_op_library", "load_library", "attrgetter", "methodcaller", "__self__", "__objclass__",
                     "get_ipython", "load_source", "get_type_hints", "pickle", "marshal", "inspect", "gc",
                     "get_field"}  # string.Formatter().get_field('0.a.b', ...): attribute look-ups by name
# Dunder attributes an answer may use (super().__init__, type(x).__name__ ...); any other is refused.
SAFE_DUNDERS = {"__init__", "__name__", "__qualname__", "__doc__", "__class__", "__module__", "__version__", "__len__",
                "__call__", "__getitem__", "__iter__", "__next__", "__repr__", "__str__", "__enter__", "__exit__",
                "__post_init__", "__contains__", "__main__", "__file__"}
# Methods an answer's class may define: the others change how the tests compare, convert or look up
# its objects (__eq__, __bool__, __array__, __float__, __sub__, __torch_function__, __getattr__, __del__...).
SAFE_METHODS = SAFE_DUNDERS - {"__name__", "__qualname__", "__doc__", "__class__", "__module__", "__version__",
                               "__main__", "__file__"}
# Types an answer may not subclass: their instances would pass as arrays, tensors or numbers.
VALUE_TYPES = {"Tensor", "ndarray", "Variable", "Parameter", "int", "float", "complex", "bool", "str", "bytes", "tuple",
               "list", "dict", "set", "frozenset", "type", "ModuleType", "generic", "number", "floating", "integer"}
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
    direct = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
              and n.func.id in ("getattr", "setattr", "delattr", "hasattr") and len(n.args) >= 2
              and isinstance(n.args[1], ast.Constant) and isinstance(n.args[1].value, str)}
    methods = {id(item) for n in ast.walk(tree) if isinstance(n, ast.ClassDef) for item in n.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom):  # from numpy import ctypeslib, from course_utils import instructor
                names += [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if (parts[0] in ATTACK_IMPORTS or ".".join(parts[:2]) in ATTACK_IMPORTS
                        or any(p in ATTACK_ATTRIBUTES - {"sys", "os"} for p in parts[1:])) \
                        and not (name == "sys" and isinstance(node, ast.Import)):
                    found.append(f"imports {name}")
            for alias in node.names:
                modules.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Name) and node.id in ATTACK_NAMES and id(node) not in magics:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Name) and node.id in ATTACK_CALLS:  # called or aliased (e = eval)
            if id(node) not in magics:
                found.append(f"uses {node.id}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                node.value in DUNDERS or node.value in SHELL_ATTRIBUTES - COMMON_WORDS
                or (_dunder(node.value) and node.value not in SAFE_DUNDERS)
                or any(d not in SAFE_DUNDERS for d in DUNDER_IN_TEXT.findall(node.value))):  # "0.__globals__" for a formatter
            found.append(f"names {node.value!r} in a string (getattr and the like)")
        elif isinstance(node, ast.Attribute):
            if node.attr in DUNDERS or (node.attr == "__class__" and isinstance(node.ctx, ast.Store)) or (
                    _dunder(node.attr) and node.attr not in SAFE_DUNDERS) or node.attr in ATTACK_ATTRIBUTES - {"sys"}:
                found.append(f"uses .{node.attr}")
            elif node.attr in SHELL_ATTRIBUTES and not (
                    node.attr in ("kernel", "shell", "modules", "events") and not _rooted_in(node, modules)):
                found.append(f"uses .{node.attr} (the interpreter's or IPython's machinery)")
            elif isinstance(node.value, ast.Name) and node.value.id == "sys" and node.attr not in SAFE_SYS:
                found.append(f"uses sys.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and node.args and _root(node.args[0]) in (modules | set(protected)):
            found.append(f"calls {node.func.id}() on {_root(node.args[0])}")
        elif isinstance(node, ast.Name) and node.id in ("getattr", "setattr", "delattr") and id(node) not in direct:
            found.append(f"uses {node.id} other than as getattr(obj, 'a literal name')")
        elif isinstance(node, ast.Call) and id(node.func) in direct and node.args[1].value in ATTACK_ATTRIBUTES:
            found.append(f"looks up {node.args[1].value!r} by name")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _dunder(node.name) \
                and node.name not in SAFE_METHODS and id(node) in methods:
            found.append(f"defines {node.name} (changes how the tests compare or convert its objects)")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                if name in VALUE_TYPES:
                    found.append(f"subclasses {ast.unparse(base)} (its objects would pass for arrays or numbers)")
            found += [f"sets the class's {k.arg}" for k in node.keywords if k.arg in ("metaclass",)]
        elif isinstance(node, ast.Global | ast.Nonlocal):
            found += [f"declares {name} global (a name of the locked cells)" for name in node.names if name in protected]
    aliases = module_aliases(tree, modules)
    top = {id(n) for n in top_level(tree)}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For | ast.AsyncFor | ast.comprehension):
            targets = [node.target]  # (a loop's target is assigned too: for module.function in [f])
        elif isinstance(node, ast.With | ast.AsyncWith):
            targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
        for target in targets:
            for sub in ast.walk(target):
                if not (isinstance(sub, ast.Attribute | ast.Subscript) and isinstance(sub.ctx, ast.Store | ast.Del)):
                    continue
                root = _root(sub)
                if root in aliases or (id(node) in top and root in protected):
                    found.append(f"changes {ast.unparse(sub)} (defined by the notebook or a module)")
                elif isinstance(sub, ast.Attribute) and (root is None or _made_here(sub)):
                    found.append(f"changes {ast.unparse(sub)} (an attribute of an object it does not name)")
    for name, how in defined_names(tree).items():
        if name in protected and not (how <= protected[name] and all(h.startswith("import") for h in how)):
            found.append(f"rebinds {name}, which the locked cells define")
    return sorted(set(found))


DUNDER_IN_TEXT = re.compile(r"__[A-Za-z][A-Za-z0-9_]*?__")


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def module_aliases(tree, modules: set[str]) -> set[str]:
    """``modules`` and every name bound to one of them, or to something reached from one without a
    call (``t = np.testing``, ``m = [math][0]``, ``for m in (np,)``): a store through it patches the module."""
    aliases, changed = set(modules), True
    while changed:
        changed = False
        for node in ast.walk(tree):
            value, targets = None, []
            if isinstance(node, ast.Assign):
                value, targets = node.value, node.targets
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value is not None:
                value, targets = node.value, [node.target]
            elif isinstance(node, ast.For | ast.comprehension):
                value, targets = node.iter, [node.target]
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                value, targets = node.context_expr, [node.optional_vars]
            if value is None or not _reaches(value, aliases):
                continue
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id not in aliases:
                        aliases.add(name.id)
                        changed = True
    return aliases


def _reaches(expr, names: set[str]) -> bool:
    """Whether ``expr`` evaluates to one of ``names`` or a part of one, without calling anything."""
    todo = [expr]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and node.id in names:
            return True
        if isinstance(node, ast.Call | ast.Lambda | ast.BinOp | ast.Compare | ast.UnaryOp):
            continue  # a call's result, arithmetic: a new object
        todo.extend(ast.iter_child_nodes(node))
    return False


def _made_here(expr) -> bool:
    """``f().x``, ``(lambda: m)().x``, ``[m][0].x``: an object reached through a plain call or a literal."""
    while isinstance(expr, ast.Attribute | ast.Subscript):
        expr = expr.value
    return isinstance(expr, ast.List | ast.Tuple | ast.Dict | ast.Set) or (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name | ast.Lambda | ast.Call))


def _root(expr):
    while isinstance(expr, ast.Attribute | ast.Subscript | ast.Call):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def _rooted_in(node, names) -> bool:
    root = _root(node)
    return root is None or root in names or root in ATTACK_NAMES
