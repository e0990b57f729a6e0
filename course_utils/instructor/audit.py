"""The grading kernel's run-time barrier: a PEP 578 audit hook that refuses ways to run hidden code.

The pre-check reads answer code; code it cannot read (a string built at run time and handed to
something that runs strings, a module file the answer writes and then loads, a pickle) would
run with the kernel's full power, and could then reach the guard itself. While a student's or a
test cell runs, this hook makes these raise ``PermissionError`` instead:

* ``exec``/``eval`` called from a notebook cell, or from a module whose job is to run
  code given as text (``timeit`` with a string, ``cProfile.run``, ``pdb``, ``doctest``, ``code``,
  ``typing``'s evaluation of string annotations...);
* running a code object read from a file outside the installed libraries (a module the answer
  wrote and imports by any route: ``torch.hub.load(..., source='local')``, a path hook...);
* unpickling a reference to anything but data classes (``np.load(allow_pickle=True)``,
  ``torch.load(weights_only=False)``: a pickle can call ``os.system`` or ``exec``);
* frames and code objects reached from notebook code (``inspect.currentframe()``,
  ``inspect.stack()``, ``traceback.walk_stack``, a generator's ``gi_frame``): a frame's locals
  reach the kernel;
* ``gc``'s object walks (they reach the kernel and the guard), ``ctypes`` (raw memory) other than
  a library loading its own shared object, and opening ``/proc/<pid>/mem``.

An audit hook cannot be removed once added (PEP 578), and the switch that arms it lives in a
closure, not in an attribute the notebook could reach. Python's audit events do not cover
everything (``ctypes.memmove`` on an address raises none): the pre-check and the guard stay.
"""
from __future__ import annotations

import os
import sys
import threading

REFUSED = "the grader does not let answer code"  # how a refusal starts (autograde flags the notebook on it)
# Modules that run code handed to them as text: a compile or exec they make is refused.
STRING_RUNNERS = {"cProfile", "profile", "pdb", "bdb", "trace", "doctest", "code", "runpy", "typing", "pydoc", "imp",
                  "timeit", "pickle", "_pickle", "unittest.mock"}
# The only code timeit may compile: its template around a callable (timeit.timeit(f) is fine).
TIMEIT_LINES = {"pass", "_setup()", "_stmt()", "_t0 = _timer()", "for _i in _it:", "_t1 = _timer()", "return _t1 - _t0"}
# What a pickle may name: data classes and their rebuild functions.
PICKLE_ROOTS = {"numpy", "torch", "collections", "copyreg", "_codecs", "datetime", "decimal", "fractions", "PIL",
                "tensorflow", "keras", "__main__"}
PICKLE_BUILTINS = {"set", "frozenset", "slice", "complex", "range", "bytearray", "bytes", "dict", "list", "tuple",
                   "int", "float", "str", "bool", "object"}
# sys._getframe, sys._current_frames, and reading a frame or code attribute (gi_frame, tb_frame, __code__)
FRAME_EVENTS = {"sys._getframe", "sys._current_frames", "object.__getattr__"}
FRAME_GETTERS = {"inspect", "traceback"}  # what the notebook may call to get a frame: refused from a notebook
GC_WALKS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents"}
CELL_RUNNER = "IPython.core.interactiveshell"  # runs the notebook's cells (their code objects)
AUTOGRAPH = "tensorflow.python.autograph"       # loads the functions it converts from generated files


def install(library_dirs) -> callable:
    """Add the hook; returns ``arm(on: bool)``, which switches it on for student and test cells."""
    libraries = tuple(str(d).rstrip("/") + "/" for d in library_dirs)
    armed, busy = [False], threading.local()

    def library_file(name: str) -> bool:
        return name.startswith(libraries) or name.startswith("<frozen ")

    def notebook_code(frame) -> bool:
        """A frame of a notebook cell or of a function the notebook defined."""
        return not library_file(frame.f_code.co_filename) and frame.f_globals.get("__name__") != CELL_RUNNER

    def caller():
        frame = sys._getframe(3)  # 0: here, 1: check, 2: the hook, 3: what raised the event
        return frame, frame.f_globals.get("__name__", "")

    def refuse(what: str):
        raise PermissionError(f"{REFUSED} {what} (README, threat model)")

    def check(event: str, args: tuple) -> None:
        if event == "compile":  # compiling alone runs nothing; timeit's is checked because it runs what it compiled
            frame, module = caller()
            if module == "timeit" and not _timeit_template(args[0]):
                refuse("run code given as text (timeit with a string)")
        elif event == "exec":
            frame, module = caller()
            name = getattr(args[0], "co_filename", "")
            if name.startswith("/") and not library_file(name) and module != CELL_RUNNER and not (
                    module.startswith(AUTOGRAPH) or _called_from(frame, AUTOGRAPH)):
                refuse(f"run code from a file outside the installed libraries ({name})")
            if module == "timeit" and name == "<timeit-src>":
                return
            if module.split(".")[0] in STRING_RUNNERS or module in STRING_RUNNERS:
                refuse(f"run code given as text (exec from {module})")
            if notebook_code(frame):
                refuse("call exec() or eval() (code given as text)")
        elif event in FRAME_EVENTS:  # frames lead to the kernel's own objects (its frame's locals)
            frame, module = caller()
            while event != "object.__getattr__" and module in FRAME_GETTERS and frame.f_back is not None:
                frame = frame.f_back
                module = frame.f_globals.get("__name__", "")
            if notebook_code(frame):
                refuse(f"reach the interpreter's frames or code objects ({event} {_short(args)})")
        elif event == "pickle.find_class":
            module, name = str(args[0]), str(args[1])
            if not (module.split(".")[0] in PICKLE_ROOTS or (module == "builtins" and name in PICKLE_BUILTINS)) or (
                    module.startswith("course_utils.instructor")):
                refuse(f"unpickle a reference to {module}.{name}")
        elif event in GC_WALKS:
            refuse(f"walk the interpreter's objects ({event})")
        elif event.startswith("ctypes."):
            path = args[0] if event == "ctypes.dlopen" and args else None
            if not (isinstance(path, str) and path.startswith("/") and library_file(os.path.realpath(path))):
                refuse(f"use ctypes ({event})")
        elif event == "open" and args and isinstance(args[0], str | bytes):
            path = os.path.realpath(os.fsdecode(args[0]))
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


def _short(args) -> str:
    return str(args[1]) if len(args) > 1 and isinstance(args[1], str) else ""


def _timeit_template(source) -> bool:
    text = source.decode() if isinstance(source, bytes) else source if isinstance(source, str) else ""
    return all(line.strip() in TIMEIT_LINES or line.strip().startswith("def inner(_it, _timer")
               for line in text.splitlines() if line.strip())


def _called_from(frame, prefix: str, depth: int = 30) -> bool:
    while frame is not None and depth:
        if frame.f_globals.get("__name__", "").startswith(prefix):
            return True
        frame, depth = frame.f_back, depth - 1
    return False
