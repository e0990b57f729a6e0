"""The grading kernel's run-time barrier: a PEP 578 audit hook that refuses ways to run hidden code.

The pre-check reads answer code; code it cannot read (a string built at run time and handed to
something that runs strings, a module file the answer writes and then loads, a pickle) would
run with the kernel's full power, and could then reach the guard itself. While a student's or a
test cell runs, this hook makes these raise ``PermissionError`` instead:

* ``exec``/``eval`` called from notebook code, from a library function the notebook calls
  directly (``dataclasses._create_fn``) or from a module whose job is to run code given as text
  (``timeit`` with a string, ``cProfile.run``, ``pdb``, ``doctest``, ``code``, ``typing``'s
  evaluation of string annotations...);
* running a code object read from a file outside the installed libraries (a module the answer
  wrote and imports by any route: ``torch.hub.load(..., source='local')``, a path hook...);
* unpickling a reference to anything but listed data classes and rebuild functions, or the
  notebook's own classes (``np.load(allow_pickle=True)``: a pickle can call ``os.system``); the
  judge's reader of the grader's models (``judge._ModelUnpickler``) checks its own, narrower list;
* frames reached from notebook code (``inspect.currentframe()``, ``inspect.stack()``, a
  generator's ``gi_frame``): a frame's locals reach the kernel;
* ``gc``'s object walks and ``ctypes`` called from notebook code, loading a shared object from
  outside the libraries, and opening ``/proc/<pid>/mem``.

An audit hook cannot be removed once added (PEP 578), and the switch that arms it lives in a
closure. This is not a sandbox: Python raises no event for attribute look-ups by name
(``string.Formatter().get_field``), ``f_back`` or ``ctypes.memmove``, so code that passes the
pre-check with such a gadget can still reach the kernel (README, threat model).
"""
from __future__ import annotations

import os
import sys
import threading

REFUSED = "the grader does not let answer code"  # how a refusal starts (autograde flags the notebook on it)
# Modules that run code handed to them as text: an exec they make is refused.
STRING_RUNNERS = {"cProfile", "profile", "pdb", "bdb", "trace", "doctest", "code", "runpy", "typing", "pydoc", "imp",
                  "timeit", "pickle", "_pickle", "unittest.mock"}
# Library functions that a notebook may call and that exec code they generate themselves
DIRECT_EXEC = {("collections", "namedtuple")}
# What a pickle may name: data classes and their rebuild functions (a DataLoader's workers send these).
PICKLE_NAMES = {
    "builtins": {"set", "frozenset", "slice", "complex", "range", "bytearray", "bytes", "dict", "list", "tuple",
                 "int", "float", "str", "bool", "object"},
    "collections": {"OrderedDict", "defaultdict", "deque", "Counter", "namedtuple"},
    "copyreg": {"_reconstructor"}, "_codecs": {"encode"}, "datetime": {"datetime", "date", "time", "timedelta"},
    "decimal": {"Decimal"}, "fractions": {"Fraction"},
    "numpy": {"dtype", "ndarray"}, "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "multiprocessing.resource_sharer": {"DupFd"},
    "torch": {"Size", "device", "dtype", "layout", "memory_format"},
    "torch._tensor": {"_rebuild_from_type_v2"}, "torch.storage": {"TypedStorage", "UntypedStorage", "_load_from_bytes"},
}
PICKLE_PREFIXES = {"torch._utils": "_rebuild_", "torch.multiprocessing.reductions": "rebuild_", "numpy.dtypes": "",
                   "torch": ""}  # torch.float32, torch.FloatStorage: the top-level module's own names
# sys._getframe, sys._current_frames, and reading a frame or code attribute (gi_frame, tb_frame, __code__)
FRAME_EVENTS = {"sys._getframe", "sys._current_frames", "object.__getattr__"}
FRAME_GETTERS = {"inspect"}  # what the notebook may call to get a frame: refused from a notebook
GC_WALKS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents"}
CELL_RUNNER = "IPython.core.interactiveshell"  # runs the notebook's cells (their code objects)
AUTOGRAPH = "tensorflow.python.autograph"       # loads the functions it converts from generated files
SYSTEM_LIBRARIES = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/")  # read-only in the sandbox
FROZEN = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")  # the import system


def in_library(name, libraries: tuple[str, ...]) -> bool:
    """A file under one of the library folders (each ending in "/"), ``..`` resolved first."""
    return os.path.normpath(str(name)).startswith(libraries)


def allowed_pickle(module: str, name: str) -> bool:
    """A name a pickle may refer to: listed, or a public name (or one with the listed prefix) of a listed module."""
    if name in PICKLE_NAMES.get(module, ()):
        return True
    prefix = PICKLE_PREFIXES.get(module)
    if prefix is None or "." in name:
        return False
    return name.startswith(prefix) if prefix else not name.startswith("_")


def install(library_dirs) -> callable:
    """Add the hook; returns ``arm(on: bool)``, which switches it on for student and test cells."""
    from course_utils.instructor.judge.pickles import _ModelUnpickler

    # each folder as given and with its links resolved (a shared object's path is compared resolved: a venv
    # reached through a link, such as a checkout's .venv, had torch's own libraries refused)
    libraries = tuple(sorted({str(d).rstrip("/") + "/" for d in library_dirs}
                             | {os.path.realpath(d).rstrip("/") + "/" for d in library_dirs}))
    armed, busy = [False], threading.local()
    judge_reader = _ModelUnpickler.find_class  # kept here: patching the class later changes nothing
    timeit_sources = _timeit_sources()

    def library_file(name) -> bool:
        return str(name) in FROZEN or in_library(name, libraries)

    def module_of(frame) -> str:
        name = frame.f_globals.get("__name__", "")
        return name if isinstance(name, str) else ""

    def notebook_code(frame) -> bool:
        """A frame of a notebook cell or of a function the notebook defined."""
        return frame is not None and not library_file(frame.f_code.co_filename) and module_of(frame) != CELL_RUNNER

    def caller():
        try:
            frame = sys._getframe(3)  # 0: here, 1: check, 2: the hook, 3: what raised the event
        except ValueError:  # raised from C with no Python frame above
            return None, ""
        return frame, module_of(frame)

    def outside(frame, prefixes):
        """The first frame above ``frame`` whose module is not one of ``prefixes``."""
        while frame is not None and module_of(frame).startswith(prefixes):
            frame = frame.f_back
        return frame

    def refuse(what: str):
        raise PermissionError(f"{REFUSED} {what} (README, threat model)")

    def check(event: str, args: tuple) -> None:
        if event == "compile":  # compiling alone runs nothing; timeit's is checked because it runs what it compiled
            frame, module = caller()
            if module == "timeit" and _text(args[0]) not in timeit_sources:
                refuse("run code given as text (timeit with a string)")
        elif event == "exec":
            frame, module = caller()
            name = getattr(args[0], "co_filename", "")
            if isinstance(name, str) and name.startswith("/") and not library_file(name) and module != CELL_RUNNER \
                    and not (module.startswith(AUTOGRAPH) and "__autograph_generated_file" in name):
                refuse(f"run code from a file outside the installed libraries ({name})")
            if frame is None or module == CELL_RUNNER or (module == "timeit" and name == "<timeit-src>"):
                return
            if module.split(".")[0] in STRING_RUNNERS or module in STRING_RUNNERS:
                refuse(f"run code given as text (exec from {module})")
            if notebook_code(frame):
                refuse("call exec() or eval() (code given as text)")
            if notebook_code(frame.f_back) and (module, frame.f_code.co_name) not in DIRECT_EXEC:
                refuse(f"call a library function that runs code given as text ({module}.{frame.f_code.co_name})")
        elif event in FRAME_EVENTS:  # frames lead to the kernel's own objects (its frame's locals)
            frame, module = caller()
            if notebook_code(outside(frame, tuple(FRAME_GETTERS)) if event != "object.__getattr__" else frame):
                refuse(f"reach the interpreter's frames or code objects ({event} {_short(args)})")
        elif event == "pickle.find_class":
            module, name = str(args[0]), str(args[1])
            frame, _ = caller()
            if frame is not None and frame.f_code is judge_reader.__code__ and frame.f_globals is judge_reader.__globals__:
                return  # the judge reading the grader's models: its find_class names PyTorch's classes only
            if not allowed_pickle(module, name) and not _notebook_class(module, name):
                refuse(f"unpickle a reference to {module}.{name}")
        elif event in GC_WALKS:
            if notebook_code(caller()[0]):
                refuse(f"walk the interpreter's objects ({event})")
        elif event == "ctypes.dlopen":  # a library may load a system one by name (torch: libdl.so.2)
            path = args[0] if args else None
            if isinstance(path, str) and path.startswith("/"):
                if not os.path.realpath(path).startswith(libraries + SYSTEM_LIBRARIES):
                    refuse(f"load a shared object from outside the installed libraries ({path})")
            elif notebook_code(outside(caller()[0], ("ctypes",))):
                refuse(f"use ctypes ({event} {path})")
        elif event.startswith("ctypes."):
            if notebook_code(outside(caller()[0], ("ctypes",))):
                refuse(f"use ctypes ({event})")
        elif event == "open" and args and isinstance(args[0], str | bytes):
            try:
                path = os.path.realpath(os.fsdecode(args[0]))
            except ValueError:  # a NUL byte: open refuses it itself
                return
            if path.startswith("/proc/") and os.path.basename(path) in ("mem", "maps", "pagemap"):
                refuse(f"open {path}")

    def hook(event: str, args: tuple) -> None:
        if not armed[0] or not (event in WATCHED or event.startswith("ctypes.")) or getattr(busy, "on", False):
            return
        busy.on = True  # the check itself raises events (sys._getframe)
        try:
            check(event, args)
        finally:
            busy.on = False

    def arm(on: bool) -> None:
        armed[0] = bool(on)

    sys.addaudithook(hook)
    return arm


WATCHED = {"compile", "exec", "pickle.find_class", "open"} | GC_WALKS | FRAME_EVENTS


def _notebook_class(module: str, name: str) -> bool:
    """A class the notebook defined (its objects may be pickled); not its functions, nor what IPython put there."""
    value = getattr(sys.modules.get("__main__"), name, None) if module == "__main__" else None
    return isinstance(value, type) and value.__dict__.get("__module__") == "__main__"


def _short(args) -> str:
    return str(args[1]) if len(args) > 1 and isinstance(args[1], str) else ""


def _text(source) -> str | None:
    if isinstance(source, bytes):
        return source.decode("utf-8", "replace")
    return source if isinstance(source, str) else None


def _timeit_sources() -> set[str]:
    """What timeit compiles around a function (``timeit.timeit(f)``), and nothing else."""
    import timeit

    found = {"pass"}  # the default set-up, compiled to check it
    for setup, init in (("pass", ", _stmt=_stmt"), ("_setup()", ", _setup=_setup, _stmt=_stmt")):
        found.add(timeit.template.format(stmt="_stmt()", setup=setup, init=init))
    return found
