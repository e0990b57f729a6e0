"""What the grader pickles for the kernel (its PyTorch models, objects of the test's own classes) and the
kernel's restricted unpickler: the kernel is the only side that unpickles (it trusts the signed request)."""
from __future__ import annotations

import builtins
import io
import pickle
import sys

from course_utils.instructor.judge.base import _KERNEL, NotData, _text
from course_utils.instructor.judge.keras_models import _is_keras_layer


class _TestClassPickler(pickle.Pickler):
    """A class the test cell defines (``FixedScores``) goes by name: the kernel makes it from the cell's source."""

    def reducer_override(self, obj):
        if isinstance(obj, type) and obj.__module__ == "__main__":
            return _test_class, (obj.__qualname__,)
        return NotImplemented


def _pickled(modules: list) -> bytes:
    """The grader's models for the kernel (the kernel is the only side that unpickles: it trusts the grader)."""
    buffer = io.BytesIO()
    try:
        _TestClassPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(modules)
    except Exception as error:  # noqa: BLE001 - a lambda or a function of the test inside the model
        raise NotData(f"a model that cannot be copied into the kernel ({_text(error)})") from None
    return buffer.getvalue()


_MADE: dict[str, dict] = {}  # the test classes made from a source, reused by the cell's next calls (hundreds, at times)


def _made_classes(source: str, names: list) -> dict:
    if source not in _MADE:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(source, "<the test's classes>", "exec"), namespace)  # noqa: S102 - the grader's code
        if len(_MADE) >= 8:
            _MADE.clear()
        _MADE[source] = {n: namespace.get(n) for n in names}
    return _MADE[source]


def _test_class(name: str):
    found = getattr(_KERNEL, "classes", {}).get(name)
    if not isinstance(found, type):
        raise NotData(f"the test's class {name!r} did not come with the request")
    return found


def _is_test_instance(value) -> bool:
    """A plain object of a class the test cell defines (``__main__`` in the grader's namespace): not a
    class, and not a model (those cross as models)."""
    torch = sys.modules.get("torch")
    return type(value).__module__ == "__main__" and not isinstance(value, type) and hasattr(value, "__dict__") \
        and not (torch is not None and isinstance(value, torch.nn.Module)) and not _is_keras_layer(value)


def _test_instance(name: str, state) -> object:
    """The grader's object of a test class, made in the kernel from its attributes (its ``__init__`` not run again)."""
    if not isinstance(state, dict):
        raise NotData("a malformed object of the test's class")
    cls = _test_class(name)
    made = cls.__new__(cls)
    made.__dict__.update(state)
    return made


class _ModelUnpickler(pickle.Unpickler):
    """What a pickle of the grader's models may name: PyTorch's own classes and rebuild functions, plain
    containers, and the test's classes (:func:`_test_class`); nothing that runs a program or a file."""

    def find_class(self, module, name):
        from course_utils.instructor.audit import allowed_pickle

        if (module, name) == (__name__, "_test_class") or allowed_pickle(module, name):
            return super().find_class(module, name)
        if module.startswith(("torch.nn.modules.", "torch.nn.parameter")) and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise NotData(f"the grader's models name {module}.{name}, which is not a PyTorch class or rebuild function")


def _unpickled(data: bytes) -> list:
    found = _ModelUnpickler(io.BytesIO(data)).load()  # the grader's request (signed: .guard), read in the kernel
    if not isinstance(found, list):
        raise NotData("a malformed list of models")
    return found
