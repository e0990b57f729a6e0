"""What every part of the judge shares: the limits of what crosses, its errors, plain data, the kernel's request."""
from __future__ import annotations

import itertools
import sys
import threading

MAX_BYTES = 64 << 20         # a payload larger than this is refused, either way
MAX_DEPTH = 32               # nesting of tuples, lists and dicts
MAX_NODES = 200_000          # values in one payload (numbers, strings, arrays, containers)
MAX_TREE_BYTES = 4 << 20     # the structure's JSON (arrays are apart)
JSON_PREFIX = "json:"        # a value without arrays: its JSON (no numpy needed on either side)
INLINE_PREFIX = "inline:"    # a value with small numeric arrays: their bytes in the JSON (an .npz costs ~0.3 ms each way)
INLINE_BYTES = 64 << 10      # arrays of at most this many bytes in all go inline
INLINE_KINDS = "biufc"       # numpy dtype kinds that go inline: bool, integers, floats, complex
INLINE_TEXT = MAX_TREE_BYTES + INLINE_BYTES * 2  # the longest inline text (base64 makes 4 characters of 3 bytes)


# exceptions an answer may raise that the test sees as themselves (anything else: AnswerError)
KNOWN_ERRORS = {e.__name__: e for e in (ValueError, TypeError, AssertionError, IndexError, KeyError, RuntimeError,
                                        NotImplementedError, ZeroDivisionError, ArithmeticError, LookupError,
                                        AttributeError, NameError, OverflowError, FloatingPointError)}


class AnswerError(RuntimeError):
    """The student's function raised (in its kernel) something the test cannot see as itself."""


class NotData(TypeError):
    """A value that cannot cross between the processes: not an array, number, string or container of them."""


def _framework(value) -> str | None:
    module = type(value).__module__ or ""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return "torch"
    if module.startswith(("tensorflow", "keras", "tf_keras")) and hasattr(value, "numpy") and hasattr(value, "dtype"):
        return "tf"
    return None


def _plain_key(key) -> bool:
    """Keys a dict may cross with: strings and small integers (hashes that cannot be made to collide)."""
    return type(key) is str or (type(key) is int and abs(key) < 2**31)


def _is_plain(value, depth=0) -> bool:
    """Numbers, strings, None and tuples, lists and dicts of them (a module's settings and records)."""
    if depth > 4:
        return False
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (tuple, list):
        return len(value) <= 10_000 and all(_is_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return len(value) <= 1_000 and all(_plain_key(k) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _plain_attributes(module) -> dict:
    """A module's own attributes that are plain data (``stride``, a test's record ``self.batches``):
    what an answer may change in them crosses back like its parameters."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _is_plain(v)}


_KERNEL = threading.local()  # .classes: the test cell's classes while the kernel reads the grader's request


def _error_name(error: BaseException) -> str:
    """The first class in the error's ancestry the test can see as itself (a ``ValueError`` subclass: ``ValueError``)."""
    for cls in type(error).__mro__:
        if cls.__name__ in KNOWN_ERRORS and cls is KNOWN_ERRORS[cls.__name__]:
            return cls.__name__
    return type(error).__name__


def _text(error) -> str:
    try:
        return str(error)[:2000]
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        return f"<{type(error).__name__}>"


_NUMBERS = itertools.count(1)  # the kernel's: the numbers of the models and graphs it keeps (one sequence)
FORWARD = "<forward>"    # the request that runs a kept model (a layer of it) on the test's inputs
KEPT_MODELS = 64         # the kernel keeps this many models its answers made
_KERNEL_MODELS: dict = {}  # the kernel's: number -> model


def _keep(model) -> int:
    """The kernel's side: keep a model an answer made (the last :data:`KEPT_MODELS`); its number."""
    number = next(_NUMBERS)
    _KERNEL_MODELS[number] = model
    while len(_KERNEL_MODELS) > KEPT_MODELS:
        _KERNEL_MODELS.pop(next(iter(_KERNEL_MODELS)))
    return number


def _kept_ids() -> set:
    """The kernel's side: the ids of the models it keeps (their stand-ins in the grader have no state or weights)."""
    return {id(m) for m in _KERNEL_MODELS.values()}


def _kept(number):
    """The kernel's side: the model kept under ``number`` (:func:`_keep`)."""
    model = _KERNEL_MODELS.get(number) if type(number) is int else None
    if model is None:
        raise NotData(f"a model your kernel no longer keeps (it keeps the last {KEPT_MODELS} made)")
    return model


def _write_back_array(original, changed) -> None:
    """Change the array, tensor or variable ``original`` in place to ``changed`` (its copy after the call),
    when both are of one kind, shape and dtype and the values differ (what was not writable stays)."""
    if "numpy" in sys.modules and isinstance(original, sys.modules["numpy"].ndarray) \
            and isinstance(changed, sys.modules["numpy"].ndarray):
        np = sys.modules["numpy"]
        if original.shape == changed.shape and original.dtype == changed.dtype and original.flags.writeable \
                and original.tobytes() != changed.tobytes():
            np.copyto(original, changed)
    elif _framework(original) == "torch" and _framework(changed) == "torch":
        import torch

        before = original.detach().cpu().resolve_conj().resolve_neg()
        if before.shape == changed.shape and before.dtype == changed.dtype and not torch.equal(before, changed.detach()):
            with torch.no_grad():
                original.copy_(changed.to(original.device))
    elif _framework(original) == "tf" and hasattr(original, "assign") and _framework(changed) == "tf":
        np = sys.modules["numpy"]
        before, after = np.asarray(original.numpy()), np.asarray(changed.numpy())
        if before.shape == after.shape and before.dtype == after.dtype and before.tobytes() != after.tobytes():
            original.assign(after)


def _walk(value, depth: int = 0):
    """``value`` and, inside its tuples, lists and dicts, everything they hold: a container before what it
    holds, in one order on both sides (a call's arguments, or its result)."""
    if depth > MAX_DEPTH:
        return
    yield value
    if isinstance(value, (tuple, list, dict)):
        for v in (value.values() if isinstance(value, dict) else value):
            yield from _walk(v, depth + 1)


def _leaves(value, keep) -> list:
    """What ``keep`` selects in ``value``, outside the containers themselves, each object once (a tensor given
    twice is one input of a graph, as it is one object in the kernel)."""
    found, seen = [], set()
    for v in _walk(value):
        if not isinstance(v, (tuple, list, dict)) and id(v) not in seen and keep(v):
            seen.add(id(v))
            found.append(v)
    return found


def _objects(value) -> list:
    """A call's own arrays, tensors, variables, lists, tuples and dicts: what the call may change in place,
    or hand back."""
    np = sys.modules.get("numpy")
    return [v for v in _walk(value) if isinstance(v, (tuple, list, dict)) or _framework(v) is not None
            or (np is not None and isinstance(v, np.ndarray))]
