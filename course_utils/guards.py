"""Checks that an answer is written "from scratch": which callables a function may not use.

Swapping a module attribute while the student's function runs (``F.max_pool2d = refuse``) is
dodged by any reference bound earlier (``pool = F.max_pool2d``, ``from torch.nn.functional
import max_pool2d as pool``, a default argument, a layer object made at module level). So the
check reads the answer's code instead: every global, closure cell, default argument, import
and attribute chain the function's bytecode loads is resolved to the object it names *now*,
and compared by identity with the forbidden objects. Functions, classes and objects the
student defined (module ``__main__``, i.e. a notebook cell) are followed recursively, so a
helper that calls the built-in is caught too. Dynamic lookups that cannot be resolved
statically (``eval``, ``exec``, ``getattr``, ``__import__``, ``importlib``, ``globals()``,
``vars()``, ``sys.modules``) are refused as well: an exercise that forbids a built-in asks
for plain code.

No framework is imported here; the forbidden objects come from the caller, e.g.
``check_from_scratch(pool2d, [F.max_pool2d, nn.MaxPool2d], name="pool2d")``.
"""
from __future__ import annotations

import builtins
import dis
import functools
import importlib
import inspect
import sys
import types
from collections.abc import Callable, Iterable

__all__ = ["DYNAMIC_LOOKUPS", "check_from_scratch", "forbidden_uses"]

# names whose use makes a static check impossible; refused in a from-scratch answer
DYNAMIC_LOOKUPS = frozenset({"eval", "exec", "compile", "getattr", "__import__", "globals", "vars", "locals",
                             "__builtins__", "__dict__", "__getattribute__", "modules", "import_module",
                             "attrgetter", "methodcaller", "get_field", "getattr_static"})  # look-ups by name
_DYNAMIC_OBJECTS = (eval, exec, compile, getattr, builtins.__import__, globals, vars, locals,
                    importlib.import_module, importlib, sys.modules)

_LOADS = {"LOAD_GLOBAL", "LOAD_NAME"}
_ATTRS = {"LOAD_ATTR", "LOAD_METHOD"}
_STORES = {"STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"}
_LOCALS = {"LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"}


def _module(dotted: str):
    """The module ``import dotted`` names, if already imported: from sys.modules, or by
    attributes from its package (TensorFlow's API modules live under other names)."""
    found = sys.modules.get(dotted)
    if found is None:
        parts = dotted.split(".")
        found = sys.modules.get(parts[0])
        for part in parts[1:]:
            if found is None:
                break
            try:
                found = getattr(found, part)
            except Exception:  # noqa: BLE001
                found = None
    return found


def _user_defined(value) -> bool:
    """Defined in the notebook (``__main__``), not in a library: followed recursively."""
    module = getattr(value, "__module__", None) if not isinstance(value, types.ModuleType) else None
    return module == "__main__"


class _Search:
    def __init__(self, forbidden: Iterable):
        self.forbidden = list(forbidden)
        self.ids = {id(f) for f in self.forbidden}
        self.types = tuple(f for f in self.forbidden if isinstance(f, type))
        self.found: list[str] = []
        self.seen: set[int] = set()

    def flag(self, where: str) -> None:
        if where not in self.found:
            self.found.append(where)

    def is_forbidden(self, value) -> bool:
        try:
            if id(value) in self.ids:
                return True
            if self.types and isinstance(value, self.types):
                return True  # an instance of a forbidden layer, e.g. nn.MaxPool2d(2) made earlier
            if isinstance(value, type) and self.types and issubclass(value, self.types):
                return True  # a subclass of a forbidden layer
        except Exception:  # noqa: BLE001  (objects with odd __eq__/__class__ are simply not forbidden)
            return False
        return False

    def value(self, value, where: str) -> None:
        """Check an object the answer refers to, and follow it if the student made it."""
        if self.is_forbidden(value):
            self.flag(where)
            return
        if any(value is d for d in _DYNAMIC_OBJECTS):
            self.flag(f"{where} (a dynamic lookup)")
            return
        if id(value) in self.seen:
            return
        wrapped = getattr(value, "python_function", None) if not isinstance(value, types.ModuleType) else None
        if wrapped is None and not isinstance(value, types.ModuleType):
            wrapped = getattr(value, "__wrapped__", None)  # functools.wraps and similar decorators
        if wrapped is not None and inspect.isfunction(wrapped) and _user_defined(wrapped):
            # tf.function and other decorators: the student's function is inside
            self.seen.add(id(value))
            self.value(wrapped, where)
            return
        if isinstance(value, functools.partial):
            self.seen.add(id(value))
            self.value(value.func, where)
            for arg in (*value.args, *value.keywords.values()):
                self.value(arg, where)
        elif inspect.ismethod(value):
            self.seen.add(id(value))
            self.value(value.__func__, where)
            self.value(value.__self__, where)
        elif inspect.isfunction(value) and _user_defined(value):
            self.seen.add(id(value))
            self.function(value)
        elif isinstance(value, type) and _user_defined(value):
            self.seen.add(id(value))
            for base in value.__mro__[1:]:
                self.value(base, f"{where} (base class {base.__name__})")
            for name, member in vars(value).items():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    for accessor in (member.fget, member.fset):
                        if accessor is not None:
                            self.value(accessor, f"{where}.{name}")
                    continue
                self.value(member, f"{where}.{name}")
        elif _user_defined(type(value)):
            # an object of a class the student wrote (an nn.Module subclass, a Keras layer):
            # its class and what it holds (sub-layers included) are part of the answer
            self.seen.add(id(value))
            self.value(type(value), where)
            attributes = getattr(value, "__dict__", {})
            for name, member in list(attributes.items()):
                if isinstance(member, dict):  # nn.Module keeps sub-modules in _modules
                    for key, item in list(member.items()):
                        self.value(item, f"{where}.{key}")
                elif isinstance(member, (list, tuple)):
                    for item in member:
                        self.value(item, f"{where}.{name}")
                else:
                    self.value(member, f"{where}.{name}")
        elif isinstance(value, (list, tuple)) and len(value) < 1000:
            for item in value:
                self.value(item, where)

    def function(self, func) -> None:
        for cell, name in zip(func.__closure__ or (), func.__code__.co_freevars):
            try:
                self.value(cell.cell_contents, name)
            except ValueError:  # an empty cell
                pass
        for default in (*(func.__defaults__ or ()), *((func.__kwdefaults__ or {}).values())):
            self.value(default, f"a default argument of {func.__name__}")
        self.code(func.__code__, func.__globals__)

    def code(self, code: types.CodeType, namespace: dict) -> None:
        if id(code) in self.seen:
            return
        self.seen.add(id(code))
        local_values: dict[str, object] = {}
        chain_value, chain_name, have_chain = None, "", False
        imported, walk, previous_constant = None, False, None
        for instruction in dis.get_instructions(code):
            op, arg = instruction.opname, instruction.argval
            if op in _LOADS:
                if arg in DYNAMIC_LOOKUPS:
                    self.flag(f"{arg} (a dynamic lookup)")
                found = namespace.get(arg, getattr(builtins, arg, None)) if isinstance(arg, str) else None
                chain_value, chain_name, have_chain = found, str(arg), found is not None
                if have_chain:
                    self.value(found, chain_name)
            elif op in _LOCALS:
                name = str(arg)
                chain_value, chain_name, have_chain = local_values.get(name), name, name in local_values
            elif op in _ATTRS:
                if arg in DYNAMIC_LOOKUPS:
                    self.flag(f"{chain_name}.{arg} (a dynamic lookup)")
                if have_chain:
                    try:
                        chain_value = inspect.getattr_static(chain_value, arg)
                        if isinstance(chain_value, (staticmethod, classmethod)):
                            chain_value = chain_value.__func__
                        if type(chain_value).__name__ in ("getset_descriptor", "member_descriptor", "property"):
                            have_chain = False  # an instance's data: nothing to resolve statically
                    except AttributeError:
                        try:
                            chain_value = getattr(chain_value, arg)
                        except Exception:  # noqa: BLE001
                            have_chain = False
                    chain_name = f"{chain_name}.{arg}"
                    if have_chain:
                        self.value(chain_value, chain_name)
            elif op == "IMPORT_NAME":
                # `import a.b.c as d` pushes the package a, then walks .b.c with IMPORT_FROM;
                # `from a.b import c` pushes a.b and takes each name from it
                leaf = _module(str(arg))
                if leaf is not None:
                    self.value(leaf, str(arg))
                if str(arg).split(".")[0] == "importlib":
                    self.flag(f"import {arg} (a dynamic lookup)")
                walk = previous_constant is None and "." in str(arg)
                imported = _module(str(arg).split(".")[0]) if walk else leaf
                chain_value, chain_name, have_chain = leaf, str(arg), leaf is not None
            elif op == "IMPORT_FROM":
                found = getattr(imported, str(arg), None) if imported is not None else None
                if found is None and imported is not None:
                    found = _module(f"{getattr(imported, '__name__', '')}.{arg}")
                if walk:
                    imported = found
                chain_value, chain_name, have_chain = found, f"{arg}", found is not None
                if have_chain:
                    self.value(found, chain_name)
            elif op in _STORES:
                if have_chain:
                    local_values[str(arg)] = chain_value
                else:
                    local_values.pop(str(arg), None)
                have_chain = False
            elif op in ("DUP_TOP", "COPY", "CACHE", "EXTENDED_ARG", "NOP", "PRECALL", "RESUME", "PUSH_NULL",
                        "SWAP", "POP_TOP", "ROT_TWO"):
                continue
            else:
                have_chain = False
            if op == "LOAD_CONST":
                previous_constant = arg
        for constant in code.co_consts:
            if isinstance(constant, types.CodeType):
                self.code(constant, namespace)


def forbidden_uses(func: Callable, forbidden: Iterable) -> list[str]:
    """What in ``func`` (and in what it defines or references that the student wrote) names a
    forbidden object or makes a dynamic lookup; ``[]`` when it uses none."""
    search = _Search(forbidden)
    search.value(func, getattr(func, "__name__", "the answer"))
    return search.found


def check_from_scratch(func: Callable, forbidden: Iterable, name: str = "the answer",
                       allowed: str = "") -> None:
    """Raise AssertionError naming each forbidden use in ``func``; silent when there is none.

    forbidden: functions, classes (their instances and subclasses too) or modules.
    allowed: a sentence for the message, e.g. "use tensor operations (unfold, amax, sum)".
    """
    judge = sys.modules.get("course_utils.instructor.judge")
    if judge is not None and judge.is_remote(func):
        return  # the grader's run of a judged test: the student's kernel runs this check on the real function
    found = forbidden_uses(func, forbidden)
    if found:
        hint = f" {allowed}" if allowed else ""
        raise AssertionError(f"{name} must be written from scratch; it uses {', '.join(found)}.{hint}")
