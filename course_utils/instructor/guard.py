"""The grading kernel: ipykernel that puts the grader's world back before every test cell.

The pre-check (:mod:`.precheck`) refuses answer code that *reads* like an attack on the verdicts;
this kernel is the second layer, for code that does not. nbgrader's verdict is "the test cell
ended without an error output", decided from what the kernel sends, so code in the kernel could
change it by patching what the tests call (``numpy.isclose``, a check helper, ``torch.Tensor``'s
methods, a built-in), by hooking IPython's shell (input or AST transformers, events, a custom
exception handler, the display machinery) or by rebinding the notebook's own imports. Here:

* a **baseline** is taken just before the first student or test cell runs (after the release's
  set-up cells, as the grader marks them, and after importing the modules the test cells import,
  as the grader lists them), and of each newly imported module after each cell: every function,
  class and module bound in the modules of the libraries the tests use (and their public
  constants: ``numpy.pi``, ``torch.float32``), the methods of their classes, the code and
  defaults of their functions, IPython's hooks and the interpreter's (``sys.excepthook``, trace
  and profile functions, ``sys.meta_path``...), the kernel's own handlers, and the names the
  trusted cells import or define in the notebook;
* **before each test cell** whatever differs from the baseline is put back and reported (the cell
  shows a note; the grader flags the notebook): the test runs with the grader's functions;
* **after each test cell**, a difference made *while it ran* (by the student's function it called)
  fails that test: put back, an error output is added, the cell scores zero;
* each test cell ends with a **receipt**, an HMAC of the cell's id and code under a key the grader
  sends with its first request and the notebook never sees; :class:`.execute.BoundedExecute`
  fails a test cell without a valid receipt (a kernel whose guard was bypassed).

A request with the role ``call`` (signed like every other) runs one answer function on data the
grader sends and publishes its result (:mod:`.judge`): a judged test's verdict is decided in the
grader, whatever this process does.

It is in-process: code that reaches this kernel object could still disable it, which the
pre-check refuses (the shell, frames, ``gc``, ``sys.modules``, ``course_utils.instructor``...)
and :mod:`.audit`'s hook refuses at run time for code the pre-check cannot read (code given as
text, module files, pickles, ``gc``, ``ctypes``, ``/proc/<pid>/mem``). The key stays in a closure;
the objects a test's outputs travel through (session, sockets, streams) are part of the baseline;
the kernel is not dumpable, so the answer's child processes cannot attach to it.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import hmac
import importlib
import sys
import types
from pathlib import Path

from course_utils.instructor.audit import in_library

MIME = "application/vnd.course-grading-guard+json"
MIME_CALL = "application/vnd.course-grading-call+json"  # an answer's result for the grader (:mod:`.judge`)
META = "course_guard"   # the execute_request metadata key the grader sends: {"role", "cell", "mac", "key" (first)}
TRUSTED, TEST, STUDENT = "trusted", "test", "student"
CALL = "call"  # a grader's request that calls one answer function with data (:mod:`.judge`)
# Modules whose functions and classes the tests (and their helpers) rely on; the kernel's own.
PROTECTED_ROOTS = {"numpy", "torch", "tensorflow", "keras", "tf_keras", "course_utils", "builtins", "math", "numbers",
                   "fractions", "decimal", "statistics", "cmath", "random", "string", "dataclasses", "enum", "typing",
                   "operator", "functools", "collections", "itertools", "re", "abc", "copy", "types", "warnings",
                   "IPython", "ipykernel", "jupyter_client", "zmq", "traitlets", "json", "hmac", "hashlib", "ast",
                   "inspect", "sys", "asyncio", "threading", "contextlib", "unittest"}
# Libraries whose public module-level constants (numbers, strings, dtypes) are recorded too
DATA_ROOTS = {"numpy", "torch", "tensorflow", "keras", "math", "cmath", "statistics", "fractions", "decimal",
              "course_utils"}
CONSTANT_TYPES = {int, float, complex, bool, str, bytes}  # not None: a placeholder filled in later (TF flags)
SYS_HOOKS = ("excepthook", "displayhook", "breakpointhook", "unraisablehook", "stdout", "stderr", "stdin")
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SHELL_ATTRS = ("events", "custom_exceptions", "CustomTB", "displayhook", "display_pub", "display_formatter",
               "input_transformer_manager", "compile", "InteractiveTB", "SyntaxTB", "user_ns", "user_module",
               *SHELL_LISTS)
KERNEL_PARTS = ("session", "iopub_socket", "iopub_thread", "shell_stream", "shell_streams", "control_stream",
                "control_thread", "shell")
SHOWN = 8  # differences listed in a note
# What a test cell's GradingRefused error says when the guard fails it, or the grader finds no receipt
CHANGED_DURING_TEST = "this test changed what the grader relies on while it ran"
NO_RECEIPT = "the grader could not confirm that this test ran in an untampered kernel"


def receipt(key: bytes, cell_id: str, code: str) -> str:
    """The HMAC a test cell's run ends with (computed by the kernel, checked by the grader)."""
    message = f"{cell_id}\n{hashlib.sha256(code.encode()).hexdigest()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def request_mac(key: bytes, msg_id: str, role, cell) -> str:
    """The HMAC a grader's execute request carries: only the grader can say which role a cell has."""
    return hmac.new(key, f"{msg_id}\n{role}\n{cell}".encode(), hashlib.sha256).hexdigest()


def _kind(value) -> str | None:
    kind = type(value)  # never value.__class__: a module attribute may be an object with a hostile property
    if issubclass(kind, type):
        return "class"
    if issubclass(kind, types.ModuleType):
        return "module"
    if issubclass(kind, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, staticmethod, classmethod,
                         property, functools.partial, types.MethodDescriptorType, types.WrapperDescriptorType,
                         types.ClassMethodDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType)):
        return "function"
    return None


def _constant(value) -> bool:
    kind = type(value)
    return kind in CONSTANT_TYPES or kind.__name__ in ("dtype", "DType") or (
        kind.__module__ == "numpy" and kind.__name__.startswith("dtype["))


def _protected(name) -> bool:
    return isinstance(name, str) and name.split(".")[0] in PROTECTED_ROOTS


def _function_state(function):
    kw = function.__kwdefaults__
    return function.__code__, function.__defaults__, dict(kw) if kw is not None else None


class Baseline:
    """What the tests rely on, as it was before the student's code ran, and how to put it back."""

    def __init__(self):
        self.modules: dict[str, tuple] = {}    # name -> (module, {key: value})
        self.classes: dict[int, tuple] = {}    # id -> (class, {key: value})
        self.functions: dict[int, tuple] = {}  # id -> (function, (code, defaults, kwdefaults))
        self.objects: list[tuple] = []         # (label, object, {attribute: value}) instance state
        self.lists: list[tuple] = []           # (label, list object, contents)
        self.names: dict[str, object] = {}     # notebook names the trusted cells import or define

    # -- taking it --------------------------------------------------------------------------------
    def add_new_modules(self) -> None:
        for name, module in list(sys.modules.items()):
            if name in self.modules or not _protected(name) or not isinstance(getattr(module, "__dict__", None), dict):
                continue
            entries, data = {}, name.split(".")[0] in DATA_ROOTS
            for key, value in list(module.__dict__.items()):
                kind = _kind(value)
                if kind:
                    entries[key] = value
                    self._remember(value, kind)
                elif data and not key.startswith("_") and _constant(value):
                    entries[key] = value  # np.pi, torch.float32: a test compares with them
            self.modules[name] = (module, entries)

    def _remember(self, value, kind) -> None:
        if kind == "function":
            function = getattr(value, "__func__", value) if isinstance(value, (staticmethod, classmethod)) else value
            if isinstance(function, types.FunctionType) and id(function) not in self.functions:
                self.functions[id(function)] = (function, _function_state(function))
        elif kind == "class" and id(value) not in self.classes and _protected(value.__dict__.get("__module__")):
            entries = {key: item for key, item in list(value.__dict__.items()) if _kind(item) == "function"}
            self.classes[id(value)] = (value, entries)
            for item in entries.values():
                self._remember(item, "function")

    def add_object(self, label: str, obj, attributes=(), methods: bool = True) -> None:
        """``obj``'s ``attributes``, and (``methods``) the functions set on the instance itself."""
        state = {key: value for key, value in vars(obj).items() if methods and _kind(value) == "function"}
        for attribute in attributes:
            state[attribute] = getattr(obj, attribute, None)
        self.objects.append((label, obj, state))

    def add_list(self, label: str, items) -> None:
        self.lists.append((label, items, list(items)))

    # -- comparing and putting back ----------------------------------------------------------------
    def restore(self, user_ns: dict, skip_names=frozenset()) -> list[str]:
        """Put back everything that differs from the baseline; what differed."""
        found = []
        for name, (module, entries) in self.modules.items():
            current = module.__dict__
            for key, value in entries.items():
                now = current.get(key, _MISSING)
                if now is value or (_kind(value) == "module" and _kind(now) == "module" and _same_module(now)) or (
                        name == "sys" and key in VOLATILE):
                    continue
                found.append(f"{name}.{key} was {'deleted' if now is _MISSING else 'replaced'}")
                current[key] = value
        for cls, entries in self.classes.values():
            current = cls.__dict__
            for key in [k for k, v in list(current.items()) if k not in entries and _kind(v) == "function"]:
                found.append(f"{_qualname(cls)}.{key} was added")
                _quietly(type.__delattr__, cls, key)
            for key, value in list(entries.items()):
                now = current.get(key, _MISSING)
                if now is value:
                    continue
                if _library_wrapper(now, value):
                    entries[key] = now
                    continue
                found.append(f"{_qualname(cls)}.{key} was replaced")
                _quietly(type.__setattr__, cls, key, value)
        for function, state in self.functions.values():
            if _function_state(function) != state:
                found.append(f"the code or defaults of {function.__module__}.{function.__qualname__} were changed")
                function.__code__, function.__defaults__, function.__kwdefaults__ = state[0], state[1], (
                    dict(state[2]) if state[2] is not None else None)
        for label, obj, state in self.objects:
            current = vars(obj)
            for key in [k for k, v in list(current.items()) if k not in state and _kind(v) == "function"
                        and hasattr(type(obj), k)]:  # an instance attribute hiding a method of its class
                found.append(f"{label}.{key} was set")
                del current[key]
            for key, value in state.items():
                if getattr(obj, key, _MISSING) is not value:
                    found.append(f"{label}.{key} was replaced")
                    _quietly(setattr, obj, key, value)
        for index, (label, items, contents) in enumerate(self.lists):
            if len(items) == len(contents) and all(a is b for a, b in zip(items, contents)):
                continue
            if all(any(a is b for b in items) for a in contents) and all(
                    _library_code(a) for a in items if not any(a is b for b in contents)):
                self.lists[index] = (label, items, list(items))  # a library's own hook added (matplotlib's)
                continue
            found.append(f"{label} was changed")
            items[:] = contents
        for name, value in self.names.items():
            if name not in skip_names and user_ns.get(name, _MISSING) is not value:
                found.append(f"the notebook's {name} was rebound")
                user_ns[name] = value
        return found


_MISSING = object()
VOLATILE = {"last_type", "last_value", "last_traceback", "last_exc"}  # sys's record of the last error


def _library_code(value) -> bool:
    """Code that lives in an installed file (a library's own), not in a notebook cell or a string."""
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    if not isinstance(code, types.CodeType):
        return _kind(value) == "function"  # built-in functions and descriptors are the libraries' own
    name = code.co_filename
    return name.endswith(".py") and in_library(name, _LIBRARY_PREFIXES) and "ipykernel_" not in name


def _library_wrapper(new, old) -> bool:
    """A library wrapping its own function at run time (PyTorch wraps an optimizer's ``step``)."""
    seen = 0
    while _library_code(new) and seen < 8:
        new, seen = getattr(getattr(new, "__func__", new), "__wrapped__", None), seen + 1
        if new is old or getattr(new, "__func__", _MISSING) is getattr(old, "__func__", None):
            return True
    return False


def _library_dirs() -> list[str]:
    """Where installed code lives: the interpreter's paths, and the import path's folders as the kernel
    starts (a venv may see another's packages through a ``.pth`` file), except the working and the
    temporary folders, where an answer could write a module."""
    import os
    import sysconfig
    import tempfile

    import course_utils

    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    writable = tuple(os.path.realpath(d).rstrip("/") + "/" for d in (os.getcwd(), tempfile.gettempdir()))
    found |= {entry for entry in sys.path if entry.startswith("/") and os.path.isdir(entry)
              and not (os.path.realpath(entry).rstrip("/") + "/").startswith(writable)}
    return sorted(found | {str(Path(course_utils.__file__).resolve().parent)})


_LIBRARY_DIRS = _library_dirs()
_LIBRARY_PREFIXES = tuple(d.rstrip("/") + "/" for d in _LIBRARY_DIRS)  # the audit hook's notion of library code too


def _same_module(module) -> bool:
    """A lazy loader replaced by its module (TensorFlow does this): the module that sys.modules holds."""
    name = module.__dict__.get("__name__")
    return isinstance(name, str) and sys.modules.get(name) is module


def _qualname(cls) -> str:
    return f"{cls.__dict__.get('__module__', '?')}.{cls.__dict__.get('__qualname__', '?')}"


def _quietly(function, *args) -> None:
    try:
        function(*args)
    except (TypeError, AttributeError):  # an immutable type; nothing was changed there either
        pass


def bound_names(code: str) -> set[str]:
    """Names a cell binds at its top level (a test cell may rebind its own helpers)."""
    from course_utils.instructor.flags import defined_names

    try:
        return set(defined_names(ast.parse(code)))
    except SyntaxError:
        return set()


def make_kernel_class(arm=lambda on: None):
    """The kernel class; ``arm`` switches the audit hook (:mod:`.audit`) on for student and test cells."""
    from ipykernel.ipkernel import IPythonKernel

    from course_utils.instructor.judge import answer_call

    secret = {}  # the grader's key: in this closure, not on the kernel object the notebook could reach

    class GuardedKernel(IPythonKernel):
        """IPythonKernel that restores the baseline before each test cell and signs the test cells' runs."""

        _guard_baseline = None
        _guard_names = None
        _guard_imports = ()

        def _guard_start(self):
            shell = self.shell
            for name in self._guard_imports:  # what the tests import is recorded before the student's code runs
                try:
                    importlib.import_module(name)
                except Exception:  # noqa: BLE001 - the test cell will report it; the baseline goes on
                    pass
            baseline = Baseline()
            self._guard_names = baseline.names = dict(self._guard_names)
            baseline.add_new_modules()
            baseline._remember(type(self), "class")  # this class is no module's attribute: its methods too
            baseline.add_object("sys", sys, SYS_HOOKS, methods=False)  # sys's functions: a module of the baseline
            baseline.add_object("the shell", shell, SHELL_ATTRS)
            # the objects a test's error or receipt travels through on its way to the grader
            baseline.add_object("the kernel", self, KERNEL_PARTS)
            parts = [(f"the kernel's {part}", obj) for part in KERNEL_PARTS if part != "shell"
                     for obj in _as_list(getattr(self, part, None))]
            parts += [("the kernel's iopub_thread.socket", getattr(self.iopub_thread, "socket", None)),
                      ("sys.stdout", sys.stdout), ("sys.stderr", sys.stderr),
                      ("the shell's displayhook", shell.displayhook), ("the shell's display_pub", shell.display_pub)]
            for label, obj in parts:
                if isinstance(getattr(obj, "__dict__", None), dict):
                    baseline.add_object(label, obj)
            for label in SHELL_LISTS:
                baseline.add_list(f"the shell's {label}", getattr(shell, label))
            baseline.add_object("the shell's events", shell.events, ("callbacks",))
            for event, callbacks in shell.events.callbacks.items():
                baseline.add_list(f"the shell's {event} callbacks", callbacks)
            tables = {"the shell's event callbacks": shell.events.callbacks,
                      "the kernel's shell_handlers": self.shell_handlers,
                      "the kernel's control_handlers": self.control_handlers}
            for label, table in tables.items():
                baseline.objects.append((label, _DictView(table), dict(table)))
            baseline.add_list("sys.meta_path", sys.meta_path)
            baseline.add_list("sys.path_hooks", sys.path_hooks)
            self._guard_baseline = baseline
            self._guard_trace = (sys.gettrace(), sys.getprofile())

        def _guard_restore(self, skip_names=frozenset()) -> list[str]:
            found = self._guard_baseline.restore(self.shell.user_ns, skip_names)
            if (sys.gettrace(), sys.getprofile()) != self._guard_trace:
                found.append("a trace or profile function was set")
                sys.settrace(self._guard_trace[0])
                sys.setprofile(self._guard_trace[1])
            return found

        def _guard_publish(self, msg_type: str, content: dict) -> None:
            self.session.send(self.iopub_socket, msg_type, content, parent=self.get_parent("shell"),
                              ident=self._topic(msg_type))

        async def _guard_run(self, run, code, kwargs):
            arm(True)
            try:
                return await run(code, **kwargs)
            finally:
                arm(False)

        async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                             *, cell_meta=None, cell_id=None):
            meta = (cell_meta or {}).get(META) or {}
            meta = meta if isinstance(meta, dict) else {}
            role, cell = meta.get("role", STUDENT), str(meta.get("cell", ""))
            if "key" not in secret:  # the grader's first request carries the key
                key = meta.get("key")
                secret["key"] = key.encode() if isinstance(key, str) and key else b""
                imports = meta.get("imports")
                self._guard_imports = [m for m in imports if _protected(m)] if isinstance(imports, list) else []
                self._guard_names = {}  # notebook names the trusted cells import or define
            msg_id = str(((self.get_parent("shell") or {}).get("header") or {}).get("msg_id", ""))
            if secret["key"] and not hmac.compare_digest(str(meta.get("mac", "")),
                                                        request_mac(secret["key"], msg_id, role, cell)):
                role = STUDENT  # not the grader's request (another process of the sandbox): the student's code
            if self._guard_baseline is None and role != TRUSTED:
                self._guard_start()  # once, just before the first student or test cell: the set-up is in it
            run = super().do_execute
            kwargs = dict(silent=silent, store_history=store_history, user_expressions=user_expressions,
                          allow_stdin=allow_stdin, cell_meta=cell_meta, cell_id=cell_id)
            if role == STUDENT:
                return await self._guard_run(run, code, kwargs)
            if role == CALL:  # the grader's own run of a judged test calls an answer: data in, data out
                answer = answer_call(self.shell.user_ns, code, arm)  # armed while the answer's code runs
                self._guard_publish("display_data", {"data": {MIME_CALL: {**answer, "call": msg_id}},
                                                     "metadata": {}, "transient": {}})
                return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
            user_ns = self.shell.user_ns
            before = dict(user_ns)
            if role == TEST:
                found = self._guard_restore()
                if found:
                    self._guard_publish("display_data", note(found, "before this test, the grader put back"))
            reply = await (self._guard_run(run, code, kwargs) if role == TEST else run(code, **kwargs))
            if role == TEST:
                during = self._guard_restore(skip_names=bound_names(code))
                if during:
                    content = refusal(during)
                    self._guard_publish("error", content)
                    reply = {**reply, "status": "error", **content}
                if secret["key"]:
                    self._guard_publish("display_data", {"data": {MIME: {"receipt": receipt(secret["key"], cell, code)}},
                                                         "metadata": {}, "transient": {}})
            # what this trusted cell imported or defined is the notebook's from now on
            for name, value in list(user_ns.items()):
                if before.get(name, _MISSING) is not value and _kind(value) and not name.startswith("_"):
                    self._guard_names[name] = value
            if self._guard_baseline is not None:
                self._guard_baseline.add_new_modules()
            return reply

    return GuardedKernel


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [] if value is None else [value]


class _DictView:
    """A dict's items as attributes, so that :meth:`Baseline.restore` compares and restores them."""

    def __init__(self, table: dict):
        self.__dict__ = table


def note(found: list[str], prefix: str) -> dict:
    shown = "; ".join(found[:SHOWN]) + (f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
    text = f"[grader] {prefix}: {shown}"
    return {"data": {"text/plain": text, MIME: {"flags": found[:50]}}, "metadata": {}, "transient": {}}


def refusal(found: list[str]) -> dict:
    shown = "; ".join(found[:SHOWN]) + (f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
    message = f"{CHANGED_DURING_TEST} ({shown}); it scores zero"
    return {"ename": "GradingRefused", "evalue": message, "traceback": [f"GradingRefused: {message}"]}


def _not_dumpable() -> None:
    """No other process of the sandbox's user may attach to this one or write its memory (prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):  # not Linux: nothing to do there
        pass


def main() -> None:
    from ipykernel.kernelapp import IPKernelApp

    from course_utils.instructor import audit

    _not_dumpable()
    arm = audit.install(_LIBRARY_DIRS)
    IPKernelApp.launch_instance(kernel_class=make_kernel_class(arm))


if __name__ == "__main__":
    main()
